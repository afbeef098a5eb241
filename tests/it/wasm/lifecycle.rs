//! Guests through the kernel: messages, state, exits, traps and hostile behaviour.

use super::guest;
use crate::harness::{World, messaging};
use hyperkernel::{
    Event, ExitReason, Fault, FaultHook, KernelCommand, OnExit, ProcessId, Request, WasmConfig,
};
use serde_json::json;

/// How `process` ended, from the trace.
fn exit_reason(world: &World, process: &ProcessId) -> Option<ExitReason> {
    world
        .kernel
        .trace()
        .records()
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::Exited { process: p, reason } if p == process => Some(reason.clone()),
            _ => None,
        })
}

fn failure(world: &World, process: &ProcessId) -> String {
    match exit_reason(world, process) {
        Some(ExitReason::Failed(reason)) => reason,
        other => panic!("{process} did not fail: {other:?}"),
    }
}

fn spawn_guest(world: &mut World, name: &str, on_exit: OnExit) -> ProcessId {
    let code = guest(name);
    let caps = vec![messaging("tester:tester:sys")];
    world.spawn_code(name, &code, name, on_exit, caps, true)
}

/// Sends `body` from the client to `process` expecting a response in 5 s, and settles.
fn ask(world: &mut World, process: &ProcessId, body: &str) -> u64 {
    let client = world.client.clone();
    let to = world.kernel.address_of(process).to_string();
    world.send(&client, &to, Request::new(body).expecting(5), Some("ctx"))
}

#[test]
fn echo_answers_each_request_with_its_body_and_the_requesters_context() {
    let mut world = World::new(1);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    ask(&mut world, &echo, "hello");
    ask(&mut world, &echo, "again");
    let replies = world.replies();
    let got: Vec<_> = replies
        .iter()
        .map(|r| {
            (
                r["kind"].clone(),
                r["source"].clone(),
                r["body"].clone(),
                r["context"].clone(),
            )
        })
        .collect();
    let from = json!("our.os@echo:test:our.os");
    assert_eq!(
        got,
        vec![
            (
                json!("Response"),
                from.clone(),
                json!("hello"),
                json!("ctx")
            ),
            (json!("Response"), from, json!("again"), json!("ctx")),
        ]
    );
    assert!(world.kernel.has_process(&echo), "still receiving");
}

#[test]
fn returning_from_init_ends_the_process_as_returned() {
    let mut world = World::new(1);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    ask(&mut world, &echo, "exit");
    assert_eq!(exit_reason(&world, &echo), Some(ExitReason::Returned));
    assert!(!world.kernel.has_process(&echo));
}

#[test]
fn a_panic_is_recorded_with_the_trap_and_the_panic_message() {
    let mut world = World::new(1);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    ask(&mut world, &echo, "panic");
    let reason = failure(&world, &echo);
    assert!(reason.starts_with("trap: "), "{reason}");
    assert!(reason.contains("PANIC: panicked at"), "{reason}");
    assert!(reason.contains("asked to panic"), "{reason}");
    // Its request is answered by the kernel with a timeout error, not left hanging.
    world.kernel.harness().run_until_idle();
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["kind"], json!("SendError"));
}

#[test]
fn the_counter_keeps_its_count_in_state() {
    let mut world = World::new(1);
    let counter = spawn_guest(&mut world, "counter", OnExit::None);
    for body in ["inc", "inc", "get", "reset", "inc"] {
        ask(&mut world, &counter, body);
    }
    let counts: Vec<_> = world.replies().iter().map(|r| r["body"].clone()).collect();
    assert_eq!(
        counts,
        vec![json!(1), json!(2), json!(2), json!(0), json!(1)]
    );
}

fn yields_of(world: &World, process: &ProcessId) -> usize {
    let records = world.kernel.trace().records();
    records
        .iter()
        .filter(|r| matches!(&r.event, Event::Yielded { process: p } if p == process))
        .count()
}

/// A spinning guest beside an echo; returns the world after 60 steps.
fn spin_beside_echo(seed: u64) -> (World, ProcessId) {
    let mut world = World::new(seed);
    let hostile = spawn_guest(&mut world, "hostile", OnExit::None);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    let client = world.client.clone();
    let hostile_at = world.kernel.address_of(&hostile);
    world
        .kernel
        .harness()
        .send_as(&client, hostile_at, Request::new("loop"), None, None)
        .unwrap();
    let echo_at = world.kernel.address_of(&echo);
    world
        .kernel
        .harness()
        .send_as(
            &client,
            echo_at,
            Request::new("still here").expecting(5),
            None,
            None,
        )
        .unwrap();
    world.kernel.harness().run_steps(60);
    (world, hostile)
}

