//! WASM processes end to end: real guests from `guests/`, run by the kernel on wasmi.

mod blobs;
mod guests;
mod host;
mod hostile;
mod lifecycle;
mod loading;
mod spawn;
mod wasi;

pub use guests::{guest, wasi_guest};

use crate::harness::{World, messaging};
use hyperkernel::{LazyLoadBlob, OnExit, ProcessId, Request};
use serde_json::Value;

/// The probe guest's address in the wasm tests.
pub const PROBE: &str = "our.os@probe:test:our.os";

/// Sends `command` (with a text `blob`) from the client to the probe guest, expecting an
/// answer; returns the answer's body.
pub fn ask_probe(world: &mut World, command: &str, blob: Option<&str>) -> Value {
    let client = world.client.clone();
    let blob = blob.map(|b| LazyLoadBlob {
        mime: Some("text/plain".into()),
        bytes: b.as_bytes().to_vec(),
    });
    let request = Request::new(command).expecting(5);
    world
        .kernel
        .harness()
        .send_as(&client, PROBE.parse().unwrap(), request, None, blob)
        .unwrap();
    world.settle();
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{command}: {replies:#?}");
    replies[0]["body"].clone()
}

/// A world with the echo guest (`our.os@echo:test:our.os`) and the probe guest (`PROBE`), both
/// public; returns it with the probe's id.
pub fn probe_world(seed: u64) -> (World, ProcessId) {
    let mut world = World::new(seed);
    let caps = vec![messaging("tester:tester:sys")];
    world.spawn_code(
        "echo",
        &guest("echo"),
        "echo",
        OnExit::None,
        caps.clone(),
        true,
    );
    let probe = world.spawn_code("probe", &guest("probe"), "probe", OnExit::None, caps, true);
    (world, probe)
}
