//! `sim run` as a user runs it, on the example scenarios and on broken ones: every example is
//! deterministic across two processes and keeps the kernel's invariants; a broken scenario
//! fails with the file, the place and the problem, and writes nothing.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{example, line, sim, temp};

#[test]
fn every_example_scenario_is_deterministic_across_processes() {
    let dir = format!("{}/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    for name in &names {
        let name = name.as_str();
        let (a, b) = (
            temp(&format!("{name}-a.jsonl")),
            temp(&format!("{name}-b.jsonl")),
        );
        let first = sim(&[
            "run",
            &example(name),
            "--seed",
            "3",
            "--trace",
            a.to_str().unwrap(),
        ]);
        let second = sim(&[
            "run",
            &example(name),
            "--seed",
            "3",
            "--trace",
            b.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&first.stderr);
        assert!(first.status.success(), "{name}: {stderr}");
        let (one, two) = (
            String::from_utf8_lossy(&first.stdout),
            String::from_utf8_lossy(&second.stdout),
        );
        assert_eq!(line(&one, "trace hash"), line(&two, "trace hash"), "{name}");
        assert_eq!(
            std::fs::read(a).unwrap(),
            std::fs::read(b).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_examples_do_what_their_descriptions_say() {
    let echo = sim(&["run", &example("echo"), "--seed", "1"]);
    let echo = String::from_utf8_lossy(&echo.stdout).into_owned();
    assert_eq!(line(&echo, "exits"), "exits       Killed=1");
    assert_eq!(
        line(&echo, "dropped"),
        "dropped     NoSuchTarget=1",
        "the request after the kill"
    );
    let pingpong = sim(&["run", &example("pingpong"), "--seed", "1"]);
    let pingpong = String::from_utf8_lossy(&pingpong.stdout).into_owned();
    assert_eq!(line(&pingpong, "restarts"), "restarts    1", "{pingpong}");
    let hostile = sim(&["run", &example("hostile"), "--seed", "1"]);
    let hostile = String::from_utf8_lossy(&hostile.stdout).into_owned();
    assert_eq!(
        line(&hostile, "exits"),
        "exits       Failed=2 Killed=1",
        "{hostile}"
    );
}

/// Runs `sim run` on a scenario with `text`; returns stderr after checking it failed and
/// wrote no trace.
fn broken(name: &str, text: &str) -> String {
    let path = temp(&format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    let trace = temp(&format!("{name}.jsonl"));
    let output = sim(&[
        "run",
        path.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!output.status.success(), "{name} should fail");
    assert!(!trace.exists(), "{name}: nothing half-written");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        stderr.contains(path.to_str().unwrap()),
        "{name}: names the file: {stderr}"
    );
    stderr
}

const CLIENT: &str = r#"{ "id": "client:sim:sim.os", "driven": true }"#;

#[test]
fn a_broken_scenario_names_the_file_the_place_and_the_problem() {
    let cases = [
        ("syntax", "{ \"version\": 1,\n  \"node\": }".to_owned(), "line 2"),
        ("version", r#"{"version": 9, "node": "a.os", "processes": [], "run_for_ms": 1}"#.to_owned(), "version 9"),
        (
            "unknown-field",
            r#"{"version": 1, "node": "a.os", "processes": [], "run_for_ms": 1, "seeds": 3}"#.to_owned(),
            "unknown field `seeds`",
        ),
        (
            "two-kinds",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "a:b:c.os", "guest": "echo", "driven": true}]}"#.to_owned(),
            "processes[0]: give exactly one of guest, wasm, native and driven",
        ),
        (
            "bad-id",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "nocolons", "driven": true}]}"#.to_owned(),
            "processes[0]: id `nocolons`",
        ),
        (
            "kernel-id",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "kernel:distro:sys", "driven": true}]}"#.to_owned(),
            "the kernel's own process",
        ),
        (
            "not-driven",
            format!(r#"{{"version": 1, "node": "a.os", "run_for_ms": 9, "processes": [{CLIENT}], "workload": [{{"at_ms": 0, "from": "x:y:z.os", "send": {{"to": "a.os@client:sim:sim.os", "body": "hi"}}}}]}}"#),
            "workload[0]: `x:y:z.os` is not a driven process",
        ),
        (
            "unknown-guest",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "a:b:c.os", "guest": "no-such-guest"}]}"#.to_owned(),
            "no example guest `no-such-guest`",
        ),
        (
            "missing-wasm",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "a:b:c.os", "wasm": "missing.wasm"}]}"#.to_owned(),
            "cannot read",
        ),
        (
            "invalid-wasm",
            r#"{"version": 1, "node": "a.os", "run_for_ms": 1, "processes": [{"id": "a:b:c.os", "wasm": "invalid-wasm.json"}]}"#.to_owned(),
            "invalid wasm",
        ),
    ];
    for (name, text, expected) in cases {
        let stderr = broken(name, &text);
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in: {stderr}"
        );
    }
}
