//! WASM processes end to end: real guests from `guests/`, run by the kernel on wasmi.

mod guests;
mod host;
mod lifecycle;
mod loading;
mod spawn;

pub use guests::guest;

use crate::harness::World;
use hyperkernel::{LazyLoadBlob, Request};
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
        .send_as(&client, PROBE.parse().unwrap(), request, None, blob)
        .unwrap();
    world.settle();
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{command}: {replies:#?}");
    replies[0]["body"].clone()
}
