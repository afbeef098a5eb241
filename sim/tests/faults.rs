//! Faults and the liveness phase, as a user runs them: the faults scenario fires every kind
//! of fault across a few seeds (swarm: seeds differ in which are on), stays deterministic and
//! keeps every invariant; a node that cannot quiesce fails the liveness phase with what is
//! still pending; a bad `faults` section is refused with its place.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{line, refused, sim, temp};

use std::collections::BTreeSet;

fn faults_scenario() -> String {
    format!("{}/scenarios/faults.json", env!("CARGO_MANIFEST_DIR"))
}

/// `name=value` pairs of the summary's `faults` line.
fn fired(stdout: &str) -> Vec<(String, u64)> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("faults      "))
        .unwrap();
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = v.split('/').next().unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn every_fault_fires_across_seeds_and_seeds_draw_different_plans() {
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    let mut plans = BTreeSet::new();
    for seed in 0..12 {
        let output = sim(&["run", &faults_scenario(), "--seed", &seed.to_string()]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "seed {seed}: {stdout}{stderr}");
        let plan = stdout
            .lines()
            .find(|l| l.starts_with("faults plan"))
            .unwrap();
        plans.insert(plan.to_owned());
        for (name, count) in fired(&stdout) {
            *totals.entry(name).or_default() += count;
        }
    }
    for name in ["delayed", "trapped", "crashed", "timers-skewed"] {
        assert!(
            totals.get(name).copied().unwrap_or(0) > 0,
            "{name} never fired: {totals:?}"
        );
    }
    assert!(plans.len() >= 6, "swarm: plans differ by seed: {plans:#?}");
}

#[test]
fn faulty_runs_are_deterministic_across_processes() {
    let output = sim(&[
        "explore",
        &faults_scenario(),
        "--seeds",
        "0..30",
        "--jobs",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("failed      0"), "{stdout}");
}

#[test]
fn a_node_that_cannot_quiesce_fails_the_liveness_phase_and_says_why() {
    let path = temp("spinning.json");
    let text = r#"{
      "version": 1, "node": "sim.os", "run_for_ms": 100, "quiesce_within_ms": 1000,
      "processes": [
        { "id": "client:sim:sim.os", "driven": true, "public": true },
        { "id": "spinner:sim:sim.os", "guest": "hostile", "public": true }
      ],
      "workload": [
        { "at_ms": 0, "from": "client:sim:sim.os",
          "send": { "to": "sim.os@spinner:sim:sim.os", "body": "loop" } }
      ]
    }"#;
    std::fs::write(&path, text).unwrap();
    let output = sim(&["run", path.to_str().unwrap(), "--seed", "1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not quiescent 1000 ms after the run"),
        "{stderr}"
    );
    assert!(
        stderr.contains("spinner:sim:sim.os: runnable (Yielded)"),
        "{stderr}"
    );
    assert!(stderr.contains("--seed 1"), "says how to replay: {stderr}");
}

#[test]
fn a_bad_fault_section_is_refused_with_its_place() {
    let cases = [
        (
            r#""faults": {"delay": {"probability": 1.5, "max_ms": 5}}"#,
            "faults: delay.probability 1.5",
        ),
        (
            r#""faults": {"delay": {"probability": 0.5, "max_ms": 0}}"#,
            "delay.max_ms must be at least 1",
        ),
        (
            r#""faults": {"until_ms": 50}"#,
            "faults.until_ms: is after run_for_ms 10",
        ),
        (
            r#""faults": {"trap": {"chance": 0.5}}"#,
            "unknown field `chance`",
        ),
    ];
    for (i, (section, expected)) in cases.iter().enumerate() {
        let text = format!(
            r#"{{"version": 1, "node": "a.os", "run_for_ms": 10, "processes": [], {section}}}"#
        );
        refused(&format!("bad-faults-{i}.json"), &text, expected);
    }
}

