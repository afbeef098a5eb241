//! Determinism (the replay guarantee): a scenario with real scheduling freedom — several
//! processes, cross traffic, timers and a crash-restart — runs twice per seed and must give
//! byte-identical traces; different seeds must interleave differently. Method: compare trace
//! hashes, JSON lines, and the order of deliveries.

use crate::harness::{OUR, addr, loader, messaging, pid};
use hyperkernel::{
    Event, Kernel, KernelBuilder, KernelCommand, LazyLoadBlob, OnExit, ProcessId, Request,
    TraceLevel, trace,
};
use serde_json::json;

/// Four apps: two puppets, an echo and a crash-on-message with `Restart`, all public.
fn initialize_apps(kernel: &mut Kernel, client: &ProcessId) {
    let apps = [
        ("p1", "puppet", OnExit::None),
        ("p2", "puppet", OnExit::None),
        ("e1", "echo", OnExit::None),
        ("c1", "crash-on-message", OnExit::Restart),
    ];
    for (name, code, on_exit) in apps {
        let init = KernelCommand::InitializeProcess {
            id: pid(&format!("{name}:test:our.os")),
            wasm_bytes_handle: String::new(),
            wit_version: Some(1),
            on_exit,
            initial_capabilities: vec![],
            public: true,
        };
        let blob = LazyLoadBlob {
            mime: None,
            bytes: code.as_bytes().to_vec(),
        };
        kernel
            .harness()
            .command_as(client, &init, Some(5), Some(blob))
            .unwrap();
    }
    kernel
        .harness()
        .command_as(client, &KernelCommand::Booted, None, None)
        .unwrap();
}

/// Ten rounds of cross traffic, timers and crashes, all queued before the kernel runs.
fn send_traffic(kernel: &mut Kernel, client: &ProcessId) {
    for round in 0..10 {
        for target in ["p1", "p2", "e1"] {
            let peer = if target == "p1" { "p2" } else { "e1" };
            let body = json!({ "send_to": format!("{OUR}@{peer}:test:our.os") });
            let to = addr(&format!("{OUR}@{target}:test:our.os"));
            kernel
                .harness()
                .send_as(
                    client,
                    to,
                    Request::new(body.to_string()).expecting(30),
                    None,
                    None,
                )
                .unwrap();
        }
        let timer = Request::new(format!("{{\"SetTimer\":{}}}", 100 * round)).expecting(5);
        kernel
            .harness()
            .send_as(
                client,
                addr(&format!("{OUR}@timer:distro:sys")),
                timer,
                None,
                None,
            )
            .unwrap();
        if round % 4 == 0 {
            let crash = addr(&format!("{OUR}@c1:test:our.os"));
            kernel
                .harness()
                .send_as(client, crash, Request::new("die"), None, None)
                .unwrap();
        }
    }
}

fn scenario(seed: u64, level: TraceLevel) -> Kernel {
    let mut kernel = KernelBuilder::new(OUR, seed)
        .loader(Box::new(loader()))
        .trace_level(level)
        .build()
        .unwrap();
    let client = pid("tester:tester:sys");
    kernel
        .harness()
        .register_driven(&client, &[messaging("kernel:distro:sys")], true)
        .unwrap();
    initialize_apps(&mut kernel, &client);
    send_traffic(&mut kernel, &client);
    kernel.harness().run_until_idle();
    kernel.check_invariants().unwrap();
    kernel
}

fn delivery_order(kernel: &Kernel) -> Vec<(u64, String)> {
    kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Delivered { id, process, .. } => Some((*id, process.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_same_seed_gives_a_byte_identical_trace() {
    for seed in [0, 1, 42, u64::MAX] {
        let first = scenario(seed, TraceLevel::Full);
        let second = scenario(seed, TraceLevel::Full);
        assert_eq!(first.trace().hash(), second.trace().hash(), "seed {seed}");
        assert_eq!(
            first.trace().to_json_lines(),
            second.trace().to_json_lines(),
            "seed {seed}"
        );
        assert!(
            first.trace().len() > 200,
            "the scenario does real work: {}",
            first.trace().len()
        );
    }
}

#[test]
fn different_seeds_interleave_differently() {
    let hashes: std::collections::BTreeSet<u64> = (0..8)
        .map(|seed| scenario(seed, TraceLevel::Hash).trace().hash())
        .collect();
    assert_eq!(hashes.len(), 8, "every seed gives its own trace");
    let orders: std::collections::BTreeSet<Vec<String>> = (0..8)
        .map(|seed| {
            delivery_order(&scenario(seed, TraceLevel::Full))
                .into_iter()
                .map(|(_, p)| p)
                .collect()
        })
        .collect();
    assert!(
        orders.len() > 1,
        "the scheduler changes which process runs first"
    );
}

#[test]
fn the_hash_does_not_depend_on_the_trace_level_and_the_chain_verifies() {
    let full = scenario(9, TraceLevel::Full);
    let hash_only = scenario(9, TraceLevel::Hash);
    assert_eq!(full.trace().hash(), hash_only.trace().hash());
    assert_eq!(full.trace().len(), hash_only.trace().len());
    assert!(hash_only.trace().records().is_empty());
    assert_eq!(
        trace::verify_chain(full.trace().records()),
        Ok(full.trace().hash())
    );
}

#[test]
fn the_trace_round_trips_through_json_lines() {
    let kernel = scenario(3, TraceLevel::Full);
    let records: Vec<hyperkernel::TraceRecord> = kernel
        .trace()
        .to_json_lines()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.as_slice(), kernel.trace().records());
    assert_eq!(trace::verify_chain(&records), Ok(kernel.trace().hash()));
}
