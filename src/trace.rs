//! The trace: every observable thing the kernel does, as an ordered list of events with a
//! running hash.
//!
//! Each event is encoded canonically and the chain hash is
//! `h[n] = xxh3_64_with_seed(le64(seq) ‖ le64(at) ‖ encode(event[n]), h[n-1])`, starting from
//! `h[-1] = 0`. `encode` writes the three per-message events (`Sent`, `Enqueued`, `Delivered`)
//! by hand with fixed-width little-endian fields behind tags `0xF0`–`0xF2` (the hot path);
//! every other event is `0xFF` followed by its postcard 1.x encoding (the stable wire format of
//! the serde data model). Process ids are encoded as their 64-bit digest, nodes as
//! `le64(len) ‖ bytes`. The hash does not depend on JSON, so the JSON-lines form can be
//! pretty-printed or extended with derived columns without changing it.
//!
//! Invariant: `seq` counts events with no gaps and `hash` is the chain over all of them, whether
//! or not they are kept (`TraceLevel::Hash` keeps none, `Full` keeps all).

use crate::env::Timestamp;
use crate::types::{Address, Capability, Message, ProcessId, SendErrorKind};
use crate::wire::CommandError;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// How much of the trace the kernel keeps in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceLevel {
    /// Only the running hash and the event count.
    Hash,
    /// Every event.
    #[default]
    Full,
}

/// Request or response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageKind {
    /// A request.
    Request,
    /// A response.
    Response,
}

impl MessageKind {
    /// The kind of `message`.
    pub fn of(message: &Message) -> Self {
        if message.is_request() {
            Self::Request
        } else {
            Self::Response
        }
    }
}

/// Why a message was not delivered. Every drop has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DropReason {
    /// The local source is not in the process map.
    SourceNotInProcessMap,
    /// The local target is not in the process map.
    NoSuchTarget,
    /// The target is neither public nor messageable by the source's capabilities.
    NoMessagingCapability,
    /// A local process without the network capability talked to another node.
    NoNetworkCapability,
    /// A message from another node for a missing or non-networked local process.
    RemoteTargetRefused,
    /// The other node cannot be reached (there is no network yet).
    NodeUnreachable,
    /// A response nobody is waiting for: no `expects_response`, timed out, or a duplicate.
    NoContext,
    /// The target was killed with this message still queued.
    TargetKilled,
    /// The target's mailbox is full.
    MailboxFull,
    /// The kernel shut down with this message still queued.
    KernelShutdown,
    /// The kernel's inbox is full (backpressure).
    InboxFull,
    /// A response addressed to the kernel, which sends but never awaits.
    ResponseToKernel,
    /// `send-response` without a request to answer.
    NoPromptingMessage,
    /// Body, metadata and blob exceed `KernelConfig::message_len_max`.
    TooLarge,
    /// A message from another node whose source claims our node (`Input::Submit`).
    SpoofedSource,
    /// A message from another node for a third node: a node never relays.
    Relay,
}

