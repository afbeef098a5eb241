//! The JSON compatibility surface (spec §1–§2): every shape is compared byte for byte with the
//! reference's serde output as the spec records it, and parsed back.

use crate::harness::{addr, pid};
use hyperkernel::{
    Capability, KernelCommand, KernelMessage, KernelPrint, KernelPrintResponse, KernelResponse,
    LazyLoadBlob, Message, OnExit, Request, Response, SendError, SendErrorKind,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Serializes `value` to exactly `json` and parses `json` back to `value`.
fn same<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, json: &str) {
    assert_eq!(serde_json::to_string(value).unwrap(), json);
    assert_eq!(&serde_json::from_str::<T>(json).unwrap(), value);
}

fn app() -> hyperkernel::Address {
    addr("alice.os@app:pkg:pub.os")
}

#[test]
fn messages_have_the_reference_shape() {
    let request = Request {
        inherit: false,
        expects_response: None,
        body: b"hi".to_vec(),
        metadata: None,
        capabilities: vec![(Capability::messaging(app()), vec![9, 9])],
    };
    same(
        &Message::Request(request.clone()),
        r#"{"Request":{"inherit":false,"expects_response":null,"body":[104,105],"metadata":null,"capabilities":[[{"issuer":"alice.os@app:pkg:pub.os","params":"\"messaging\""},[9,9]]]}}"#,
    );
    let response = Response {
        inherit: false,
        body: vec![],
        metadata: Some("{}".into()),
        capabilities: vec![],
    };
    same(
        &Message::Response((response, Some(vec![7]))),
        r#"{"Response":[{"inherit":false,"body":[],"metadata":"{}","capabilities":[]},[7]]}"#,
    );
    same(
        &LazyLoadBlob {
            mime: None,
            bytes: vec![1, 2],
        },
        r#"{"mime":null,"bytes":[1,2]}"#,
    );
    let message = KernelMessage {
        id: 7,
        source: app(),
        target: addr("alice.os@kernel:distro:sys"),
        rsvp: None,
        message: Message::Request(Request::new(vec![])),
        lazy_load_blob: None,
    };
    same(
        &message,
        r#"{"id":7,"source":"alice.os@app:pkg:pub.os","target":"alice.os@kernel:distro:sys","rsvp":null,"message":{"Request":{"inherit":false,"expects_response":null,"body":[],"metadata":null,"capabilities":[]}},"lazy_load_blob":null}"#,
    );
}

