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
/// Longest a door request waits for its answer, whatever its `expects_response` (a client
/// that asks for 2^64 - 1 seconds holds its connection no longer than this).
pub(crate) const WAIT_MAX: Duration = Duration::from_secs(600);
/// Most bytes of a door message (body, metadata and blob): the kernel's message bound, checked
/// before the message is journaled or queued.
pub(crate) const MESSAGE_BYTES_MAX: u64 = hyperkernel::kernel::MESSAGE_LEN_MAX as u64;
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

/// Why a door body is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RpcError {
    /// It is not a message the door takes (400): the reason.
    Malformed(String),
    /// Its body, metadata and blob are over [`MESSAGE_BYTES_MAX`] (413): their bytes.
    TooLarge(u64),
}

impl RpcError {
    /// The HTTP status and reason of the refusal.
    pub(crate) fn status(&self) -> (u16, String) {
        match self {
            Self::Malformed(reason) => (400, reason.clone()),
            Self::TooLarge(bytes) => (
                413,
                format!(
                    "the message is {bytes} bytes (body, metadata and blob); a message is at \
                     most {MESSAGE_BYTES_MAX}"
                ),
            ),
        }
    }
}

impl From<String> for RpcError {
    fn from(reason: String) -> Self {
        Self::Malformed(reason)
    }
}

/// Parses a door body into a message for node `our`.
///
/// # Errors
/// What is wrong with it: malformed (the 400's reason), or too large for a message.
pub(crate) fn parse(our: &str, body: &[u8]) -> Result<Rpc, RpcError> {
    let message: RpcMessage =
        serde_json::from_slice(body).map_err(|e| format!("not an RPC message: {e}"))?;
    let process: ProcessId = message
        .process
        .parse()
        .map_err(|e| format!("process {:?}: {e}", message.process))?;
    let node = message.node.unwrap_or_else(|| our.to_owned());
    let target = Address::new(&node, process);
    // A node that cannot exist is a bad request, not a message that times out.
    if let Err(error) = target.check() {
        return Err(format!("target {target}: {error}").into());
    }
    let decoded_max = message.data.as_ref().map_or(0, |d| d.len() / 4 * 3);
    let text_bytes = message.body.as_ref().map_or(0, String::len)
        + message.metadata.as_ref().map_or(0, String::len);
    let bytes = (text_bytes + decoded_max) as u64;
    if bytes > MESSAGE_BYTES_MAX {
        return Err(RpcError::TooLarge(bytes));
    }
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

/// An answer's JSON, the reference's `RpcResponseBody`, written out as it goes to the client:
/// no tree of values (a `serde_json::Value` takes 32 bytes per body byte), no copy of the
/// whole text; base64 of the blob is made a chunk at a time.
#[derive(Debug)]
pub(crate) struct AnswerJson {
    /// The response's body.
    pub(crate) body: Vec<u8>,
    /// Its blob.
    pub(crate) blob: Option<LazyLoadBlob>,
}

impl crate::httpd::StreamedBody for AnswerJson {
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(b"{\"body\":")?;
        write_byte_array(out, &self.body)?;
        out.write_all(b",\"lazy_load_blob\":")?;
        let Some(blob) = &self.blob else {
            return out.write_all(b"null}");
        };
        out.write_all(b"{\"mime\":")?;
        serde_json::to_writer(&mut *out, &blob.mime).map_err(std::io::Error::other)?;
        out.write_all(b",\"bytes\":[")?;
        // Base64 in chunks of 3 KiB of input: each chunk's text is whole quads.
        let mut first = true;
        let mut text = String::with_capacity(4096);
        for chunk in blob.bytes.chunks(3 << 10) {
            text.clear();
            base64::engine::general_purpose::STANDARD.encode_string(chunk, &mut text);
            debug_assert!(text.len().is_multiple_of(4), "whole quads per chunk");
            write_numbers(out, text.as_bytes(), &mut first)?;
        }
        out.write_all(b"]}}")
    }
}

/// `bytes` as a JSON array of numbers.
fn write_byte_array(out: &mut dyn std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(b"[")?;
    let mut first = true;
    write_numbers(out, bytes, &mut first)?;
    out.write_all(b"]")
}

/// `bytes` as comma-separated decimal numbers (a comma first unless `first`).
fn write_numbers(
    out: &mut dyn std::io::Write,
    bytes: &[u8],
    first: &mut bool,
) -> std::io::Result<()> {
    let mut text = Vec::with_capacity(bytes.len() * 4);
    for &byte in bytes {
        if !std::mem::take(first) {
            text.push(b',');
        }
        if byte >= 100 {
            text.push(b'0' + byte / 100);
        }
        if byte >= 10 {
            text.push(b'0' + byte / 10 % 10);
        }
        text.push(b'0' + byte % 10);
    }
    out.write_all(&text)
}

/// How long a door request waits for its answer: its own timeout and a grace, at most
/// [`WAIT_MAX`]; checked arithmetic (2^64 - 1 seconds once panicked the connection).
pub(crate) fn wait_of(expects_response: Option<u64>) -> Duration {
    let Some(seconds) = expects_response else {
        return GRACE;
    };
    let wait = Duration::from_secs(seconds)
        .checked_add(GRACE)
        .map_or(WAIT_MAX, |wait| wait.min(WAIT_MAX));
    debug_assert!(wait <= WAIT_MAX, "the wait is bounded");
    wait
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
    token: Option<String>,
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
        if let Some(token) = &token
            && !is_authorized(&request, token)
        {
            return HttpResponse::text(
                401,
                "this door is exposed and needs its token: send `Authorization: Bearer TOKEN` \
                 with the token in the node's home (http-token)",
            );
        }
        answer(&our, request, &deliver)
    });
    Ok(bound)
}

