//! The HTTP door's connections: HTTP/1.1 on std sockets, each request's head parsed by
//! httparse, everything bounded so no client can hang the door or exhaust the node's memory.
//!
//! - At most [`Limits::connections`] connections at once, each served on its own thread (one
//!   request waiting for a slow answer holds up nobody else); one more is answered 503 and
//!   closed.
//! - Every read and write on a connection times out after [`Limits::timeout`]: a client that
//!   stalls mid-request gets a 408 and is closed, one idle on a kept-alive connection is
//!   closed.
//! - A head is at most [`HEAD_MAX`] bytes and [`HEADERS_MAX`] headers (431 past that); a body
//!   comes with a `Content-Length` (411 without one; no chunked bodies), at most
//!   [`Limits::body_bytes`] (413), whole within [`Limits::body_seconds`] (408), and the
//!   bodies being read at once share a budget of [`Limits::bodies_bytes`] (503 when it is
//!   spent).
//! - A whole head must arrive within [`Limits::timeout`] of its first byte, however it
//!   trickles in (a byte every few seconds once held a slot for ever).
//! - A connection's slot is released by a guard, on every way out of its thread (a panic in a
//!   handler once leaked it), and a handler waiting for an answer can ask whether its client
//!   hung up (`HttpRequest::is_gone`) and free the slot at once.
//! - One `Content-Length`, digits only: two different ones or a signed one is a 400 (RFC
//!   9112 §6.3), never a guess.
//! - An answer may be written as it is made (`StreamedBody`), with its exact length first.
//! - The accept loop outlives accept errors (a full file table, say): it waits and goes on.

use hyperkernel::door::{HEAD_MAX, Head, Refusal, parse_head};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

#[expect(
    clippy::disallowed_types,
    reason = "the door bounds a client's time on the wall clock; the kernel never sees it"
)]
type Instant = std::time::Instant;

/// The wall clock, for the door's bounds on a client's time.
#[expect(
    clippy::disallowed_methods,
    reason = "the door bounds a client's time on the wall clock; the kernel never sees it"
)]
fn wall_now() -> Instant {
    Instant::now()
}

/// Bytes read from a socket at a time.
const CHUNK: usize = 64 << 10;

/// The door's bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Connections served at once.
    pub(crate) connections: usize,
    /// Longest a read or a write may block (a stalled or idle client).
    pub(crate) timeout: Duration,
    /// Largest body.
    pub(crate) body_bytes: u64,
    /// Bytes of all the bodies being read at once.
    pub(crate) bodies_bytes: u64,
    /// Longest a client may take to send a whole body.
    pub(crate) body_seconds: u64,
}

/// One request as the door's handler sees it.
pub(crate) struct HttpRequest {
    /// `POST`, `GET`, …
    pub(crate) method: String,
    /// The path, query included.
    pub(crate) path: String,
    /// The body.
    pub(crate) body: Vec<u8>,
    /// Its headers (names lowercase), as sent.
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    /// Whether the client hung up (looks at the socket without reading the next request).
    pub(crate) is_gone: Box<dyn Fn() -> bool>,
}

impl HttpRequest {
    /// The value of header `name` (lowercase), if sent once or more (the first).
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        debug_assert_eq!(
            name,
            name.to_ascii_lowercase(),
            "header names are lowercase"
        );
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// A body written out as it is made: `write_to` must write the same bytes every time (its
/// length is taken by writing it once to a counter).
pub(crate) trait StreamedBody: Send {
    /// Writes the body to `out`.
    ///
    /// # Errors
    /// `out` failed.
    fn write_to(&self, out: &mut dyn Write) -> std::io::Result<()>;
}

/// A response's body.
pub(crate) enum Body {
    /// Bytes at hand.
    Bytes(Vec<u8>),
    /// Written as it is made.
    Streamed(Box<dyn StreamedBody>),
}

/// The handler's answer.
pub(crate) struct HttpResponse {
    /// The status code.
    pub(crate) status: u16,
    /// Whether the body is JSON (else plain text).
    pub(crate) json: bool,
    /// The body.
    pub(crate) body: Body,
}

impl HttpResponse {
    /// A plain-text response.
    pub(crate) fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            json: false,
            body: Body::Bytes(text.into().into_bytes()),
        }
    }

    /// A 200 with a JSON body written as it is made.
    pub(crate) fn streamed(body: impl StreamedBody + 'static) -> Self {
        Self {
            status: 200,
            json: true,
            body: Body::Streamed(Box::new(body)),
        }
    }
}

/// Counts the bytes written to it.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Releases a connection's slot when its thread ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "a connection ends once");
    }
}

