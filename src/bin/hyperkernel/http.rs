//! The reference's HTTP message door: `POST /rpc:distro:sys/message` with its JSON (`node`,
//! `process`, `inherit`, `expects_response`, `body`, `metadata`, `context`, `mime`, `data` as
//! base64), as `kit inject-message` sends it, answered with its reply shape: 200 and
//! `{"body": [bytes], "lazy_load_blob": null | {"mime", "bytes": [bytes of the base64 text]}}`
//! for a request that expects a response, 200 and an empty body at once for one that does not,
//! 408 when the answer does not come in time. We add a reason to every refusal: a malformed
//! body is a 400 with it (the reference sends an empty 400), another path a 404, another
//! method a 405. It listens on 127.0.0.1 only unless told otherwise.
//!
//! One thread serves the socket and hands each message to the node's loop with a channel for
//! its reply; the kernel stays on the loop's thread.

use base64::Engine;
use hyperkernel::{Address, LazyLoadBlob, ProcessId, Request};
use serde::Deserialize;
use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

/// The door's one path.
pub(crate) const PATH: &str = "/rpc:distro:sys/message";
/// Largest request body read (a 64 MiB message in base64 and JSON).
const BODY_MAX: u64 = 96 << 20;
/// Longest wait for an answer beyond the request's own timeout.
const GRACE: Duration = Duration::from_secs(1);

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
pub(crate) fn bind(port: u16, expose: bool) -> Result<tiny_http::Server, String> {
    let host = if expose { "0.0.0.0" } else { "127.0.0.1" };
    tiny_http::Server::http((host, port))
        .map_err(|e| format!("the HTTP door cannot listen on {host}:{port}: {e}"))
}

/// Serves the bound door on a thread, handing each message for node `our` to `deliver`.
/// Returns the address it listens on.
pub(crate) fn serve(
    server: tiny_http::Server,
    our: String,
    deliver: impl Fn(Delivery) -> bool + Send + 'static,
) -> String {
    let bound = server.server_addr().to_string();
    #[expect(
        clippy::disallowed_methods,
        reason = "the door serves its socket on a thread of its own; the kernel stays on one"
    )]
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            answer(&our, request, &deliver);
        }
    });
    bound
}

fn respond(request: tiny_http::Request, status: u16, body: Vec<u8>, json: bool) {
    let kind = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes());
    let mut response = tiny_http::Response::from_data(body).with_status_code(status);
    if let Ok(header) = header {
        response = response.with_header(header);
    }
    let _ = request.respond(response);
}

fn answer(our: &str, mut request: tiny_http::Request, deliver: &impl Fn(Delivery) -> bool) {
    if request.url().split('?').next() != Some(PATH) {
        let text = format!("no such path; the door is POST {PATH}");
        return respond(request, 404, text.into_bytes(), false);
    }
    if *request.method() != tiny_http::Method::Post {
        let text = format!("{} is not allowed; the door takes POST", request.method());
        return respond(request, 405, text.into_bytes(), false);
    }
    let mut body = Vec::new();
    let read = request
        .as_reader()
        .take(BODY_MAX + 1)
        .read_to_end(&mut body);
    if read.is_err() || body.len() as u64 > BODY_MAX {
        let text = format!("the body could not be read or is over {BODY_MAX} bytes");
        return respond(request, 400, text.into_bytes(), false);
    }
    let rpc = match parse(our, &body) {
        Ok(rpc) => rpc,
        Err(reason) => return respond(request, 400, reason.into_bytes(), false),
    };
    let wait = rpc
        .request
        .expects_response
        .map_or(GRACE, |seconds| Duration::from_secs(seconds) + GRACE);
    let (tx, rx) = mpsc::channel();
    if !deliver((rpc, tx)) {
        return respond(request, 503, b"the node is shutting down".to_vec(), false);
    }
    match rx.recv_timeout(wait) {
        Ok(Reply::Answer(body, blob)) => {
            respond(request, 200, answer_json(&body, blob.as_ref()), true)
        }
        Ok(Reply::Accepted) => respond(request, 200, Vec::new(), false),
        Ok(Reply::Refused(status, reason)) => respond(request, status, reason.into_bytes(), false),
        Err(_) => respond(request, 408, b"no answer in time".to_vec(), false),
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
