//! Process table entries: metadata, lifecycle state, mailbox and per-process host state.
//!
//! Lifecycle moves go through `RunState::can_move_to`, a table of legal edges; every move is
//! asserted against it (`ProcessEntry::set_state`).

use crate::caps::CapKey;
use crate::env::Timestamp;
use crate::process::Process;
use crate::types::{
    Address, Context, KernelMessage, LazyLoadBlob, OnExit, Request, WrappedSendError,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Where a process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RunState {
    /// Initialized, not yet run: messages wait in the pre-boot queue (the mailbox).
    PreBoot,
    /// Run, waiting for its first slice (`Wake::Init`).
    Starting,
    /// Blocked in `receive`.
    Receiving,
    /// Blocked in `send-and-await-response` for this request id.
    Awaiting(u64),
    /// Preempted; runnable.
    Yielded,
    /// Asleep until the kernel's timer with this sequence number fires (`Flow::Sleep`).
    Sleeping(u64),
    /// Running right now (its runtime is out of the table).
    Running,
}

impl RunState {
    /// The legal lifecycle edges. Exits leave the table from any state, so they are not edges.
    pub fn can_move_to(self, next: RunState) -> bool {
        use RunState::{Awaiting, PreBoot, Receiving, Running, Sleeping, Starting, Yielded};
        matches!(
            (self, next),
            (PreBoot, Starting | Receiving)
                | (Starting | Receiving | Awaiting(_) | Yielded, Running)
                | (Running, Receiving | Awaiting(_) | Yielded | Sleeping(_))
                | (Sleeping(_), Yielded)
        )
    }
}

/// Something waiting in a mailbox.
#[derive(Clone, Debug)]
pub(crate) enum Delivery {
    Message(Box<KernelMessage>),
    Error(Box<WrappedSendError>),
    Alarm(u64),
}

impl Delivery {
    /// The message or request id, if any.
    pub(crate) fn id(&self) -> Option<u64> {
        match self {
            Self::Message(message) => Some(message.id),
            Self::Error(error) => Some(error.id),
            Self::Alarm(_) => None,
        }
    }

    /// The message bytes it holds: body, metadata and blob (of the message a send error
    /// hands back).
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Message(message) => message_len(message),
            Self::Error(error) => {
                let message = &error.error.message;
                let blob = error
                    .error
                    .lazy_load_blob
                    .as_ref()
                    .map_or(0, |b| b.bytes.len());
                (message.body().len() + message.metadata().map_or(0, str::len) + blob) as u64
            }
            Self::Alarm(_) => 0,
        }
    }

    /// Whether this answers the request with `id` (a response or a send error).
    pub(crate) fn answers(&self, id: u64) -> bool {
        match self {
            Self::Message(message) => message.id == id && !message.message.is_request(),
            Self::Error(error) => error.id == id,
            Self::Alarm(_) => false,
        }
    }
}

/// The bytes a message carries: body, metadata and blob.
pub(crate) fn message_len(message: &KernelMessage) -> u64 {
    let metadata = message.message.metadata().map_or(0, str::len);
    let blob = message.lazy_load_blob.as_ref().map_or(0, |b| b.bytes.len());
    (message.message.body().len() + metadata + blob) as u64
}

/// What `send-response` and `inherit` need of the prompting request: its route, not its body.
#[derive(Clone, Debug)]
pub(crate) struct Prompting {
    pub(crate) id: u64,
    pub(crate) source: Address,
    pub(crate) rsvp: Option<Address>,
}

/// A request this process sent with `expects_response`, awaiting its answer.
#[derive(Clone, Debug)]
pub(crate) struct PendingRequest {
    /// The prompting message when the request was sent, restored when the answer arrives.
    pub(crate) prompting: Option<Prompting>,
    pub(crate) prompting_blob: Option<LazyLoadBlob>,
    /// The requester's context.
    pub(crate) context: Option<Context>,
    /// What a timeout hands back.
    pub(crate) target: Address,
    pub(crate) request: Request,
    pub(crate) blob: Option<LazyLoadBlob>,
    /// The timeout timer, until the answer is enqueued.
    pub(crate) deadline: Option<(Timestamp, u64)>,
    /// An answer (response or send error) is enqueued; later ones are dropped.
    pub(crate) answered: bool,
}

impl PendingRequest {
    /// The message bytes kept: the request's body and metadata and its blob.
    pub(crate) fn len(&self) -> u64 {
        let metadata = self.request.metadata.as_ref().map_or(0, String::len);
        let blob = self.blob.as_ref().map_or(0, |b| b.bytes.len());
        (self.request.body.len() + metadata + blob) as u64
    }
}

