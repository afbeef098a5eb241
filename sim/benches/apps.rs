//! Figures of real apps (issue 13), medians of wall time:
//!
//! - Initializing a `hyperware_process_lib` app: `WasmLoader::load_wasm` with a fresh loader
//!   (validation and Eager compilation included) and from the loader's module cache
//!   (instantiation only), for the example apps as built (about 0.12 and 0.19 MB) and for a
//!   0.9 MB build of the files app (no optimization, debug assertions: 0.53 MB of code).
//!   Targets: at most 20 ms compiling, 1 ms from the cache.
//! - Memory per idle app: resident set growth over 200 counters started and waiting.
//! - Requests per second that the counter app answers a driven client.
//! - `sim test` seeds per second of the counter's kit tests (each seed run twice), one
//!   thread and two; and of the chat's kit tests, a group of two nodes (a world).
//! - kit's build output: the counter wrapped as `kit build` wraps it (`wasm-tools component
//!   new` with the WASI adapter; `wasm-tools` must be installed): loading it compiling and
//!   cached, against the bare module's times in the same run (the cost of finding and
//!   checking the process module inside); and the transfer app composed with its worker API
//!   (`wasm-tools compose`, as kit composes it), two process modules in one process.
//!
//! It builds the apps it needs first (`sim build`, and the `large` profile of the files app).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel::{
    Capability, Kernel, KernelBuilder, KernelCommand, KernelConfig, LazyLoadBlob, OnExit,
    ProcessId, Request, TraceLevel, WasmConfig, WasmLoader,
};
use hyperkernel_sim::node::scenario::Scenario;
use hyperkernel_sim::run::Options;
use hyperkernel_sim::tools::explore::{Exploration, SeedResult, explore, explore_with};
use hyperkernel_sim::tools::kit;
use hyperkernel_sim::world::drive;
use hyperkernel_sim::world::spec::WorldScenario;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn apps() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/apps")
}

fn module(package: &str, name: &str) -> Vec<u8> {
    kit::build_package(&apps().join(package), &["test".into()]).unwrap();
    std::fs::read(
        apps()
            .join(package)
            .join("pkg")
            .join(format!("{name}.wasm")),
    )
    .unwrap()
}

/// The files app built with the `large` profile.
fn large_module() -> Vec<u8> {
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(apps())
        .args([
            "build",
            "--quiet",
            "--profile",
            "large",
            "--target",
            "wasm32-wasip1",
        ])
        .args(["-p", "files"])
        .status()
        .unwrap();
    assert!(status.success(), "building the large files app failed");
    std::fs::read(apps().join("target/wasm32-wasip1/large/files.wasm")).unwrap()
}

