//! The network of a world, with the reference's guarantees (`../shared/notes/worlds.md` §1.2):
//! FIFO per ordered pair of nodes, no retries, no duplicates; a message for a node the world
//! does not know answers its sender `Offline`; a message over the reference's frame limit
//! (10 485 800 bytes) breaks its connection, losing it and the tail queued behind it; a source
//! that is not its sending node's closes the connection likewise (the reference checks
//! `source.node` against the peer). Each message takes a delay drawn per seed (a minimum plus
//! an exponential tail); the arrival on a pair is never before the one sent ahead of it.
//! A receiver whose inbox is full holds the link's head back (backpressure): nothing is lost
//! for it.
//!
//! The faults of the worlds issue (clogs, partitions, resets, crashes) come in later slices.

use hyperkernel::{KernelMessage, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::collections::{BTreeMap, VecDeque};

/// The reference's frame limit for one message between nodes, in bytes (its `rmp` encoding;
/// we bound the message's body, metadata and blob).
pub const NET_MESSAGE_BYTES_MAX: usize = 10_485_800;

/// How a world's links delay messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The least one-way delay, in nanoseconds.
    pub delay_min_nanos: u64,
    /// The mean of the exponential delay on top of it, in nanoseconds.
    pub delay_mean_nanos: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            delay_min_nanos: 1_000_000,
            delay_mean_nanos: 5_000_000,
        }
    }
}

/// What became of a message handed to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// On its link, due at this time.
    Queued(Timestamp),
    /// Its node is not in the world: the sender hears `Offline`.
    Offline(Box<KernelMessage>),
    /// Lost with its connection's queued tail (this many messages in all), for this reason.
    Lost(LossReason, usize),
}

/// Why a connection broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossReason {
    /// A message over [`NET_MESSAGE_BYTES_MAX`].
    TooLarge,
    /// A source that is not on the sending node.
    Spoofed,
}

/// One ordered pair's link: messages in flight, in send order, each with its due time.
#[derive(Debug, Default)]
struct Link {
    queue: VecDeque<(Timestamp, KernelMessage)>,
    // Invariant: no message of `queue` is due before the one ahead of it.
    tail: Timestamp,
}

/// The network of one world.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    rng: ChaCha8Rng,
    // Keyed by (from, to) node index.
    links: BTreeMap<(usize, usize), Link>,
    sent: u64,
    delivered: u64,
    lost: u64,
}

impl Net {
    /// A network drawing its delays from `rng`.
    pub fn new(config: NetConfig, rng: ChaCha8Rng) -> Self {
        Self {
            config,
            rng,
            links: BTreeMap::new(),
            sent: 0,
            delivered: 0,
            lost: 0,
        }
    }

    /// A delay: the minimum plus an exponential tail with the configured mean.
    fn delay(&mut self) -> u64 {
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let tail = -(1.0 - unit).ln() * self.config.delay_mean_nanos as f64;
        let tail = if tail.is_finite() { tail as u64 } else { 0 };
        self.config
            .delay_min_nanos
            .saturating_add(tail.min(60_000_000_000))
    }

    /// Hands `message` from node `from` (named `from_name`) to the node at index `to` (`None`:
    /// no such node) at `now`.
    pub fn send(
        &mut self,
        from: usize,
        from_name: &str,
        to: Option<usize>,
        message: KernelMessage,
        now: Timestamp,
    ) -> Sent {
        self.sent += 1;
        let Some(to) = to else {
            return Sent::Offline(Box::new(message));
        };
        let reason = if *message.source.node != *from_name {
            Some(LossReason::Spoofed)
        } else if message_bytes(&message) > NET_MESSAGE_BYTES_MAX {
            Some(LossReason::TooLarge)
        } else {
            None
        };
        let delay = self.delay();
        let link = self.links.entry((from, to)).or_default();
        if let Some(reason) = reason {
            // The connection closes: what was queued on it is lost with the message.
            let lost = link.queue.len() + 1;
            link.queue.clear();
            self.lost += lost as u64;
            return Sent::Lost(reason, lost);
        }
        let due = Timestamp(now.0.saturating_add(delay)).max(link.tail);
        link.tail = due;
        link.queue.push_back((due, message));
        debug_assert!(
            link.queue
                .iter()
                .zip(link.queue.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0),
            "a link keeps its order"
        );
        Sent::Queued(due)
    }

    /// When the next message is due anywhere.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.links
            .values()
            .filter_map(|link| link.queue.front().map(|(at, _)| *at))
            .min()
    }

    /// The links with a message due by `now`, as (from, to), in a fixed order.
    pub fn due_links(&self, now: Timestamp) -> Vec<(usize, usize)> {
        self.links
            .iter()
            .filter(|(_, link)| link.queue.front().is_some_and(|(at, _)| *at <= now))
            .map(|(pair, _)| *pair)
            .collect()
    }

    /// The head of link `pair`, if due by `now`.
    pub fn peek_due(&self, pair: (usize, usize), now: Timestamp) -> Option<&KernelMessage> {
        let (at, message) = self.links.get(&pair)?.queue.front()?;
        (*at <= now).then_some(message)
    }

    /// Takes the head of link `pair` off: it was delivered.
    pub fn pop(&mut self, pair: (usize, usize)) -> Option<KernelMessage> {
        let (_, message) = self.links.get_mut(&pair)?.queue.pop_front()?;
        self.delivered += 1;
        Some(message)
    }

    /// Messages sent, delivered and lost so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.sent, self.delivered, self.lost)
    }

    /// Messages still in flight.
    pub fn in_flight(&self) -> usize {
        self.links.values().map(|link| link.queue.len()).sum()
    }
}

/// The bytes of a message's body, metadata and blob.
fn message_bytes(message: &KernelMessage) -> usize {
    message.message.body().len()
        + message.message.metadata().map_or(0, str::len)
        + message.lazy_load_blob.as_ref().map_or(0, |b| b.bytes.len())
}
