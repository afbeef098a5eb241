//! The durable kernel's figures (issue 11), as medians of wall time with ratios against
//! baselines from the same run:
//!
//! - Boot of a redb home holding 1 000 and 10 000 persisted wasm processes of 10 distinct
//!   modules: opening the store (its page checksums checked) and `KernelBuilder::build`, with
//!   the modules already compiled (target: 1 000 in at most 100 ms), the compilation of the 10 modules apart, and the `Booted` step that starts
//!   them all.
//! - A step with one state update on redb over a real file, synced and unsynced: the kernel's
//!   added cost per commit (the step on redb less the same step on `MemStorage`) as a ratio
//!   to a bare redb transaction making the same write (target: at most 1.2x).
//! - Simulated seeds per second of the pingpong scenario with redb on the simulated disk
//!   against `MemStorage`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel::{
    Capability, Flow, Kernel, KernelBuilder, KernelCommand, KernelConfig, LazyLoadBlob, Message,
    NativeLoader, OnExit, ProcessContext, ProcessId, RedbStorage, Request, Storage, TraceLevel,
    Wake, WasmConfig, WasmLoader,
};
use hyperkernel_sim::node::scenario::{Scenario, StorageKind};
use hyperkernel_sim::run::{Options, run};
use std::path::Path;
use std::time::Instant;

const RUNS: usize = 5;
const MODULES: usize = 10;
const STEPS: usize = 2_000;
const SEEDS: u64 = 20;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The echo guest made into `MODULES` distinct modules by a custom section each.
fn modules() -> Vec<Vec<u8>> {
    let echo = hyperkernel_sim::node::guests::guest("echo").unwrap();
    (0..MODULES)
        .map(|n| {
            let name = format!("bench-{n}");
            let mut module = echo.clone();
            let payload_len = 1 + name.len();
            module.push(0);
            module.push(u8::try_from(payload_len).unwrap());
            module.push(u8::try_from(name.len()).unwrap());
            module.extend_from_slice(name.as_bytes());
            module
        })
        .collect()
}

fn client() -> ProcessId {
    "client:bench:our.os".parse().unwrap()
}

fn kernel_cap() -> Capability {
    Capability::messaging("our.os@kernel:distro:sys".parse().unwrap())
}

/// A home at `path` with `count` processes (not run), module `n % MODULES` each.
fn make_home(path: &Path, count: usize, modules: &[Vec<u8>], loader: &WasmLoader) {
    let storage = RedbStorage::open(path).unwrap();
    let mut config = KernelConfig::new("our.os", 1);
    config.trace_level = TraceLevel::Hash;
    config.sync_interval_nanos = u64::MAX;
    let mut kernel = KernelBuilder::new("our.os", 1)
        .config(config)
        .loader(Box::new(loader.share()))
        .storage(Box::new(storage))
        .build()
        .unwrap();
    kernel
        .harness()
        .register_driven(&client(), &[kernel_cap()], true)
        .unwrap();
    for n in 0..count {
        let command = KernelCommand::InitializeProcess {
            id: format!("p{n}:bench:our.os").parse().unwrap(),
            wasm_bytes_handle: format!("/bench:our.os/pkg/m{}.wasm", n % MODULES),
            wit_version: Some(1),
            on_exit: OnExit::Restart,
            initial_capabilities: vec![kernel_cap()],
            public: false,
        };
        let blob = LazyLoadBlob {
            mime: None,
            bytes: modules[n % MODULES].clone(),
        };
        kernel
            .harness()
            .command_as(&client(), &command, None, Some(blob))
            .unwrap();
        kernel.harness().run_until_idle();
    }
    kernel.sync().unwrap();
    assert_eq!(kernel.stored_map().unwrap().len(), count + 1);
}

/// Milliseconds to open the home at `path` (every page's checksum checked) and build a
/// kernel on it with `loader`, then to start all.
fn boot(path: &Path, loader: &WasmLoader, count: usize) -> (f64, f64) {
    let start = Instant::now();
    let storage = RedbStorage::open(path).unwrap();
    let mut kernel = KernelBuilder::new("our.os", 2)
        .trace_level(TraceLevel::Hash)
        .loader(Box::new(loader.share()))
        .storage(Box::new(storage))
        .build()
        .unwrap();
    let built = ms(start);
    let start = Instant::now();
    kernel.harness().run_until_idle();
    let started = ms(start);
    assert_eq!(
        kernel.process_ids().len(),
        count + 2,
        "every process is back"
    );
    (built, started)
}

/// Room for 10 000 instances of the echo guest (128 KiB of memory each).
fn wasm_config() -> WasmConfig {
    WasmConfig {
        total_memory_max: 4 << 30,
        ..WasmConfig::default()
    }
}

fn boots(count: usize) {
    let modules = modules();
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("kernel.redb");
    let warm = WasmLoader::new(wasm_config()).unwrap();
    make_home(&path, count, &modules, &warm);
    let (mut built, mut started, mut cold) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (b, s) = boot(&path, &warm, count);
        built.push(b);
        started.push(s);
        let fresh = WasmLoader::new(wasm_config()).unwrap();
        cold.push(boot(&path, &fresh, count).0);
    }
    let (built, started, cold) = (median(built), median(started), median(cold));
    println!(
        "boot of {count} processes of {MODULES} modules: {built:.1} ms median of {RUNS} with \
         the modules compiled{}; compiling the {MODULES} modules {:.1} ms more ({cold:.1} ms \
         cold); the Booted step starting them all {started:.1} ms",
        if count == 1_000 {
            " (target 100 ms)"
        } else {
            ""
        },
        cold - built
    );
}

