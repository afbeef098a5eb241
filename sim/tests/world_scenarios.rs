//! World scenarios (files with `nodes`): real kernels with wasm guests across a network whose
//! cuts hold a live connection's messages and refuse new ones after the reference's connect
//! bound, whose crashes lose what was in flight and refuse connections while the node is down,
//! a node that boots again from its disk, the liveness phase naming what is still in flight,
//! validation that names the place, one seed giving one world, and the `sim` binary running,
//! tracing and exploring worlds.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use hyperkernel::{Event, SendErrorKind, Timestamp};
use hyperkernel_sim::run::RunError;
use hyperkernel_sim::world::drive::{WorldRun, run_world};
use hyperkernel_sim::world::net::{LossReason, OfflineReason};
use hyperkernel_sim::world::spec::WorldScenario;
use hyperkernel_sim::world::{Line, NetEvent};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/worlds")
}

fn world(json: &serde_json::Value) -> WorldScenario {
    WorldScenario::parse(&scenarios().join("inline.json"), &json.to_string()).unwrap()
}

const A: &str = r#"{ "name": "a.os", "trace_bodies": true, "processes": [
    { "id": "client:sim:sim.os", "driven": true, "public": true, "capabilities": ["network"] },
    { "id": "pingpong:sim:sim.os", "guest": "pingpong", "public": true, "capabilities": ["network"] } ] }"#;
const B: &str = r#"{ "name": "b.os", "storage": "disk", "processes": [
    { "id": "echo:sim:sim.os", "guest": "echo", "public": true, "capabilities": ["network"] },
    { "id": "counter:sim:sim.os", "guest": "counter", "public": true, "on_exit": "Restart", "capabilities": ["network"] } ] }"#;

/// Nodes a.os (client, pingpong) and b.os (echo, counter on disk) with `workload`.
fn pair(workload: serde_json::Value, run_for_ms: u64) -> WorldScenario {
    let nodes: Vec<serde_json::Value> = [A, B]
        .iter()
        .map(|n| serde_json::from_str(n).unwrap())
        .collect();
    world(&serde_json::json!({
        "version": 1,
        "nodes": nodes,
        "network": { "delay_ms": { "min": 2, "mean": 10 } },
        "workload": workload,
        "run_for_ms": run_for_ms,
        "quiesce_within_ms": 60_000
    }))
}

fn send(at_ms: u64, to: &str, body: &str, expects: u64) -> serde_json::Value {
    serde_json::json!({ "at_ms": at_ms, "node": "a.os", "from": "client:sim:sim.os",
        "send": { "to": to, "body": body, "expects_response": expects } })
}

/// The times of the network's events, with them.
fn timed(run: &WorldRun) -> Vec<(Timestamp, NetEvent)> {
    run.world
        .lines()
        .iter()
        .filter_map(|line| match *line {
            Line::Net { at, event } => Some((at, run.world.events()[event].clone())),
            Line::Node { .. } => None,
        })
        .collect()
}

