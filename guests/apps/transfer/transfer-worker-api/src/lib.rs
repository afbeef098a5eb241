//! The transfer app's worker API (kit's file-transfer shape): a crate that exports the
//! `transfer-worker` interface, which the app's main process imports; kit composes the two
//! with `wasm-tools compose` into one process. `start-download` spawns a worker from the
//! package's `transfer-worker.wasm`, answers the request the caller is handling, and sends the
//! worker its task.
use crate::exports::hyperware::process::transfer_worker::Guest;
use crate::hyperware::process::standard::Address as WitAddress;
use hyperware_process_lib::{Address, OnExit, Request, Response, our_capabilities, spawn};
use serde_json::json;

wit_bindgen::generate!({
    path: "../wit",
    world: "transfer-worker-api-v0",
    generate_unused_types: true,
});

fn address(wit: &WitAddress) -> Address {
    Address::new(
        &wit.node,
        (
            wit.process.process_name.as_str(),
            wit.process.package_name.as_str(),
            wit.process.publisher_node.as_str(),
        ),
    )
}

fn start(
    our: &WitAddress,
    source: &WitAddress,
    name: &str,
    target: &WitAddress,
    is_requestor: bool,
) -> Result<(), String> {
    let wasm = format!(
        "{}:{}/pkg/transfer-worker.wasm",
        our.process.package_name, our.process.publisher_node
    );
    let worker = spawn(None, &wasm, OnExit::None, our_capabilities(), vec![], false)
        .map_err(|e| format!("spawning a worker: {e:?}"))?;
    let worker = Address::new(&our.node, worker);
    Response::new()
        .body(json!({"Started": worker.to_string()}).to_string())
        .send()
        .map_err(|e| format!("answering: {e}"))?;
    let task = json!({"Task": {
        "name": name,
        "peer": address(if is_requestor { target } else { source }).to_string(),
        "is_requestor": is_requestor,
    }});
    Request::to(worker)
        .body(task.to_string())
        .send()
        .map_err(|e| format!("tasking the worker: {e}"))
}

struct Api;

impl Guest for Api {
    fn start_download(
        our: WitAddress,
        source: WitAddress,
        name: String,
        target: WitAddress,
        is_requestor: bool,
    ) -> Result<(), String> {
        start(&our, &source, &name, &target, is_requestor)
    }
}

export!(Api);