/// Why a process left the process table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitReason {
    /// `init` returned.
    Returned,
    /// The process trapped or failed; the text says how.
    Failed(String),
    /// `KillProcess`.
    Killed,
    /// `Shutdown`.
    Shutdown,
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A message entered the kernel's inbox.
    Sent {
        /// Message id.
        id: u64,
        /// Source.
        source: Address,
        /// Target, before `our` substitution.
        target: Address,
        /// Request or response.
        kind: MessageKind,
        /// The request's timeout in seconds.
        expects_response: Option<u64>,
        /// Body length in bytes.
        body_len: u64,
        /// xxh3-64 of the body.
        body_hash: u64,
    },
    /// A message passed the checks and was queued for a process.
    Enqueued {
        /// Message id.
        id: u64,
        /// The receiving process.
        process: ProcessId,
        /// Request or response.
        kind: MessageKind,
    },
    /// A process was handed a message or a send error.
    Delivered {
        /// Message id.
        id: u64,
        /// The receiving process.
        process: ProcessId,
        /// `None` for a send error.
        kind: Option<MessageKind>,
    },
    /// A message was dropped.
    Dropped {
        /// Message id.
        id: u64,
        /// Source.
        source: Address,
        /// Target.
        target: Address,
        /// Why.
        reason: DropReason,
    },
    /// A send error was queued for the sender of a request.
    SendErrorQueued {
        /// The request's id.
        id: u64,
        /// The sender that gets the error.
        process: ProcessId,
        /// Offline or Timeout.
        kind: SendErrorKind,
    },
    /// A kernel command was accepted for handling.
    Command {
        /// Message id.
        id: u64,
        /// Who sent it.
        source: Address,
        /// The command's name.
        command: String,
    },
    /// A kernel command failed.
    CommandFailed {
        /// Message id.
        id: u64,
        /// The error.
        error: CommandError,
    },
    /// The kernel answered a command.
    Replied {
        /// Message id.
        id: u64,
        /// Where the answer goes.
        target: Address,
        /// The `KernelResponse` JSON.
        body: String,
    },
    /// A process was registered by `InitializeProcess`.
    Initialized {
        /// The process.
        process: ProcessId,
        /// Capabilities it starts with.
        capabilities: Vec<Capability>,
    },
    /// A process started running.
    Started {
        /// The process.
        process: ProcessId,
    },
    /// A process was preempted (out of fuel) and waits to be resumed.
    Yielded {
        /// The process.
        process: ProcessId,
    },
    /// A process ended.
    Exited {
        /// The process.
        process: ProcessId,
        /// Why.
        reason: ExitReason,
    },
    /// A process's capabilities changed.
    CapabilitiesChanged {
        /// The holder.
        process: ProcessId,
        /// Added (canonical).
        added: Vec<Capability>,
        /// Removed (canonical).
        removed: Vec<Capability>,
    },
    /// A restart was scheduled by `OnExit::Restart`.
    RestartScheduled {
        /// The process.
        process: ProcessId,
        /// When it starts again.
        at: Timestamp,
    },
    /// A request timed out on the kernel clock.
    TimedOut {
        /// The request id.
        id: u64,
        /// The requester.
        process: ProcessId,
    },
    /// A native process's alarm fired.
    Alarm {
        /// The process.
        process: ProcessId,
        /// Its tag.
        tag: u64,
    },
    /// A process printed to the terminal.
    Print {
        /// The process.
        process: ProcessId,
        /// 0 = always shown … 3 = event-loop trace.
        verbosity: u8,
        /// The text.
        text: String,
    },
    /// The simulated clock jumped.
    ClockAdvanced {
        /// The new time.
        to: Timestamp,
    },
    /// The kernel shut down.
    Shutdown,
    /// Persisting the process map failed; the next change retries.
    StorageFailed {
        /// The storage error.
        reason: String,
    },
    /// A message for another node left through the outbox (`KernelConfig::network`).
    Transmitted {
        /// Message id.
        id: u64,
        /// Its target on another node.
        target: Address,
    },
    /// An injected fault fired (simulation only: a driver's `FaultHook`, or a fault outside the
    /// kernel the simulator records).
    FaultInjected {
        /// Which, and where.
        fault: Fault,
    },
    /// The body of the message just `Sent` (only with `KernelConfig::trace_bodies`): its JSON
    /// when it parses, else its text, cut past `TRACE_BODY_MAX` bytes.
    Body {
        /// The message.
        id: u64,
        /// The body as text.
        body: String,
    },
    /// A process went to sleep until an instant of the kernel's clock (`Flow::Sleep`).
    /// (New variants go last: the others keep their places, so existing traces keep their
    /// hashes.)
    Sleeping {
        /// The process.
        process: ProcessId,
        /// When it wakes.
        until: Timestamp,
    },
    /// Capabilities another node attached to message `id` that name our node as issuer and
    /// do not verify under our key: removed before the message went on.
    CapabilitiesPruned {
        /// The message.
        id: u64,
        /// Its (remote) source.
        source: Address,
        /// What was removed.
        capabilities: Vec<Capability>,
    },
}

