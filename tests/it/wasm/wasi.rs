//! The WASI preview1 shim from a real `wasm32-wasip1` guest (`guests/wasi-probe`): std's
//! output, exit, panic, randomness, clocks, sleep and yield, and the raw imports with bad
//! arguments, which get an errno and never hurt the kernel.

use crate::harness::{World, messaging};
use hyperkernel::{Event, ExitReason, OnExit, ProcessId, Request, RunState, Timestamp};
use serde_json::{Value, json};

const WASI: &str = "our.os@wasi-probe:test:our.os";
const ECHO: &str = "our.os@echo:test:our.os";

fn world(seed: u64, on_exit: OnExit) -> (World, ProcessId) {
    let mut world = World::new(seed);
    let caps = vec![messaging("tester:tester:sys")];
    let code = super::wasi_guest("wasi-probe");
    let probe = world.spawn_code("wasi-probe", &code, "wasi-probe", on_exit, caps, true);
    (world, probe)
}

/// Sends `command` to the WASI probe and runs until idle (timers included); the answer.
fn ask(world: &mut World, command: &str) -> String {
    send(world, command);
    world.kernel.harness().run_until_idle();
    answer(world, command)
}

fn send(world: &mut World, command: &str) {
    let client = world.client.clone();
    let request = Request::new(command).expecting(5);
    world
        .kernel
        .harness()
        .send_as(&client, WASI.parse().unwrap(), request, None, None)
        .unwrap();
}

