//! Lifecycle conformance (spec §5): the pre-boot queue, on-exit None / Requests / Restart
//! with the reference backoff on the kernel clock, kill with and without revocation, and
//! `send-and-await-response`. Method: native test processes run under the kernel; the client
//! observes replies, and the trace shows exits and restarts.

use crate::harness::{World, init_command, messaging, pid};
use hyperkernel::{Event, ExitReason, KernelCommand, OnExit, Request, RunState, Timestamp};
use serde_json::json;

const SECOND: u64 = Timestamp::NANOS_PER_SECOND;

fn exits(world: &World) -> Vec<(String, String)> {
    world
        .kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Exited { process, reason } => Some((process.to_string(), format!("{reason:?}"))),
            _ => None,
        })
        .collect()
}

#[test]
fn messages_to_a_preboot_process_wait_in_order_until_it_runs() {
    let mut world = World::new(3);
    let (init, blob) = init_command(
        "echo:test:our.os",
        "echo",
        vec![messaging("tester:tester:sys")],
    );
    world.command_with_blob(&init, Some(5), blob);
    let client = world.client.clone();
    for n in 0..5 {
        world.send(
            &client,
            "our.os@echo:test:our.os",
            Request::new(n.to_string()).expecting(30),
            None,
        );
    }
    assert_eq!(world.kernel.mailbox_len(&pid("echo:test:our.os")), Some(5));
    world.command(&KernelCommand::RunProcess(pid("echo:test:our.os")), None);
    let bodies: Vec<_> = world.replies().iter().map(|r| r["body"].clone()).collect();
    assert_eq!(bodies[0], json!("InitializedProcess"));
    assert_eq!(
        bodies[1..],
        [json!(0), json!(1), json!(2), json!(3), json!(4)]
    );
}

#[test]
fn on_exit_none_removes_the_process_and_revokes_what_it_issued() {
    let mut world = World::new(3);
    let app = world.spawn("app", "returner", OnExit::None, vec![], false);
    // Spawn ran it: init returned at its first slice.
    assert!(!world.kernel.has_process(&app));
    assert!(
        !world
            .kernel
            .capabilities()
            .has_messaging(&world.client, &app),
        "revoked"
    );
    assert_eq!(
        exits(&world),
        vec![("app:test:our.os".into(), "Returned".into())]
    );
}

#[test]
fn on_exit_requests_are_sent_as_the_process_then_it_is_removed() {
    let mut world = World::new(3);
    let client_address = world.kernel.address_of(&world.client);
    let on_exit = OnExit::Requests(vec![
        (
            client_address.clone(),
            Request::new("first").expecting(9),
            None,
        ),
        (client_address, Request::new("second"), None),
    ]);
    let app = world.spawn("app", "crash", on_exit, vec![], false);
    assert!(!world.kernel.has_process(&app));
    let got = world.replies();
    let summary: Vec<_> = got
        .iter()
        .map(|r| (r["source"].clone(), r["body"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (json!("our.os@app:test:our.os"), json!("first")),
            (json!("our.os@app:test:our.os"), json!("second"))
        ]
    );
    assert_eq!(
        exits(&world),
        vec![("app:test:our.os".into(), "Failed(\"boom\")".into())]
    );
    assert_eq!(
        world.kernel.timers_pending(),
        0,
        "on-exit requests never expect responses"
    );
}

#[test]
fn restart_follows_the_backoff_on_the_kernel_clock_and_keeps_capabilities() {
    let mut world = World::new(3);
    let app = world.spawn(
        "app",
        "crash-on-message",
        OnExit::Restart,
        vec![messaging("tester:tester:sys")],
        false,
    );
    let client = world.client.clone();
    world.send(&client, "our.os@app:test:our.os", Request::new("die"), None);
    // It crashed within 5 s of starting, so it waits 2 s, absent from the table.
    assert!(!world.kernel.has_process(&app));
    let refused = world.send(
        &client,
        "our.os@app:test:our.os",
        Request::new("anyone?").expecting(1),
        None,
    );
    assert_eq!(world.replies()[0]["kind"], json!("SendError"));
    world.kernel.harness().run_until(Timestamp(2 * SECOND));
    world.settle();
    assert_eq!(world.kernel.run_state(&app), Some(RunState::Receiving));
    assert!(
        world
            .kernel
            .capabilities_of(&app)
            .contains(&messaging("tester:tester:sys"))
    );
    assert!(
        world.kernel.capabilities().has_messaging(&client, &app),
        "no-revoke on restart"
    );
    // Crash again at once: the wait doubles to 4 s.
    world.send(&client, "our.os@app:test:our.os", Request::new("die"), None);
    let scheduled: Vec<u64> = world
        .kernel
        .trace()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::RestartScheduled { at, .. } => Some((at.0 - r.at.0) / SECOND),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled, vec![2, 4]);
    assert!(refused != 0);
}

