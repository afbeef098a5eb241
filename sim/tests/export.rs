//! `sim export TRACE --format chrome`: traces of one node and of worlds become Chrome
//! trace-event JSON in which every message flow starts once and arrives somewhere, drops and
//! faults are named with their reasons, lanes are named per node, and the order and
//! simulated-time axes hold; a file that is no trace is refused with its line.

#![allow(clippy::unwrap_used, reason = "test code")]

mod common;

use common::{example, sim, temp, text};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Runs `scenario` with `seed`, writing its trace, and exports it on `time`; returns the JSON
/// and the trace's record lines.
fn exported(scenario: &str, seed: &str, time: &str, name: &str) -> (Value, Vec<Value>) {
    let trace = temp(&format!("{name}.jsonl"));
    let out = temp(&format!("{name}.chrome.json"));
    let run = sim(&[
        "run",
        scenario,
        "--seed",
        seed,
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(trace.exists(), "{}{}", text(&run.stdout), text(&run.stderr));
    let export = sim(&[
        "export",
        trace.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--time",
        time,
    ]);
    assert!(export.status.success(), "{}", text(&export.stderr));
    assert!(
        text(&export.stdout).starts_with("wrote "),
        "{}",
        text(&export.stdout)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let records = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (json, records)
}

fn slices(json: &Value) -> Vec<&Value> {
    json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect()
}

/// Every flow starts exactly once (out, not in) and arrives at least once, after its start.
fn flows_pair_up(json: &Value) -> usize {
    let mut starts: BTreeMap<u64, f64> = BTreeMap::new();
    let mut arrivals: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for slice in slices(json) {
        let Some(key) = slice["bind_id"].as_u64() else {
            continue;
        };
        let ts = slice["ts"].as_f64().unwrap();
        let (arrives, leaves) = (slice["flow_in"] == true, slice["flow_out"] == true);
        assert!(
            arrives || leaves,
            "a bound slice takes part in its flow: {slice}"
        );
        if leaves && !arrives {
            assert!(starts.insert(key, ts).is_none(), "flow {key} starts twice");
        }
        if arrives {
            arrivals.entry(key).or_default().push(ts);
        }
    }
    for (key, start) in &starts {
        let ends = arrivals
            .get(key)
            .unwrap_or_else(|| panic!("flow {key} arrives nowhere"));
        assert!(
            ends.iter().all(|ts| ts >= start),
            "flow {key} arrives before it starts"
        );
    }
    assert!(
        arrivals.keys().all(|k| starts.contains_key(k)),
        "an arrival without a start"
    );
    starts.len()
}

/// Every slice's thread has a name, in a named process.
fn lanes_are_named(json: &Value) -> BTreeSet<(u64, String)> {
    let events = json["traceEvents"].as_array().unwrap();
    let mut names = BTreeMap::new();
    let mut processes = BTreeSet::new();
    for m in events.iter().filter(|e| e["ph"] == "M") {
        let name = m["args"]["name"].as_str().unwrap().to_owned();
        match m["name"].as_str().unwrap() {
            "thread_name" => {
                names.insert(
                    (m["pid"].as_u64().unwrap(), m["tid"].as_u64().unwrap()),
                    name,
                );
            }
            "process_name" => {
                processes.insert(m["pid"].as_u64().unwrap());
            }
            other => panic!("metadata {other}"),
        }
    }
    let mut used = BTreeSet::new();
    for slice in slices(json) {
        let (pid, tid) = (
            slice["pid"].as_u64().unwrap(),
            slice["tid"].as_u64().unwrap(),
        );
        let name = names
            .get(&(pid, tid))
            .unwrap_or_else(|| panic!("thread {pid}/{tid} unnamed"));
        assert!(processes.contains(&pid), "process {pid} unnamed");
        used.insert((pid, name.clone()));
    }
    used
}

#[test]
fn a_node_trace_exports_with_paired_flows_named_lanes_and_reasons() {
    let (json, records) = exported(&example("network"), "1", "order", "network");
    let slices = slices(&json);
    assert_eq!(slices.len(), records.len(), "an event a slice");
    // The order axis: each event at its line, one unit long.
    for (i, slice) in slices.iter().enumerate() {
        assert_eq!(slice["ts"].as_f64(), Some(i as f64));
        assert_eq!(
            slice["args"]["record"], records[i],
            "the record as the trace has it"
        );
    }
    assert!(flows_pair_up(&json) > 10, "messages flow");
    let lanes = lanes_are_named(&json);
    assert!(
        lanes.iter().any(|(_, name)| name == "kernel:distro:sys"),
        "{lanes:?}"
    );
    // Every drop is named with its reason, the trace's own.
    let drops: Vec<&&Value> = slices.iter().filter(|s| s["cat"] == "drop").collect();
    let dropped = records
        .iter()
        .filter(|r| r["event"]["Dropped"].is_object())
        .count();
    assert_eq!(drops.len(), dropped);
    assert!(dropped > 0, "the network scenario drops messages");
    for drop in drops {
        let reason = drop["args"]["record"]["event"]["Dropped"]["reason"]
            .as_str()
            .unwrap();
        assert_eq!(drop["name"], format!("Dropped: {reason}"));
    }
    // Inbox depths are counted: messages wait in the inbox before they are routed.
    let inbox: Vec<u64> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "inbox")
        .map(|e| e["args"]["depth"].as_u64().unwrap())
        .collect();
    assert!(inbox.iter().any(|d| *d > 0), "messages wait in the inbox");
}

#[test]
fn a_world_trace_exports_its_nodes_their_crossings_and_faults_on_simulated_time() {
    let scenario = format!(
        "{}/scenarios/worlds/reboot.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (json, records) = exported(&scenario, "2", "sim", "world");
    assert!(flows_pair_up(&json) > 0);
    let lanes = lanes_are_named(&json);
    let processes: BTreeSet<u64> = lanes.iter().map(|(pid, _)| *pid).collect();
    assert!(processes.len() >= 2, "a process per node: {lanes:?}");
    // Messages that cross between nodes: one flow on two nodes' lanes.
    let mut pids: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for slice in slices(&json) {
        if let Some(key) = slice["bind_id"].as_u64() {
            pids.entry(key)
                .or_default()
                .insert(slice["pid"].as_u64().unwrap());
        }
    }
    assert!(
        pids.values().any(|p| p.len() > 1),
        "a message crosses nodes"
    );
    // Simulated time: microseconds of the record's time, never going back within a node.
    for (slice, record) in slices(&json).iter().zip(&records) {
        let at = record["at"].as_u64().unwrap() as f64 / 1_000.0;
        let ts = slice["ts"].as_f64().unwrap();
        assert!(ts >= at && ts < at + 1.0, "{ts} for {at}");
    }
    let faults: Vec<String> = slices(&json)
        .iter()
        .filter(|s| s["cat"] == "fault")
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!faults.is_empty(), "the reboot world's crashes are marked");
}

#[test]
fn a_file_that_is_no_trace_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let case = |name: &str, content: &str, expected: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let export = sim(&[
            "export",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert!(!export.status.success(), "{name} exported");
        let stderr = text(&export.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    case("empty.jsonl", "", "line 1: no trace header");
    case(
        "foreign.jsonl",
        "{\"hello\": 1}\n",
        "line 1: no trace header (`trace_format`)",
    );
    case(
        "future.jsonl",
        "{\"trace_format\": 9}\n",
        "line 1: trace format 9 is not supported",
    );
    let truncated = "{\"trace_format\":1,\"scenario\":\"x\",\"seed\":1}\n{\"seq\":0,\"at\":0,";
    case("truncated.jsonl", truncated, "line 2: not JSON");
    assert!(!Path::new(&out).exists(), "nothing written for bad input");
}
