//! Work that hostile clients could make quadratic (issue 10, class 11), as medians of wall
//! time against a baseline from the same run:
//!
//! - `GrantCapabilities` of 100 000 capabilities (half of them repeats) in one command. Target:
//!   at most 100 ms in the kernel, from the request bytes to the answer (a list scan for
//!   duplicates made it 40 s); the client's serialization is printed apart. Baseline:
//!   canonicalizing the same 100 000 capabilities alone, the work no grant can skip.
//! - 10 000 `InitializeProcess` commands with `on_exit: Restart`, each run to completion.
//!   Target: at most 1 s (writing the whole process map after every change made it 93 s).
//!   Baseline: 10 000 `register_driven` calls, which write nothing.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel::{
    CapKey, Capability, Flow, KernelBuilder, KernelCommand, LazyLoadBlob, NativeLoader, OnExit,
    ProcessContext, ProcessId, Request, TraceLevel, Wake,
};
use std::hint::black_box;
use std::time::Instant;

const RUNS: usize = 5;
const CAPS: usize = 100_000;
const INITS: usize = 10_000;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn caps() -> Vec<Capability> {
    let issuer: hyperkernel::Address = "our.os@client:bench:our.os".parse().unwrap();
    (0..CAPS)
        .map(|n| Capability::new(issuer.clone(), format!("{{\"n\":{}}}", n % (CAPS / 2))))
        .collect()
}

/// Milliseconds to canonicalize `caps` alone.
fn canonicalize(caps: &[Capability]) -> f64 {
    let start = Instant::now();
    for cap in caps {
        black_box(CapKey::try_from_capability(cap).unwrap());
    }
    start.elapsed().as_secs_f64() * 1e3
}

fn client() -> ProcessId {
    "client:bench:our.os".parse().unwrap()
}

fn kernel_cap() -> Capability {
    Capability::messaging("our.os@kernel:distro:sys".parse().unwrap())
}

/// Milliseconds for one grant of `caps`: the kernel's work, from the request bytes to its
/// answer, and the client's serialization of the command before it.
fn grant(caps: &[Capability]) -> (f64, f64) {
    let mut kernel = KernelBuilder::new("our.os", 1)
        .trace_level(TraceLevel::Hash)
        .build()
        .unwrap();
    let client = client();
    kernel
        .harness()
        .register_driven(&client, &[kernel_cap()], true)
        .unwrap();
    let target: ProcessId = "target:bench:our.os".parse().unwrap();
    kernel
        .harness()
        .register_driven(&target, &[], false)
        .unwrap();
    let command = KernelCommand::GrantCapabilities {
        target: target.clone(),
        capabilities: caps.to_vec(),
    };
    // The client's half: the command as the bytes a client sends.
    let start = Instant::now();
    let body = serde_json::to_vec(&command).unwrap();
    let serialized = start.elapsed().as_secs_f64() * 1e3;
    let mut request = Request::new(body);
    request.expects_response = Some(5);
    let kernel_address: hyperkernel::Address = "our.os@kernel:distro:sys".parse().unwrap();
    // The kernel's half: from the request bytes to the answer.
    let start = Instant::now();
    kernel
        .harness()
        .send_as(&client, kernel_address, request, None, None)
        .unwrap();
    kernel.harness().run_until_idle();
    let answer = kernel.harness().receive_as(&client).unwrap().unwrap();
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    assert!(answer.is_ok());
    assert_eq!(kernel.capabilities_of(&target).len(), CAPS / 2 + 1);
    (elapsed, serialized)
}

fn idle(_: &mut ProcessContext<'_>, _: Wake) -> Flow {
    Flow::Receive
}

/// Milliseconds for `INITS` initializations with `Restart`, each handled before the next.
fn initializations() -> f64 {
    let loader = NativeLoader::new().with("idle", || Box::new(idle));
    let mut kernel = KernelBuilder::new("our.os", 1)
        .trace_level(TraceLevel::Hash)
        .loader(Box::new(loader))
        .build()
        .unwrap();
    let client = client();
    kernel
        .harness()
        .register_driven(&client, &[kernel_cap()], true)
        .unwrap();
    let start = Instant::now();
    for n in 0..INITS {
        let command = KernelCommand::InitializeProcess {
            id: format!("p{n}:bench:our.os").parse().unwrap(),
            wasm_bytes_handle: "/bench:our.os/pkg/idle.wasm".into(),
            wit_version: Some(1),
            on_exit: OnExit::Restart,
            initial_capabilities: vec![],
            public: false,
        };
        let blob = LazyLoadBlob {
            mime: None,
            bytes: b"idle".to_vec(),
        };
        kernel
            .harness()
            .command_as(&client, &command, None, Some(blob))
            .unwrap();
        kernel.harness().run_until_idle();
    }
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(kernel.persisted_map().len(), INITS + 1);
    assert_eq!(kernel.stored_map().unwrap().len(), INITS + 1);
    elapsed
}

/// Milliseconds for `INITS` driven registrations (no command, nothing persisted).
fn registrations() -> f64 {
    let mut kernel = KernelBuilder::new("our.os", 1)
        .trace_level(TraceLevel::Hash)
        .build()
        .unwrap();
    let start = Instant::now();
    for n in 0..INITS {
        let id: ProcessId = format!("p{n}:bench:our.os").parse().unwrap();
        kernel.harness().register_driven(&id, &[], false).unwrap();
        black_box(kernel.harness().run_until_idle());
    }
    black_box(Request::new("done"));
    start.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let caps = caps();
    let (mut base, mut granted, mut serialized) = (Vec::new(), Vec::new(), Vec::new());
    let (mut registered, mut initialized) = (Vec::new(), Vec::new());
    // `HOSTILE_PROFILE=grant|init` runs only that part, for a profiler.
    let only = std::env::var("HOSTILE_PROFILE").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    for _ in 0..RUNS {
        if runs("grant") {
            base.push(canonicalize(&caps));
            let (kernel, client) = grant(&caps);
            granted.push(kernel);
            serialized.push(client);
        }
        if runs("init") {
            registered.push(registrations());
            initialized.push(initializations());
        }
    }
    if only.is_some() {
        return;
    }
    let (base, granted, serialized) = (median(base), median(granted), median(serialized));
    let (registered, initialized) = (median(registered), median(initialized));
    println!(
        "grant of {CAPS} capabilities: {granted:.1} ms median of {RUNS} in the kernel, from \
         the request bytes to the answer (target 100 ms); canonicalizing them alone {base:.1} \
         ms; ratio {:.2}x; the client's serialization of the command before it {serialized:.1} \
         ms",
        granted / base
    );
    println!(
        "{INITS} InitializeProcess with Restart: {initialized:.1} ms median of {RUNS} (target \
         1000 ms); {INITS} driven registrations {registered:.1} ms; ratio {:.2}x",
        initialized / registered
    );
}
