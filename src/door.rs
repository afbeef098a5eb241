//! The HTTP message door's bytes, as the node's door and its fuzz target share them: a request
//! head parsed and checked (`parse_head`), the reference's RPC message parsed into a message
//! for the kernel (`parse`), and the answer's JSON written out as it goes (`AnswerJson`). The
//! node's sockets, threads and the wait for answers are the binary's (`src/bin/hyperkernel`).
//!
//! Bounds, each checked before the bytes it bounds are read or copied: a head is at most
//! [`HEAD_MAX`] bytes and [`HEADERS_MAX`] headers; one `Content-Length`, digits only (two
//! different ones, a sign or nothing is a 400: RFC 9112 §6.3); no chunked bodies (411); a
//! message's body, metadata and blob at most [`MESSAGE_BYTES_MAX`] (413); a node name that
//! cannot exist is a 400; an answer is at most [`answer_bytes_max`] of its message's bytes,
//! written without a tree of values (one once took 32 bytes a body byte); a wait at most
//! [`WAIT_MAX`], by checked arithmetic.

use crate::types::{Address, LazyLoadBlob, ProcessId, Request};
use base64::Engine;
use serde::Deserialize;
use std::time::Duration;

/// The door's one path.
pub const PATH: &str = "/rpc:distro:sys/message";
/// Why a request is refused before it is handled: the status and the reason.
pub type Refusal = (u16, String);

/// Longest wait for an answer beyond the request's own timeout.
pub const GRACE: Duration = Duration::from_secs(1);
/// Longest a door request waits for its answer, whatever its `expects_response` (a client
/// that asks for 2^64 - 1 seconds holds its connection no longer than this).
pub const WAIT_MAX: Duration = Duration::from_secs(600);
/// Most bytes of a door message (body, metadata and blob): the kernel's message bound, checked
/// before the message is journaled or queued.
pub const MESSAGE_BYTES_MAX: u64 = crate::kernel::MESSAGE_LEN_MAX as u64;
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
pub struct Rpc {
    /// The target.
    pub target: Address,
    /// The request.
    pub request: Request,
    /// The blob (`data`, decoded).
    pub blob: Option<LazyLoadBlob>,
}

/// Why a door body is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RpcError {
    /// It is not a message the door takes (400): the reason.
    Malformed(String),
    /// Its body, metadata and blob are over [`MESSAGE_BYTES_MAX`] (413): their bytes.
    TooLarge(u64),
}

