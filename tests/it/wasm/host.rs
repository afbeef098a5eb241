//! Every host function from a real guest: the probe guest runs the function its request names
//! and answers with the result (`guests/probe`).

use crate::check;
use crate::harness::World;
use hyperkernel::{Event, ExitReason, ProcessId, Request};
use serde_json::{Value, json};

use super::PROBE;
const ECHO: &str = "our.os@echo:test:our.os";

fn world() -> (World, ProcessId) {
    super::probe_world(2)
}

fn probe(world: &mut World, command: &str, blob: Option<&str>) -> Value {
    super::ask_probe(world, command, blob)
}

#[test]
fn our_is_the_process_address() {
    let (mut world, _) = world();
    assert_eq!(probe(&mut world, "our", None), json!(PROBE));
}

#[test]
fn blob_functions_follow_the_last_delivered_message() {
    let (mut world, _) = world();
    assert_eq!(probe(&mut world, "has-blob", Some("one")), json!(true));
    assert_eq!(probe(&mut world, "has-blob", None), json!(false));
    assert_eq!(
        probe(&mut world, "get-blob", None),
        json!("none"),
        "no blob on this message"
    );
    assert_eq!(
        probe(&mut world, "last-blob", None),
        json!("Some(\"text/plain\"):one")
    );
    assert_eq!(
        probe(&mut world, "get-blob", Some("two")),
        json!("Some(\"text/plain\"):two")
    );
}

#[test]
fn the_blob_of_an_awaited_response_is_seen_after_a_message_without_one() {
    let (mut world, _) = world();
    // After this the host answers blob queries it knows in place, from a snapshot that every
    // delivery must renew: the awaited response (echo returns the blob) is such a delivery.
    assert_eq!(probe(&mut world, "has-blob", None), json!(false));
    assert_eq!(probe(&mut world, "get-blob", None), json!("none"));
    assert_eq!(
        probe(&mut world, &format!("await-get-blob {ECHO}"), None),
        json!("true Some(\"text/plain\"):payload")
    );
    assert_eq!(probe(&mut world, "has-blob", None), json!(false));
    assert_eq!(
        probe(&mut world, "last-blob", None),
        json!("Some(\"text/plain\"):payload")
    );
}

#[test]
fn save_keeps_only_capabilities_the_process_may_hold_and_drop_removes_them() {
    let (mut world, _) = world();
    let before = probe(&mut world, "caps", None);
    assert!(
        before.as_str().unwrap().contains("tester:tester:sys"),
        "{before}"
    );
    // W2: a capability it neither holds, received nor issued is not minted.
    let minted = probe(
        &mut world,
        "save our.os@kernel:distro:sys \"messaging\"",
        None,
    );
    assert_eq!(minted, before);
    // One it issues itself is kept, and can be dropped again.
    let own = probe(&mut world, &format!("save {PROBE} {{\"x\":1}}"), None);
    assert!(
        own.as_str()
            .unwrap()
            .contains(&format!("{PROBE} {{\"x\":1}}")),
        "{own}"
    );
    let dropped = probe(&mut world, &format!("drop {PROBE} {{\"x\":1}}"), None);
    assert_eq!(dropped, before);
}

#[test]
fn on_exit_is_one_value_for_the_guest_and_the_kernel() {
    let (mut world, probe_id) = world();
    assert_eq!(probe(&mut world, "on-exit", None), json!("none"));
    assert_eq!(
        probe(&mut world, "set-on-exit restart", None),
        json!("restart")
    );
    assert_eq!(probe(&mut world, "on-exit", None), json!("restart"));
    // W10: the kernel restarts it on exit, as the guest asked.
    probe_fails(&mut world, "await-self");
    let restarts = world.kernel.trace().records().iter().filter(
        |r| matches!(&r.event, Event::RestartScheduled { process, .. } if *process == probe_id),
    );
    assert_eq!(restarts.count(), 1);
}

#[test]
fn send_and_await_returns_the_response_or_the_error() {
    let (mut world, _) = world();
    assert_eq!(
        probe(&mut world, &format!("await {ECHO} hi"), None),
        json!(format!("ok {ECHO} hi"))
    );
    assert_eq!(
        probe(&mut world, "await our.os@nobody:test:our.os x", None),
        json!("err SendErrorKind::Timeout"),
        "refused at once by the kernel"
    );
}

/// Sends `command` and returns why the probe failed.
fn probe_fails(world: &mut World, command: &str) -> String {
    let client = world.client.clone();
    world
        .kernel
        .harness()
        .send_as(
            &client,
            PROBE.parse().unwrap(),
            Request::new(command),
            None,
            None,
        )
        .unwrap();
    world.settle();
    let records = world.kernel.trace().records();
    records
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::Exited {
                reason: ExitReason::Failed(reason),
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .expect("the probe failed")
}

#[test]
fn awaiting_yourself_is_a_trap_with_the_reason() {
    let (mut world, probe_id) = world();
    let reason = probe_fails(&mut world, "await-self");
    assert!(reason.contains("send-and-await-response"), "{reason}");
    assert!(!world.kernel.has_process(&probe_id));
}

#[test]
fn send_requests_sends_each_in_order() {
    let (mut world, _) = world();
    let a = world.driven("a", &[], true);
    let b = world.driven("b", &[], true);
    let targets = "our.os@a:test:our.os,our.os@b:test:our.os";
    assert_eq!(
        probe(&mut world, &format!("fanout {targets} hello"), None),
        json!("sent 2")
    );
    for driven in [a, b] {
        let got = world.received(&driven);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(
            (got[0]["source"].clone(), got[0]["body"].clone()),
            (json!(PROBE), json!("hello"))
        );
    }
}

#[test]
fn an_inheriting_forward_is_answered_straight_to_the_original_requester() {
    let (mut world, _) = world();
    let client = world.client.clone();
    let request = Request::new(format!("forward {ECHO}")).expecting(5);
    let context = Some(b"ctx".to_vec());
    world
        .kernel
        .harness()
        .send_as(&client, PROBE.parse().unwrap(), request, context, None)
        .unwrap();
    world.settle();
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["source"], json!(ECHO));
    assert_eq!(replies[0]["body"], json!("forwarded"));
    assert_eq!(replies[0]["context"], json!("ctx"));
}

#[test]
fn state_round_trips() {
    let (mut world, _) = world();
    assert_eq!(probe(&mut world, "state", None), json!("none"));
    assert_eq!(probe(&mut world, "set-state abc", None), json!("saved"));
    assert_eq!(probe(&mut world, "state", None), json!("abc"));
}

#[test]
fn the_trace_of_a_probe_session_is_pinned() {
    let (mut world, _) = world();
    for command in [
        "our",
        "caps",
        &format!("await {ECHO} hi"),
        "set-state s",
        "state",
    ] {
        probe(&mut world, command, None);
    }
    let events = crate::harness::trace_json(&world);
    check!("wasm_probe_trace", events);
}
