//! Injected faults (`Kernel::set_faults`, `Kernel::crash`): held messages keep their pair's
//! order, timers skew within their bound, crashes run on-exit, shutdown drops what is held,
//! and every fault is counted and traced. Method: driven processes send and receive; the
//! tests read what arrives, the counters and the trace.

use crate::harness::{World, pid};
use hyperkernel::{
    DropReason, Event, ExitReason, Fault, Faults, KernelCommand, OnExit, PPM, ProcessId, Request,
    Timestamp,
};
use serde_json::Value;

const MS: u64 = 1_000_000;

fn delays(ppm: u32, max_ms: u64) -> Faults {
    Faults {
        delay_ppm: ppm,
        delay_max_nanos: max_ms * MS,
        ..Faults::default()
    }
}

/// Two senders each send `n` numbered requests to a public receiver; returns the bodies in
/// the order they arrived.
fn two_senders(seed: u64, faults: Faults, n: usize) -> (World, Vec<String>) {
    let mut world = World::new(seed);
    let a = world.driven("a", &[], false);
    let b = world.driven("b", &[], false);
    let receiver = world.driven("r", &[], true);
    world.kernel.set_faults(faults);
    for (sender, name) in [(&a, "a"), (&b, "b")] {
        for i in 0..n {
            let to = "our.os@r:test:our.os".parse().unwrap();
            let request = Request::new(format!("{name}{i}"));
            world
                .kernel
                .send_as(sender, to, request, None, None)
                .unwrap();
        }
    }
    world.kernel.run_until_idle();
    let bodies = world
        .received(&receiver)
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    (world, bodies)
}

fn numbers_from(bodies: &[String], sender: &str) -> Vec<usize> {
    bodies
        .iter()
        .filter_map(|b| b.strip_prefix(sender))
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn held_messages_keep_their_pair_order_and_reorder_across_pairs() {
    let (world, bodies) = two_senders(3, delays(PPM / 2, 10), 50);
    assert_eq!(bodies.len(), 100, "nothing is lost");
    let in_order: Vec<usize> = (0..50).collect();
    assert_eq!(numbers_from(&bodies, "a"), in_order);
    assert_eq!(numbers_from(&bodies, "b"), in_order);
    let first_b = bodies.iter().position(|b| b.starts_with('b')).unwrap();
    assert!(first_b < 50, "some b overtook some a: {bodies:?}");
    let counters = world.kernel.fault_counters();
    assert!(counters.delayed > 10, "{counters:?}");
    assert_eq!(world.kernel.messages_held(), 0);
    let traced = world
        .kernel
        .trace()
        .records()
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::FaultInjected {
                    fault: Fault::Delayed { .. }
                }
            )
        })
        .count();
    assert!(
        traced as u64 >= counters.delayed,
        "every hold is traced, chance or pair order"
    );
    assert!(
        world.kernel.now() > Timestamp(0),
        "holds take simulated time"
    );
}

#[test]
fn without_faults_nothing_is_held_and_order_is_the_send_order() {
    let (world, bodies) = two_senders(3, Faults::default(), 20);
    let expected: Vec<String> = ["a", "b"]
        .iter()
        .flat_map(|s| (0..20).map(move |i| format!("{s}{i}")))
        .collect();
    assert_eq!(bodies, expected);
    assert_eq!(world.kernel.fault_counters(), Default::default());
    assert_eq!(world.kernel.now(), Timestamp(0));
}

#[test]
fn the_same_seed_and_faults_give_the_same_trace() {
    let hash = |seed| {
        let (world, _) = two_senders(seed, delays(PPM / 3, 50), 30);
        world.kernel.trace().hash()
    };
    assert_eq!(hash(9), hash(9));
    assert_ne!(hash(9), hash(10));
}

#[test]
fn skewed_timeouts_fire_within_the_bound_and_are_counted() {
    let mut world = World::new(5);
    let a = world.driven("a", &[], false);
    let _silent = world.driven("silent", &[], true);
    world.kernel.set_faults(Faults {
        timer_skew_ppm: PPM / 2,
        ..Faults::default()
    });
    for i in 0..20 {
        let request = Request::new(format!("{i}")).expecting(10);
        let to = "our.os@silent:test:our.os".parse().unwrap();
        world.kernel.send_as(&a, to, request, None, None).unwrap();
    }
    world.kernel.run_until_idle();
    let fired: Vec<u64> = world
        .kernel
        .trace()
        .records()
        .iter()
        .filter(|r| matches!(r.event, Event::TimedOut { .. }))
        .map(|r| r.at.0)
        .collect();
    assert_eq!(fired.len(), 20, "every request times out once");
    let second = Timestamp::NANOS_PER_SECOND;
    assert!(
        fired.iter().all(|t| (5 * second..=15 * second).contains(t)),
        "{fired:?}"
    );
    assert!(fired.iter().any(|t| *t != 10 * second));
    let skewed = fired.iter().filter(|t| **t != 10 * second).count() as u64;
    assert_eq!(world.kernel.fault_counters().timers_skewed, skewed);
    let errors: Vec<Value> = world.received(&a);
    assert_eq!(errors.len(), 20);
}

#[test]
fn a_crash_ends_the_process_as_a_failure_and_runs_its_on_exit() {
    let mut world = World::new(2);
    let echo = world.spawn("echo", "echo", OnExit::Restart, vec![], true);
    assert!(world.kernel.crash(&echo));
    let crashed = world.kernel.trace().records().iter().any(|r| {
        matches!(&r.event, Event::Exited { process, reason: ExitReason::Failed(why) }
            if *process == echo && why == "fault: crashed")
    });
    assert!(crashed);
    let restart =
        world.kernel.trace().records().iter().any(
            |r| matches!(&r.event, Event::RestartScheduled { process, .. } if *process == echo),
        );
    assert!(restart, "OnExit::Restart runs after a crash");
    assert_eq!(world.kernel.fault_counters().crashed, 1);
    let client = world.client.clone();
    assert!(
        !world.kernel.crash(&client),
        "driven processes are not crashed"
    );
    assert!(!world.kernel.crash(&ProcessId::kernel()));
    assert!(!world.kernel.crash(&pid("nobody:test:our.os")));
    assert_eq!(world.kernel.fault_counters().crashed, 1);
}

#[test]
fn shutdown_drops_held_messages_with_a_trace_event() {
    let mut world = World::new(4);
    let a = world.driven("a", &[], false);
    let receiver = world.driven("r", &[], true);
    world.kernel.set_faults(delays(PPM, 1_000));
    let to = "our.os@r:test:our.os".parse().unwrap();
    let request = Request::new("late").expecting(60);
    world.kernel.send_as(&a, to, request, None, None).unwrap();
    world.settle();
    assert_eq!(world.kernel.messages_held(), 1);
    world.kernel.set_faults(Faults::default());
    world.command(&KernelCommand::Shutdown, None);
    assert!(world.kernel.is_shut_down());
    assert_eq!(world.kernel.messages_held(), 0);
    let dropped = world.kernel.trace().records().iter().any(|r| {
        matches!(&r.event, Event::Dropped { reason: DropReason::KernelShutdown, target, .. }
            if target.process == receiver)
    });
    assert!(dropped, "the held message is dropped, not lost silently");
}