impl RpcError {
    /// The HTTP status and reason of the refusal.
    pub fn status(&self) -> (u16, String) {
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
pub fn parse(our: &str, body: &[u8]) -> Result<Rpc, RpcError> {
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
pub struct AnswerJson {
    /// The response's body.
    pub body: Vec<u8>,
    /// Its blob.
    pub blob: Option<LazyLoadBlob>,
}

impl AnswerJson {
    /// Writes the answer's JSON to `out`, the same bytes every time.
    ///
    /// # Errors
    /// `out` failed.
    pub fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
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
pub fn wait_of(expects_response: Option<u64>) -> Duration {
    let Some(seconds) = expects_response else {
        return GRACE;
    };
    let wait = Duration::from_secs(seconds)
        .checked_add(GRACE)
        .map_or(WAIT_MAX, |wait| wait.min(WAIT_MAX));
    debug_assert!(wait <= WAIT_MAX, "the wait is bounded");
    wait
}

/// The most bytes the answer to a message of `message_bytes` (body and blob) can take: four
/// a body byte (`255,`), four a character of the blob's base64 (a third more than the blob),
/// and the JSON around them with a MIME type of at most `message_bytes` escaped six bytes a
/// character.
pub fn answer_bytes_max(message_bytes: u64) -> u64 {
    let base64 = message_bytes.div_ceil(3) * 4;
    let bound = 4 * message_bytes + 4 * base64 + 6 * message_bytes + 64;
    debug_assert!(bound >= message_bytes, "an answer bound covers its message");
    bound
}

/// Largest request head (request line and headers).
pub const HEAD_MAX: usize = 16 << 10;
/// Most headers in a head.
pub const HEADERS_MAX: usize = 32;
/// A parsed head: the request without its body, the body's length, whether the connection
/// stays open after it, and how many bytes of the buffer it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// `POST`, `GET`, …
    pub method: String,
    /// The path, query included.
    pub path: String,
    /// Its headers (names lowercase), as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's length.
    pub length: u64,
    /// Whether the connection stays open after the answer.
    pub keep_alive: bool,
    /// Bytes of the buffer the head took.
    pub taken: usize,
}

/// Parses the head at the start of `buffer`: `Ok(None)` while it is incomplete and within
/// [`HEAD_MAX`].
///
/// # Errors
/// The head is malformed (400), has too many headers or bytes (431), is chunked (411), or its
/// length is not one length (400).
pub fn parse_head(buffer: &[u8]) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer) {
        Ok(httparse::Status::Complete(taken)) => {
            let head = head(&request, taken)?;
            assert!(head.taken <= buffer.len(), "a head lies within its buffer");
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) if buffer.len() >= HEAD_MAX => {
            Err((431, format!("the head is over {HEAD_MAX} bytes")))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err((431, format!("more than {HEADERS_MAX} headers")))
        }
        Err(error) => Err((400, format!("not an HTTP request: {error}"))),
    }
}

/// The head of a complete parse.
fn head(request: &httparse::Request<'_, '_>, taken: usize) -> Result<Head, Refusal> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
    };
    if header("transfer-encoding").is_some() {
        return Err((
            411,
            "send the body with a Content-Length, not chunked".into(),
        ));
    }
    let length = content_length(request)?;
    let version = request.version.unwrap_or(1);
    let keep_alive = match header("connection").as_deref() {
        Some("close") => false,
        Some("keep-alive") => true,
        _ => version >= 1,
    };
    debug_assert!(taken > 0, "a complete head took bytes");
    let headers = request
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    Ok(Head {
        method: request.method.unwrap_or_default().to_owned(),
        path: request.path.unwrap_or_default().to_owned(),
        headers,
        length,
        keep_alive,
        taken,
    })
}

/// The body's length: every `Content-Length` must be digits only and all must agree (RFC
/// 9112 §6.3: anything else is unrecoverable, a 400); none is 0.
fn content_length(request: &httparse::Request<'_, '_>) -> Result<u64, Refusal> {
    let mut length: Option<u64> = None;
    for header in request.headers.iter() {
        if !header.name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let parsed = value.parse::<u64>().ok().filter(|_| digits);
        let Some(parsed) = parsed else {
            return Err((400, format!("Content-Length {value:?} is not a length")));
        };
        if length.is_some_and(|before| before != parsed) {
            return Err((400, "two different Content-Length headers".into()));
        }
        length = Some(parsed);
    }
    Ok(length.unwrap_or(0))
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

    #[test]
    fn heads_parse_with_their_length_and_keep_alive() {
        let parse = |text: &[u8]| {
            let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
            let mut request = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(taken)) = request.parse(text) else {
                panic!("a complete head");
            };
            head(&request, taken)
        };
        let ok = parse(b"POST /a HTTP/1.1\r\nContent-Length: 12\r\n\r\nbody").unwrap();
        assert_eq!((ok.method.as_str(), ok.path.as_str()), ("POST", "/a"));
        assert_eq!((ok.length, ok.keep_alive, ok.taken), (12, true, 40));
        let old = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!old.keep_alive, "HTTP/1.0 closes unless asked");
        let closing = parse(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").unwrap();
        assert!(!closing.keep_alive);
        let chunked = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.err().map(|e| e.0), Some(411));
        for bad in [
            &b"POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        ] {
            let refused = parse(bad);
            assert_eq!(
                refused.err().map(|e| e.0),
                Some(400),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let twice = parse(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(
            twice.ok().map(|h| h.length),
            Some(3),
            "the same length twice is one"
        );
    }
}
