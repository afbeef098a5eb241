//! Conformance of every `KernelCommand` (spec §2) and every error path, with the kernel's
//! replies pinned as insta snapshots. Method: a driven client holding the kernel capability
//! sends each command, the kernel runs until idle, and the client's mailbox is rendered.

use crate::check;
use crate::harness::{World, init_command, messaging, pid};
use hyperkernel::{Capability, KernelCommand, KernelPrint, OnExit, RunState};
use serde_json::json;

#[test]
fn initialize_process_answers_and_registers_without_running() {
    let mut world = World::new(1);
    let (command, blob) = init_command(
        "app:test:our.os",
        "echo",
        vec![messaging("kernel:distro:sys")],
    );
    world.command_with_blob(&command, Some(5), blob);
    check!("initialize_ok", world.replies());
    assert_eq!(
        world.kernel.run_state(&pid("app:test:our.os")),
        Some(RunState::PreBoot)
    );
    // The initializer can now message the new process.
    assert!(
        world
            .kernel
            .capabilities()
            .has_messaging(&world.client, &pid("app:test:our.os"))
    );
}

#[test]
fn initialize_process_drops_capabilities_the_requester_lacks_and_says_which() {
    let mut world = World::new(1);
    let (command, blob) = init_command(
        "app:test:our.os",
        "echo",
        vec![
            messaging("kernel:distro:sys"),
            Capability::network("our.os"),
        ],
    );
    world.command_with_blob(&command, Some(5), blob);
    check!("initialize_drops_unheld", world.replies());
    let caps = world.kernel.capabilities_of(&pid("app:test:our.os"));
    assert!(caps.contains(&messaging("kernel:distro:sys")));
    assert!(
        !caps.contains(&Capability::network("our.os")),
        "the client lacks the network cap"
    );
}

#[test]
fn initialize_process_error_paths() {
    let mut world = World::new(1);
    let (command, _) = init_command("app:test:our.os", "echo", vec![]);
    world.command(&command, Some(5));
    let (bad_id, blob) = init_command("App:test:our.os", "echo", vec![]);
    world.command_with_blob(&bad_id, Some(5), blob);
    let (bad_cap, blob) = init_command(
        "app:test:our.os",
        "echo",
        vec![Capability::new("our.os@x:y:z".parse().unwrap(), "not json")],
    );
    world.command_with_blob(&bad_cap, Some(5), blob);
    let (bad_code, blob) = init_command("app:test:our.os", "no-such-code", vec![]);
    world.command_with_blob(&bad_code, Some(5), blob);
    let (ok, blob) = init_command("app:test:our.os", "echo", vec![]);
    world.command_with_blob(&ok, Some(5), blob.clone());
    world.command_with_blob(&ok, Some(5), blob);
    check!("initialize_errors", world.replies());
    assert_eq!(
        world.kernel.process_ids().len(),
        4,
        "kernel, timer, client and one app"
    );
}

#[test]
fn run_process_starts_once_and_reports_errors() {
    let mut world = World::new(1);
    let (command, blob) = init_command("app:test:our.os", "echo", vec![]);
    world.command_with_blob(&command, Some(5), blob);
    world.command(&KernelCommand::RunProcess(pid("app:test:our.os")), Some(5));
    world.command(&KernelCommand::RunProcess(pid("app:test:our.os")), Some(5));
    world.command(&KernelCommand::RunProcess(pid("nope:test:our.os")), Some(5));
    world.command(
        &KernelCommand::RunProcess(pid("kernel:distro:sys")),
        Some(5),
    );
    check!("run_process", world.replies());
    assert_eq!(
        world.kernel.run_state(&pid("app:test:our.os")),
        Some(RunState::Receiving)
    );
}

#[test]
fn kill_process_answers_only_when_expected_and_reports_unknown_ids() {
    let mut world = World::new(1);
    let a = world.spawn("a", "echo", OnExit::None, vec![], false);
    let b = world.spawn("b", "echo", OnExit::None, vec![], false);
    world.command(&KernelCommand::KillProcess(a.clone()), Some(5));
    world.command(&KernelCommand::KillProcess(b.clone()), None);
    world.command(&KernelCommand::KillProcess(a.clone()), Some(5));
    world.command(
        &KernelCommand::KillProcess(pid("kernel:distro:sys")),
        Some(5),
    );
    world.command(&KernelCommand::KillProcess(pid("ghost:test:our.os")), None);
    check!("kill_process", world.replies());
    assert!(!world.kernel.has_process(&a));
    assert!(!world.kernel.has_process(&b));
}

#[test]
fn grant_and_drop_capabilities_answer_only_when_expected() {
    let mut world = World::new(1);
    let app = world.spawn("app", "echo", OnExit::None, vec![], false);
    let network = Capability::network("our.os");
    let grant = KernelCommand::GrantCapabilities {
        target: app.clone(),
        capabilities: vec![network.clone()],
    };
    world.command(&grant, None);
    assert!(world.kernel.capabilities().has_network(&app));
    world.command(&grant, Some(5));
    let drop = KernelCommand::DropCapabilities {
        target: app.clone(),
        capabilities: vec![network],
    };
    world.command(&drop, Some(5));
    assert!(!world.kernel.capabilities().has_network(&app));
    let ghost = KernelCommand::GrantCapabilities {
        target: pid("ghost:test:our.os"),
        capabilities: vec![],
    };
    world.command(&ghost, Some(5));
    let bad = Capability::new("our.os@x:y:z".parse().unwrap(), "{oops");
    let invalid = KernelCommand::DropCapabilities {
        target: app.clone(),
        capabilities: vec![bad],
    };
    world.command(&invalid, Some(5));
    check!("grant_drop", world.replies());
}