/// Counts a connection or a body's bytes while it lives.
struct Held<'a> {
    counter: &'a AtomicU64,
    amount: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let before = self.counter.fetch_sub(self.amount, Ordering::SeqCst);
        debug_assert!(before >= self.amount, "released more than was held");
    }
}

/// Takes `amount` out of the budget `counter` (of `max`), or `None` when it does not fit.
fn hold(counter: &AtomicU64, amount: u64, max: u64) -> Option<Held<'_>> {
    let before = counter.fetch_add(amount, Ordering::SeqCst);
    let held = Held { counter, amount };
    (before.saturating_add(amount) <= max).then_some(held)
}

/// What the connections share.
struct Shared<H> {
    limits: Limits,
    connections: AtomicUsize,
    bodies: AtomicU64,
    handler: H,
}

/// Serves `listener` on a thread of its own, each request answered by `handler` on its
/// connection's thread.
pub(crate) fn serve<H>(listener: TcpListener, limits: Limits, handler: H)
where
    H: Fn(HttpRequest) -> HttpResponse + Send + Sync + 'static,
{
    assert!(
        limits.connections > 0,
        "a door serves at least one connection"
    );
    assert!(
        limits.body_bytes <= limits.bodies_bytes,
        "one body fits the budget"
    );
    let shared = Arc::new(Shared {
        limits,
        connections: AtomicUsize::new(0),
        bodies: AtomicU64::new(0),
        handler,
    });
    #[expect(
        clippy::disallowed_methods,
        reason = "the door accepts on a thread of its own; the kernel stays on one"
    )]
    std::thread::spawn(move || {
        loop {
            match listener.accept() {
                Ok((stream, _)) => admit(&shared, stream),
                // Out of file descriptors, or a connection reset before it was taken: wait a
                // moment (a full table frees as connections close) and go on.
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
}

/// Serves `stream` on a thread of its own, or answers 503 when the door is full.
fn admit<H>(shared: &Arc<Shared<H>>, stream: TcpStream)
where
    H: Fn(HttpRequest) -> HttpResponse + Send + Sync + 'static,
{
    let timeout = Some(shared.limits.timeout);
    let set = stream
        .set_read_timeout(timeout)
        .and_then(|()| stream.set_write_timeout(timeout));
    if set.and_then(|()| stream.set_nodelay(true)).is_err() {
        return;
    }
    let live = shared.connections.fetch_add(1, Ordering::SeqCst);
    if live >= shared.limits.connections {
        shared.connections.fetch_sub(1, Ordering::SeqCst);
        let busy = HttpResponse::text(503, "the door is serving as many connections as it may");
        let _ = write_response(&stream, &busy, false);
        return;
    }
    let shared = Arc::clone(shared);
    #[expect(
        clippy::disallowed_methods,
        reason = "each connection waits for its answers on a thread of its own"
    )]
    std::thread::spawn(move || {
        let _slot = Slot(&shared.connections);
        connection(&shared, stream);
    });
}

/// Serves the requests of one connection until it closes, fails or times out.
fn connection<H>(shared: &Shared<H>, mut stream: TcpStream)
where
    H: Fn(HttpRequest) -> HttpResponse,
{
    let mut buffer = Vec::new();
    loop {
        let head = match read_head(&mut stream, &mut buffer, shared.limits.timeout) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err((status, reason)) => {
                let _ = write_response(&stream, &HttpResponse::text(status, reason), false);
                return;
            }
        };
        buffer.drain(..head.taken);
        let body = match read_body(shared, &mut stream, &mut buffer, head.length) {
            Ok(body) => body,
            Err((status, reason)) => {
                let _ = write_response(&stream, &HttpResponse::text(status, reason), false);
                return;
            }
        };
        let probe = stream.try_clone();
        let timeout = shared.limits.timeout;
        let request = HttpRequest {
            method: head.method,
            path: head.path,
            body,
            headers: head.headers,
            is_gone: Box::new(move || probe.as_ref().is_ok_and(|s| is_gone(s, timeout))),
        };
        let response = (shared.handler)(request);
        if write_response(&stream, &response, head.keep_alive).is_err() || !head.keep_alive {
            return;
        }
    }
}

/// Whether the client of `stream` hung up: a peek that finds the end of the stream (or an
/// error) says so; bytes of a next request, or none yet, say it is there. The read timeout is
/// put back to `timeout`.
fn is_gone(stream: &TcpStream, timeout: Duration) -> bool {
    let mut byte = [0u8; 1];
    if stream
        .set_read_timeout(Some(Duration::from_millis(1)))
        .is_err()
    {
        return true;
    }
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => !matches!(
            error.kind(),
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        ),
    };
    gone || stream.set_read_timeout(Some(timeout)).is_err()
}

