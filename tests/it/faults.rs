//! The kernel's fault hook (`FaultHook`, `Kernel::set_fault_hook`) and the simulator's doors
//! beside it (`Kernel::crash`, `Kernel::record_outside_fault`, feature `harness`): held
//! messages keep their pair's order whatever the hook says, every hold is traced, moved
//! deadlines are honoured but never put in the past, crashes run on-exit, shutdown drops
//! what is held. Method: a scripted hook of the test's own (the simulator's real one is
//! tested in `sim/tests`); driven processes send and receive; the tests read what arrives,
//! the hook's log and the trace.

use crate::harness::{World, pid};
use hyperkernel::{
    Address, DropReason, Event, ExitReason, Fault, FaultHook, KernelCommand, OnExit, ProcessId,
    Request, Timestamp,
};
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;

const MS: u64 = 1_000_000;

/// What the scripted hook does and what it was asked.
#[derive(Debug, Default)]
struct Script {
    /// Hold a message with chance 1 in this (0: never), for up to `hold_max` ns.
    hold_one_in: u64,
    hold_max: u64,
    /// Move every deadline by this many ns (negative: earlier).
    shift: i64,
    /// xorshift state.
    state: u64,
    holds: u64,
    deadlines: Vec<(Timestamp, Timestamp)>,
}

#[derive(Clone, Debug, Default)]
struct Scripted(Rc<RefCell<Script>>);

impl Scripted {
    fn holding(seed: u64, one_in: u64, max_ms: u64) -> Self {
        Self(Rc::new(RefCell::new(Script {
            hold_one_in: one_in,
            hold_max: max_ms * MS,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            ..Script::default()
        })))
    }

    fn shifting(shift: i64) -> Self {
        Self(Rc::new(RefCell::new(Script {
            shift,
            ..Script::default()
        })))
    }
}

impl Script {
    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

impl FaultHook for Scripted {
    fn hold(&mut self, now: Timestamp, _: &Address, _: &Address) -> Option<Timestamp> {
        let mut s = self.0.borrow_mut();
        if s.hold_one_in == 0 || !s.next().is_multiple_of(s.hold_one_in) {
            return None;
        }
        s.holds += 1;
        let max = s.hold_max;
        Some(Timestamp(now.0 + 1 + s.next() % max))
    }

    fn trap_at(&mut self, _: &ProcessId) -> Option<u64> {
        None
    }

