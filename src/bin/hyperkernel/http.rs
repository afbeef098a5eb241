//! The reference's HTTP message door: `POST /rpc:distro:sys/message` with its JSON (`node`,
//! `process`, `inherit`, `expects_response`, `body`, `metadata`, `context`, `mime`, `data` as
//! base64), as `kit inject-message` sends it, answered with its reply shape: 200 and
//! `{"body": [bytes], "lazy_load_blob": null | {"mime", "bytes": [bytes of the base64 text]}}`
//! for a request that expects a response, 200 and an empty body at once for one that does not,
//! 408 when the answer does not come in time. We add a reason to every refusal: a malformed
//! body is a 400 with it (the reference sends an empty 400), another path a 404, another
//! method a 405. It listens on 127.0.0.1 only unless told otherwise.
//!
//! The connections are `httpd`'s (bounded in number, bytes and time); each request waits for
//! its answer on its own connection's thread, and the kernel stays on the loop's thread.

use crate::httpd::{HttpRequest, HttpResponse, Limits};
use base64::Engine;
use hyperkernel::{Address, LazyLoadBlob, ProcessId, Request};
use serde::Deserialize;
use std::sync::mpsc;
use std::time::Duration;

/// The door's one path.
pub(crate) const PATH: &str = "/rpc:distro:sys/message";
/// Largest request body read (a 64 MiB message in base64 and JSON).
const BODY_MAX: u64 = 96 << 20;
/// Longest wait for an answer beyond the request's own timeout.
const GRACE: Duration = Duration::from_secs(1);
/// Connections served at once (each may wait for an answer).
const CONNECTIONS: usize = 64;
/// Bytes of the bodies being read at once.
const BODIES_MAX: u64 = 256 << 20;
/// Longest a client may take to send a whole body.
const BODY_SECONDS: u64 = 30;
/// The read timeout when none is given: the longest a client may leave a request half sent
/// (or a kept-alive connection idle).
pub(crate) const READ_TIMEOUT_SECONDS: u64 = 10;

/// The reference's RPC message.
#[derive(Debug, Deserialize)]
struct RpcMessage {
    node: Option<String>,
    process: String,
    inherit: Option<bool>,
    expects_response: Option<u64>,
    body: Option<String>,
    metadata: Option<String>,
    context: Option<String>,
    mime: Option<String>,
    data: Option<String>,
}

/// A message for the kernel, parsed from a door request.
#[derive(Debug)]
pub(crate) struct Rpc {
    /// The target.
    pub(crate) target: Address,
    /// The request.
    pub(crate) request: Request,
    /// The blob (`data`, decoded).
    pub(crate) blob: Option<LazyLoadBlob>,
}

/// How the loop answers a door request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The answer: its body and blob.
    Answer(Vec<u8>, Option<LazyLoadBlob>),
    /// Accepted; no answer expected.
    Accepted,
    /// The kernel refused or could not deliver it: status and reason.
    Refused(u16, String),
}

/// Parses a door body into a message for node `our`.
///
/// # Errors
/// What is wrong with it (the 400's reason).
pub(crate) fn parse(our: &str, body: &[u8]) -> Result<Rpc, String> {
    let message: RpcMessage =
        serde_json::from_slice(body).map_err(|e| format!("not an RPC message: {e}"))?;
    let process: ProcessId = message
        .process
        .parse()
        .map_err(|e| format!("process {:?}: {e}", message.process))?;
    let node = message.node.unwrap_or_else(|| our.to_owned());
    let target = Address::new(&node, process);
    let blob = match message.data {
        None => None,
        Some(data) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.as_bytes())
                .map_err(|e| format!("data is not base64: {e}"))?;
            Some(LazyLoadBlob {
                mime: message.mime,
                bytes,
            })
        }
    };
    let mut request = Request::new(message.body.unwrap_or_default().into_bytes());
    request.inherit = message.inherit.unwrap_or(false);
    request.expects_response = message.expects_response;
    request.metadata = message.metadata;
    // The reference accepts `context` and does nothing with it; so do we.
    let _ = message.context;
    Ok(Rpc {
        target,
        request,
        blob,
    })
}

/// The reply's JSON: the reference's `RpcResponseBody`.
pub(crate) fn answer_json(body: &[u8], blob: Option<&LazyLoadBlob>) -> Vec<u8> {
    let blob = blob.map(|blob| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&blob.bytes);
        serde_json::json!({ "mime": blob.mime, "bytes": encoded.into_bytes() })
    });
    let reply = serde_json::json!({ "body": body, "lazy_load_blob": blob });
    serde_json::to_vec(&reply).unwrap_or_default()
}