fn prints(run: &WorldRun, node: usize) -> Vec<String> {
    run.world.nodes()[node]
        .kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Print { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

const MS: u64 = 1_000_000;

#[test]
fn a_cut_holds_a_live_connections_messages_until_it_heals() {
    let scenario = pair(
        serde_json::json!([
            send(0, "a.os@pingpong:sim:sim.os", "30 b.os@echo:sim:sim.os", 600),
            { "at_ms": 100, "cut": [["a.os"], ["b.os"]] },
            { "at_ms": 2100, "heal": true }
        ]),
        20_000,
    );
    let run = run_world(&scenario, 4).unwrap();
    assert_eq!(run.error, None);
    assert!(prints(&run, 0).contains(&"pingpong: 30 of 30".to_owned()));
    let events = timed(&run);
    // Something sent well before the cut healed (delays here are ~10 ms) arrived after it.
    let sent_at = |wanted: u64| {
        events.iter().find_map(|(at, e)| match e {
            NetEvent::Sent { id, .. } if *id == wanted => Some(*at),
            _ => None,
        })
    };
    let held = events.iter().any(|(at, e)| match e {
        NetEvent::Delivered { id, .. } => {
            at.0 >= 2100 * MS && sent_at(*id).is_some_and(|s| s.0 < 2000 * MS)
        }
        _ => false,
    });
    assert!(held, "a message was sent across the cut");
    for (at, event) in &events {
        if let NetEvent::Delivered { .. } = event {
            assert!(
                at.0 < 100 * MS || at.0 >= 2100 * MS,
                "delivered at {at} across the cut"
            );
        }
        assert!(!matches!(event, NetEvent::Offline { .. }), "{event:?}");
    }
}

#[test]
fn a_new_connection_across_a_cut_is_offline_after_the_connect_bound() {
    let scenario = pair(
        serde_json::json!([
            { "at_ms": 0, "cut": [["a.os"], ["b.os"]] },
            send(10, "b.os@echo:sim:sim.os", "anyone?", 30),
            { "at_ms": 9000, "heal": true }
        ]),
        10_000,
    );
    let run = run_world(&scenario, 1).unwrap();
    assert_eq!(run.error, None);
    let offline = timed(&run).into_iter().find_map(|(at, e)| match e {
        NetEvent::Offline { reason, .. } => Some((at, reason)),
        _ => None,
    });
    assert_eq!(offline.map(|o| o.1), Some(OfflineReason::Cut));
    let a = &run.world.nodes()[0].kernel;
    let heard = a.trace().records().iter().find_map(|r| match &r.event {
        Event::SendErrorQueued { kind, .. } => Some((r.at, *kind)),
        _ => None,
    });
    let (at, kind) = heard.unwrap();
    assert_eq!(kind, SendErrorKind::Offline);
    assert!(
        at.0 >= 5010 * MS && at.0 < 6000 * MS,
        "the client heard Offline at {at}, 5 s after it sent"
    );
}

#[test]
fn a_crashed_node_loses_whats_in_flight_refuses_connections_and_boots_from_its_disk() {
    let mut workload: Vec<serde_json::Value> = (0..6)
        .map(|i| send(i * 50, "b.os@counter:sim:sim.os", "inc", 5))
        .collect();
    workload.push(serde_json::json!({ "at_ms": 251, "crash": "b.os", "downtime_ms": 500 }));
    workload.push(send(400, "b.os@counter:sim:sim.os", "inc", 5));
    workload.push(send(2000, "b.os@counter:sim:sim.os", "get", 5));
    let run = run_world(&pair(serde_json::Value::Array(workload), 10_000), 2).unwrap();
    assert_eq!(run.error, None, "checks hold across the crash");
    let events = timed(&run);
    let crash = events
        .iter()
        .find_map(|(at, e)| matches!(e, NetEvent::Crash { .. }).then_some(*at))
        .unwrap();
    assert_eq!(crash, Timestamp(251 * MS));
    let boot = events
        .iter()
        .find_map(|(at, e)| matches!(e, NetEvent::Boot { node: 1 }).then_some(*at))
        .unwrap();
    assert_eq!(boot, Timestamp(751 * MS), "down for its downtime");
    // The inc sent at 400 ms found b.os down: refused.
    assert!(events.iter().any(|(at, e)| matches!(
        e,
        NetEvent::Offline {
            reason: OfflineReason::Down,
            ..
        }
    ) && at.0 == 400 * MS));
    for (at, e) in &events {
        if let NetEvent::Delivered { to: 1, .. } = e {
            assert!(
                at.0 < 251 * MS || at.0 >= 751 * MS,
                "delivered to a down node at {at}"
            );
        }
    }
    let b = &run.world.nodes()[1].kernel;
    assert!(
        b.trace()
            .records()
            .iter()
            .any(|r| matches!(&r.event, Event::FaultInjected { .. })),
        "the reboot is in b.os's trace"
    );
    // No acknowledged count was lost: every answer left b.os only once its count was
    // committed, so the counts a.os heard never go back, and the final `get` answers the
    // last one.
    let a = &run.world.nodes()[0].kernel;
    let from_counter: Vec<u64> = a
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Sent { id, source, .. } if source.to_string() == "b.os@counter:sim:sim.os" => {
                Some(*id)
            }
            _ => None,
        })
        .filter_map(|id| {
            a.trace().records().iter().find_map(|r| match &r.event {
                Event::Body { id: got, body } if *got == id => body.trim_matches('"').parse().ok(),
                _ => None,
            })
        })
        .collect();
    assert!(from_counter.len() >= 4, "{from_counter:?}");
    let (last, acked) = from_counter.split_last().unwrap();
    assert!(acked.windows(2).all(|w| w[0] < w[1]), "{from_counter:?}");
    assert_eq!(Some(last), acked.iter().max(), "{from_counter:?}");
}