#[test]
fn an_infinite_loop_is_preempted_and_the_kernel_keeps_serving_others() {
    let (mut world, hostile) = spin_beside_echo(1);
    assert!(
        yields_of(&world, &hostile) >= 10,
        "preempted again and again"
    );
    let client = world.client.clone();
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["body"], json!("still here"));
    assert!(world.kernel.has_process(&hostile), "spinning, not dead");
    world
        .kernel
        .harness()
        .command_as(
            &client,
            &KernelCommand::KillProcess(hostile.clone()),
            None,
            None,
        )
        .unwrap();
    world.kernel.harness().run_until_idle();
    assert_eq!(exit_reason(&world, &hostile), Some(ExitReason::Killed));
}

/// Sends `body` to a fresh hostile guest and returns why it failed.
fn hostile_failure(body: &str, config: WasmConfig) -> String {
    let mut world = World::with_config(1, config);
    let hostile = spawn_guest(&mut world, "hostile", OnExit::None);
    let client = world.client.clone();
    let at = world.kernel.address_of(&hostile);
    world
        .kernel
        .harness()
        .send_as(&client, at, Request::new(body), None, None)
        .unwrap();
    world.kernel.harness().run_until_idle();
    assert!(!world.kernel.has_process(&hostile));
    failure(&world, &hostile)
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let config = WasmConfig {
        memory_max: 8 << 20,
        ..WasmConfig::default()
    };
    let reason = hostile_failure("bomb", config);
    assert!(
        reason.contains("is over the cap of 8388608 bytes"),
        "{reason}"
    );
}

#[test]
fn runaway_recursion_overflows_the_call_stack() {
    let reason = hostile_failure("recurse", WasmConfig::default());
    assert!(reason.starts_with("trap: "), "{reason}");
    assert!(
        reason.contains("call stack exhausted") || reason.contains("out of bounds"),
        "{reason}"
    );
}

#[test]
fn a_bad_pointer_to_a_host_function_ends_the_process() {
    let reason = hostile_failure("bad-pointer", WasmConfig::default());
    assert!(reason.contains("print-to-terminal"), "{reason}");
    assert!(reason.contains("outside linear memory"), "{reason}");
}

#[test]
fn invalid_utf8_from_a_guest_ends_the_process() {
    let reason = hostile_failure("bad-utf8", WasmConfig::default());
    assert!(reason.contains("not UTF-8"), "{reason}");
}

#[test]
fn preemption_points_are_deterministic() {
    let (a, _) = spin_beside_echo(9);
    let (b, hostile) = spin_beside_echo(9);
    assert!(yields_of(&a, &hostile) > 0);
    assert_eq!(a.kernel.trace().hash(), b.kernel.trace().hash());
    assert_eq!(
        a.kernel.trace().to_json_lines(),
        b.kernel.trace().to_json_lines()
    );
}

#[test]
fn two_guests_play_ping_pong_through_the_kernel() {
    let mut world = World::new(4);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    let code = guest("pingpong");
    let caps = vec![
        messaging("tester:tester:sys"),
        messaging("echo:test:our.os"),
    ];
    let pinger = world.spawn_code("pingpong", &code, "pingpong", OnExit::None, caps, true);
    ask(&mut world, &pinger, &format!("50 {echo}"));
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["body"], json!(50));
    assert_eq!(replies[0]["context"], json!("ctx"));
}

#[test]
fn on_exit_requests_set_by_a_guest_are_sent_when_it_ends_either_way() {
    for (ending, returns) in [("exit", true), ("crash", false)] {
        let mut world = World::new(6);
        let notifier = spawn_guest(&mut world, "notifier", OnExit::None);
        ask(&mut world, &notifier, "watch our.os@tester:tester:sys");
        assert_eq!(world.replies()[0]["body"], json!("watching"));
        let client = world.client.clone();
        let at = world.kernel.address_of(&notifier);
        world
            .kernel
            .harness()
            .send_as(&client, at, Request::new(ending), None, None)
            .unwrap();
        world.settle();
        assert!(!world.kernel.has_process(&notifier), "{ending}");
        let replies = world.replies();
        assert_eq!(replies.len(), 1, "{ending}: {replies:#?}");
        assert_eq!(
            replies[0]["body"],
            json!("gone: our.os@notifier:test:our.os")
        );
        let reason = exit_reason(&world, &notifier).unwrap();
        if returns {
            assert_eq!(reason, ExitReason::Returned);
        } else {
            assert!(matches!(reason, ExitReason::Failed(_)), "{reason:?}");
        }
    }
}

