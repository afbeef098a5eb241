//! The files app's tests, in the reference's tester protocol (`tester-protocol`): notes
//! written through the app read back through it and straight from the vfs (with the drive's
//! read capability from the manifest), and a direct write to the app's drive is refused
//! without its write capability.
use hyperware_process_lib::vfs::{
    File, VfsAction, VfsError, VfsResponse, parse_response, vfs_request,
};
use hyperware_process_lib::{Address, call_init};
use serde_json::{Value, json};
use tester_protocol::{Failed, check};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

#[track_caller]
fn ask(our: &Address, body: Value) -> Result<Value, Failed> {
    let files = Address::new(our.node(), ("files", "files", "example.os"));
    tester_protocol::ask(&files, &body, 5)
}

fn run(our: &Address) -> Result<(), Failed> {
    check!(
        ask(our, json!({"Put": {"name": "a", "text": "first"}}))? == json!("Ok"),
        "Put a"
    );
    check!(
        ask(our, json!({"Put": {"name": "b", "text": "second"}}))? == json!("Ok"),
        "Put b"
    );
    let got = ask(our, json!({"Get": "a"}))?;
    check!(got == json!({"Text": "first"}), "Get a answered {got}");
    let listed = ask(our, json!("List"))?;
    check!(
        listed == json!({"Names": ["a", "b"]}),
        "List answered {listed}"
    );
    let missing = ask(our, json!({"Get": "nope"}))?;
    check!(
        missing.get("Error").is_some(),
        "Get of a missing note answered {missing}"
    );
    // Straight from the vfs: the manifest's read capability lets us read the app's drive (a
    // Read; opening the file would be a write, as in the reference).
    let direct = File::new("/files:example.os/notes/b", 5).read();
    check!(
        direct.as_deref().ok() == Some(&b"second"[..]),
        "a direct read gave {direct:?}"
    );
    // But not write it.
    let write = vfs_request("/files:example.os/notes/b", VfsAction::Write)
        .blob_bytes(b"overwritten".to_vec())
        .send_and_await_response(5);
    let refused = match write {
        Ok(Ok(message)) => matches!(
            parse_response(message.body()),
            Ok(VfsResponse::Err(VfsError::NoWriteCap))
        ),
        _ => false,
    };
    check!(
        refused,
        "a direct write to the app's drive was not refused with NoWriteCap"
    );
    Ok(())
}

call_init!(init);
fn init(our: Address) {
    tester_protocol::serve(&our, "files-test", run);
}