/// The per-process host state of the reference (spec §4.0), shared by every runtime.
#[derive(Clone, Debug, Default)]
pub(crate) struct HostState {
    /// The request a `send-response` answers; every delivered request replaces it (W16 fix).
    pub(crate) prompting: Option<Prompting>,
    /// The blob of the prompting request, which `inherit` forwards (W17 fix).
    pub(crate) prompting_blob: Option<LazyLoadBlob>,
    pub(crate) last_blob: Option<LazyLoadBlob>,
    pub(crate) last_message_blobbed: bool,
    // Invariant: one entry per outstanding request with `expects_response`; each entry's timer
    // is in the kernel's timer queue until `answered` (host.rs, routing.rs).
    // Boxed: B-tree nodes shift their values on insert and remove.
    pub(crate) contexts: BTreeMap<u64, Box<PendingRequest>>,
    // Invariant: the sum of `PendingRequest::len` over `contexts`.
    pub(crate) pending_bytes: u64,

    /// Capabilities that arrived on delivered messages: what `save-capabilities` may keep (W2).
    pub(crate) received_caps: ReceivedCaps,
    /// This run's own random stream (`ProcessContext::fill_random`): keyed at its start by
    /// the kernel's seed, the process, the instant and the kernel's count of starts; made on
    /// the first draw.
    pub(crate) random_key: Option<[u8; 32]>,
    pub(crate) random: Option<Box<rand_chacha::ChaCha8Rng>>,
}

/// Most received capabilities a process remembers for `save-capabilities`; older ones are
/// forgotten first, so a process that is sent endless capabilities cannot grow the kernel.
pub(crate) const RECEIVED_CAPS_MAX: usize = 4096;

/// The capabilities a process received, bounded, oldest forgotten first.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReceivedCaps {
    keys: BTreeSet<CapKey>,
    // Invariant: the same keys as `keys`, in the order they were first received.
    order: VecDeque<CapKey>,
}

impl ReceivedCaps {
    /// Remembers `key`; forgets the oldest beyond `max`.
    pub(crate) fn insert(&mut self, key: CapKey, max: usize) {
        if self.keys.contains(&key) {
            return;
        }
        self.keys.insert(key.clone());
        self.order.push_back(key);
        while self.order.len() > max {
            if let Some(oldest) = self.order.pop_front() {
                self.keys.remove(&oldest);
            }
        }
    }

    pub(crate) fn contains(&self, key: &CapKey) -> bool {
        self.keys.contains(key)
    }
}

/// One process in the table.
pub(crate) struct ProcessEntry {
    pub(crate) wasm_bytes_handle: String,
    pub(crate) wit_version: Option<u32>,
    /// The one on-exit value: `SetOnExit` and `set-on-exit` both change it (W10 fix).
    pub(crate) on_exit: OnExit,
    pub(crate) public: bool,
    /// The code, kept for restarts.
    pub(crate) code: Arc<[u8]>,
    /// The SHA-256 of `code` (`None` when it is empty): its key in the code table.
    pub(crate) code_hash: Option<super::persist::CodeHash>,
    // Invariant: moves only along `RunState::can_move_to` (`set_state`).
    pub(crate) state: RunState,
    // Invariant: at most `mailbox_len_max` requests (routing.rs enforces it on enqueue);
    // `requests_queued` counts them. Only `push`, `pop_front` and `take_answer` change it.
    pub(crate) mailbox: VecDeque<Delivery>,
    pub(crate) requests_queued: usize,
    // Invariant: the sum of `Delivery::len` over `mailbox` (`push`, `pop_front` and
    // `take_answer` keep it).
    pub(crate) mailbox_bytes: u64,
    pub(crate) host: HostState,
    /// `None` while running, and always for driven processes.
    pub(crate) runtime: Option<Box<dyn Process>>,
    /// Acted for by the harness; never scheduled.
    pub(crate) driven: bool,
    /// A runtime module the kernel's driver registered (`Kernel::register_native`, such as
    /// `timer:distro:sys`): no command may kill it, replace it, set its on-exit or drop its
    /// capabilities, and only runtime modules may carry the reference's unchecked names.
    pub(crate) runtime_module: bool,
    /// A driven process of the node itself (its terminal, its door): protected from client
    /// commands as runtime modules are (`Kernel::protect`).
    pub(crate) protected: bool,
    /// Its place in the kernel's ready set while it is ready (`ReadySet`).
    pub(crate) ready_slot: Option<usize>,
}

