//! Transfer: files between nodes, kit's file-transfer shape. Files live in the drive
//! `/transfer:example.os/files`. The process imports the `transfer-worker` interface, which
//! the `transfer-worker-api` crate exports (composed into this process as kit composes it), to
//! start a worker for each transfer.
//!
//! Requests (JSON): `{"Put": {"name": N, "text": T}}` writes a file and answers `"Ok"`;
//! `{"Read": N}` answers `{"Text": T}` or `{"Missing": why}`; from our node,
//! `{"Download": {"name": N, "from": NODE}}` starts a worker that fetches N from NODE's transfer
//! app (answered `{"Started": WORKER}`); from a requesting worker on another node,
//! `{"Serve": {"name": N, "to": WORKER}}` starts a worker that sends N to it; `{"Done": N}`
//! from our worker is printed.
use crate::hyperware::process::standard::{Address as WitAddress, ProcessId as WitProcessId};
use crate::hyperware::process::transfer_worker::start_download;
use hyperware_process_lib::vfs::{create_drive, open_file};
use hyperware_process_lib::{Address, Message, Response, await_message, call_init, println};
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../wit",
    world: "transfer-v0",
    generate_unused_types: true,
});

fn wit(address: &Address) -> WitAddress {
    WitAddress {
        node: address.node().to_string(),
        process: WitProcessId {
            process_name: address.process().to_string(),
            package_name: address.package().to_string(),
            publisher_node: address.publisher().to_string(),
        },
    }
}

fn answer(body: Value) {
    let _ = Response::new().body(body.to_string()).send();
}

/// Handles one request; the API answers the ones that start a worker.
fn handle(our: &Address, drive: &str, source: &Address, request: &Value) {
    if let Some(put) = request.get("Put") {
        let (Some(name), Some(text)) = (put["name"].as_str(), put["text"].as_str()) else {
            return answer(json!({"Missing": "Put needs a name and a text"}));
        };
        let written = open_file(&format!("{drive}/{name}"), true, None)
            .and_then(|file| file.write(text.as_bytes()));
        return answer(match written {
            Ok(()) => json!("Ok"),
            Err(e) => json!({"Missing": e.to_string()}),
        });
    }
    if let Some(name) = request.get("Read").and_then(Value::as_str) {
        let read = open_file(&format!("{drive}/{name}"), false, None)
            .and_then(|file| file.read_to_string());
        return answer(match read {
            Ok(text) => json!({"Text": text}),
            Err(e) => json!({"Missing": e.to_string()}),
        });
    }
    if let Some(download) = request
        .get("Download")
        .filter(|_| source.node() == our.node())
    {
        let (Some(name), Some(from)) = (download["name"].as_str(), download["from"].as_str())
        else {
            return answer(json!({"Missing": "Download needs a name and a node"}));
        };
        let target = Address::new(from, ("transfer", "transfer", "example.os"));
        if let Err(e) = start_download(&wit(our), &wit(our), name, &wit(&target), true) {
            answer(json!({"Failed": e}));
        }
        return;
    }
    if let Some(serve) = request.get("Serve") {
        let name = serve["name"].as_str().unwrap_or_default();
        let Some(to) = serve["to"].as_str().and_then(|t| t.parse::<Address>().ok()) else {
            return answer(json!({"Failed": "Serve needs a worker address"}));
        };
        if let Err(e) = start_download(&wit(our), &wit(&to), name, &wit(our), false) {
            answer(json!({"Failed": e}));
        }
        return;
    }
    if let Some(name) = request.get("Done").and_then(Value::as_str) {
        println!("transfer: {name} arrived");
        return;
    }
    answer(json!({"Failed": format!("unknown request {request}")}));
}

call_init!(init);
fn init(our: Address) {
    let drive = match create_drive(our.package_id(), "files", None) {
        Ok(drive) => drive,
        Err(e) => panic!("transfer: cannot create its drive: {e}"),
    };
    loop {
        let Ok(Message::Request { source, body, .. }) = await_message() else {
            continue;
        };
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        handle(&our, &drive, &source, &request);
    }
}