#[test]
fn on_exit_and_send_error_have_the_reference_shape() {
    same(&OnExit::None, r#""None""#);
    same(&OnExit::Restart, r#""Restart""#);
    let requests = OnExit::Requests(vec![(
        app(),
        Request::new(b"hi".to_vec()),
        Some(LazyLoadBlob {
            mime: None,
            bytes: vec![1, 2],
        }),
    )]);
    same(
        &requests,
        r#"{"Requests":[["alice.os@app:pkg:pub.os",{"inherit":false,"expects_response":null,"body":[104,105],"metadata":null,"capabilities":[]},{"mime":null,"bytes":[1,2]}]]}"#,
    );
    same(&SendErrorKind::Offline, r#""Offline""#);
    let error = SendError {
        kind: SendErrorKind::Timeout,
        target: app(),
        message: Message::Request(Request::new(vec![])),
        lazy_load_blob: None,
    };
    same(
        &error,
        r#"{"kind":"Timeout","target":"alice.os@app:pkg:pub.os","message":{"Request":{"inherit":false,"expects_response":null,"body":[],"metadata":null,"capabilities":[]}},"lazy_load_blob":null}"#,
    );
}

#[test]
fn commands_have_the_reference_shape() {
    same(&KernelCommand::Booted, r#""Booted""#);
    same(&KernelCommand::Shutdown, r#""Shutdown""#);
    let init = KernelCommand::InitializeProcess {
        id: pid("app:pkg:pub.os"),
        wasm_bytes_handle: "/pkg:pub.os/pkg/app.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::Restart,
        initial_capabilities: vec![Capability::messaging(app())],
        public: false,
    };
    same(
        &init,
        r#"{"InitializeProcess":{"id":"app:pkg:pub.os","wasm_bytes_handle":"/pkg:pub.os/pkg/app.wasm","wit_version":1,"on_exit":"Restart","initial_capabilities":[{"issuer":"alice.os@app:pkg:pub.os","params":"\"messaging\""}],"public":false}}"#,
    );
    let grant = KernelCommand::GrantCapabilities {
        target: pid("app:pkg:pub.os"),
        capabilities: vec![Capability::network("alice.os")],
    };
    same(
        &grant,
        r#"{"GrantCapabilities":{"target":"app:pkg:pub.os","capabilities":[{"issuer":"alice.os@kernel:distro:sys","params":"\"network\""}]}}"#,
    );
    let drop = KernelCommand::DropCapabilities {
        target: pid("app:pkg:pub.os"),
        capabilities: vec![],
    };
    same(
        &drop,
        r#"{"DropCapabilities":{"target":"app:pkg:pub.os","capabilities":[]}}"#,
    );
    same(
        &KernelCommand::SetOnExit {
            target: pid("app:pkg:pub.os"),
            on_exit: OnExit::None,
        },
        r#"{"SetOnExit":{"target":"app:pkg:pub.os","on_exit":"None"}}"#,
    );
    same(
        &KernelCommand::RunProcess(pid("app:pkg:pub.os")),
        r#"{"RunProcess":"app:pkg:pub.os"}"#,
    );
    same(
        &KernelCommand::KillProcess(pid("app:pkg:pub.os")),
        r#"{"KillProcess":"app:pkg:pub.os"}"#,
    );
    same(
        &KernelCommand::Debug(KernelPrint::ProcessMap),
        r#"{"Debug":"ProcessMap"}"#,
    );
    same(
        &KernelCommand::Debug(KernelPrint::Process(pid("app:pkg:pub.os"))),
        r#"{"Debug":{"Process":"app:pkg:pub.os"}}"#,
    );
    same(
        &KernelCommand::Debug(KernelPrint::HasCap {
            on: pid("app:pkg:pub.os"),
            cap: Capability::new(app(), "1"),
        }),
        r#"{"Debug":{"HasCap":{"on":"app:pkg:pub.os","cap":{"issuer":"alice.os@app:pkg:pub.os","params":"1"}}}}"#,
    );
}

#[test]
fn responses_have_the_reference_shape() {
    same(
        &KernelResponse::InitializedProcess,
        r#""InitializedProcess""#,
    );
    same(
        &KernelResponse::InitializeProcessError,
        r#""InitializeProcessError""#,
    );
    same(&KernelResponse::StartedProcess, r#""StartedProcess""#);
    same(&KernelResponse::RunProcessError, r#""RunProcessError""#);
    same(
        &KernelResponse::KilledProcess(pid("app:pkg:pub.os")),
        r#"{"KilledProcess":"app:pkg:pub.os"}"#,
    );
    same(
        &KernelResponse::Debug(KernelPrintResponse::HasCap(None)),
        r#"{"Debug":{"HasCap":null}}"#,
    );
    same(
        &KernelResponse::Debug(KernelPrintResponse::Process(None)),
        r#"{"Debug":{"Process":null}}"#,
    );
}

#[test]
fn legacy_on_panic_field_and_missing_wit_version_are_accepted() {
    let legacy = r#"{"InitializeProcess":{"id":"app:pkg:pub.os","wasm_bytes_handle":"/a.wasm","on_panic":"Restart","initial_capabilities":[],"public":true}}"#;
    let command: KernelCommand = serde_json::from_str(legacy).unwrap();
    let KernelCommand::InitializeProcess {
        on_exit,
        wit_version,
        public,
        ..
    } = command
    else {
        panic!("parsed as the wrong command: {command:?}");
    };
    assert_eq!(on_exit, OnExit::Restart);
    assert_eq!(wit_version, None);
    assert!(public);
}

#[test]
fn malformed_ids_are_errors_not_panics() {
    for bad in [
        r#"{"RunProcess":"a:b"}"#,
        r#"{"RunProcess":"a:b:c:d"}"#,
        r#"{"KillProcess":7}"#,
        r#"{"RunProcess":"a::c"}"#,
    ] {
        assert!(serde_json::from_str::<KernelCommand>(bad).is_err(), "{bad}");
    }
    assert!(serde_json::from_str::<hyperkernel::Address>(r#""x@y@a:b:c""#).is_err());
}