/// Reads until `buffer` holds a whole head and parses it. `Ok(None)`: the client closed or
/// went idle between requests. The whole head must come within `deadline` of its first byte.
fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    deadline: Duration,
) -> Result<Option<Head>, Refusal> {
    let mut started: Option<Instant> = (!buffer.is_empty()).then(wall_now);
    loop {
        if started.is_some_and(|start| start.elapsed() >= deadline) {
            let seconds = deadline.as_secs_f64();
            return Err((
                408,
                format!("the request stalled: no whole head within {seconds} s"),
            ));
        }
        if !buffer.is_empty()
            && let Some(head) = parse_head(buffer)?
        {
            return Ok(Some(head));
        }
        match read_some(stream, buffer, (HEAD_MAX + 1).saturating_sub(buffer.len())) {
            Ok(0) if buffer.is_empty() => return Ok(None),
            Ok(0) => return Err((400, "the connection ended mid-request".into())),
            Ok(_) => {
                started.get_or_insert_with(wall_now);
            }
            Err(_) if buffer.is_empty() => return Ok(None),
            Err(error) => return Err((408, format!("the request stalled: {error}"))),
        }
    }
}

/// Reads a body of `length` bytes, the start of it perhaps in `buffer` already; what is past
/// it stays in `buffer` (the next request).
fn read_body<H>(
    shared: &Shared<H>,
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    length: u64,
) -> Result<Vec<u8>, Refusal> {
    let limits = shared.limits;
    if length > limits.body_bytes {
        return Err((413, format!("the body is over {} bytes", limits.body_bytes)));
    }
    let Some(_held) = hold(&shared.bodies, length, limits.bodies_bytes) else {
        return Err((
            503,
            "the door is reading as many bodies as it may; try again".into(),
        ));
    };
    let length = usize::try_from(length).map_err(|_| (413, "the body is too large".into()))?;
    let start = wall_now();
    while buffer.len() < length {
        if start.elapsed().as_secs() >= limits.body_seconds {
            let seconds = limits.body_seconds;
            return Err((408, format!("the body did not arrive within {seconds} s")));
        }
        match read_some(stream, buffer, length - buffer.len()) {
            Ok(0) => return Err((400, "the connection ended mid-body".into())),
            Ok(_) => {}
            Err(error) => return Err((408, format!("the body stalled: {error}"))),
        }
    }
    let rest = buffer.split_off(length);
    let body = std::mem::replace(buffer, rest);
    assert_eq!(body.len(), length, "the body is as long as it said");
    Ok(body)
}

/// Reads up to `most` more bytes (at most a chunk) onto `buffer`.
fn read_some(stream: &mut TcpStream, buffer: &mut Vec<u8>, most: usize) -> std::io::Result<usize> {
    let mut chunk = [0; CHUNK];
    let want = most.clamp(1, CHUNK);
    loop {
        match stream.read(&mut chunk[..want]) {
            Ok(n) => {
                buffer.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        401 => "Unauthorized",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(
    mut stream: &TcpStream,
    response: &HttpResponse,
    keep_alive: bool,
) -> std::io::Result<()> {
    let kind = if response.json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let length = match &response.body {
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::Streamed(body) => {
            let mut counter = Counter(0);
            body.write_to(&mut counter)?;
            counter.0
        }
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\nConnection: \
         {connection}\r\n\r\n",
        response.status,
        reason(response.status),
    );
    match &response.body {
        Body::Bytes(body) => {
            // One write: a head and body sent apart would wait out the peer's delayed ACK.
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(body);
            stream.write_all(&bytes)?;
        }
        Body::Streamed(body) => {
            let mut out = std::io::BufWriter::with_capacity(CHUNK, stream);
            out.write_all(head.as_bytes())?;
            let mut counted = Counted {
                out: &mut out,
                bytes: 0,
            };
            body.write_to(&mut counted)?;
            assert_eq!(
                counted.bytes, length,
                "a streamed body writes the same bytes twice"
            );
            out.flush()?;
        }
    }
    stream.flush()
}

/// Passes writes on, counting them.
struct Counted<'a, W: Write> {
    out: &'a mut W,
    bytes: u64,
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_hold_what_fits_and_give_it_back() {
        let counter = AtomicU64::new(0);
        let first = hold(&counter, 60, 100);
        assert!(first.is_some());
        assert!(hold(&counter, 60, 100).is_none(), "over the budget");
        assert_eq!(
            counter.load(Ordering::SeqCst),
            60,
            "a refusal holds nothing"
        );
        drop(first);
        assert_eq!(counter.load(Ordering::SeqCst), 0);
        assert!(
            hold(&counter, 100, 100).is_some(),
            "exactly the budget fits"
        );
    }
}
