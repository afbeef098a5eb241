//! Kernel overhead per routed message between two native processes, as the median ns per
//! message and as a ratio against a bare `VecDeque` push/pop of the same message, both measured
//! in this run. Target (issue 2): at most 500 ns per message.
//!
//! The ping-pong goes through the whole kernel path: `our` handling, the capability check,
//! the request context and its timeout timer, delivery, the response's context match, and the
//! trace hash chain (at `TraceLevel::Hash`; the full trace is reported too).

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel::{
    Address, Flow, KernelBuilder, KernelMessage, Message, ProcessContext, ProcessId, Request,
    Response, Step, TraceLevel, Wake,
};
use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

const MESSAGES: u64 = 200_000;
const RUNS: usize = 9;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn sample_message() -> KernelMessage {
    KernelMessage {
        id: 1,
        source: "our.os@ping:bench:our.os".parse().unwrap(),
        target: "our.os@pong:bench:our.os".parse().unwrap(),
        rsvp: None,
        message: Message::Request(Request::new("ping").expecting(5)),
        lazy_load_blob: None,
    }
}

/// ns per message for a clone + push + pop of a message through a `VecDeque`.
fn baseline() -> f64 {
    let message = sample_message();
    let mut queue = VecDeque::new();
    let start = Instant::now();
    for _ in 0..MESSAGES {
        queue.push_back(black_box(message.clone()));
        black_box(queue.pop_front());
    }
    start.elapsed().as_nanos() as f64 / MESSAGES as f64
}

/// ns per message of a ping-pong of `MESSAGES` messages through the kernel.
fn kernel(level: TraceLevel) -> f64 {
    let mut kernel = KernelBuilder::new("our.os", 1)
        .trace_level(level)
        .build()
        .unwrap();
    let ping: ProcessId = "ping:bench:our.os".parse().unwrap();
    let pong: ProcessId = "pong:bench:our.os".parse().unwrap();
    let pong_address: Address = "our.os@pong:bench:our.os".parse().unwrap();
    let rounds = MESSAGES / 2;
    let mut sent = 0;
    let pinger = move |ctx: &mut ProcessContext<'_>, wake: Wake| {
        if matches!(wake, Wake::Init | Wake::Received(Ok(_))) && sent < rounds {
            sent += 1;
            ctx.send_request(
                pong_address.clone(),
                Request::new("ping").expecting(5),
                None,
                None,
            );
        }
        Flow::Receive
    };
    let ponger = |ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok(_)) = wake {
            ctx.send_response(Response::new("pong"), None);
        }
        Flow::Receive
    };
    kernel
        .harness()
        .register_native(&pong, Box::new(ponger), &[], true)
        .unwrap();
    let start = Instant::now();
    kernel
        .harness()
        .register_native(&ping, Box::new(pinger), &[], true)
        .unwrap();
    let last = kernel.harness().run_until_idle();
    let elapsed = start.elapsed().as_nanos() as f64;
    assert_eq!(last, Step::Idle(None));
    let delivered = kernel.trace().len();
    assert!(
        delivered > MESSAGES * 3,
        "every message was sent, enqueued and delivered"
    );
    elapsed / MESSAGES as f64
}

fn main() {
    // `ROUTING_PROFILE=1 cargo bench --bench routing` runs only the hash-level ping-pong, for
    // a profiler.
    if std::env::var_os("ROUTING_PROFILE").is_some() {
        let samples: Vec<f64> = (0..RUNS).map(|_| kernel(TraceLevel::Hash)).collect();
        println!(
            "kernel ping-pong, trace hash only: {:.1} ns/message",
            median(samples)
        );
        return;
    }

    let mut base = Vec::new();
    let mut hashed = Vec::new();
    let mut full = Vec::new();
    for _ in 0..RUNS {
        base.push(baseline());
        hashed.push(kernel(TraceLevel::Hash));
        full.push(kernel(TraceLevel::Full));
    }
    let (base, hashed, full) = (median(base), median(hashed), median(full));
    println!("routing: {MESSAGES} messages per run, median of {RUNS} runs");
    println!("  baseline VecDeque clone+push+pop   {base:8.1} ns/message");
    println!(
        "  kernel ping-pong, trace hash only  {hashed:8.1} ns/message  ({:.1}x baseline)",
        hashed / base
    );
    println!(
        "  kernel ping-pong, full trace       {full:8.1} ns/message  ({:.1}x baseline)",
        full / base
    );
    println!(
        "  target: <= 500 ns/message: {}",
        if hashed <= 500.0 { "met" } else { "NOT met" }
    );
}
