//! `spawn` from a real guest (the probe): children, their capabilities, and the errors.

use super::guest;
use crate::harness::{World, messaging, pid};
use hyperkernel::{Event, OnExit, ProcessId, Request};
use serde_json::{Value, json};

use super::PROBE;
const ECHO_PATH: &str = "/test:our.os/pkg/echo.wasm";

fn world() -> (World, ProcessId) {
    let mut world = World::new(3);
    world
        .kernel
        .harness()
        .vfs_write(ECHO_PATH, &guest("echo"))
        .unwrap();
    let caps = vec![messaging("tester:tester:sys")];
    let probe = world.spawn_code("probe", &guest("probe"), "probe", OnExit::None, caps, true);
    (world, probe)
}

fn probe(world: &mut World, command: &str) -> Value {
    super::ask_probe(world, command, None)
}

#[test]
fn a_spawned_child_runs_with_the_capabilities_spawn_gives() {
    let (mut world, parent) = world();
    assert_eq!(
        probe(&mut world, &format!("spawn kid {ECHO_PATH}")),
        json!("ok kid:test:our.os")
    );
    let kid = pid("kid:test:our.os");
    assert!(world.kernel.has_process(&kid));
    let caps = world.kernel.capabilities();
    assert!(
        caps.has_messaging(&kid, &parent),
        "child may message its parent"
    );
    assert!(
        caps.has_messaging(&parent, &kid),
        "parent may message its child"
    );
    assert!(
        caps.has_messaging(&kid, &world.client),
        "a requested capability the parent holds"
    );
    let granted = world.kernel.capabilities_of(&world.client);
    assert!(
        granted
            .iter()
            .any(|c| c.issuer.process == kid && c.params == "{\"granted\":true}"),
        "{granted:?}"
    );
    // The child is running: the parent can talk to it.
    let answer = probe(&mut world, "await our.os@kid:test:our.os hi");
    assert_eq!(answer, json!("ok our.os@kid:test:our.os hi"));
}

#[test]
fn spawning_over_a_live_name_is_name_taken() {
    let (mut world, _) = world();
    probe(&mut world, &format!("spawn kid {ECHO_PATH}"));
    // W8: the reference returns Ok(existing id) and sends the live process a stray `run`.
    assert_eq!(
        probe(&mut world, &format!("spawn kid {ECHO_PATH}")),
        json!("err name-taken")
    );
    let started = world.kernel.trace().records().iter().filter(
        |r| matches!(&r.event, Event::Started { process } if process.as_str() == "kid:test:our.os"),
    );
    assert_eq!(started.count(), 1, "started once");
}

#[test]
fn only_files_in_the_parents_drive_can_be_spawned() {
    let (mut world, _) = world();
    world
        .kernel
        .harness()
        .vfs_write("/other:our.os/pkg/echo.wasm", &guest("echo"))
        .unwrap();
    world
        .kernel
        .harness()
        .vfs_write("/test:our.os/pkg/junk.wasm", b"\0asm junk")
        .unwrap();
    for path in [
        "/other:our.os/pkg/echo.wasm",
        "/test:our.os/pkg/missing.wasm",
        "/test:our.os/pkg/junk.wasm",
    ] {
        let answer = probe(&mut world, &format!("spawn kid {path}"));
        assert_eq!(answer, json!("err no-file-at-path"), "{path}");
    }
    assert!(!world.kernel.has_process(&pid("kid:test:our.os")));
}

#[test]
fn an_unnamed_child_gets_a_fresh_number_and_the_same_one_for_the_same_seed() {
    let name = |_: ()| {
        let (mut world, _) = world();
        probe(&mut world, &format!("spawn - {ECHO_PATH}"))
    };
    let first = name(());
    let text = first.as_str().unwrap();
    let id = text.strip_prefix("ok ").unwrap();
    let number = id.strip_suffix(":test:our.os").unwrap();
    assert!(number.parse::<u64>().is_ok(), "{id}");
    assert_eq!(name(()), first);
}

#[test]
fn an_invalid_child_name_traps_the_parent() {
    let (mut world, parent) = world();
    let client = world.client.clone();
    let request = Request::new(format!("spawn Bad!Name {ECHO_PATH}"));
    world
        .kernel
        .harness()
        .send_as(&client, PROBE.parse().unwrap(), request, None, None)
        .unwrap();
    world.settle();
    assert!(!world.kernel.has_process(&parent));
}