#[test]
fn the_liveness_phase_names_the_link_still_in_flight() {
    let mut scenario = pair(
        serde_json::json!([send(100, "b.os@echo:sim:sim.os", "slow", 600)]),
        200,
    );
    scenario.file.network.delay_ms.min = 50_000;
    scenario.file.quiesce_within_ms = Some(1_000);
    let scenario = WorldScenario::from_file(&scenario.path, scenario.file).unwrap();
    let run = run_world(&scenario, 0).unwrap();
    let Some(RunError::Liveness { pending, .. }) = &run.error else {
        panic!("{:?}", run.error);
    };
    assert!(
        pending
            .iter()
            .any(|p| p.starts_with("a.os -> b.os: 1 in flight")),
        "{pending:?}"
    );
}

#[test]
fn world_scenarios_are_validated_with_the_place_named() {
    let cases = [
        (
            r#"{"at_ms": 5, "cut": [["a.os"], ["z.os"]]}"#,
            "workload[0]",
            "`z.os` is not a node",
        ),
        (
            r#"{"at_ms": 5, "cut": [["a.os"], ["a.os"]]}"#,
            "workload[0]",
            "none on both",
        ),
        (
            r#"{"at_ms": 5, "clog": ["a.os", "b.os"]}"#,
            "workload[0]",
            "needs for_ms",
        ),
        (
            r#"{"at_ms": 5, "crash": "b.os"}"#,
            "workload[0]",
            "needs downtime_ms",
        ),
        (
            r#"{"at_ms": 5, "heal": true, "crash": "b.os"}"#,
            "workload[0]",
            "exactly one",
        ),
        (
            r#"{"at_ms": 5, "node": "b.os", "from": "client:sim:sim.os", "send": {"to": "a.os@x:y:z", "body": ""}}"#,
            "workload[0]",
            "not a driven process of node `b.os`",
        ),
        (
            r#"{"at_ms": 99999, "heal": true}"#,
            "workload[0]",
            "after run_for_ms",
        ),
    ];
    for (entry, place, problem) in cases {
        let text = format!(
            r#"{{"version": 1, "nodes": [{A}, {B}], "workload": [{entry}], "run_for_ms": 1000}}"#
        );
        let error = WorldScenario::parse(Path::new("w.json"), &text).unwrap_err();
        assert_eq!(error.place, place, "{entry}: {error}");
        assert!(error.problem.contains(problem), "{entry}: {error}");
    }
    let twice = format!(r#"{{"version": 1, "nodes": [{A}, {A}], "run_for_ms": 1000}}"#);
    let error = WorldScenario::parse(Path::new("w.json"), &twice).unwrap_err();
    assert_eq!(error.place, "nodes[1]");
    let bad_process = r#"{"version": 1, "nodes": [{"name": "a.os", "processes": [{"id": "nope"}]}], "run_for_ms": 1}"#;
    let error = WorldScenario::parse(Path::new("w.json"), bad_process).unwrap_err();
    assert!(
        error.place.starts_with("nodes[0] (a.os): processes[0]"),
        "{error}"
    );
}

#[test]
fn drawn_crashes_take_only_the_nodes_named() {
    let file = |nodes: &str| {
        format!(
            r#"{{"version": 1, "nodes": [{A}, {B}], "run_for_ms": 5000,
                "faults": {{"crash": {{"per_second": 5, "max_downtime_ms": 100{nodes}}}}}}}"#
        )
    };
    let scenario =
        WorldScenario::parse(Path::new("w.json"), &file(r#", "nodes": ["b.os"]"#)).unwrap();
    let crashed: Vec<String> = (0..10)
        .flat_map(|seed| scenario.for_seed(seed).unwrap().file.workload)
        .filter_map(|work| work.crash)
        .collect();
    assert!(crashed.len() > 20, "crashes are drawn: {crashed:?}");
    assert!(crashed.iter().all(|name| name == "b.os"), "{crashed:?}");
    // Without the list, either node crashes.
    let any = WorldScenario::parse(Path::new("w.json"), &file("")).unwrap();
    let crashed: Vec<String> = (0..10)
        .flat_map(|seed| any.for_seed(seed).unwrap().file.workload)
        .filter_map(|work| work.crash)
        .collect();
    assert!(crashed.iter().any(|name| name == "a.os"), "{crashed:?}");
    // A name that is no node, or an empty list, is refused with the place.
    let error =
        WorldScenario::parse(Path::new("w.json"), &file(r#", "nodes": ["z.os"]"#)).unwrap_err();
    assert_eq!(error.place, "faults.crash.nodes", "{error}");
    let error = WorldScenario::parse(Path::new("w.json"), &file(r#", "nodes": []"#)).unwrap_err();
    assert!(error.problem.contains("names no node"), "{error}");
}

#[test]
fn one_seed_is_one_world_and_seeds_draw_their_own_faults() {
    let scenario = WorldScenario::load(&scenarios().join("partition.json")).unwrap();
    let hash = |seed| run_world(&scenario, seed).unwrap().world.hash();
    assert_eq!(hash(3), hash(3));
    assert_ne!(hash(3), hash(4));
    let drawn = |seed| scenario.for_seed(seed).unwrap().fault_entries().len();
    // The listed cut and heal, plus what each seed draws.
    assert!((0..20).all(|seed| drawn(seed) >= 2));
    assert!(
        (0..20).any(|seed| drawn(seed) > 2),
        "some seeds draw faults"
    );
    assert!((0..20).any(|seed| drawn(seed) == 2), "swarm turns some off");
}

#[test]
fn computation_on_driven_time_is_charged_to_the_world_clock() {
    let scenario = WorldScenario::load(&scenarios().join("partition.json")).unwrap();
    let run = run_world(&scenario, 1).unwrap();
    let a = &run.world.nodes()[0].kernel;
    assert!(a.time_charged() > 0, "pingpong's fuel was charged");
    assert!(a.now() <= run.world.now(), "a node's clock is the world's");
}

#[test]
fn a_hostile_frame_through_a_third_node_is_refused_by_the_kernel_door() {
    let scenario = pair(serde_json::json!([]), 100);
    let mut run = run_world(&scenario, 0).unwrap();
    // evil.os's frame reaches b.os but names c.os as its target: b does not relay it.
    let relay = hyperkernel::KernelMessage {
        id: 77,
        source: "evil.os@x:x:evil.os".parse().unwrap(),
        target: "c.os@echo:sim:sim.os".parse().unwrap(),
        rsvp: None,
        message: hyperkernel::Message::Request(hyperkernel::Request::new("relay me")),
        lazy_load_blob: None,
    };
    let _ = run
        .world
        .input(1, hyperkernel::Input::Submit(Box::new(relay)));
    run.world.run_until_idle(1_000).unwrap();
    let b = &run.world.nodes()[1].kernel;
    assert!(b.trace().records().iter().any(|r| matches!(
        &r.event,
        Event::Dropped {
            id: 77,
            reason: hyperkernel::DropReason::Relay,
            ..
        }
    )));
    assert!(
        !run.world
            .events()
            .iter()
            .any(|e| matches!(e, NetEvent::Sent { from: 1, .. })),
        "b.os sent nothing on"
    );
    let _ = LossReason::Spoofed;
}

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sim"))
}

#[test]
fn sim_runs_traces_and_explores_worlds() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenarios().join("reboot.json");
    let trace = |name: &str| {
        let out = dir.path().join(name);
        let status = sim()
            .args(["run", path.to_str().unwrap(), "--seed", "3", "--trace"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        (
            String::from_utf8(status.stdout).unwrap(),
            std::fs::read(&out).unwrap(),
        )
    };
    let (summary, first) = trace("a.jsonl");
    let (_, second) = trace("b.jsonl");
    assert_eq!(first, second, "one seed, one byte-identical world trace");
    assert!(summary.contains("world       2 nodes"), "{summary}");
    assert!(summary.contains("node        b.os:"), "{summary}");
    let text = String::from_utf8(first).unwrap();
    let header: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["trace_format"], 2);
    assert_eq!(header["nodes"], serde_json::json!(["a.os", "b.os"]));
    let hash = summary
        .lines()
        .find_map(|l| l.strip_prefix("trace hash"))
        .unwrap()
        .trim();
    assert_eq!(header["hash"], hash);
    assert!(text.lines().any(|l| l.contains(r#""crash":{"#)));
    assert!(text.lines().any(|l| l.contains(r#""node":"b.os""#)));
    let explore = sim()
        .args([
            "explore",
            path.to_str().unwrap(),
            "--seeds",
            "0..12",
            "--jobs",
            "2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&explore.stdout);
    assert!(explore.status.success(), "{stdout}");
    assert!(stdout.contains("passed      12"), "{stdout}");
    // W9 judged a.os in the seeds where it never crashed; b.os crashes in every seed.
    let judged: u64 = stdout
        .split(" of 24 node runs also run alone from their inputs, W9")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no W9 count: {stdout}"));
    assert!((1..=12).contains(&judged), "{stdout}");
}

/// reboot.json with too short a liveness budget for what is still in flight after the run.
fn tight(dir: &Path) -> PathBuf {
    let path = dir.join("tight.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scenarios().join("reboot.json")).unwrap())
            .unwrap();
    file["quiesce_within_ms"] = 0.into();
    file["network"]["delay_ms"]["min"] = 20_000.into();
    std::fs::write(&path, file.to_string()).unwrap();
    path
}

#[test]
fn a_failing_world_prints_its_fault_schedule_and_the_command_that_replays_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = tight(dir.path());
    let out = sim()
        .args(["run", path.to_str().unwrap(), "--seed", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("fault schedule"), "{stdout}");
    assert!(stdout.contains(r#""crash":"b.os""#), "{stdout}");
    assert!(stderr.contains("not quiescent"), "{stderr}");
    assert!(
        stderr.contains(&format!("replay: sim run {} --seed 1", path.display())),
        "{stderr}"
    );
}

#[test]
fn a_failing_world_shrinks_to_a_smaller_one_that_fails_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let path = tight(dir.path());
    let shrunk = dir.path().join("shrunk.json");
    let out = sim()
        .args(["shrink", path.to_str().unwrap(), "--seed", "1", "--out"])
        .arg(&shrunk)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = WorldScenario::load(&path).unwrap().for_seed(1).unwrap();
    let after = WorldScenario::load(&shrunk).unwrap();
    assert!(
        after.file.workload.len() < before.file.workload.len(),
        "{stdout}"
    );
    // The crash is not needed for a message to be in flight at the end: it went.
    assert!(after.fault_entries().is_empty(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "workload     {} -> {}",
            before.file.workload.len(),
            after.file.workload.len()
        )),
        "{stdout}"
    );
    let rerun = sim()
        .args(["run", shrunk.to_str().unwrap(), "--seed", "1"])
        .output()
        .unwrap();
    assert_eq!(rerun.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rerun.stderr).contains("not quiescent"));
}

#[test]
fn sim_diff_names_the_node_where_two_world_traces_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = scenarios().join("partition.json");
    let trace = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let status = sim()
            .args(["run", path.to_str().unwrap(), "--seed", seed, "--trace"])
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        out
    };
    let (a, b, c) = (
        trace("5", "a.jsonl"),
        trace("5", "b.jsonl"),
        trace("6", "c.jsonl"),
    );
    let diff = |x: &Path, y: &Path| sim().arg("diff").arg(x).arg(y).output().unwrap();
    let same = diff(&a, &b);
    assert_eq!(same.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same.stdout).starts_with("identical: "));
    let other = diff(&a, &c);
    assert_eq!(other.status.code(), Some(1));
    let report = String::from_utf8_lossy(&other.stdout);
    assert!(
        report.contains("first difference at world line"),
        "{report}"
    );
    let named = ["(a.os;", "(b.os;", "(network;"];
    assert!(named.iter().any(|n| report.contains(n)), "{report}");
    assert!(report.contains("sim replay TRACE --until"), "{report}");
    let one_node = dir.path().join("one.jsonl");
    let status = sim()
        .args(["run"])
        .arg(scenarios().join("../echo.json"))
        .arg("--trace")
        .arg(&one_node)
        .status()
        .unwrap();
    assert!(status.success());
    let mixed = diff(&a, &one_node);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("the other is not"));
}

#[test]
fn sim_replay_shows_every_node_and_link_at_a_world_line_and_checks_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.jsonl");
    let path = scenarios().join("reboot.json");
    let status = sim()
        .args(["run", path.to_str().unwrap(), "--seed", "3", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(status.status.success());
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let crash = lines
        .iter()
        .position(|l| l.contains(r#""crash":{"#))
        .unwrap();
    let out = sim()
        .arg("replay")
        .arg(&trace)
        .args(["--until", &crash.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(">    {crash:>3} {}", lines[crash])),
        "{stdout}"
    );
    assert!(stdout.contains("node a.os (up"), "{stdout}");
    assert!(stdout.contains("node b.os (down"), "{stdout}");
    assert!(stdout.contains("link b.os is down"), "{stdout}");
    // A trace that is not what the scenario gives is refused, at the line where it departs.
    let mut forged: Vec<String> = text.lines().map(str::to_owned).collect();
    forged[3] = forged[3].replace("\"at\":0", "\"at\":1");
    assert_ne!(forged[3], text.lines().nth(3).unwrap(), "the line changed");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, forged.join("\n")).unwrap();
    let out = sim()
        .arg("replay")
        .arg(&bad)
        .args(["--until", &crash.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("departs from") && stderr.contains("world line 2"),
        "{stderr}"
    );
}

#[test]
fn a_cut_that_outlasts_the_keepalive_breaks_the_connection_and_a_heal_makes_a_new_one() {
    let scenario = pair(
        serde_json::json!([
            send(0, "b.os@echo:sim:sim.os", "before", 5),
            { "at_ms": 100, "cut": [["a.os"], ["b.os"]] },
            send(200, "b.os@echo:sim:sim.os", "held", 600),
            { "at_ms": 400_000, "heal": true },
            send(450_000, "b.os@echo:sim:sim.os", "after", 5)
        ]),
        700_000,
    );
    let run = run_world(&scenario, 6).unwrap();
    assert_eq!(run.error, None, "every request got its one answer");
    let events = timed(&run);
    let broke = events.iter().find_map(|(at, e)| match e {
        NetEvent::Lost {
            reason: LossReason::Keepalive,
            count,
            ..
        } => Some((*at, *count)),
        _ => None,
    });
    let (at, count) = broke.unwrap();
    assert!(
        at.0 >= 30_100 * MS && at.0 <= 300_100 * MS,
        "gave up at {at}"
    );
    assert_eq!(count, 1, "the held request was lost with the connection");
    let a = &run.world.nodes()[0].kernel;
    let kinds: Vec<SendErrorKind> = a
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::SendErrorQueued { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![SendErrorKind::Timeout],
        "the held request timed out, nothing else"
    );
    // After the heal, a new connection carries the last request there and back.
    let delivered_after = events
        .iter()
        .filter(|(at, e)| at.0 >= 450_000 * MS && matches!(e, NetEvent::Delivered { .. }))
        .count();
    assert_eq!(delivered_after, 2);
}

#[test]
fn faults_inside_nodes_fire_and_every_world_check_still_holds() {
    let scenario = WorldScenario::load(&scenarios().join("faulty-nodes.json")).unwrap();
    let mut fired = hyperkernel_sim::node::inside::FaultCounters::default();
    for seed in 0..40 {
        let run = run_world(&scenario, seed).unwrap();
        assert_eq!(run.error, None, "seed {seed}");
        for node in run.world.nodes() {
            let c = node.faults();
            fired.delayed += c.delayed;
            fired.trapped += c.trapped;
            fired.crashed += c.crashed;
            fired.reboots += c.reboots;
            fired.disk_faults += c.disk_faults;
        }
    }
    // Each kind fired somewhere in these seeds (the draws are the seeds', so this is fixed).
    assert!(
        fired.delayed > 0 && fired.trapped > 0 && fired.crashed > 0,
        "{fired:?}"
    );
    assert!(fired.reboots > 0 && fired.disk_faults > 0, "{fired:?}");
}

#[test]
fn a_nodes_faults_may_not_be_network_faults() {
    let text = format!(
        r#"{{"version": 1, "nodes": [{A}, {{"name": "c.os", "faults": {{"drop": {{"probability": 0.1}}}}}}], "run_for_ms": 1000}}"#
    );
    let error = WorldScenario::parse(Path::new("w.json"), &text).unwrap_err();
    assert_eq!(error.place, "nodes[1].faults");
    assert!(error.problem.contains("beyond_reference"), "{error}");
}

#[test]
fn sim_replay_steps_through_a_world_pass_by_pass() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("w.jsonl");
    let path = scenarios().join("reboot.json");
    let status = sim()
        .args(["run", path.to_str().unwrap(), "--seed", "2", "--trace"])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(status.status.success());
    let lines = std::fs::read_to_string(&trace).unwrap().lines().count() - 1;
    let mut child = sim()
        .arg("replay")
        .arg(&trace)
        .args(["--until", "40", "--step"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\n\nw\nbogus\nc\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.matches("step> ").count(), 5, "{stdout}");
    assert!(stdout.contains("node b.os (up"), "{stdout}");
    assert!(stdout.contains("unknown command `bogus`"), "{stdout}");
    // `c` ran on to the end: every line of the trace was shown once, in order.
    for i in [0, 40, lines - 1] {
        assert_eq!(
            stdout.matches(&format!("  {i:>6} {{")).count(),
            1,
            "line {i}: {stdout}"
        );
    }
}

#[test]
fn a_node_run_again_alone_from_its_inputs_records_the_same_trace() {
    let scenario = WorldScenario::load(&scenarios().join("partition.json")).unwrap();
    let mut judged = 0;
    for seed in 0..6 {
        let run = run_world(&scenario, seed).unwrap();
        for index in 0..run.world.nodes().len() {
            if let Some(alone) = run.world.replay_alone(index) {
                assert_eq!(alone, Ok(()), "seed {seed}, node {index}");
                judged += 1;
            }
        }
    }
    assert_eq!(
        judged, 12,
        "every node of every seed is judged (no faults inside them)"
    );
    // A node that crashed came back from its store, not from its inputs: not judged.
    let reboot = WorldScenario::load(&scenarios().join("reboot.json")).unwrap();
    let run = run_world(&reboot, 0).unwrap();
    assert_eq!(run.world.replay_alone(1), None, "b.os crashed");
    assert_eq!(run.world.replay_alone(0), Some(Ok(())), "a.os did not");
    // An input given behind the world's back is caught.
    let mut run = run_world(&scenario, 1).unwrap();
    let kernel = run.world.kernel(1).unwrap();
    let sneaked = hyperkernel::KernelMessage {
        id: 5,
        source: "c.os@x:x:c.os".parse().unwrap(),
        target: "b.os@echo:sim:sim.os".parse().unwrap(),
        rsvp: None,
        message: hyperkernel::Message::Request(hyperkernel::Request::new("hi")),
        lazy_load_blob: None,
    };
    let _ = kernel.input(hyperkernel::Input::Submit(Box::new(sneaked)));
    let broken = run.world.replay_alone(1).unwrap().unwrap_err();
    assert!(broken.starts_with("W9: node b.os"), "{broken}");
}

#[test]
fn a_node_with_faults_through_its_hook_is_run_again_alone_with_the_same_answers() {
    // faulty-nodes.json with a.os's faults all through its hook (held messages, traps, timer
    // skew; no process crashes), always on; b.os keeps its reboots and disk faults.
    let path = scenarios().join("faulty-nodes.json");
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file["nodes"][0]["faults"] = serde_json::json!({
        "swarm": false,
        "delay": { "probability": 0.2, "max_ms": 50 },
        "trap": { "probability": 0.05 },
        "timer_skew": { "max_percent": 20 }
    });
    let scenario = WorldScenario::parse(&path, &file.to_string()).unwrap();
    let (mut delayed, mut skewed) = (0, 0);
    for seed in 0..6 {
        let run = run_world(&scenario, seed).unwrap();
        assert_eq!(run.error, None, "seed {seed}");
        let faults = run.world.nodes()[0].faults();
        delayed += faults.delayed;
        skewed += faults.timers_skewed;
        assert_eq!(run.world.replay_alone(0), Some(Ok(())), "seed {seed}: a.os");
        assert_eq!(
            run.world.replay_alone(1),
            None,
            "b.os's faults bypass its inputs"
        );
        // A journal carries inputs only, not the hook's answers: a.os is not written.
        let dir = tempfile::tempdir().unwrap();
        let written = run.world.write_journals(dir.path()).unwrap();
        assert!(written.is_empty(), "{written:?}");
    }
    assert!(
        delayed > 0 && skewed > 0,
        "the faults fired: {delayed}, {skewed}"
    );
}

#[test]
fn each_node_of_a_world_is_a_node_journal_that_replays_alone_to_its_trace_hash() {
    let dir = tempfile::tempdir().unwrap();
    let journals = dir.path().join("journals");
    let path = scenarios().join("partition.json");
    let run = sim()
        .args(["run", path.to_str().unwrap(), "--seed", "4", "--journal"])
        .arg(&journals)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{summary}");
    for node in ["a.os", "b.os"] {
        let hash = summary
            .lines()
            .find_map(|l| l.strip_prefix(&format!("node        {node}: ")))
            .and_then(|l| l.split("trace hash ").nth(1))
            .unwrap()
            .to_owned();
        let home = journals.join(node);
        assert!(summary.contains(&format!("replay: sim replay --journal {}", home.display())));
        let replay = sim()
            .arg("replay")
            .arg("--journal")
            .arg(&home)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&replay.stdout);
        assert!(replay.status.success(), "{out}");
        assert!(
            out.contains(&format!("trace hash  {hash}")),
            "{node}: {out}"
        );
        assert!(
            out.contains("matches     the live run's at its end"),
            "{out}"
        );
    }
    // A one-node scenario has no nodes to journal.
    let one = sim()
        .args(["run"])
        .arg(scenarios().join("../echo.json"))
        .arg("--journal")
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(one.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&one.stderr).contains("is not a world"));
}