/// Echo under a tiny fuel slice: runs that need more fuel than a slice (a `memory.grow`, a
/// bulk copy) still finish, because a resume grants at least the fuel the guest needs.
fn echo_with_tiny_slices(seed: u64) -> (World, ProcessId) {
    let config = WasmConfig {
        fuel_slice: 20,
        ..WasmConfig::default()
    };
    let mut world = World::with_config(seed, config);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    for i in 0..5 {
        ask(&mut world, &echo, &format!("small slices {i}"));
    }
    (world, echo)
}

#[test]
fn a_tiny_fuel_slice_slows_a_guest_but_never_starves_it() {
    let (mut world, echo) = echo_with_tiny_slices(5);
    let (again, _) = echo_with_tiny_slices(5);
    assert_eq!(world.kernel.trace().hash(), again.kernel.trace().hash());
    let yields = yields_of(&world, &echo);
    assert!(
        yields >= 5,
        "preempted about once a request or more: {yields} yields"
    );
    let replies = world.replies();
    let bodies: Vec<_> = replies.iter().map(|r| r["body"].clone()).collect();
    let expected: Vec<_> = (0..5).map(|i| json!(format!("small slices {i}"))).collect();
    assert_eq!(bodies, expected, "every request answered, in order");
}

#[test]
fn the_traces_of_the_example_guests_are_pinned() {
    let mut world = World::new(8);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    let counter = spawn_guest(&mut world, "counter", OnExit::None);
    let code = guest("pingpong");
    let caps = vec![
        messaging("tester:tester:sys"),
        messaging("echo:test:our.os"),
    ];
    let pinger = world.spawn_code("pingpong", &code, "pingpong", OnExit::None, caps, true);
    ask(&mut world, &pinger, &format!("3 {echo}"));
    ask(&mut world, &counter, "inc");
    ask(&mut world, &echo, "exit");
    let events = crate::harness::trace_json(&world);
    crate::check!("wasm_examples_trace", events);
}

#[test]
fn an_armed_trap_fault_stops_a_guest_at_its_fuel_point_and_on_exit_runs() {
    let mut world = World::new(6);
    let hostile = spawn_guest(&mut world, "hostile", OnExit::Restart);
    let hook = TrapEveryRun::default();
    world
        .kernel
        .harness()
        .set_fault_hook(Some(Box::new(hook.clone())));
    world.tell(&hostile, "loop");
    world.kernel.harness().run_steps(20);
    let records = world.kernel.trace().records();
    let trapped = records.iter().find_map(|r| match &r.event {
        Event::FaultInjected {
            fault: Fault::Trapped { process, fuel },
        } if *process == hostile => Some(*fuel),
        _ => None,
    });
    let fuel = trapped.expect("a run that spins reaches its trap point");
    assert!(
        fuel >= TRAP_FUEL,
        "a run traps at its first fuel check past the point"
    );
    let reason = records.iter().find_map(|r| match &r.event {
        Event::Exited {
            process,
            reason: ExitReason::Failed(why),
        } if *process == hostile => Some(why.clone()),
        _ => None,
    });
    assert!(
        reason
            .unwrap()
            .starts_with(&format!("fault: trapped after {fuel} fuel")),
        "the exit names the fault and its fuel point"
    );
    let restarted = records.iter().any(
        |r| matches!(&r.event, Event::RestartScheduled { process, .. } if *process == hostile),
    );
    assert!(restarted);
    let (armed, trapped) = *hook.0.borrow();
    assert!(
        trapped >= 1 && armed >= trapped,
        "armed {armed}, trapped {trapped}"
    );
}

/// Where `TrapEveryRun` traps (the runtime checks at the end of each fuel slice, so a run
/// traps at the first check past it).
const TRAP_FUEL: u64 = 1;

/// A fault hook that arms every run to trap at `TRAP_FUEL`, counting (armed, trapped).
#[derive(Clone, Default)]
struct TrapEveryRun(std::rc::Rc<std::cell::RefCell<(u64, u64)>>);