/// Whether `request` carries `Authorization: Bearer TOKEN`, compared in constant time.
fn is_authorized(request: &HttpRequest, token: &str) -> bool {
    let Some(sent) = request
        .header("authorization")
        .and_then(|value| value.strip_prefix(b"Bearer "))
    else {
        return false;
    };
    is_same_secret(sent, token.as_bytes())
}

/// `a == b` in time that depends on their lengths only (the token's length is no secret).
fn is_same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
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
        Err(error) => {
            let (status, reason) = error.status();
            return HttpResponse::text(status, reason);
        }
    };
    let wait = wait_of(rpc.request.expects_response);
    let (tx, rx) = mpsc::channel();
    if !deliver((rpc, tx)) {
        return HttpResponse::text(503, "the node is shutting down");
    }
    // Waits in slices, so a client that hung up frees its connection at once rather than
    // when its (client-chosen) timeout runs out.
    let mut waited = Duration::ZERO;
    let reply = loop {
        let slice = POLL.min(wait.saturating_sub(waited));
        match rx.recv_timeout(slice) {
            Ok(reply) => break Some(reply),
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        waited += slice;
        if waited >= wait {
            break None;
        }
        if (request.is_gone)() {
            return HttpResponse::text(499, "the client went away");
        }
    };
    match reply {
        Some(Reply::Answer(body, blob)) => HttpResponse::streamed(AnswerJson { body, blob }),
        Some(Reply::Accepted) => HttpResponse::text(200, ""),
        Some(Reply::Refused(status, reason)) => HttpResponse::text(status, reason),
        None => HttpResponse::text(408, "no answer in time"),
    }
}

/// How often a waiting request looks whether its client is still there.
const POLL: Duration = Duration::from_millis(100);

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
        let reason = |body: &[u8]| match parse("our.os", body) {
            Err(RpcError::Malformed(reason)) => reason,
            other => panic!("not malformed: {other:?}"),
        };
        assert!(reason(b"{").starts_with("not an RPC message"));
        assert!(reason(br#"{"process":"bad"}"#).contains("process"));
        let bad_data = parse("our.os", br#"{"process":"a:b:c","data":"!!"}"#);
        assert!(matches!(bad_data, Err(RpcError::Malformed(r)) if r.contains("base64")));
        for node in ["", "a@b:c:d", "UPPER.os"] {
            let body = serde_json::json!({"node": node, "process": "a:b:c"}).to_string();
            let error = parse("our.os", body.as_bytes()).unwrap_err();
            assert!(
                matches!(&error, RpcError::Malformed(r) if r.contains("target")),
                "{node:?}"
            );
        }
        let huge = "x".repeat(MESSAGE_BYTES_MAX as usize + 1);
        let body = serde_json::json!({"process": "a:b:c", "body": huge}).to_string();
        let error = parse("our.os", body.as_bytes()).unwrap_err();
        assert_eq!(error.status().0, 413);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(is_same_secret(b"abcd", b"abcd"));
        assert!(!is_same_secret(b"abcd", b"abce"));
        assert!(!is_same_secret(b"abc", b"abcd"));
        assert!(!is_same_secret(b"", b"a"));
    }

    #[test]
    fn the_wait_is_bounded_for_any_timeout() {
        assert_eq!(wait_of(None), GRACE);
        assert_eq!(wait_of(Some(5)), Duration::from_secs(6));
        assert_eq!(wait_of(Some(u64::MAX)), WAIT_MAX);
        assert_eq!(wait_of(Some(u64::MAX / 2)), WAIT_MAX);
    }

    #[test]
    fn the_answer_has_the_references_shape() {
        let blob = LazyLoadBlob {
            mime: None,
            bytes: vec![1, 2, 3],
        };
        use crate::httpd::StreamedBody;
        let answer = AnswerJson {
            body: b"ok".to_vec(),
            blob: Some(blob),
        };
        let mut written = Vec::new();
        answer.write_to(&mut written).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert_eq!(json["body"], serde_json::json!([111, 107]));
        assert_eq!(
            json["lazy_load_blob"]["bytes"],
            serde_json::json!(b"AQID".to_vec())
        );
        assert_eq!(json["lazy_load_blob"]["mime"], serde_json::Value::Null);
        // Every byte value, and a blob over several chunks, as serde_json writes them.
        let all: Vec<u8> = (0..=255).collect();
        let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let answer = AnswerJson {
            body: all.clone(),
            blob: Some(LazyLoadBlob {
                mime: Some("a\"b".into()),
                bytes: big.clone(),
            }),
        };
        let mut written = Vec::new();
        answer.write_to(&mut written).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&big);
        let expected = serde_json::json!({
            "body": all,
            "lazy_load_blob": {"mime": "a\"b", "bytes": encoded.into_bytes()},
        });
        let written: serde_json::Value = serde_json::from_slice(&written).unwrap();
        assert!(
            written == expected,
            "the streamed answer differs from serde_json's"
        );
    }
}