/// Writes its state on every request (64 to 127 bytes, as the bare transaction does);
/// answers nothing, so no answer forces a sync.
fn counter() -> Box<dyn hyperkernel::Process> {
    let mut count = 0;
    Box::new(move |ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(_)))) = wake {
            ctx.set_state(&vec![7; (count % 64) + 64]).unwrap();
            count += 1;
        }
        Flow::Receive
    })
}

fn counting_kernel(storage: Box<dyn Storage>, sync_interval_nanos: u64) -> (Kernel, ProcessId) {
    let mut config = KernelConfig::new("our.os", 1);
    config.trace_level = TraceLevel::Hash;
    config.sync_interval_nanos = sync_interval_nanos;
    let loader = NativeLoader::new().with("counter", counter);
    let mut kernel = KernelBuilder::new("our.os", 1)
        .config(config)
        .loader(Box::new(loader))
        .storage(storage)
        .build()
        .unwrap();
    kernel
        .harness()
        .register_driven(&client(), &[kernel_cap()], true)
        .unwrap();
    let id: ProcessId = "counter:bench:our.os".parse().unwrap();
    let init = KernelCommand::InitializeProcess {
        id: id.clone(),
        wasm_bytes_handle: String::new(),
        wit_version: Some(1),
        on_exit: OnExit::Restart,
        initial_capabilities: vec![],
        public: true,
    };
    let blob = LazyLoadBlob {
        mime: None,
        bytes: b"counter".to_vec(),
    };
    kernel
        .harness()
        .command_as(&client(), &init, None, Some(blob))
        .unwrap();
    kernel.harness().run_until_idle();
    kernel
        .harness()
        .command_as(
            &client(),
            &KernelCommand::RunProcess(id.clone()),
            None,
            None,
        )
        .unwrap();
    kernel.harness().run_until_idle();
    (kernel, id)
}

/// Microseconds per state-updating request (route, run with one state write, commit).
fn per_update(storage: Box<dyn Storage>, sync_interval_nanos: u64) -> f64 {
    let (mut kernel, id) = counting_kernel(storage, sync_interval_nanos);
    let target: hyperkernel::Address = format!("our.os@{id}").parse().unwrap();
    let (commits_before, _) = kernel.commits();
    let start = Instant::now();
    for _ in 0..STEPS {
        kernel
            .harness()
            .send_as(&client(), target.clone(), Request::new("inc"), None, None)
            .unwrap();
        kernel.harness().run_until_idle();
    }
    let elapsed = start.elapsed().as_secs_f64() * 1e6;
    let (commits, _) = kernel.commits();
    assert_eq!(
        commits - commits_before,
        STEPS as u64,
        "one commit per update"
    );
    elapsed / STEPS as f64
}

/// Microseconds per bare redb transaction writing the same state.
fn bare_redb(path: &Path, durable: bool) -> f64 {
    let db = redb::Database::create(path).unwrap();
    let table: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state");
    let key = b"counter:bench:our.os";
    let start = Instant::now();
    for n in 0..STEPS {
        let mut txn = db.begin_write().unwrap();
        let durability = if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        };
        txn.set_durability(durability).unwrap();
        {
            let mut open = txn.open_table(table).unwrap();
            let value = vec![7; (n % 64) + 64];
            open.insert(&key[..], value.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    start.elapsed().as_secs_f64() * 1e6 / STEPS as f64
}

fn commits() {
    let home = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    for (name, interval, durable) in [("synced", 0, true), ("unsynced", u64::MAX, false)] {
        let (mut ours, mut memory, mut bare) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..RUNS {
            let path = home.path().join(format!("{name}-{run}.redb"));
            ours.push(per_update(
                Box::new(RedbStorage::open(&path).unwrap()),
                interval,
            ));
            memory.push(per_update(
                Box::new(hyperkernel::MemStorage::new()),
                interval,
            ));
            bare.push(bare_redb(
                &home.path().join(format!("bare-{name}-{run}.redb")),
                durable,
            ));
        }
        let (ours, memory, bare) = (median(ours), median(memory), median(bare));
        rows.push((name, ours, memory, bare));
    }
    for (name, ours, memory, bare) in rows {
        let added = ours - memory;
        println!(
            "a step with one state update, {name}: {ours:.1} us on redb, {memory:.1} us on \
             MemStorage; the commit adds {added:.1} us against {bare:.1} us for a bare redb \
             transaction of the same write: ratio {:.2}x (target 1.2x)",
            added / bare
        );
    }
}

fn seeds_per_second(storage: StorageKind) -> f64 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/pingpong.json");
    let mut scenario = Scenario::load(&path).unwrap();
    scenario.file.storage = storage;
    let start = Instant::now();
    for seed in 0..SEEDS {
        let outcome = run(&scenario, seed, Options::default()).unwrap();
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
    }
    SEEDS as f64 / start.elapsed().as_secs_f64()
}

fn seeds() {
    let (mut memory, mut disk) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        memory.push(seeds_per_second(StorageKind::Memory));
        disk.push(seeds_per_second(StorageKind::Disk));
    }
    let (memory, disk) = (median(memory), median(disk));
    println!(
        "pingpong seeds per second, one thread: {disk:.1} on redb on the simulated disk, \
         {memory:.1} on MemStorage; ratio {:.2}x",
        disk / memory
    );
}

fn main() {
    let only = std::env::var("DURABLE_PART").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if runs("boot") {
        boots(1_000);
        boots(10_000);
    }
    if runs("commit") {
        commits();
    }
    if runs("seeds") {
        seeds();
    }
}