impl ProcessEntry {
    pub(crate) fn new(
        wasm_bytes_handle: String,
        on_exit: OnExit,
        public: bool,
        code: Arc<[u8]>,
    ) -> Self {
        let code_hash = (!code.is_empty()).then(|| super::persist::CodeHash::of(&code));
        Self::with_hash(wasm_bytes_handle, on_exit, public, code, code_hash)
    }

    /// `new` for code whose hash is known (restored, restarted): hashing a module again per
    /// process made boot cost a SHA-256 of the module per process.
    pub(crate) fn with_hash(
        wasm_bytes_handle: String,
        on_exit: OnExit,
        public: bool,
        code: Arc<[u8]>,
        code_hash: Option<super::persist::CodeHash>,
    ) -> Self {
        assert_eq!(
            code.is_empty(),
            code_hash.is_none(),
            "code has a hash, none has none"
        );
        debug_assert!(
            code_hash.is_none_or(|hash| hash == super::persist::CodeHash::of(&code)),
            "the hash is the code's"
        );
        Self {
            wasm_bytes_handle,
            wit_version: Some(1),
            on_exit,
            public,
            code,
            code_hash,
            state: RunState::PreBoot,
            mailbox: VecDeque::new(),
            requests_queued: 0,
            mailbox_bytes: 0,
            host: HostState::default(),
            runtime: None,
            driven: false,
            runtime_module: false,
            protected: false,
            ready_slot: None,
        }
    }

    pub(crate) fn set_state(&mut self, next: RunState) {
        assert!(
            self.state.can_move_to(next),
            "illegal lifecycle move {:?} -> {next:?}",
            self.state
        );
        self.state = next;
    }

    fn is_request(delivery: &Delivery) -> bool {
        matches!(delivery, Delivery::Message(m) if m.message.is_request())
    }

    /// Appends to the mailbox.
    /// Appends to the mailbox. The caller adds `delivery.len()` to the kernel's held bytes.
    pub(crate) fn push(&mut self, delivery: Delivery) {
        self.requests_queued += usize::from(Self::is_request(&delivery));
        self.mailbox_bytes += delivery.len();
        self.mailbox.push_back(delivery);
    }

    /// Takes the oldest delivery. The caller takes its `len()` off the kernel's held bytes.
    pub(crate) fn pop_front(&mut self) -> Option<Delivery> {
        let delivery = self.mailbox.pop_front()?;
        self.requests_queued -= usize::from(Self::is_request(&delivery));
        self.mailbox_bytes -= delivery.len();
        Some(delivery)
    }

    /// Takes the answer to request `id` out of the mailbox, wherever it is. The caller takes
    /// its `len()` off the kernel's held bytes.
    pub(crate) fn take_answer(&mut self, id: u64) -> Option<Delivery> {
        let position = self.mailbox.iter().position(|d| d.answers(id))?;
        let delivery = self.mailbox.remove(position)?;
        debug_assert!(!Self::is_request(&delivery), "an answer is never a request");
        self.mailbox_bytes -= delivery.len();
        Some(delivery)
    }

    /// Whether the scheduler may run this process now.
    pub(crate) fn is_ready(&self) -> bool {
        if self.driven {
            return false;
        }
        match self.state {
            RunState::Starting | RunState::Yielded => true,
            RunState::Receiving => !self.mailbox.is_empty(),
            RunState::Awaiting(id) => self.mailbox.iter().any(|d| d.answers(id)),
            RunState::PreBoot | RunState::Running | RunState::Sleeping(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> CapKey {
        let cap = crate::types::Capability::new(
            "our.os@app:app:our.os".parse().unwrap(),
            format!("{{\"n\":{n}}}"),
        );
        CapKey::try_from_capability(&cap).unwrap()
    }

    #[test]
    fn received_capabilities_are_bounded_and_forget_the_oldest_first() {
        let mut received = ReceivedCaps::default();
        for n in 0..5 {
            received.insert(key(n), 3);
        }
        received.insert(key(4), 3);
        assert!(!received.contains(&key(0)) && !received.contains(&key(1)));
        assert!((2..5).all(|n| received.contains(&key(n))));
        assert_eq!(received.order.len(), received.keys.len());
    }

    #[test]
    fn lifecycle_table_allows_only_the_documented_edges() {
        use RunState::*;
        assert!(PreBoot.can_move_to(Starting));
        assert!(Starting.can_move_to(Running));
        assert!(Running.can_move_to(Awaiting(3)));
        assert!(Awaiting(3).can_move_to(Running));
        assert!(
            !PreBoot.can_move_to(Running),
            "a process runs only after RunProcess"
        );
        assert!(!Receiving.can_move_to(Starting), "init runs once");
        assert!(!Running.can_move_to(PreBoot));
    }
}
