//! `sim replay` and `sim diff` as a user runs them, on real trace files: a replay stops at
//! the event asked for and shows the world; it refuses a trace the build no longer
//! reproduces, or one of another format, with the file, line and problem; stepping reads
//! commands from stdin; diff finds the first divergent event and sets the exit status.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{sim, temp, text};

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn echo() -> String {
    format!("{}/scenarios/echo.json", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the echo scenario with `seed`, writing its trace to `name`; returns the path.
fn traced(name: &str, seed: u64) -> PathBuf {
    let path = temp(name);
    let output = sim(&[
        "run",
        &echo(),
        "--seed",
        &seed.to_string(),
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    path
}

#[test]
fn replay_stops_at_the_event_and_shows_the_world() {
    let trace = traced("until.jsonl", 1);
    let output = sim(&["replay", trace.to_str().unwrap(), "--until", "28"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let marked = stdout.lines().find(|l| l.starts_with("> ")).unwrap();
    assert!(marked.starts_with("> #28 "), "{marked}");
    assert!(marked.contains("Exited"), "event 28 is the kill: {marked}");
    assert!(stdout.contains("world after the step that recorded event 28"));
    assert!(
        !stdout.contains("echo:sim:sim.os Receiving"),
        "killed: {stdout}"
    );
    assert!(
        stdout.contains("client:sim:sim.os Receiving driven public"),
        "{stdout}"
    );
    let json = sim(&["replay", trace.to_str().unwrap(), "--until", "28", "--json"]);
    let stdout = text(&json.stdout);
    let start = stdout.find("{\n").unwrap();
    let world: serde_json::Value = serde_json::from_str(&stdout[start..]).unwrap();
    let ids: Vec<&str> = world["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["client:sim:sim.os", "kernel:distro:sys", "timer:distro:sys"]
    );
    let far = sim(&["replay", trace.to_str().unwrap(), "--until", "100000"]);
    assert!(!far.status.success());
    assert!(text(&far.stderr).contains("there is no event 100000"));
}

#[test]
fn a_replay_from_a_scenario_and_seed_matches_the_replay_of_its_trace() {
    let trace = traced("same.jsonl", 2);
    let from_trace = sim(&["replay", trace.to_str().unwrap(), "--until", "20"]);
    let from_seed = sim(&["replay", &echo(), "--seed", "2", "--until", "20"]);
    assert!(from_seed.status.success());
    assert_eq!(from_trace.stdout, from_seed.stdout);
}

#[test]
fn a_trace_the_build_no_longer_reproduces_is_refused_at_its_first_changed_event() {
    let trace = traced("changed.jsonl", 1);
    let original = std::fs::read_to_string(&trace).unwrap();
    let changed: Vec<String> = original
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if i == 16 {
                // Event 15 happens a nanosecond later than this build makes it happen.
                let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
                record["at"] = (record["at"].as_u64().unwrap() + 1).into();
                record.to_string()
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(&trace, changed.join("\n") + "\n").unwrap();
    let output = sim(&["replay", trace.to_str().unwrap(), "--until", "30"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("the re-run differs from the trace at event 15"),
        "{stderr}"
    );
}

#[test]
fn a_file_of_another_format_is_refused_with_its_line() {
    let cases = [
        (
            "future.jsonl",
            "{\"trace_format\":9,\"scenario\":\"x.json\",\"seed\":1}\n",
            "line 1: trace format 9 is not supported",
        ),
        ("headless.jsonl", "{\"seq\":0}\n", "line 1: no trace header"),
        (
            "garbage.jsonl",
            "{\"trace_format\":1,\"scenario\":\"x.json\",\"seed\":1}\nnot json\n",
            "line 2: not an event",
        ),
    ];
    for (name, content, expected) in cases {
        let path = temp(name);
        std::fs::write(&path, content).unwrap();
        let output = sim(&["diff", path.to_str().unwrap(), path.to_str().unwrap()]);
        assert!(!output.status.success(), "{name}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(path.to_str().unwrap()),
            "names the file: {stderr}"
        );
        assert!(
            stderr.contains(expected),
            "{name}: expected `{expected}` in {stderr}"
        );
    }
}

#[test]
fn stepping_reads_commands_from_stdin() {
    let trace = traced("step.jsonl", 1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["replay", trace.to_str().unwrap(), "--until", "20", "--step"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\nw\nq\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.starts_with("#20 "), "starts at the event: {stdout}");
    assert!(stdout.contains("\n#22 "), "one step on: {stdout}");
    assert_eq!(stdout.matches("step> ").count(), 3, "{stdout}");
    assert!(
        stdout.contains("processes   4"),
        "w printed the world: {stdout}"
    );
    assert!(!stdout.contains("\n#26 "), "q stopped: {stdout}");
}

#[test]
fn diff_finds_the_first_divergent_event_and_sets_the_exit_status() {
    let (a, b) = (traced("a.jsonl", 1), traced("b.jsonl", 2));
    let same = sim(&["diff", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(same.status.success());
    assert!(text(&same.stdout).starts_with("identical: "));
    let differ = sim(&[
        "diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--context",
        "2",
    ]);
    assert_eq!(differ.status.code(), Some(1));
    let stdout = text(&differ.stdout);
    assert!(stdout.contains("traces differ from event 14"), "{stdout}");
    assert!(stdout.contains("  #12 "), "context before: {stdout}");
    assert!(
        stdout.contains("--seed 1") && stdout.contains("--seed 2"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("> #14 ").count(),
        2,
        "both sides of the difference: {stdout}"
    );
}
