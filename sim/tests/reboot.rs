//! Node crashes at every point of every commit: a scenario on redb on a simulated disk is
//! crashed at each write and sync of its disk after setup, in each way a crash can leave the
//! unsynced writes (all lost: before the write; the last torn: during it; all kept: after it),
//! and rebooted; each run must then keep every invariant (the store came back as a committed
//! image no older than the last sync, nothing was received before it was synced, no process
//! started twice, capabilities as granted and signed) and quiesce. Plus the reboot and disk
//! faults of `sim/scenarios/reboot.json` across seeds, and bad reboot and disk sections.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;

use common::{example, line, refused, sim, text};
use hyperkernel_sim::node::disk::CrashMode;
use hyperkernel_sim::node::scenario::Scenario;
use hyperkernel_sim::run::{Options, run};
use std::path::Path;

/// A counter that keeps its count in process state, counted up by a client, on a disk
/// synced every `sync_ms` (0: every commit).
fn counting(sync_ms: u64) -> Scenario {
    let text = format!(
        r#"{{
  "version": 1,
  "node": "sim.os",
  "storage": "disk",
  "sync_interval_ms": {sync_ms},
  "processes": [
    {{ "id": "client:sim:sim.os", "driven": true, "public": true }},
    {{ "id": "counter:sim:sim.os", "guest": "counter", "public": true, "on_exit": "Restart" }},
    {{ "id": "echo:sim:sim.os", "guest": "echo", "public": true, "on_exit": "Restart" }}
  ],
  "workload": [
    {{ "at_ms": 0, "from": "client:sim:sim.os",
      "send": {{ "to": "sim.os@counter:sim:sim.os", "body": "inc", "expects_response": 5 }} }},
    {{ "at_ms": 3, "from": "client:sim:sim.os",
      "send": {{ "to": "sim.os@counter:sim:sim.os", "body": "inc", "expects_response": 5 }} }},
    {{ "at_ms": 7, "from": "client:sim:sim.os",
      "send": {{ "to": "sim.os@echo:sim:sim.os", "body": "hello", "expects_response": 5 }} }},
    {{ "at_ms": 20, "from": "client:sim:sim.os",
      "send": {{ "to": "sim.os@counter:sim:sim.os", "body": "inc", "expects_response": 5 }} }},
    {{ "at_ms": 30, "from": "client:sim:sim.os",
      "send": {{ "to": "sim.os@counter:sim:sim.os", "body": "get", "expects_response": 5 }} }}
  ],
  "run_for_ms": 10000,
  "quiesce_within_ms": 60000
}}"#
    );
    Scenario::parse(Path::new("counting.json"), &text).unwrap()
}

/// Runs the scenario crashed at disk operation `at` in each mode; how many runs rebooted.
fn crashed_runs(scenario: &Scenario, sync_ms: u64, at: u64) -> u64 {
    let mut rebooted = 0;
    for mode in [CrashMode::LoseAll, CrashMode::TearLast, CrashMode::KeepAll] {
        let options = Options {
            crash_at: Some((at, mode)),
            ..Options::default()
        };
        let crashed = run(scenario, 3, options).unwrap();
        assert!(
            crashed.error.is_none(),
            "sync every {sync_ms} ms, crash at operation {at} ({mode:?}): {}",
            crashed.error.unwrap()
        );
        assert!(crashed.down.is_none(), "{:?}", crashed.down);
        assert!(crashed.reboots <= 1, "one crash, one reboot");
        rebooted += crashed.reboots;
    }
    rebooted
}

fn crash_everywhere(sync_ms: u64) {
    let scenario = counting(sync_ms);
    let clean = run(&scenario, 3, Options::default()).unwrap();
    assert!(clean.error.is_none(), "{:?}", clean.error);
    assert_eq!(clean.reboots, 0);
    // Operation by operation after setup, until the run has none left at that point.
    let mut at = 0;
    loop {
        let rebooted = crashed_runs(&scenario, sync_ms, at);
        if rebooted == 0 {
            break;
        }
        assert_eq!(rebooted, 3, "operation {at} crashes the run in every mode");
        at += 1;
    }
    eprintln!("sync every {sync_ms} ms: {at} crash points after setup, 3 ways each");
    assert!(at > 10, "the run's commits take {at} disk operations");
    assert_eq!(
        crashed_runs(&scenario, sync_ms, at + 1),
        0,
        "none further on"
    );
}

#[test]
fn a_crash_at_every_disk_operation_of_every_commit_keeps_every_invariant() {
    crash_everywhere(0);
}

#[test]
fn with_unsynced_commits_a_crash_anywhere_comes_back_no_older_than_the_last_sync() {
    crash_everywhere(5);
}

#[test]
fn the_reboot_scenario_reboots_fails_its_disk_and_stays_deterministic() {
    let scenario = example("reboot");
    let mut reboots = 0;
    let mut disk_faults = 0;
    for seed in 0..8 {
        let seed = seed.to_string();
        let first = sim(&["run", &scenario, "--seed", &seed]);
        assert!(first.status.success(), "{}", text(&first.stderr));
        let stdout = text(&first.stdout);
        let faults = line(&stdout, "faults      ");
        for (key, total) in [("reboots=", &mut reboots), ("disk=", &mut disk_faults)] {
            if let Some(rest) = faults.split(key).nth(1) {
                *total += rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        let second = sim(&["run", &scenario, "--seed", &seed]);
        assert_eq!(
            line(&stdout, "trace hash"),
            line(&text(&second.stdout), "trace hash"),
            "seed {seed} is deterministic across reboots"
        );
    }
    assert!(
        reboots > 0 && disk_faults > 0,
        "{reboots} reboots, {disk_faults} disk faults"
    );
}

#[test]
fn bad_reboot_and_disk_sections_are_refused_with_their_place() {
    let cases = [
        (
            r#""reboot": { "probability": 2, "max_downtime_ms": 5 }"#,
            "reboot.probability 2",
        ),
        (
            r#""reboot": { "probability": 0.1, "max_downtime_ms": 0 }"#,
            "max_downtime_ms",
        ),
        (r#""disk": { "read_error": -1 }"#, "disk.read_error -1"),
        (r#""disk": { "bit_rot": 0.1 }"#, "unknown field `bit_rot`"),
    ];
    for (i, (faults, expected)) in cases.into_iter().enumerate() {
        let body = format!(
            r#"{{ "version": 1, "node": "sim.os", "processes": [], "run_for_ms": 10,
                 "faults": {{ {faults} }} }}"#
        );
        refused(&format!("bad-reboot-{i}.json"), &body, expected);
    }
    let body = r#"{ "version": 1, "node": "sim.os", "processes": [], "run_for_ms": 10,
                    "storage": "tape" }"#;
    refused("bad-storage.json", body, "unknown variant `tape`");
}

#[test]
fn a_full_disk_stops_the_node_and_the_harness_reports_it_with_the_seed() {
    let mut scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example("reboot")).unwrap()).unwrap();
    scenario["faults"] =
        serde_json::json!({ "swarm": false, "disk": { "capacity_bytes": 100000 } });
    let path = common::temp("full-disk.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let output = sim(&["run", path.to_str().unwrap(), "--seed", "1"]);
    assert!(
        !output.status.success(),
        "a node that cannot boot fails its seed"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the disk is full"), "{stderr}");
    assert!(stderr.contains("did not boot again"), "{stderr}");
    assert!(stderr.contains("replay: sim run"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