#[test]
fn set_on_exit_changes_the_running_behaviour() {
    let mut world = World::new(1);
    let app = world.spawn("app", "crash-on-message", OnExit::None, vec![], true);
    world.command(
        &KernelCommand::SetOnExit {
            target: app.clone(),
            on_exit: OnExit::Restart,
        },
        Some(5),
    );
    world.command(
        &KernelCommand::SetOnExit {
            target: pid("ghost:test:our.os"),
            on_exit: OnExit::None,
        },
        Some(5),
    );
    check!("set_on_exit", world.replies());
    // Crash it: it restarts instead of vanishing (W10).
    let target = world.kernel.address_of(&app);
    world
        .kernel
        .harness()
        .send_as(
            &world.client.clone(),
            target,
            hyperkernel::Request::new("x"),
            None,
            None,
        )
        .unwrap();
    world.kernel.harness().run_until_idle();
    assert!(world.kernel.has_process(&app), "restarted after the crash");
    let debug = KernelCommand::Debug(KernelPrint::Process(app.clone()));
    world.command(&debug, Some(5));
    assert_eq!(
        world.replies()[0]["body"]["Debug"]["Process"]["on_exit"],
        json!("Restart")
    );
}

#[test]
fn debug_prints_the_process_map_and_answers_has_cap() {
    let mut world = World::new(1);
    let app = world.spawn("app", "echo", OnExit::Restart, vec![], true);
    world.command(&KernelCommand::Debug(KernelPrint::ProcessMap), None);
    world.command(
        &KernelCommand::Debug(KernelPrint::Process(app.clone())),
        None,
    );
    world.command(
        &KernelCommand::Debug(KernelPrint::Process(pid("ghost:test:our.os"))),
        None,
    );
    let has =
        |on: &str, cap: Capability| KernelCommand::Debug(KernelPrint::HasCap { on: pid(on), cap });
    world.command(&has("app:test:our.os", messaging("app:test:our.os")), None);
    world.command(&has("app:test:our.os", Capability::network("our.os")), None);
    world.command(
        &has("ghost:test:our.os", Capability::network("our.os")),
        None,
    );
    // Debug answers even without expects_response, but the client has no context for it,
    // so those replies are dropped on arrival, as in the reference.
    assert!(world.replies().is_empty());
    world.command(&KernelCommand::Debug(KernelPrint::ProcessMap), Some(5));
    world.command(
        &has("app:test:our.os", messaging("app:test:our.os")),
        Some(5),
    );
    world.command(
        &has("app:test:our.os", Capability::network("our.os")),
        Some(5),
    );
    world.command(
        &has("ghost:test:our.os", Capability::network("our.os")),
        Some(5),
    );
    check!("debug", world.replies());
}

#[test]
fn unparseable_commands_are_answered_with_the_reason() {
    let mut world = World::new(1);
    world.command_raw("{\"NoSuchCommand\":1}", Some(5));
    world.command_raw("not json at all", Some(5));
    world.command_raw("not json at all", None);
    check!("unparseable", world.replies());
}

#[test]
fn booted_runs_every_preboot_process_and_shutdown_stops_everything() {
    let mut world = World::new(1);
    for name in ["a:test:our.os", "b:test:our.os"] {
        let (command, blob) = init_command(name, "echo", vec![]);
        world.command_with_blob(&command, Some(5), blob);
    }
    world.replies();
    world.command(&KernelCommand::Booted, None);
    assert_eq!(
        world.kernel.run_state(&pid("a:test:our.os")),
        Some(RunState::Receiving)
    );
    assert_eq!(
        world.kernel.run_state(&pid("b:test:our.os")),
        Some(RunState::Receiving)
    );
    world.command(&KernelCommand::Shutdown, Some(5));
    assert!(world.kernel.is_shut_down());
    assert_eq!(world.kernel.process_ids(), vec![pid("kernel:distro:sys")]);
    assert!(
        world
            .kernel
            .harness()
            .command_as(&world.client.clone(), &KernelCommand::Booted, None, None)
            .is_err()
    );
}

#[test]
fn commands_from_a_process_without_the_kernel_capability_are_refused_with_a_timeout() {
    let mut world = World::new(1);
    let outsider = world.driven("outsider", &[], false);
    let id = world
        .kernel
        .harness()
        .command_as(
            &outsider,
            &KernelCommand::Debug(KernelPrint::ProcessMap),
            Some(5),
            None,
        )
        .unwrap();
    world.kernel.harness().run_until_idle();
    let received = world
        .kernel
        .harness()
        .receive_as(&outsider)
        .unwrap()
        .unwrap();
    let rendered = crate::harness::render(&received);
    assert_eq!(rendered["kind"], json!("SendError"));
    assert_eq!(rendered["error"], json!("Timeout"));
    assert_eq!(
        world.kernel.now().0,
        0,
        "refused at once, not after the timeout"
    );
    assert!(id != 0);
}