fn answer(world: &mut World, command: &str) -> String {
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{command}: {replies:#?}");
    match &replies[0]["body"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The texts the process printed, in order.
fn prints(world: &World, process: &ProcessId) -> Vec<String> {
    let records = world.kernel.trace().records();
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Print {
                process: p, text, ..
            } if p == process => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn exits(world: &World, process: &ProcessId) -> Vec<ExitReason> {
    let records = world.kernel.trace().records();
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Exited { process: p, reason } if p == process => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn stdout_and_stderr_become_marked_lines_of_process_output() {
    let (mut world, probe) = world(1, OnExit::None);
    assert_eq!(ask(&mut world, "print hello wasi"), "ok");
    assert_eq!(ask(&mut world, "write 2 to stderr\n"), "0 10");
    assert_eq!(
        prints(&world, &probe),
        ["stdout: hello wasi", "stderr: to stderr"]
    );
    // A line not yet ended stays buffered, and is printed when the process ends.
    assert_eq!(ask(&mut world, "eprint half a line"), "ok");
    assert_eq!(prints(&world, &probe).len(), 2);
    send(&mut world, "exit 0");
    world.kernel.harness().run_until_idle();
    assert_eq!(prints(&world, &probe)[2], "stderr: half a line");
    assert_eq!(exits(&world, &probe), [ExitReason::Returned]);
    assert!(!world.kernel.has_process(&probe));
}

#[test]
fn proc_exit_ends_the_process_with_its_code_and_its_on_exit_runs() {
    let (mut world, probe) = world(1, OnExit::Restart);
    send(&mut world, "exit 3");
    world.kernel.harness().run_until_idle();
    let replies = world.replies();
    assert_eq!(
        replies[0]["error"],
        json!("Timeout"),
        "the exit answered nothing"
    );
    assert_eq!(
        exits(&world, &probe),
        [ExitReason::Failed("proc_exit(3)".into())]
    );
    // Restarted after its backoff, it answers again.
    assert_eq!(ask(&mut world, "env"), "0");
    assert!(world.kernel.has_process(&probe));
}

#[test]
fn a_panic_message_on_stderr_is_part_of_the_exit_reason() {
    let (mut world, probe) = world(1, OnExit::None);
    send(&mut world, "panic the app gave up");
    world.kernel.harness().run_until_idle();
    let exited = exits(&world, &probe);
    let [ExitReason::Failed(reason)] = exited.as_slice() else {
        panic!("one failure expected: {exited:?}");
    };
    assert!(reason.starts_with("trap: "), "{reason}");
    assert!(reason.contains("stderr: the app gave up"), "{reason}");
    assert!(reason.contains("panicked at"), "{reason}");
}

#[test]
fn randomness_is_the_processs_own_seeded_stream() {
    let draws = |seed: u64| {
        let (mut world, _) = world(seed, OnExit::None);
        [ask(&mut world, "random 16"), ask(&mut world, "random 16")]
    };
    let first = draws(5);
    assert!(first[0].starts_with("0 "), "{first:?}");
    assert_eq!(first[0].len(), 2 + 32);
    assert_ne!(first[0], first[1], "the stream moves on");
    assert_eq!(draws(5), first, "the same seed draws the same bytes");
    assert_ne!(draws(6)[0], first[0], "another seed draws others");
    // std's HashMap keys come from random_get too.
    let (mut world, _) = world(5, OnExit::None);
    assert!(ask(&mut world, "hashmap").contains("RandomState"));
}

#[test]
fn a_restarted_process_draws_other_bytes_than_its_first_run() {
    let (mut world, _) = world(5, OnExit::Restart);
    let before = ask(&mut world, "random 16");
    send(&mut world, "exit 1");
    world.kernel.harness().run_until_idle();
    world.replies();
    let after = ask(&mut world, "random 16");
    assert_ne!(before, after);
}

#[test]
fn clocks_read_the_kernels_clock_and_never_go_back() {
    let (mut world, _) = world(1, OnExit::None);
    let read = |world: &mut World| -> u64 {
        let answer = ask(world, "clock 1");
        let (errno, nanos) = answer.split_once(' ').unwrap();
        assert_eq!(errno, "0", "{answer}");
        nanos.parse().unwrap()
    };
    let first = read(&mut world);
    assert!(first <= world.kernel.now().0);
    world
        .kernel
        .harness()
        .run_until(Timestamp(first + 7_000_000_000));
    let second = read(&mut world);
    assert!(second >= first + 7_000_000_000, "{first} -> {second}");
    assert!(second <= world.kernel.now().0);
    assert!(ask(&mut world, "clock 0").starts_with("0 "), "realtime too");
    assert_eq!(
        ask(&mut world, "clock 9"),
        "28 0",
        "an unknown clock is EINVAL"
    );
}

#[test]
fn sleep_suspends_until_the_kernel_clock_reaches_the_deadline_while_others_run() {
    let (mut world, probe) = world(1, OnExit::None);
    let echo = super::guest("echo");
    let caps = vec![messaging("tester:tester:sys")];
    world.spawn_code("echo", &echo, "echo", OnExit::None, caps, true);
    let before = world.kernel.now();
    send(&mut world, "sleep 250");
    world.settle();
    assert!(matches!(
        world.kernel.run_state(&probe),
        Some(RunState::Sleeping(_))
    ));
    // The echo guest answers while the probe sleeps.
    let client = world.client.clone();
    let request = Request::new("still here").expecting(5);
    world
        .kernel
        .harness()
        .send_as(&client, ECHO.parse().unwrap(), request, None, None)
        .unwrap();
    world.settle();
    assert_eq!(world.replies()[0]["body"], json!("still here"));
    // Then the clock reaches the deadline and the probe wakes.
    world.kernel.harness().run_until_idle();
    let slept = answer(&mut world, "sleep 250");
    let nanos: u64 = slept.strip_prefix("slept ").unwrap().parse().unwrap();
    assert!(nanos >= 250_000_000, "{slept}");
    assert!(world.kernel.now().nanos_since(before) >= 250_000_000);
    let records = world.kernel.trace().records();
    assert!(records.iter().any(|r| matches!(
        &r.event,
        Event::Sleeping { process, until } if *process == probe && until.0 >= before.0 + 250_000_000
    )));
}

#[test]
fn sched_yield_is_a_preemption_point() {
    let (mut world, probe) = world(1, OnExit::None);
    assert_eq!(ask(&mut world, "yield"), "yielded");
    let records = world.kernel.trace().records();
    assert!(
        records
            .iter()
            .any(|r| matches!(&r.event, Event::Yielded { process } if *process == probe))
    );
}

#[test]
fn the_environment_is_empty_and_realtime_starts_at_the_kernels_epoch() {
    let (mut world, _) = world(1, OnExit::None);
    assert_eq!(ask(&mut world, "env"), "0");
    let now = ask(&mut world, "now");
    let nanos: u64 = now.split(' ').next().unwrap().parse().unwrap();
    assert!(nanos <= world.kernel.now().0, "{now}");
}

#[test]
fn bad_pointers_unknown_fds_and_bad_arguments_are_errnos() {
    let (mut world, probe) = world(1, OnExit::None);
    let cases = [
        ("random-at 4294967290 100", "21"),
        ("random-at 0 4294967295", "21"),
        ("clock-at 4294967295", "21"),
        ("write 0 stdin is not writable", "8 0"),
        ("write 5 no such fd", "8 0"),
        ("write-iovs 4294967295 1", "21"),
        ("write-iovs 8 5000", "28"),
        ("poll-none", "28 0 0 0 0"),
        // An fd subscription is answered at once with EBADF in its event.
        ("poll-fd", "0 1 7 8 1"),
        // A deadline already past fires at once.
        ("poll-abs 0", "0 1 7 0 0"),
    ];
    for (command, expected) in cases {
        assert_eq!(ask(&mut world, command), expected, "{command}");
    }
    assert!(
        world.kernel.has_process(&probe),
        "the probe is still running"
    );
    assert!(exits(&world, &probe).is_empty());
    world.kernel.check_invariants().unwrap();
}

#[test]
fn a_wasi_run_is_the_same_trace_for_the_same_seed() {
    let run = |seed: u64| {
        let (mut world, _) = world(seed, OnExit::Restart);
        for command in [
            "print a", "random 8", "sleep 5", "clock 1", "yield", "exit 2",
        ] {
            send(&mut world, command);
            world.kernel.harness().run_until_idle();
        }
        let answers = world.replies();
        assert_eq!(answers.len(), 6, "five answers and the exit's timeout");
        assert_eq!(ask(&mut world, "print again"), "ok", "restarted");
        world.kernel.trace().hash()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

/// A WASI guest of raw imports in a loop: `random_get` of 16 MiB, or `fd_write` of a 16 KiB
/// line, for ever.
fn flooding(call: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
             (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
             (memory (export "memory") 300)
             ;; One iovec at 16: 16 KiB of 'x' ending in a newline, at 1024.
             (data (i32.const 16) "\00\04\00\00\00\40\00\00")
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 65536)
             (func (export "init") (param i32 i32)
               (memory.fill (i32.const 1024) (i32.const 120) (i32.const 16383))
               (i32.store8 (i32.const 17407) (i32.const 10))
               (loop $again {call} (br $again))))"#
    ))
    .unwrap()
}

/// Runs `code` as a process for `steps` kernel steps on a thread of its own (a step that
/// never ends fails the test instead of hanging it); the fuel it was charged and the print
/// bytes the trace kept.
fn run_steps(code: Vec<u8>, steps: usize) -> (u64, u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    #[expect(
        clippy::disallowed_methods,
        reason = "an endless step must fail the test"
    )]
    std::thread::spawn(move || {
        let mut world = World::new(3);
        let id: ProcessId = "flood:test:our.os".parse().unwrap();
        let init = hyperkernel::KernelCommand::InitializeProcess {
            id: id.clone(),
            wasm_bytes_handle: "/test:our.os/pkg/flood.wasm".into(),
            wit_version: Some(1),
            on_exit: OnExit::None,
            initial_capabilities: vec![],
            public: false,
        };
        let blob = hyperkernel::LazyLoadBlob {
            mime: None,
            bytes: code,
        };
        world.command_with_blob(&init, Some(5), Some(blob));
        let client = world.client.clone();
        let run = hyperkernel::KernelCommand::RunProcess(id.clone());
        world
            .kernel
            .harness()
            .command_as(&client, &run, Some(5), None)
            .unwrap();
        for _ in 0..steps {
            world.kernel.harness().step();
        }
        let view = world.kernel.view();
        let fuel = view
            .processes
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.runtime.as_ref())
            .map_or(0, |stats| stats.fuel);
        let kept: u64 = world
            .kernel
            .trace()
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                Event::Print { text, .. } => Some(text.len() as u64),
                _ => None,
            })
            .sum();
        let _ = tx.send((fuel, kept));
    });
    rx.recv_timeout(std::time::Duration::from_secs(180))
        .expect("a kernel step never ended")
}

