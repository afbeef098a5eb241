//! The scenario sections that serve apps, on the example guests (no app build needed):
//! `initialize_first` orders setup, `expect` fails a seed when the app misbehaves, and
//! `trace_bodies` puts message bodies in the trace.

#![allow(clippy::unwrap_used, reason = "test code")]

use hyperkernel::Event;
use hyperkernel_sim::node::scenario::Scenario;
use hyperkernel_sim::run::{Options, RunError, run};
use serde_json::{Value, json};
use std::path::Path;

fn scenario(extra: Value) -> Scenario {
    let mut file = json!({
        "version": 1,
        "node": "sim.os",
        "processes": [
            { "id": "client:sim:sim.os", "driven": true, "public": true },
            { "id": "echo:sim:sim.os", "guest": "echo", "public": true },
            { "id": "counter:sim:sim.os", "guest": "counter", "public": true },
        ],
        "workload": [
            { "at_ms": 1, "from": "client:sim:sim.os",
              "send": { "to": "sim.os@echo:sim:sim.os", "body": "{\"hello\": [1, 2]}", "expects_response": 5 } },
            { "at_ms": 2, "from": "client:sim:sim.os",
              "send": { "to": "sim.os@counter:sim:sim.os", "body": "inc", "expects_response": 5 } },
        ],
        "run_for_ms": 100
    });
    for (key, value) in extra.as_object().unwrap() {
        file[key] = value.clone();
    }
    Scenario::parse(Path::new("apps-test.json"), &file.to_string()).unwrap()
}

/// The processes of `kind` events (`Initialized` or `Started`) of the scenario's guests, in
/// trace order, with their positions.
fn setup_order(kernel: &hyperkernel::Kernel) -> Vec<(usize, String)> {
    let records = kernel.trace().records();
    records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.event {
            Event::Initialized { process, .. } if process.package() == "sim" => {
                Some((i, format!("init {process}")))
            }
            Event::Started { process } if process.package() == "sim" => {
                Some((i, format!("run {process}")))
            }
            _ => None,
        })
        .map(|(i, what)| (i, what.replace(":sim:sim.os", "")))
        .collect()
}

#[test]
fn initialize_first_initializes_every_process_before_running_any_in_order() {
    let each = run(&scenario(json!({})), 1, Options::default()).unwrap();
    let order: Vec<String> = setup_order(&each.kernel)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    // The driven client is registered, not run: it starts at once either way.
    let client = ["init client", "run client"];
    assert_eq!(order[..2], client);
    let rest = ["init echo", "run echo", "init counter", "run counter"];
    assert_eq!(order[2..], rest);
    let first = run(
        &scenario(json!({"initialize_first": true})),
        1,
        Options::default(),
    )
    .unwrap();
    assert!(first.error.is_none(), "{:?}", first.error);
    let order: Vec<String> = setup_order(&first.kernel)
        .into_iter()
        .map(|(_, w)| w)
        .collect();
    assert_eq!(order[..2], client);
    let rest = ["init echo", "init counter", "run echo", "run counter"];
    assert_eq!(order[2..], rest);
}

#[test]
fn expectations_fail_a_seed_that_misbehaves_and_say_what_was_missing() {
    let met = json!({"expect": {
        "output": [{ "process": "echo:sim:sim.os", "matches": "PANIC", "absent": true }],
        "running": ["echo:sim:sim.os", "counter:sim:sim.os"],
    }});
    let ok = run(&scenario(met), 1, Options::default()).unwrap();
    assert!(ok.error.is_none(), "{:?}", ok.error);
    let unmet = json!({"expect": {
        "output": [{ "process": "counter:sim:sim.os", "matches": "^never printed$" }],
        "exited": ["echo:sim:sim.os"],
    }});
    let failed = run(&scenario(unmet), 1, Options::default()).unwrap();
    let Some(RunError::Expect { unmet }) = failed.error else {
        panic!("expected an unmet expectation, got {:?}", failed.error);
    };
    assert_eq!(
        unmet,
        [
            "counter:sim:sim.os printed no line matching /^never printed$/",
            "echo:sim:sim.os has not exited by the end",
        ]
    );
}

#[test]
fn a_bad_expectation_is_refused_when_the_scenario_is_read() {
    let mut file = serde_json::to_value(&scenario(json!({})).file).unwrap();
    file["expect"] = json!({"output": [{ "process": "echo:sim:sim.os", "matches": "(unclosed" }]});
    let error = Scenario::parse(Path::new("bad.json"), &file.to_string()).unwrap_err();
    assert_eq!(error.place, "expect.output[0].matches");
    file["expect"] = json!({"running": ["not a process"]});
    let error = Scenario::parse(Path::new("bad.json"), &file.to_string()).unwrap_err();
    assert_eq!(error.place, "expect.running[0]");
}

#[test]
fn trace_bodies_records_each_body_after_its_send() {
    let plain = run(&scenario(json!({})), 1, Options::default()).unwrap();
    let traced = run(
        &scenario(json!({"trace_bodies": true})),
        1,
        Options::default(),
    )
    .unwrap();
    let bodies: Vec<(u64, String)> = traced
        .kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Body { id, body } => Some((*id, body.clone())),
            _ => None,
        })
        .collect();
    assert!(
        bodies.iter().any(|(_, b)| b == r#"{"hello":[1,2]}"#),
        "JSON, compact: {bodies:?}"
    );
    assert!(
        bodies.iter().any(|(_, b)| b == "inc"),
        "text as it is: {bodies:?}"
    );
    let plain_bodies = plain
        .kernel
        .trace()
        .records()
        .iter()
        .filter(|r| matches!(r.event, Event::Body { .. }))
        .count();
    assert_eq!(plain_bodies, 0, "off by default");
    // Each body follows its message's Sent event.
    let records = traced.kernel.trace().records();
    for (i, record) in records.iter().enumerate() {
        if let Event::Body { id, .. } = &record.event {
            assert!(matches!(&records[i - 1].event, Event::Sent { id: sent, .. } if sent == id));
        }
    }
}
