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

use crate::httpd::{HttpRequest, HttpResponse, Limits, StreamedBody};
use hyperkernel::LazyLoadBlob;
use hyperkernel::door::{AnswerJson, wait_of};
pub(crate) use hyperkernel::door::{MESSAGE_BYTES_MAX, PATH, Rpc};
use std::sync::mpsc;
use std::time::Duration;

/// The answer goes out as the door writes it (`hyperkernel::door::AnswerJson`).
struct Answer(AnswerJson);

impl StreamedBody for Answer {
    fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.0.write_to(out)
    }
}

/// Largest request body read (a 64 MiB message in base64 and JSON).
const BODY_MAX: u64 = 96 << 20;
/// Connections served at once (each may wait for an answer).
const CONNECTIONS: usize = 64;
/// Bytes of the bodies being read at once.
const BODIES_MAX: u64 = 256 << 20;
/// Longest a client may take to send a whole body.
const BODY_SECONDS: u64 = 30;
/// The read timeout when none is given: the longest a client may leave a request half sent
/// (or a kept-alive connection idle).
pub(crate) const READ_TIMEOUT_SECONDS: u64 = 10;

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
    let rpc = match hyperkernel::door::parse(our, &request.body) {
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
        Some(Reply::Answer(body, blob)) => {
            HttpResponse::streamed(Answer(AnswerJson { body, blob }))
        }
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
    fn secrets_compare_whole() {
        assert!(is_same_secret(b"abcd", b"abcd"));
        assert!(!is_same_secret(b"abcd", b"abce"));
        assert!(!is_same_secret(b"abc", b"abcd"));
        assert!(!is_same_secret(b"", b"a"));
    }
}