/// An injected fault, as the trace records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Message `id` is held in transit until `until`.
    Delayed {
        /// The message.
        id: u64,
        /// When it is routed.
        until: Timestamp,
    },
    /// A run of `process` trapped after burning `fuel`.
    Trapped {
        /// The process.
        process: ProcessId,
        /// Fuel burnt in the run when it trapped.
        fuel: u64,
    },
    /// `process` was crashed between steps.
    Crashed {
        /// The process.
        process: ProcessId,
    },
    /// A network lost cross-node message `id` on its way to `to`.
    NetworkDropped {
        /// The message.
        id: u64,
        /// Where it was going.
        to: Address,
    },
    /// A network delivered cross-node message `id` to `to` twice.
    NetworkDuplicated {
        /// The message.
        id: u64,
        /// Where it was going.
        to: Address,
    },
    /// The whole node crashed (memory, mailboxes and messages in flight gone) and booted
    /// again from its store after `downtime_ms` simulated milliseconds.
    Rebooted {
        /// The downtime.
        downtime_ms: u64,
    },
    /// A simulated disk fault fired (a failed read, write or sync, a flipped bit, a full disk,
    /// a crash point), in words.
    Disk {
        /// What happened.
        what: String,
    },
}

/// One event with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Position, from 0.
    pub seq: u64,
    /// Kernel time.
    pub at: Timestamp,
    /// The chain hash after this event; 16 hex digits in JSON, since JSON numbers above 2^53
    /// lose precision in many readers.
    #[serde(with = "hex_u64")]
    pub hash: u64,
    /// What happened.
    pub event: Event,
}

/// Serde for a `u64` as 16 lowercase hex digits.
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:016x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// Most records a trace keeps undrained by default (`Trace::bounded` sets another bound).
pub const TRACE_RECORDS_MAX: usize = 1 << 24;
/// Most bytes of print text a trace keeps undrained: prints past it are counted as
/// overflowed like any record past the bound (300 000 prints of 16 KiB once kept 4.9 GB).
pub const TRACE_PRINT_BYTES_MAX: u64 = 64 << 20;

/// The running trace: the kernel's one output sink. Its records wait here until the driver
/// drains them; it keeps at most its bound of them, counting the rest as overflowed (the hash
/// chain covers every event whether kept or not), so a driver that falls behind costs bounded
/// memory and is told what it missed.
#[derive(Clone, Debug)]
pub struct Trace {
    level: TraceLevel,
    // Invariant: `seq` events were pushed; `hash` chains all of them (module docs).
    seq: u64,
    hash: u64,
    // Invariant: at most `records_max` records.
    records: Vec<TraceRecord>,
    records_max: usize,
    // Invariant: the bytes of print text in `records`, at most `TRACE_PRINT_BYTES_MAX`.
    print_bytes: u64,
    overflowed: u64,
    scratch: Vec<u8>,
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            level: TraceLevel::default(),
            seq: 0,
            hash: 0,
            records: Vec::new(),
            records_max: TRACE_RECORDS_MAX,
            print_bytes: 0,
            overflowed: 0,
            scratch: Vec::new(),
        }
    }
}

/// A postcard output that appends to a borrowed buffer (no moves of the buffer per field).
struct ScratchFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for ScratchFlavor<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The chain step: the hash after `event`, given the previous hash.
pub fn chain_hash(
    previous: u64,
    seq: u64,
    at: Timestamp,
    event: &Event,
    scratch: &mut Vec<u8>,
) -> u64 {
    scratch.clear();
    scratch.extend_from_slice(&seq.to_le_bytes());
    scratch.extend_from_slice(&at.0.to_le_bytes());
    encode_event(event, scratch);
    xxh3_64_with_seed(scratch, previous)
}