impl FaultHook for TrapEveryRun {
    fn hold(
        &mut self,
        _: hyperkernel::Timestamp,
        _: &hyperkernel::Address,
        _: &hyperkernel::Address,
    ) -> Option<hyperkernel::Timestamp> {
        None
    }

    fn trap_at(&mut self, _: &ProcessId) -> Option<u64> {
        self.0.borrow_mut().0 += 1;
        Some(TRAP_FUEL)
    }

    fn trapped(&mut self, _: &ProcessId, fuel: u64) {
        assert!(fuel >= TRAP_FUEL, "trapped before its point");
        self.0.borrow_mut().1 += 1;
    }
}

#[test]
fn the_guest_allocator_survives_a_churn_of_mixed_sizes() {
    let mut world = World::new(9);
    let hostile = spawn_guest(&mut world, "hostile", OnExit::None);
    world.tell(&hostile, "churn 3000");
    world.kernel.harness().run_until_idle();
    // The hostile guest answers its one request and returns; a corrupted block would have
    // panicked it instead.
    assert_eq!(exit_reason(&world, &hostile), Some(ExitReason::Returned));
    let sent = world.kernel.trace().records().iter().any(|r| {
        matches!(&r.event, Event::Sent { source, body_len, .. }
            if source.process == hostile && *body_len == "churned 3000".len() as u64)
    });
    assert!(sent, "it answered `churned 3000`");
}

/// A wasm process the test can still look at after the kernel took it.
struct Shared(std::rc::Rc<std::cell::RefCell<hyperkernel::WasmProcess>>);

impl hyperkernel::Process for Shared {
    fn wake(
        &mut self,
        ctx: &mut hyperkernel::ProcessContext<'_>,
        wake: hyperkernel::Wake,
    ) -> hyperkernel::Flow {
        self.0.borrow_mut().wake(ctx, wake)
    }
}

#[test]
fn a_small_guest_runs_in_its_initial_memory_without_growing_it() {
    let mut loader = hyperkernel::WasmLoader::new(WasmConfig::default()).unwrap();
    let echo = loader.load_wasm(&guest("echo")).unwrap();
    let initial = echo.memory_size();
    // 64 KiB of stack, then the static data: two pages, with most of the second one free.
    assert_eq!(initial, 2 * 65536);
    let echo = std::rc::Rc::new(std::cell::RefCell::new(echo));
    let mut world = World::new(3);
    let id: ProcessId = "echo:test:our.os".parse().unwrap();
    world
        .kernel
        .harness()
        .register_native(&id, Box::new(Shared(echo.clone())), &[], true)
        .unwrap();
    for i in 0..50 {
        ask(&mut world, &id, &format!("message {i}"));
    }
    assert_eq!(world.replies().len(), 50);
    // The guest allocator's first blocks come from the free tail of the initial memory.
    assert_eq!(echo.borrow().memory_size(), initial, "no memory.grow");
    // Echo asks `get-blob` for every request. After the first time the host knows there is
    // no blob and answers in place: one suspension per message (its `receive`), not two.
    // 53 = the print in `init` + 51 receives + the first `get-blob` (102 if each suspended).
    assert_eq!(echo.borrow().suspensions(), 53);
}

#[test]
fn the_kernel_view_reports_what_a_wasm_runtime_holds_and_burns() {
    let mut world = World::new(5);
    let echo = spawn_guest(&mut world, "echo", OnExit::None);
    let stats = |world: &World| {
        let view = world.kernel.view();
        let process = view.processes.iter().find(|p| p.id == echo).unwrap();
        process.runtime.clone().expect("a wasm process reports")
    };
    let before = stats(&world);
    assert_eq!(before.memory_bytes, 2 * 65536);
    ask(&mut world, &echo, "one");
    ask(&mut world, &echo, "two");
    let after = stats(&world);
    assert!(after.fuel > before.fuel, "{before:?} -> {after:?}");
    // Each request: one `receive` (its `get-blob` is answered in place after the first).
    assert_eq!(after.suspensions, before.suspensions + 2 + 1);
    let view = world.kernel.view();
    let client = view
        .processes
        .iter()
        .find(|p| p.id == world.client)
        .unwrap();
    assert_eq!(
        client.runtime, None,
        "a driven process has no runtime to report"
    );
    let text = view.to_string();
    assert!(text.contains("runs wasm: 128 KiB of memory"), "{text}");
}