fn generated(seed: u64) -> (bool, String) {
    let path = temp("generated.json");
    let text = r#"{
      "version": 1, "node": "sim.os", "run_for_ms": 2000,
      "processes": [
        { "id": "client:sim:sim.os", "driven": true, "public": true },
        { "id": "echo:sim:sim.os", "native": "echo", "public": true }
      ],
      "generators": [
        { "kind": "requests", "count": 25, "start_ms": 10, "end_ms": 1000,
          "from": ["client:sim:sim.os"], "to": ["sim.os@echo:sim:sim.os"],
          "bodies": ["a", "bb", "ccc"], "expects_response": 5 }
      ]
    }"#;
    std::fs::write(&path, text).unwrap();
    let output = sim(&["run", path.to_str().unwrap(), "--seed", &seed.to_string()]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn a_generator_expands_per_seed_into_its_count_of_requests() {
    let (ok, one) = generated(1);
    assert!(ok, "{one}");
    // 25 requests, 25 answers, and the two setup commands (InitializeProcess, RunProcess).
    assert_eq!(line(&one, "sent"), "sent        52");
    assert_eq!(line(&one, "delivered"), "delivered   50");
    let (_, again) = generated(1);
    let (_, other) = generated(2);
    assert_eq!(line(&one, "trace hash"), line(&again, "trace hash"));
    assert_ne!(line(&one, "trace hash"), line(&other, "trace hash"));
}

#[test]
fn a_bad_generator_is_refused_with_its_place() {
    let path = temp("bad-generator.json");
    let text = r#"{"version": 1, "node": "a.os", "run_for_ms": 10,
      "processes": [{ "id": "client:sim:sim.os", "driven": true }],
      "generators": [{ "kind": "storm", "count": 1, "end_ms": 5,
        "from": ["client:sim:sim.os"], "to": ["a.os@x:y:z.os"], "bodies": ["b"] }]}"#;
    std::fs::write(&path, text).unwrap();
    let output = sim(&["run", path.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("generators[0]: unknown kind `storm` (known: requests)"),
        "{stderr}"
    );
}

fn network_scenario() -> String {
    format!("{}/scenarios/network.json", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn cross_node_traffic_is_dropped_and_duplicated_and_answers_stay_exactly_once() {
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..12 {
        let output = sim(&["run", &network_scenario(), "--seed", &seed.to_string()]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The run passing means every invariant held, including exactly one answer per
        // request at quiescence, with duplicates on the wire.
        assert!(output.status.success(), "seed {seed}: {stdout}{stderr}");
        let dropped = line(&stdout, "dropped");
        assert!(
            dropped.contains("NodeUnreachable=1"),
            "nowhere.os is Offline: {dropped}"
        );
        assert!(
            dropped.contains("RemoteTargetRefused=1"),
            "a peer reaches only networked processes: {dropped}"
        );
        for (name, count) in fired(&stdout) {
            *totals.entry(name).or_default() += count;
        }
    }
    for name in ["net-dropped", "net-duplicated"] {
        assert!(
            totals.get(name).copied().unwrap_or(0) > 0,
            "{name} never fired: {totals:?}"
        );
    }
}

#[test]
fn a_bad_network_section_is_refused_with_its_place() {
    let client = r#"{ "id": "client:sim:sim.os", "driven": true }"#;
    let cases = [
        (
            r#""network": {"peers": [{"address": "a.os@x:y:z.os", "native": "echo"}]}"#,
            "network: peers[0]: a.os@x:y:z.os is on our node",
        ),
        (
            r#""network": {"latency_ms": [9, 1]}"#,
            "network: latency_ms [9, 1]: min is over max",
        ),
        (
            r#""network": {"peers": [{"address": "b.os@x:y:z.os", "native": "ftp"}]}"#,
            "unknown native `ftp`",
        ),
        (
            r#""workload": [{"at_ms": 0, "from": "b.os@x:y:z.os", "send": {"to": "a.os@client:sim:sim.os", "body": "hi"}}]"#,
            "is not a driven process or a peer of this scenario",
        ),
    ];
    for (i, (section, expected)) in cases.iter().enumerate() {
        let text = format!(
            r#"{{"version": 1, "node": "a.os", "run_for_ms": 10, "processes": [{client}], {section}}}"#
        );
        refused(&format!("bad-network-{i}.json"), &text, expected);
    }
}