/// Appends the canonical encoding of `event` (module docs).
fn encode_event(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Sent {
            id,
            source,
            target,
            kind,
            expects_response,
            body_len,
            body_hash,
        } => {
            out.push(0xF0);
            out.extend_from_slice(&id.to_le_bytes());
            encode_address(source, out);
            encode_address(target, out);
            out.push(encode_kind(Some(*kind)));
            let (present, seconds) = expects_response.map_or((0, 0), |seconds| (1, seconds));
            out.push(present);
            for field in [seconds, *body_len, *body_hash] {
                out.extend_from_slice(&field.to_le_bytes());
            }
        }
        Event::Enqueued { id, process, kind } => {
            out.push(0xF1);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&process.digest().to_le_bytes());
            out.push(encode_kind(Some(*kind)));
        }
        Event::Delivered { id, process, kind } => {
            out.push(0xF2);
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&process.digest().to_le_bytes());
            out.push(encode_kind(*kind));
        }
        other => {
            out.push(0xFF);
            // Encoding into a Vec cannot fail: every field type is supported by postcard.
            let _ = postcard::serialize_with_flavor(other, ScratchFlavor(out));
        }
    }
}

fn encode_address(address: &Address, out: &mut Vec<u8>) {
    out.extend_from_slice(&(address.node.len() as u64).to_le_bytes());
    out.extend_from_slice(address.node.as_bytes());
    out.extend_from_slice(&address.process.digest().to_le_bytes());
}

fn encode_kind(kind: Option<MessageKind>) -> u8 {
    match kind {
        None => 0,
        Some(MessageKind::Request) => 1,
        Some(MessageKind::Response) => 2,
    }
}

impl Trace {
    /// An empty trace.
    pub fn new(level: TraceLevel) -> Self {
        Self {
            level,
            ..Self::default()
        }
    }

    /// This trace keeping at most `records_max` undrained records.
    #[must_use]
    pub fn bounded(mut self, records_max: usize) -> Self {
        assert!(
            records_max > 0,
            "a sink that keeps nothing is TraceLevel::Hash"
        );
        self.records_max = records_max;
        self
    }

    /// Events not kept because the sink was full when they came (since the last drain).
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Appends `event` at time `at`.
    pub fn push(&mut self, at: Timestamp, event: Event) {
        let hash = chain_hash(self.hash, self.seq, at, &event, &mut self.scratch);
        let print_bytes = match &event {
            Event::Print { text, .. } => text.len() as u64,
            _ => 0,
        };
        let full = self.records.len() >= self.records_max
            || self.print_bytes + print_bytes > TRACE_PRINT_BYTES_MAX;
        if self.level == TraceLevel::Full && full {
            self.overflowed += 1;
        } else if self.level == TraceLevel::Full {
            self.print_bytes += print_bytes;
            debug_assert!(
                self.print_bytes <= TRACE_PRINT_BYTES_MAX,
                "prints kept in bound"
            );
            self.records.push(TraceRecord {
                seq: self.seq,
                at,
                hash,
                event,
            });
        }
        self.seq += 1;
        self.hash = hash;
    }

    /// The running hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many events were pushed.
    pub fn len(&self) -> u64 {
        self.seq
    }

    /// Whether no event was pushed.
    pub fn is_empty(&self) -> bool {
        self.seq == 0
    }

    /// The kept records (empty at `TraceLevel::Hash`).
    pub fn records(&self) -> &[TraceRecord] {
        &self.records
    }

    /// Takes the kept records out, e.g. to stream them to a file; the overflow count starts
    /// again from zero.
    pub fn drain(&mut self) -> Vec<TraceRecord> {
        self.overflowed = 0;
        self.print_bytes = 0;
        let records = std::mem::take(&mut self.records);
        debug_assert!(
            records.len() <= self.records_max,
            "the sink kept to its bound"
        );
        records
    }