#[test]
fn killing_a_process_waiting_to_restart_cancels_the_restart() {
    let mut world = World::new(3);
    let app = world.spawn("app", "crash-on-message", OnExit::Restart, vec![], true);
    let client = world.client.clone();
    world.send(&client, "our.os@app:test:our.os", Request::new("die"), None);
    world.command(&KernelCommand::KillProcess(app.clone()), Some(5));
    assert_eq!(
        world.replies()[0]["body"],
        json!({"KilledProcess": "app:test:our.os"})
    );
    world.kernel.harness().run_until(Timestamp(700 * SECOND));
    assert!(!world.kernel.has_process(&app), "never resurrected (W4)");
    assert_eq!(world.kernel.timers_pending(), 0);
}

#[test]
fn kill_answers_queued_requests_at_once_and_no_revoke_keeps_issued_caps() {
    let mut world = World::new(3);
    let (init, blob) = init_command("app:test:our.os", "echo", vec![]);
    world.command_with_blob(&init, Some(5), blob);
    world.replies();
    let client = world.client.clone();
    world.send(
        &client,
        "our.os@app:test:our.os",
        Request::new("queued").expecting(30),
        Some("q"),
    );
    let mut kill = Request::new(
        serde_json::to_vec(&KernelCommand::KillProcess(pid("app:test:our.os"))).unwrap(),
    );
    kill.metadata = Some("no-revoke".into());
    world.send(&client, "our.os@kernel:distro:sys", kill, None);
    let got = world.replies();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["error"], json!("Timeout"));
    assert_eq!(got[0]["context"], json!("q"));
    assert_eq!(
        world.kernel.now(),
        Timestamp(0),
        "answered at once, not after 30 s"
    );
    assert!(
        world
            .kernel
            .capabilities()
            .has_messaging(&client, &pid("app:test:our.os")),
        "no-revoke"
    );
    assert_eq!(
        exits(&world),
        vec![(
            "app:test:our.os".into(),
            format!("{:?}", ExitReason::Killed)
        )]
    );
}

#[test]
fn await_delivers_only_the_awaited_answer_and_queues_the_rest() {
    let mut world = World::new(3);
    let echo = world.spawn("echo", "echo", OnExit::None, vec![], true);
    let awaiter = world.spawn("awaiter", "awaiter", OnExit::None, vec![], true);
    world.tell(&awaiter, "go:our.os@echo:test:our.os");
    world.tell(&awaiter, "queued");
    world.kernel.harness().run_until(Timestamp(0));
    let got: Vec<_> = world.replies().iter().map(|r| r["body"].clone()).collect();
    assert_eq!(
        got,
        vec![json!("awaited ping from our.os@echo:test:our.os")]
    );
    assert_eq!(world.kernel.run_state(&awaiter), Some(RunState::Receiving));
    assert!(world.kernel.has_process(&echo));
}

#[test]
fn await_of_a_missing_target_returns_the_send_error() {
    let mut world = World::new(3);
    let awaiter = world.spawn("awaiter", "awaiter", OnExit::None, vec![], true);
    world.tell(&awaiter, "go:our.os@ghost:test:our.os");
    world.settle();
    let got: Vec<_> = world.replies().iter().map(|r| r["body"].clone()).collect();
    assert_eq!(got, vec![json!("await failed: Timeout")]);
}