    fn deadline(&mut self, now: Timestamp, deadline: Timestamp) -> Timestamp {
        let mut s = self.0.borrow_mut();
        let moved = Timestamp(deadline.0.saturating_add_signed(s.shift));
        s.deadlines.push((now, moved));
        moved
    }
}

/// Two senders each send `n` numbered requests to a public receiver, with `hook` in; returns
/// the bodies in the order they arrived.
fn two_senders(seed: u64, hook: Option<Scripted>, n: usize) -> (World, Vec<String>) {
    let mut world = World::new(seed);
    let a = world.driven("a", &[], false);
    let b = world.driven("b", &[], false);
    let receiver = world.driven("r", &[], true);
    world
        .kernel
        .harness()
        .set_fault_hook(hook.map(|h| Box::new(h) as Box<dyn FaultHook>));
    for (sender, name) in [(&a, "a"), (&b, "b")] {
        for i in 0..n {
            let to = "our.os@r:test:our.os".parse().unwrap();
            let request = Request::new(format!("{name}{i}"));
            world
                .kernel
                .harness()
                .send_as(sender, to, request, None, None)
                .unwrap();
        }
    }
    world.kernel.harness().run_until_idle();
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

fn delayed_in_trace(world: &World) -> u64 {
    let records = world.kernel.trace().records();
    let held = records.iter().filter(|r| {
        matches!(
            r.event,
            Event::FaultInjected {
                fault: Fault::Delayed { .. }
            }
        )
    });
    held.count() as u64
}

#[test]
fn held_messages_keep_their_pair_order_and_reorder_across_pairs() {
    let hook = Scripted::holding(3, 2, 10);
    let (world, bodies) = two_senders(3, Some(hook.clone()), 50);
    assert_eq!(bodies.len(), 100, "nothing is lost");
    let in_order: Vec<usize> = (0..50).collect();
    assert_eq!(numbers_from(&bodies, "a"), in_order);
    assert_eq!(numbers_from(&bodies, "b"), in_order);
    let first_b = bodies.iter().position(|b| b.starts_with('b')).unwrap();
    assert!(first_b < 50, "some b overtook some a: {bodies:?}");
    let asked = hook.0.borrow().holds;
    assert!(asked > 10, "the hook held {asked}");
    assert_eq!(world.kernel.messages_held(), 0);
    assert!(
        delayed_in_trace(&world) > asked,
        "every hold is traced, the hook's and those that keep a pair's order"
    );
    assert!(
        world.kernel.now() > Timestamp(0),
        "holds take simulated time"
    );
}

#[test]
fn without_a_hook_nothing_is_held_and_order_is_the_send_order() {
    for hook in [None, Some(Scripted::holding(3, 0, 10))] {
        let (world, bodies) = two_senders(3, hook, 20);
        let expected: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|s| (0..20).map(move |i| format!("{s}{i}")))
            .collect();
        assert_eq!(bodies, expected);
        assert_eq!(delayed_in_trace(&world), 0);
        assert_eq!(world.kernel.now(), Timestamp(0));
    }
}

#[test]
fn the_same_seed_and_hook_give_the_same_trace() {
    let hash = |seed| {
        let (world, _) = two_senders(seed, Some(Scripted::holding(seed, 3, 50)), 30);
        world.kernel.trace().hash()
    };
    assert_eq!(hash(9), hash(9));
    assert_ne!(hash(9), hash(10));
}

/// Twenty requests to a silent process, each expecting an answer within 10 s, with a hook
/// that moves every deadline by `shift`; returns when each timed out.
fn timeouts_shifted_by(shift: i64) -> (Scripted, Vec<u64>, World) {
    let mut world = World::new(5);
    let a = world.driven("a", &[], false);
    let _silent = world.driven("silent", &[], true);
    let hook = Scripted::shifting(shift);
    world
        .kernel
        .harness()
        .set_fault_hook(Some(Box::new(hook.clone())));
    for i in 0..20 {
        let request = Request::new(format!("{i}")).expecting(10);
        let to = "our.os@silent:test:our.os".parse().unwrap();
        world
            .kernel
            .harness()
            .send_as(&a, to, request, None, None)
            .unwrap();
    }
    world.kernel.harness().run_until_idle();
    let fired: Vec<u64> = world
        .kernel
        .trace()
        .records()
        .iter()
        .filter(|r| matches!(r.event, Event::TimedOut { .. }))
        .map(|r| r.at.0)
        .collect();
    let errors: Vec<Value> = world.received(&a);
    assert_eq!(errors.len(), 20, "every request is answered by its timeout");
    (hook, fired, world)
}

#[test]
fn a_hook_moves_timeouts_where_it_says() {
    let second = Timestamp::NANOS_PER_SECOND as i64;
    let (hook, fired, _) = timeouts_shifted_by(-3 * second);
    assert_eq!(fired.len(), 20, "every request times out once");
    let asked = hook.0.borrow().deadlines.len();
    assert_eq!(asked, 20, "the hook is asked once per timeout");
    assert!(fired.iter().all(|t| *t == 7 * second as u64), "{fired:?}");
    let (_, later, _) = timeouts_shifted_by(2 * second);
    assert!(later.iter().all(|t| *t == 12 * second as u64), "{later:?}");
}

#[test]
fn a_hook_cannot_move_a_timer_into_the_past() {
    let (_, fired, world) = timeouts_shifted_by(-100 * Timestamp::NANOS_PER_SECOND as i64);
    assert_eq!(fired.len(), 20);
    assert!(fired.iter().all(|t| *t == 0), "{fired:?}");
    assert_eq!(world.kernel.now(), Timestamp(0));
}

#[test]
fn a_crash_ends_the_process_as_a_failure_and_runs_its_on_exit() {
    let mut world = World::new(2);
    let echo = world.spawn("echo", "echo", OnExit::Restart, vec![], true);
    assert!(world.kernel.harness().crash(&echo));
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
    let client = world.client.clone();
    assert!(
        !world.kernel.harness().crash(&client),
        "driven processes are not crashed"
    );
    assert!(!world.kernel.harness().crash(&ProcessId::kernel()));
    assert!(!world.kernel.harness().crash(&pid("nobody:test:our.os")));
    let traced = world.kernel.trace().records().iter().filter(|r| {
        matches!(
            r.event,
            Event::FaultInjected {
                fault: Fault::Crashed { .. }
            }
        )
    });
    assert_eq!(traced.count(), 1, "only the crash that happened is traced");
}

#[test]
fn outside_faults_are_traced_and_the_hooks_own_kinds_refused() {
    let mut world = World::new(2);
    let before = world.kernel.trace().len();
    let to: Address = "peer.os@echo:test:peer.os".parse().unwrap();
    assert!(
        world
            .kernel
            .harness()
            .record_outside_fault(Fault::NetworkDropped { id: 7, to })
    );
    assert!(
        world
            .kernel
            .harness()
            .record_outside_fault(Fault::Rebooted { downtime_ms: 5 })
    );
    let inside = Fault::Delayed {
        id: 7,
        until: Timestamp(9),
    };
    assert!(!world.kernel.harness().record_outside_fault(inside));
    assert_eq!(world.kernel.trace().len(), before + 2);
}

#[test]
fn shutdown_drops_held_messages_with_a_trace_event() {
    let mut world = World::new(4);
    let a = world.driven("a", &[], false);
    let receiver = world.driven("r", &[], true);
    world
        .kernel
        .harness()
        .set_fault_hook(Some(Box::new(Scripted::holding(4, 1, 1_000))));
    let to = "our.os@r:test:our.os".parse().unwrap();
    let request = Request::new("late").expecting(60);
    world
        .kernel
        .harness()
        .send_as(&a, to, request, None, None)
        .unwrap();
    world.settle();
    assert_eq!(world.kernel.messages_held(), 1);
    world.kernel.harness().set_fault_hook(None);
    world.command(&KernelCommand::Shutdown, None);
    assert!(world.kernel.is_shut_down());
    assert_eq!(world.kernel.messages_held(), 0);
    let dropped = world.kernel.trace().records().iter().any(|r| {
        matches!(&r.event, Event::Dropped { reason: DropReason::KernelShutdown, target, .. }
            if target.process == receiver)
    });
    assert!(dropped, "the held message is dropped, not lost silently");
}
