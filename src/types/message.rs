//! Messages on the wire: `LazyLoadBlob`, `Request`, `Response`, `Message`, `KernelMessage` and
//! the send errors (spec §1.5, §1.7, §1.9, §1.10). Field order and names are the reference's,
//! so the derived JSON is byte-identical to it.

use crate::types::{Address, Capability};
use serde::{Deserialize, Serialize};

/// Opaque bytes a requester attaches to a request and gets back with the response.
pub type Context = Vec<u8>;

/// A capability together with the kernel's signature over its canonical bytes.
pub type SignedCapability = (Capability, Vec<u8>);

/// Bytes that travel beside a message and are loaded by the receiver only on demand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LazyLoadBlob {
    /// An optional MIME type.
    pub mime: Option<String>,
    /// The payload.
    pub bytes: Vec<u8>,
}

/// A request. `expects_response` is a timeout in seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Reuse the prompting message's id and rsvp (and blob when none is given).
    pub inherit: bool,
    /// Seconds to wait for a response; `None` for fire-and-forget.
    pub expects_response: Option<u64>,
    /// The payload.
    pub body: Vec<u8>,
    /// Free-form metadata, JSON by convention.
    pub metadata: Option<String>,
    /// Attached capabilities with their signatures.
    pub capabilities: Vec<SignedCapability>,
}

impl Request {
    /// A fire-and-forget request with `body` and nothing else.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            inherit: false,
            expects_response: None,
            body: body.into(),
            metadata: None,
            capabilities: Vec::new(),
        }
    }

    /// The same request, expecting a response within `seconds`.
    #[must_use]
    pub fn expecting(mut self, seconds: u64) -> Self {
        self.expects_response = Some(seconds);
        self
    }
}

/// A response to a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Attach the last received blob.
    pub inherit: bool,
    /// The payload.
    pub body: Vec<u8>,
    /// Free-form metadata, JSON by convention.
    pub metadata: Option<String>,
    /// Attached capabilities with their signatures.
    pub capabilities: Vec<SignedCapability>,
}

impl Response {
    /// A response with `body` and nothing else.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            inherit: false,
            body: body.into(),
            metadata: None,
            capabilities: Vec::new(),
        }
    }
}

/// A request, or a response with the requester's context (always `None` on the wire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response and the requester's context.
    Response((Response, Option<Context>)),
}

impl Message {
    /// The body of either kind.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request(request) => &request.body,
            Self::Response((response, _)) => &response.body,
        }
    }

    /// The metadata of either kind.
    pub fn metadata(&self) -> Option<&str> {
        match self {
            Self::Request(request) => request.metadata.as_deref(),
            Self::Response((response, _)) => response.metadata.as_deref(),
        }
    }

    /// The attached capabilities of either kind.
    pub fn capabilities(&self) -> &[SignedCapability] {
        match self {
            Self::Request(request) => &request.capabilities,
            Self::Response((response, _)) => &response.capabilities,
        }
    }

    /// `Some(seconds)` for a request that expects a response.
    pub fn expects_response(&self) -> Option<u64> {
        match self {
            Self::Request(request) => request.expects_response,
            Self::Response(_) => None,
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self, Self::Request(_))
    }
}

/// The envelope of every message the kernel routes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelMessage {
    /// Correlates a response with its request.
    pub id: u64,
    /// Who sent it.
    pub source: Address,
    /// Who should get it.
    pub target: Address,
    /// Where a response to this request should go instead of `source`.
    pub rsvp: Option<Address>,
    /// The message.
    pub message: Message,
    /// The blob beside it.
    pub lazy_load_blob: Option<LazyLoadBlob>,
}

/// Why a message could not be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SendErrorKind {
    /// The target node could not be reached.
    Offline,
    /// No response in time, or the target is missing or not allowed.
    Timeout,
}

/// An undeliverable message, handed back to its sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendError {
    /// Why.
    pub kind: SendErrorKind,
    /// Where it was going.
    pub target: Address,
    /// The original message.
    pub message: Message,
    /// The original blob.
    pub lazy_load_blob: Option<LazyLoadBlob>,
}

/// The kernel-internal envelope of a send error (the reference's `WrappedSendError`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedSendError {
    /// The id of the failed request.
    pub id: u64,
    /// Who reports it.
    pub source: Address,
    /// The error.
    pub error: SendError,
}