/// A door request for the loop: the message and where its reply goes.
pub(crate) type Delivery = (Rpc, mpsc::Sender<Reply>);

/// Binds the door on `port` of loopback, or of every interface with `expose` (0: any free
/// port), before anything else is touched.
///
/// # Errors
/// The port could not be bound (in use, or not allowed).
pub(crate) fn bind(port: u16, expose: bool) -> Result<std::net::TcpListener, String> {
    let host = if expose { "0.0.0.0" } else { "127.0.0.1" };
    std::net::TcpListener::bind((host, port))
        .map_err(|e| format!("the HTTP door cannot listen on {host}:{port}: {e}"))
}

/// Serves the bound door, handing each message for node `our` to `deliver`; connections
/// stalled for `timeout` are dropped. Returns the address it listens on.
///
/// # Errors
/// The socket's address cannot be read.
pub(crate) fn serve(
    listener: std::net::TcpListener,
    our: &str,
    timeout: Duration,
    deliver: impl Fn(Delivery) -> bool + Send + Sync + 'static,
) -> std::io::Result<String> {
    let bound = listener.local_addr()?.to_string();
    let limits = Limits {
        connections: CONNECTIONS,
        timeout,
        body_bytes: BODY_MAX,
        bodies_bytes: BODIES_MAX,
        body_seconds: BODY_SECONDS,
    };
    let our = our.to_owned();
    crate::httpd::serve(listener, limits, move |request| {
        answer(&our, request, &deliver)
    });
    Ok(bound)
}

fn answer(our: &str, request: HttpRequest, deliver: &impl Fn(Delivery) -> bool) -> HttpResponse {
    if request.path.split('?').next() != Some(PATH) {
        return HttpResponse::text(404, format!("no such path; the door is POST {PATH}"));
    }
    if request.method != "POST" {
        let text = format!("{} is not allowed; the door takes POST", request.method);
        return HttpResponse::text(405, text);
    }
    let rpc = match parse(our, &request.body) {
        Ok(rpc) => rpc,
        Err(reason) => return HttpResponse::text(400, reason),
    };
    let wait = rpc
        .request
        .expects_response
        .map_or(GRACE, |seconds| Duration::from_secs(seconds) + GRACE);
    let (tx, rx) = mpsc::channel();
    if !deliver((rpc, tx)) {
        return HttpResponse::text(503, "the node is shutting down");
    }
    match rx.recv_timeout(wait) {
        Ok(Reply::Answer(body, blob)) => HttpResponse {
            status: 200,
            json: true,
            body: answer_json(&body, blob.as_ref()),
        },
        Ok(Reply::Accepted) => HttpResponse::text(200, ""),
        Ok(Reply::Refused(status, reason)) => HttpResponse::text(status, reason),
        Err(_) => HttpResponse::text(408, "no answer in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_references_message_parses_and_bad_ones_say_why() {
        let rpc = parse(
            "our.os",
            br#"{"node":null,"process":"app:pkg:pub.os","inherit":false,"expects_response":5,"body":"hi","metadata":null,"context":null,"mime":"text/plain","data":"AQID"}"#,
        )
        .unwrap();
        assert_eq!(rpc.target.to_string(), "our.os@app:pkg:pub.os");
        assert_eq!(rpc.request.body, b"hi");
        assert_eq!(rpc.request.expects_response, Some(5));
        assert_eq!(rpc.blob.unwrap().bytes, vec![1, 2, 3]);
        assert!(
            parse("our.os", b"{")
                .unwrap_err()
                .starts_with("not an RPC message")
        );
        assert!(
            parse("our.os", br#"{"process":"bad"}"#)
                .unwrap_err()
                .contains("process")
        );
        let bad_data = parse("our.os", br#"{"process":"a:b:c","data":"!!"}"#);
        assert!(bad_data.unwrap_err().contains("base64"));
    }

    #[test]
    fn the_answer_has_the_references_shape() {
        let blob = LazyLoadBlob {
            mime: None,
            bytes: vec![1, 2, 3],
        };
        let json: serde_json::Value =
            serde_json::from_slice(&answer_json(b"ok", Some(&blob))).unwrap();
        assert_eq!(json["body"], serde_json::json!([111, 107]));
        assert_eq!(
            json["lazy_load_blob"]["bytes"],
            serde_json::json!(b"AQID".to_vec())
        );
        assert_eq!(json["lazy_load_blob"]["mime"], serde_json::Value::Null);
    }
}