/// Milliseconds to load `code` with a fresh loader (compiling), and from the cache.
fn init_times(code: &[u8]) -> (f64, f64) {
    let mut compiled = Vec::new();
    for _ in 0..9 {
        let mut loader = WasmLoader::new(WasmConfig::default()).unwrap();
        let started = Instant::now();
        let process = loader.load_wasm(code).unwrap();
        compiled.push(started.elapsed().as_secs_f64() * 1e3);
        drop(process);
    }
    let mut loader = WasmLoader::new(WasmConfig::default()).unwrap();
    drop(loader.load_wasm(code).unwrap());
    let mut cached = Vec::new();
    for _ in 0..101 {
        let started = Instant::now();
        let process = loader.load_wasm(code).unwrap();
        cached.push(started.elapsed().as_secs_f64() * 1e3);
        drop(process);
    }
    (median(compiled), median(cached))
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// A kernel with the timer and the vfs, and a driven client holding the kernel capability.
fn kernel() -> (Kernel, ProcessId) {
    let mut config = KernelConfig::new("bench.os", 1);
    config.vfs = true;
    let loader = WasmLoader::new(WasmConfig::default()).unwrap();
    let mut kernel = KernelBuilder::new("bench.os", 1)
        .config(config)
        .loader(Box::new(loader))
        .trace_level(TraceLevel::Hash)
        .build()
        .unwrap();
    let client: ProcessId = "client:bench:bench.os".parse().unwrap();
    let kernel_cap = Capability::messaging("bench.os@kernel:distro:sys".parse().unwrap());
    kernel
        .harness()
        .register_driven(&client, &[kernel_cap], true)
        .unwrap();
    (kernel, client)
}

/// Starts counter `name` in `kernel`.
fn start_counter(kernel: &mut Kernel, client: &ProcessId, code: &[u8], name: &str) -> ProcessId {
    let id: ProcessId = format!("{name}:counter:example.os").parse().unwrap();
    let timer = Capability::messaging("bench.os@timer:distro:sys".parse().unwrap());
    let init = KernelCommand::InitializeProcess {
        id: id.clone(),
        wasm_bytes_handle: "/counter:example.os/pkg/counter.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: vec![timer],
        public: true,
    };
    let blob = LazyLoadBlob {
        mime: None,
        bytes: code.to_vec(),
    };
    kernel
        .harness()
        .command_as(client, &init, None, Some(blob))
        .unwrap();
    kernel.harness().run_until_idle();
    let run = KernelCommand::RunProcess(id.clone());
    kernel
        .harness()
        .command_as(client, &run, None, None)
        .unwrap();
    kernel.harness().run_until_idle();
    assert!(kernel.has_process(&id), "{name} started");
    id
}

/// Resident bytes per idle counter, over `count` of them.
fn memory_per_app(code: &[u8], count: usize) -> f64 {
    let (mut kernel, client) = kernel();
    start_counter(&mut kernel, &client, code, "warm");
    let before = resident_bytes();
    for i in 0..count {
        start_counter(&mut kernel, &client, code, &format!("c{i}"));
    }
    (resident_bytes().saturating_sub(before)) as f64 / count as f64
}

/// Requests per second the counter answers: batches of 100 `Add`s, each answered.
fn requests_per_second(code: &[u8], requests: usize) -> f64 {
    let (mut kernel, client) = kernel();
    let counter = start_counter(&mut kernel, &client, code, "counter");
    let target = kernel.address_of(&counter);
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..requests / 100 {
        for _ in 0..100 {
            let request = Request::new(r#"{"Add":1}"#).expecting(5);
            kernel
                .harness()
                .send_as(&client, target.clone(), request, None, None)
                .unwrap();
        }
        kernel.harness().run_until_idle();
        while kernel.harness().receive_as(&client).unwrap().is_some() {
            answered += 1;
        }
    }
    assert_eq!(answered, requests / 100 * 100, "every request answered");
    answered as f64 / started.elapsed().as_secs_f64()
}

/// `code` wrapped as kit's build wraps a process (`wasm-tools component new --adapt`).
fn component_of(code: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (module, adapter) = (
        dir.path().join("m.wasm"),
        dir.path().join("wasi_snapshot_preview1.wasm"),
    );
    std::fs::write(&module, code).unwrap();
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    std::fs::write(&adapter, bytes).unwrap();
    let status = std::process::Command::new("wasm-tools")
        .arg("component")
        .arg("new")
        .arg(&module)
        .arg("-o")
        .arg(&module)
        .arg("--adapt")
        .arg(&adapter)
        .status()
        .expect("wasm-tools (cargo install wasm-tools --locked --version 1.225.0)");
    assert!(status.success(), "wasm-tools component new failed");
    std::fs::read(&module).unwrap()
}

/// Seeds per second of 100 seeds explored on `jobs` threads by `explore_all`, all passing.
fn rate(jobs: usize, explore_all: impl Fn(&Exploration) -> Vec<SeedResult>) -> f64 {
    let plan = Exploration {
        seeds: 0..100,
        jobs,
        options: Options::default(),
        fresh_every: 0,
    };
    let started = Instant::now();
    let results = explore_all(&plan);
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        results.iter().all(|r| r.failure.is_none()),
        "the tests pass"
    );
    results.len() as f64 / seconds
}

/// `sim test` seeds per second of the chat's tests (two nodes, a world) on `jobs` threads.
fn world_seeds_per_second(jobs: usize) -> f64 {
    let tests = apps().join("chat/test/tests.toml");
    let file = kit::read_tests(&tests).unwrap();
    let world = kit::world_of(&tests, &file, 0, (None, None))
        .unwrap()
        .unwrap();
    let scenario = WorldScenario::from_file(&tests, world).unwrap();
    rate(jobs, |plan| {
        explore_with(plan, &|_, _| {}, &|seed| {
            drive::explore_seed(&scenario, seed, plan)
        })
    })
}

/// `sim test` seeds per second of the counter's tests on `jobs` threads.
fn test_seeds_per_second(jobs: usize) -> f64 {
    let tests = apps().join("counter/test/tests.toml");
    let file = kit::read_tests(&tests).unwrap();
    let generated = kit::scenario_of(&tests, &file, 0, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter-tests.json");
    std::fs::write(&path, serde_json::to_string(&generated).unwrap()).unwrap();
    let scenario = Scenario::load(&path).unwrap();
    rate(jobs, |plan| explore(&scenario, plan, &|_, _| {}))
}

fn main() {
    let counter = module("counter", "counter");
    let files = module("files", "files");
    for test in ["counter/test/counter-test", "chat", "chat/test/chat-test"] {
        kit::build_package(&apps().join(test), &["test".into()]).unwrap();
    }
    let large = large_module();
    println!("apps: medians (9 compiles, 101 cached loads)");
    for (name, code) in [
        ("counter", &counter),
        ("files", &files),
        ("files, large build", &large),
    ] {
        let (compiled, cached) = init_times(code);
        let mb = code.len() as f64 / 1e6;
        println!(
            "  initialize {name:<20} {mb:>5.2} MB  {compiled:>7.2} ms compiling (target <= 20 ms: {})  {cached:>6.3} ms cached (target <= 1 ms: {})",
            if compiled <= 20.0 { "met" } else { "NOT met" },
            if cached <= 1.0 { "met" } else { "NOT met" },
        );
    }
    let component = component_of(&counter);
    let (module_compiled, module_cached) = init_times(&counter);
    let (compiled, cached) = init_times(&component);
    println!(
        "  initialize counter, as kit builds it (a component, {:.2} MB)  {compiled:>7.2} ms compiling ({:.2}x the module's {module_compiled:.2} ms)  {cached:>6.3} ms cached ({:.2}x the module's {module_cached:.3} ms)",
        component.len() as f64 / 1e6,
        compiled / module_compiled,
        cached / module_cached,
    );
    // A composition (kit's file-transfer shape): the transfer process and its worker API.
    kit::build_package(&apps().join("transfer"), &["test".into()]).unwrap();
    let composed = std::fs::read(apps().join("transfer/pkg/transfer.wasm")).unwrap();
    let (compiled, cached) = init_times(&composed);
    println!(
        "  initialize transfer, composed with its worker API ({:.2} MB, two process modules)  {compiled:>7.2} ms compiling  {cached:>6.3} ms cached",
        composed.len() as f64 / 1e6,
    );
    let per_app = median((0..3).map(|_| memory_per_app(&counter, 200)).collect());
    println!(
        "  memory per idle counter app  {:>10.0} KiB (resident growth over 200)",
        per_app / 1024.0
    );
    let rates: Vec<f64> = (0..5)
        .map(|_| requests_per_second(&counter, 20_000))
        .collect();
    println!(
        "  counter requests answered    {:>10.0} /s (20 000 Adds, median of 5)",
        median(rates)
    );
    for jobs in [1, 2] {
        let rate = median((0..3).map(|_| test_seeds_per_second(jobs)).collect());
        println!(
            "  sim test seeds/s, {jobs} thread(s) {rate:>9.1} (counter's tests, each seed run twice)"
        );
    }
    for jobs in [1, 2] {
        let rate = median((0..3).map(|_| world_seeds_per_second(jobs)).collect());
        println!(
            "  sim test seeds/s, {jobs} thread(s) {rate:>9.1} (chat's tests on two nodes, a world; each seed run twice and each node once more alone)"
        );
    }
}
