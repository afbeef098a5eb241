//! The files app's tests, in the reference's tester protocol: notes written through the app
//! read back through it and straight from the vfs (with the drive's read capability from the
//! manifest), and a direct write to the app's drive is refused without its write capability.
use hyperware_process_lib::vfs::{
    File, VfsAction, VfsError, VfsResponse, parse_response, vfs_request,
};
use hyperware_process_lib::{Address, Message, Request, Response, await_message, call_init};
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

struct Failed {
    line: u32,
    column: u32,
    what: String,
}

macro_rules! check {
    ($condition:expr, $($what:tt)*) => {
        if !$condition {
            return Err(Failed { line: line!(), column: column!(), what: format!($($what)*) });
        }
    };
}

fn ask(our: &Address, body: Value) -> Result<Value, Failed> {
    let files = Address::new(our.node(), ("files", "files", "example.os"));
    match Request::to(files)
        .body(body.to_string())
        .send_and_await_response(5)
    {
        Ok(Ok(message)) => Ok(serde_json::from_slice(message.body()).unwrap_or(Value::Null)),
        _ => Err(Failed {
            line: line!(),
            column: column!(),
            what: format!("no answer to {body}"),
        }),
    }
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
    loop {
        let Ok(message) = await_message() else {
            continue;
        };
        let Message::Request { source, .. } = &message else {
            continue;
        };
        if source.node() != our.node() {
            continue;
        }
        match run(&our) {
            Ok(()) => {
                let _ = Response::new()
                    .body(json!({"Run": {"Ok": null}}).to_string())
                    .send();
            }
            Err(failed) => {
                let err = json!({"Run": {"Err": {
                    "test": "files-test", "file": file!(), "line": failed.line, "column": failed.column,
                }}});
                let _ = Response::new().body(err.to_string()).send();
                panic!("files-test: {}", failed.what);
            }
        }
    }
}
