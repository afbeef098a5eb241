//! `sim explore` and `sim shrink` as a user runs them: clean scenarios pass every seed (each
//! run twice, some in a fresh process); the planted capability bug is found within a few
//! seeds, the printed command reproduces it, and shrinking it gives a small scenario that
//! fails the same way.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use common::{example, sim, temp};

#[test]
fn clean_scenarios_pass_every_seed_deterministically() {
    for name in ["capabilities", "echo"] {
        let output = sim(&["explore", &example(name), "--seeds", "0..12", "--jobs", "2"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("passed      12"), "{stdout}");
        assert!(stdout.contains("failed      0"), "{stdout}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("12/12 seeds"),
            "progress is shown"
        );
    }
}

#[test]
fn the_planted_bug_is_found_and_the_printed_command_reproduces_it() {
    let scenario = example("capabilities");
    let output = sim(&[
        "explore",
        &scenario,
        "--seeds",
        "0..8",
        "--jobs",
        "2",
        "--planted-bug",
    ]);
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout
        .lines()
        .find(|l| l.starts_with("seed "))
        .expect("a failing seed");
    assert!(first.contains("without a messaging capability"), "{first}");
    let command = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("reproduce: sim "))
        .expect("a reproduce line");
    let args: Vec<&str> = command.split(' ').collect();
    let replay = sim(&args);
    assert!(!replay.status.success(), "the reproduction fails too");
    assert!(
        stdout.contains("distinct    1 failure(s)"),
        "one bug, however many seeds hit it: {stdout}"
    );
    assert!(
        stdout.contains("    shrink: sim shrink ") && stdout.contains("--planted-bug"),
        "{stdout}"
    );
    let reason = first.split_once(": ").unwrap().1;
    assert!(
        String::from_utf8_lossy(&replay.stderr).contains(reason),
        "the same failure"
    );
}

#[test]
fn a_bad_seed_range_is_refused() {
    let output = sim(&["explore", &example("echo"), "--seeds", "5..5"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("`5..5` is empty"));
}

/// The first failing seed `explore --planted-bug` reports for `scenario`.
fn failing_seed(scenario: &str) -> String {
    let output = sim(&["explore", scenario, "--seeds", "0..10", "--planted-bug"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("seed "))
        .expect("a failing seed");
    line["seed ".len()..].split(':').next().unwrap().to_owned()
}

#[test]
fn the_planted_bug_is_shrunk_to_a_small_scenario_that_fails_the_same_way() {
    let scenario = example("busy-capabilities");
    let seed = failing_seed(&scenario);
    let out = temp("shrunk.json");
    let output = sim(&[
        "shrink",
        &scenario,
        "--seed",
        &seed,
        "--out",
        out.to_str().unwrap(),
        "--planted-bug",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shrunk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let processes = shrunk["processes"].as_array().unwrap();
    assert!(processes.len() <= 3, "load processes are gone: {shrunk:#}");
    assert!(
        shrunk["workload"].as_array().unwrap().len() < 9,
        "{shrunk:#}"
    );
    assert!(
        shrunk.get("faults").is_none(),
        "faults are gone: {shrunk:#}"
    );
    assert!(shrunk["run_for_ms"].as_u64().unwrap() < 5000);
    let events = stdout.lines().find(|l| l.starts_with("events")).unwrap();
    assert!(events.contains("x smaller"), "{events}");
    let rerun = sim(&[
        "run",
        out.to_str().unwrap(),
        "--seed",
        &seed,
        "--planted-bug",
    ]);
    assert!(!rerun.status.success());
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(
        stderr.contains("from sim.os@intruder:sim:sim.os was queued for echo:sim:sim.os without a messaging capability"),
        "same invariant, same processes: {stderr}"
    );
    let clean = sim(&["run", out.to_str().unwrap(), "--seed", &seed]);
    assert!(
        clean.status.success(),
        "without the bug the small scenario passes"
    );
}

#[test]
fn shrinking_a_passing_seed_is_refused_and_writes_nothing() {
    let out = temp("nothing.json");
    let output = sim(&[
        "shrink",
        &example("echo"),
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("seed 1 does not fail"));
    assert!(!out.exists());
}

#[test]
fn shrinking_shortens_the_delays_a_failure_needs() {
    let scenario = temp("slow.json");
    let text = r#"{
      "version": 1, "node": "sim.os", "run_for_ms": 10, "quiesce_within_ms": 1000,
      "processes": [
        { "id": "client:sim:sim.os", "driven": true, "public": true },
        { "id": "echo:sim:sim.os", "native": "echo", "public": true }
      ],
      "workload": [
        { "at_ms": 0, "from": "client:sim:sim.os",
          "send": { "to": "sim.os@echo:sim:sim.os", "body": "slow" } }
      ],
      "faults": { "swarm": false, "delay": { "probability": 1.0, "max_ms": 100000 } }
    }"#;
    std::fs::write(&scenario, text).unwrap();
    let run = sim(&["run", scenario.to_str().unwrap(), "--seed", "4"]);
    assert!(
        !run.status.success(),
        "the held message outlives the liveness budget"
    );
    let out = temp("slow-shrunk.json");
    let shrink = sim(&[
        "shrink",
        scenario.to_str().unwrap(),
        "--seed",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        shrink.status.success(),
        "{}",
        String::from_utf8_lossy(&shrink.stderr)
    );
    let shrunk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let max_ms = shrunk["faults"]["delay"]["max_ms"].as_u64().unwrap();
    assert!(max_ms < 100_000, "the longest hold was halved: {shrunk:#}");
    assert!(
        max_ms > 1000,
        "but stays long enough to outlive the budget: {max_ms}"
    );
}
