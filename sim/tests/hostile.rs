//! Hostile input to the `sim` binary (issue 10), run as a user runs it: scenario numbers out
//! of range, devices and FIFOs for files, seed ranges at the end of `u64`, a guest that spins
//! in `init`, a panic in a run, and commands that would destroy their own input. Each case
//! panicked, hung, wrapped silently or lost data before its fix.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{example, sim, temp, text};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `sim args`, failing the test if it takes longer than `seconds` (a hang).
fn sim_within(args: &[&str], seconds: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..seconds * 10 {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("sim {args:?} did not finish within {seconds} s");
}

const CLIENT: &str = r#"{ "id": "client:sim:sim.os", "driven": true, "public": true }"#;

/// A scenario with `extra` fields after the usual ones.
fn scenario(extra: &str) -> String {
    format!(
        r#"{{"version": 1, "node": "sim.os", "processes": [{CLIENT}, {{"id": "echo:sim:sim.os", "native": "echo", "public": true}}], "run_for_ms": 1000{extra}}}"#
    )
}

/// Writes `text` as scenario `name`, runs it, and returns stderr after checking that it was
/// refused as bad input (status 2) within a few seconds.
fn refused(name: &str, text: &str) -> String {
    let path = temp(&format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    let output = sim_within(&["run", path.to_str().unwrap()], 20);
    let stderr = common::text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
    stderr
}

#[test]
fn every_scenario_number_is_range_checked_and_names_its_field() {
    let huge = u64::MAX.to_string();
    let cases = [
        (
            "latency-max",
            scenario(&format!(r#", "network": {{"latency_ms": [0, {huge}]}}"#)),
            "network.latency_ms[1]",
        ),
        (
            "latency-wraps",
            // 18446744073710 ms wrapped to 0.45 ms when turned into nanoseconds.
            scenario(r#", "network": {"latency_ms": [1, 18446744073710]}"#),
            "network.latency_ms[1]: 18446744073710 ms is over",
        ),
        (
            "run-for",
            scenario("").replace("\"run_for_ms\": 1000", &format!("\"run_for_ms\": {huge}")),
            "run_for_ms",
        ),
        (
            "quiesce",
            scenario(&format!(r#", "quiesce_within_ms": {huge}"#)),
            "quiesce_within_ms",
        ),
        (
            "delay",
            scenario(&format!(
                r#", "faults": {{"delay": {{"probability": 0.5, "max_ms": {huge}}}}}"#
            )),
            "faults.delay.max_ms",
        ),
        (
            "expects",
            scenario(&format!(
                r#", "workload": [{{"at_ms": 0, "from": "client:sim:sim.os", "send": {{"to": "sim.os@echo:sim:sim.os", "body": "x", "expects_response": {huge}}}}}]"#
            )),
            "workload[0].send.expects_response",
        ),
        (
            "generated",
            scenario(
                r#", "generators": [{"kind": "requests", "count": 1000000, "end_ms": 10, "from": ["client:sim:sim.os"], "to": ["sim.os@echo:sim:sim.os"], "bodies": ["x"]}, {"kind": "requests", "count": 1000000, "end_ms": 10, "from": ["client:sim:sim.os"], "to": ["sim.os@echo:sim:sim.os"], "bodies": ["x"]}]"#,
            ),
            "workload: 0 listed and 2000000 generated entries are over",
        ),
        (
            "node",
            scenario("").replace("\"node\": \"sim.os\"", "\"node\": \"x@y:z\""),
            "node: `x@y:z` is not a node name",
        ),
    ];
    for (name, text, expected) in cases {
        let stderr = refused(name, &text);
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in {stderr}"
        );
    }
}

#[test]
fn devices_and_fifos_are_refused_as_files_without_reading_them() {
    for args in [
        vec!["run", "/dev/zero"],
        vec!["replay", "/dev/zero"],
        vec!["diff", "/dev/zero", "/dev/zero"],
    ] {
        let output = sim_within(&args, 20);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
    let fifo = temp("a-fifo.json");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let output = sim_within(&["run", fifo.to_str().unwrap()], 20);
    assert!(text(&output.stderr).contains("not a regular file"));
    // A wasm path that is a device.
    let wasm = scenario("").replace(r#""native": "echo""#, r#""wasm": "/dev/zero""#);
    let stderr = refused("wasm-device", &wasm);
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn a_guest_spinning_in_init_does_not_hang_setup() {
    let module = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (func (export "init") (param i32 i32) (loop (br 0)))
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))"#,
    )
    .unwrap();
    let wasm = temp("spin-in-init.wasm");
    std::fs::write(&wasm, module).unwrap();
    let text = format!(
        r#"{{"version": 1, "node": "sim.os", "run_for_ms": 2, "processes": [{CLIENT}, {{"id": "spinner:sim:sim.os", "wasm": "{}"}}, {{"id": "echo:sim:sim.os", "native": "echo", "public": true}}]}}"#,
        wasm.display()
    );
    let path = temp("spin-in-init.json");
    std::fs::write(&path, text).unwrap();
    let output = sim_within(&["run", path.to_str().unwrap()], 60);
    assert!(output.status.success(), "{}", common::text(&output.stderr));
    let stdout = common::text(&output.stdout);
    assert!(stdout.contains("trace hash"), "{stdout}");
}

#[test]
fn explore_at_the_end_of_the_seed_space_ends_and_jobs_must_be_positive() {
    let seeds = format!("{}..{}", u64::MAX - 1, u64::MAX);
    let output = sim_within(
        &[
            "explore",
            &example("echo"),
            "--seeds",
            &seeds,
            "--jobs",
            "2",
        ],
        120,
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("passed      1"), "{stdout}");
    let zero = sim_within(&["explore", &example("echo"), "--jobs", "0"], 20);
    assert_eq!(zero.status.code(), Some(2));
    assert!(text(&zero.stderr).contains("give 1 to 1024"));
}

#[test]
fn a_panic_fails_its_seed_with_a_reproduce_line_and_keeps_the_trace() {
    let output = sim_within(
        &[
            "explore",
            &example("echo"),
            "--seeds",
            "0..3",
            "--jobs",
            "2",
            "--planted-panic",
            "3",
        ],
        120,
    );
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("failed      3"), "{stdout}");
    for seed in 0..3 {
        assert!(
            stdout.contains(&format!("seed {seed}: panic after step 3: planted panic")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("reproduce: sim run"), "{stdout}");
    let trace = temp("panicked.jsonl");
    let run = sim_within(
        &[
            "run",
            &example("echo"),
            "--planted-panic",
            "3",
            "--trace",
            trace.to_str().unwrap(),
        ],
        60,
    );
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("panic after step 3"));
    let lines = std::fs::read_to_string(&trace).unwrap().lines().count();
    assert!(
        lines > 1,
        "the trace up to the panic is written: {lines} lines"
    );
}

#[test]
fn no_command_writes_over_its_input_or_an_unrelated_file() {
    let scenario_path = temp("precious.json");
    std::fs::copy(example("echo"), &scenario_path).unwrap();
    let before = std::fs::read(&scenario_path).unwrap();
    let path = scenario_path.to_str().unwrap();
    let dotted = format!(
        "{}/./precious.json",
        scenario_path.parent().unwrap().display()
    );
    for trace in [path, dotted.as_str()] {
        let output = sim_within(&["run", path, "--trace", trace], 60);
        assert_eq!(output.status.code(), Some(2));
        assert!(text(&output.stderr).contains("refusing to write over it"));
    }
    let shrink = sim_within(&["shrink", path, "--seed", "1", "--out", path], 60);
    assert_eq!(shrink.status.code(), Some(2));
    assert_eq!(std::fs::read(&scenario_path).unwrap(), before, "intact");
    // `NAME.partial` beside a trace is someone else's file.
    let partial = temp("kept.partial");
    std::fs::write(&partial, "mine").unwrap();
    let trace = temp("kept.jsonl");
    let output = sim_within(&["run", path, "--trace", trace.to_str().unwrap()], 60);
    assert!(output.status.success());
    assert_eq!(std::fs::read_to_string(&partial).unwrap(), "mine");
    let leftovers: Vec<_> = std::fs::read_dir(trace.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kept.jsonl"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary left: {leftovers:?}");
}

#[test]
fn diff_tells_differing_traces_from_unreadable_ones() {
    let (a, b) = (temp("diff-a.jsonl"), temp("diff-b.jsonl"));
    for (file, seed) in [(&a, "1"), (&b, "2")] {
        let out = sim_within(
            &[
                "run",
                &example("echo"),
                "--seed",
                seed,
                "--trace",
                file.to_str().unwrap(),
            ],
            60,
        );
        assert!(out.status.success());
    }
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    assert_eq!(sim(&["diff", a, a]).status.code(), Some(0));
    assert_eq!(sim(&["diff", a, b]).status.code(), Some(1));
    let missing = sim(&["diff", a, "/no/such/trace.jsonl"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read"));
}

#[test]
fn a_network_reply_arrives_when_it_is_due_not_at_the_next_workload_entry() {
    let scenario = r#"{"version": 1, "node": "sim.os", "run_for_ms": 7000,
      "processes": [{ "id": "client:sim:sim.os", "driven": true, "public": true, "capabilities": ["network"] }],
      "network": { "latency_ms": [5, 5], "peers": [{ "address": "far.os@echo:sim:sim.os", "native": "echo" }] },
      "workload": [
        { "at_ms": 0, "from": "client:sim:sim.os", "send": { "to": "far.os@echo:sim:sim.os", "body": "hi", "expects_response": 5 } },
        { "at_ms": 6000, "from": "client:sim:sim.os", "send": { "to": "far.os@echo:sim:sim.os", "body": "later" } }
      ]}"#;
    let path = temp("due.json");
    std::fs::write(&path, scenario).unwrap();
    let trace = temp("due.jsonl");
    let output = sim_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
        ],
        60,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        common::line(&stdout, "timeouts").ends_with(" 0"),
        "{stdout}"
    );
    // The echo's answer is delivered to the client 10 ms in (5 ms each way).
    let delivered_at: Vec<u64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"].get("Delivered").is_some())
        .map(|r| r["at"].as_u64().unwrap())
        .collect();
    assert_eq!(delivered_at.first(), Some(&10_000_000), "{delivered_at:?}");
}