/// SECURITY.md, WASI: host work is charged as fuel by the bytes it touches. A `random_get` of
/// 16 MiB in a loop once cost a few fuel a call, so one step never ended.
#[test]
fn host_work_is_charged_as_fuel_so_every_step_ends() {
    let random = "(drop (call $random (i32.const 65536) (i32.const 16777216)))";
    let (fuel, _) = run_steps(flooding(random), 40);
    // 16 MiB a call at 4 bytes a fuel: every step pays its slice of the host's work.
    assert!(fuel >= 30 * 1_000_000, "charged {fuel} fuel");
}

/// SECURITY.md, WASI: prints are paid for by their bytes and the trace keeps a bounded number
/// of their bytes (16 KiB lines 300 000 times once kept every one until the host aborted).
#[test]
fn a_flood_of_output_is_paid_for_and_kept_bounded() {
    let write = "(drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32)))";
    // About 240 lines of 16 KiB a step: 40 steps print some 160 MB.
    let (fuel, kept) = run_steps(flooding(write), 40);
    assert!(fuel >= 30 * 1_000_000, "charged {fuel} fuel");
    assert!(
        kept <= hyperkernel::trace::TRACE_PRINT_BYTES_MAX,
        "kept {kept} bytes of prints"
    );
    assert!(
        kept >= hyperkernel::trace::TRACE_PRINT_BYTES_MAX / 2,
        "kept {kept}"
    );
}
