//! Files: named notes kept in a vfs drive of its own (`/files:example.os/notes`).
//!
//! Requests (JSON): `{"Put": {"name": N, "text": T}}` writes the note and answers `"Ok"`;
//! `{"Get": N}` answers `{"Text": T}` or `{"Error": why}`; `"List"` answers `{"Names": [...]}`.
use hyperware_process_lib::vfs::{self, create_drive, open_dir, open_file};
use hyperware_process_lib::{Address, Message, Response, await_message, call_init};
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../../../wit",
    world: "process-v1",
});

fn handle(drive: &str, body: &[u8]) -> Value {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Some(put) = request.get("Put") {
        let (Some(name), Some(text)) = (put["name"].as_str(), put["text"].as_str()) else {
            return json!({"Error": "Put needs a name and a text"});
        };
        let written = open_file(&format!("{drive}/{name}"), true, None)
            .and_then(|f| f.write(text.as_bytes()));
        return match written {
            Ok(()) => json!("Ok"),
            Err(e) => json!({"Error": e.to_string()}),
        };
    }
    if let Some(name) = request.get("Get").and_then(Value::as_str) {
        return match open_file(&format!("{drive}/{name}"), false, None)
            .and_then(|f| f.read_to_string())
        {
            Ok(text) => json!({"Text": text}),
            Err(e) => json!({"Error": e.to_string()}),
        };
    }
    if request == json!("List") {
        return match open_dir(drive, false, None).and_then(|d| d.read()) {
            Ok(entries) => {
                let names: Vec<String> = entries
                    .into_iter()
                    .filter(|e| e.file_type == vfs::FileType::File)
                    .filter_map(|e| e.path.rsplit('/').next().map(str::to_owned))
                    .collect();
                json!({"Names": names})
            }
            Err(e) => json!({"Error": e.to_string()}),
        };
    }
    json!({"Error": format!("unknown request {request}")})
}

call_init!(init);
fn init(our: Address) {
    let drive = match create_drive(our.package_id(), "notes", None) {
        Ok(drive) => drive,
        Err(e) => panic!("files: cannot create its drive: {e}"),
    };
    hyperware_process_lib::println!("files: serving {drive}");
    loop {
        let Ok(message) = await_message() else {
            continue;
        };
        if let Message::Request { body, .. } = &message {
            let answer = handle(&drive, body);
            let _ = Response::new().body(answer.to_string()).send();
        }
    }
}