    /// The kept records as JSON lines.
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for record in &self.records {
            out.push_str(&serde_json::to_string(record).unwrap_or_default());
            out.push('\n');
        }
        out
    }
}

/// Recomputes the chain over `records` (which must start at seq 0).
///
/// # Errors
/// The seq of the first record whose stored hash or position is wrong.
pub fn verify_chain(records: &[TraceRecord]) -> Result<u64, u64> {
    let mut hash = 0;
    let mut scratch = Vec::new();
    for (position, record) in records.iter().enumerate() {
        if record.seq != position as u64 {
            return Err(record.seq);
        }
        hash = chain_hash(hash, record.seq, record.at, &record.event, &mut scratch);
        if hash != record.hash {
            return Err(record.seq);
        }
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_reproducible_and_verifiable() {
        let mut a = Trace::new(TraceLevel::Full);
        let mut b = Trace::new(TraceLevel::Hash);
        for trace in [&mut a, &mut b] {
            trace.push(Timestamp(1), Event::Shutdown);
            trace.push(Timestamp(2), Event::ClockAdvanced { to: Timestamp(2) });
        }
        assert_eq!(a.hash(), b.hash());
        assert_eq!(a.len(), 2);
        assert!(b.records().is_empty());
        assert_eq!(verify_chain(a.records()), Ok(a.hash()));
        let mut tampered = a.records().to_vec();
        tampered[0].at = Timestamp(9);
        assert_eq!(verify_chain(&tampered), Err(0));
    }

    #[test]
    fn every_field_of_the_hand_encoded_events_reaches_the_hash() {
        let a = Address::new("node.os", ProcessId::timer());
        let b = Address::new("node.os", ProcessId::kernel());
        let sent = |source: &Address, expects_response, body_len| Event::Sent {
            id: 1,
            source: source.clone(),
            target: b.clone(),
            kind: MessageKind::Request,
            expects_response,
            body_len,
            body_hash: 0,
        };
        let delivered = |process: ProcessId, kind| Event::Delivered {
            id: 1,
            process,
            kind,
        };
        let events = [
            sent(&a, None, 0),
            sent(&a, Some(0), 0),
            sent(&b, None, 0),
            sent(&a, None, 1),
            delivered(ProcessId::timer(), None),
            delivered(ProcessId::timer(), Some(MessageKind::Request)),
            delivered(ProcessId::kernel(), None),
            Event::Enqueued {
                id: 1,
                process: ProcessId::timer(),
                kind: MessageKind::Request,
            },
            Event::Shutdown,
        ];
        let mut encodings = std::collections::BTreeSet::new();
        for event in &events {
            let mut out = Vec::new();
            encode_event(event, &mut out);
            assert!(
                encodings.insert(out),
                "{event:?} encodes like an earlier event"
            );
        }
    }

    #[test]
    fn a_full_sink_counts_what_it_did_not_keep_and_the_hash_covers_it() {
        let mut bounded = Trace::new(TraceLevel::Full).bounded(2);
        let mut whole = Trace::new(TraceLevel::Full);
        for trace in [&mut bounded, &mut whole] {
            for at in 0..5 {
                trace.push(Timestamp(at), Event::Shutdown);
            }
        }
        assert_eq!(bounded.records().len(), 2);
        assert_eq!(bounded.overflowed(), 3);
        assert_eq!(bounded.hash(), whole.hash());
        assert_eq!(bounded.drain().len(), 2);
        assert_eq!(bounded.overflowed(), 0);
        bounded.push(Timestamp(6), Event::Shutdown);
        assert_eq!(bounded.records().len(), 1, "drained, it keeps again");
    }

    #[test]
    fn json_lines_round_trip() {
        let mut trace = Trace::new(TraceLevel::Full);
        trace.push(
            Timestamp(5),
            Event::Print {
                process: ProcessId::timer(),
                verbosity: 1,
                text: "hi".into(),
            },
        );
        let line = trace.to_json_lines();
        let record: TraceRecord = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(&record, &trace.records()[0]);
    }
}
