//! A transfer worker, spawned by the worker API for one file. Its task (JSON from its parent):
//! `{"Task": {"name": N, "peer": ADDRESS, "is_requestor": B}}`. A requesting worker asks the
//! peer (another node's transfer app) to serve N to it, takes the chunks (`{"Chunk": OFFSET}`
//! with the bytes as the blob, each answered `"Ack"`) until `{"End": SIZE}`, writes the file
//! into the package's drive and tells its parent `{"Done": N}`; a serving worker reads N and
//! sends it to the peer (a requesting worker) in chunks. Then it ends.
use hyperware_process_lib::vfs::open_file;
use hyperware_process_lib::{
    Address, Message, Request, Response, await_message, call_init, get_blob,
};
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "process-v1",
});

/// Bytes a chunk carries (small, so a file takes several messages).
const CHUNK: usize = 256;

fn serve(drive: &str, name: &str, peer: &Address) -> Result<(), String> {
    let bytes = open_file(&format!("{drive}/{name}"), false, None)
        .and_then(|file| file.read())
        .map_err(|e| e.to_string())?;
    for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
        let sent = Request::to(peer.clone())
            .body(json!({"Chunk": i * CHUNK}).to_string())
            .blob_bytes(chunk.to_vec())
            .send_and_await_response(5);
        if !matches!(sent, Ok(Ok(_))) {
            return Err(format!("chunk {i} was not taken"));
        }
    }
    Request::to(peer.clone())
        .body(json!({"End": bytes.len()}).to_string())
        .send()
        .map_err(|e| e.to_string())
}

fn fetch(our: &Address, drive: &str, name: &str, peer: &Address) -> Result<(), String> {
    let asked = Request::to(peer.clone())
        .body(json!({"Serve": {"name": name, "to": our.to_string()}}).to_string())
        .send_and_await_response(5);
    if !matches!(asked, Ok(Ok(_))) {
        return Err(format!("{peer} did not take the request"));
    }
    let mut bytes = Vec::new();
    loop {
        let Ok(Message::Request { body, .. }) = await_message() else {
            continue;
        };
        let message: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(offset) = message.get("Chunk").and_then(Value::as_u64) {
            let chunk = get_blob().map(|blob| blob.bytes).unwrap_or_default();
            if offset as usize != bytes.len() {
                return Err(format!("chunk at {offset} after {} bytes", bytes.len()));
            }
            bytes.extend_from_slice(&chunk);
            let _ = Response::new().body("\"Ack\"").send();
        } else if let Some(size) = message.get("End").and_then(Value::as_u64) {
            if size as usize != bytes.len() {
                return Err(format!("{} bytes of {size}", bytes.len()));
            }
            break;
        }
    }
    open_file(&format!("{drive}/{name}"), true, None)
        .and_then(|file| file.write(&bytes))
        .map_err(|e| e.to_string())
}

call_init!(init);
fn init(our: Address) {
    let Ok(Message::Request { body, .. }) = await_message() else {
        return;
    };
    let task: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let task = &task["Task"];
    let name = task["name"].as_str().unwrap_or_default().to_owned();
    let Some(peer) = task["peer"]
        .as_str()
        .and_then(|p| p.parse::<Address>().ok())
    else {
        return;
    };
    let drive = format!("/{}/files", our.package_id());
    let done = if task["is_requestor"].as_bool() == Some(true) {
        fetch(&our, &drive, &name, &peer)
    } else {
        serve(&drive, &name, &peer)
    };
    if let Err(why) = &done {
        hyperware_process_lib::println!("transfer-worker: {name}: {why}");
    }
    if done.is_ok() && task["is_requestor"].as_bool() == Some(true) {
        let parent = Address::new(our.node(), ("transfer", "transfer", "example.os"));
        let _ = Request::to(parent)
            .body(json!({"Done": name}).to_string())
            .send();
    }
}
