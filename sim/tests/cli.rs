//! The `sim` binary as a user runs it: the built executable, real files. Goal: the demo is
//! deterministic across processes (same seed, same output and trace file byte for byte), seeds
//! differ, the trace file is complete JSON lines, and bad arguments fail with a message.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{sim, temp};

fn hash_line(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find(|l| l.starts_with("trace hash"))
        .unwrap()
        .to_string()
}

#[test]
fn the_demo_is_deterministic_across_processes() {
    let (a, b) = (temp("a.jsonl"), temp("b.jsonl"));
    let first = sim(&["demo", "--seed", "7", "--trace", a.to_str().unwrap()]);
    let second = sim(&["demo", "--seed", "7", "--trace", b.to_str().unwrap()]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(hash_line(&first.stdout), hash_line(&second.stdout));
    let (a, b) = (
        std::fs::read_to_string(a).unwrap(),
        std::fs::read_to_string(b).unwrap(),
    );
    assert_eq!(a, b);
    let last: serde_json::Value = serde_json::from_str(a.lines().last().unwrap()).unwrap();
    assert!(
        hash_line(&first.stdout).ends_with(last["hash"].as_str().unwrap()),
        "the summary hash is the last record's"
    );
}

#[test]
fn different_seeds_give_different_traces() {
    let one = sim(&["demo", "--seed", "1"]);
    let two = sim(&["demo", "--seed", "2"]);
    assert_ne!(hash_line(&one.stdout), hash_line(&two.stdout));
    let text = String::from_utf8_lossy(&one.stdout);
    for column in [
        "events",
        "simulated",
        "sent",
        "delivered",
        "dropped",
        "exits",
        "restarts",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(column)),
            "missing {column}: {text}"
        );
    }
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let output = sim(&["demo", "--seed", "not-a-number"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--seed"));
    let unwritable = sim(&["demo", "--trace", "/nonexistent-dir/x.jsonl"]);
    assert!(!unwritable.status.success());
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("/nonexistent-dir"));
}
