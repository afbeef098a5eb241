//! The network of a world, with the reference's guarantees (`../shared/notes/worlds.md` §1.2)
//! and the faults of the best simulators (§3).
//!
//! Guarantees: FIFO per ordered pair of nodes within a connection, no retries, no duplicates.
//! A connection is made by the first message on a pair and lasts until it breaks: a reset, a
//! crash of either node, a message over the reference's frame limit (10 485 800 bytes) or a
//! source that is not its sending node's (the reference checks `source.node` against the
//! peer); a break loses the message and the tail queued on the connection, both ways. A message
//! for a node the world does not know answers its sender `Offline` at once; one that must make
//! a connection to a node that is down is refused after a round trip, and one to a node cut
//! off times out after the reference's connect bound ([`CONNECT_TIMEOUT_NANOS`]); either way
//! its sender hears `Offline`. A live connection across a cut holds its messages until the cut
//! heals. A clog (of a link or of a node's interface) holds messages until it ends, in order.
//! A receiver whose inbox is full holds the link's head back (backpressure): nothing is lost.
//!
//! Each message takes a delay drawn per seed (a minimum plus an exponential tail, per link if
//! overridden); the arrival on a pair is never before the one sent ahead of it, unless the
//! beyond-reference `reorder` fault lets it pass.

use hyperkernel::{KernelMessage, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The reference's frame limit for one message between nodes, in bytes (its `rmp` encoding;
/// we bound the message's body, metadata and blob).
pub const NET_MESSAGE_BYTES_MAX: usize = 10_485_800;

/// The reference's bound on one connection attempt (`TIMEOUT`, 5 s).
pub const CONNECT_TIMEOUT_NANOS: u64 = 5_000_000_000;

/// How long a live connection survives a cut before its keepalive gives up: uniform in this
/// range, drawn per cut link (the reference's TCP keepalive probes every 30 s; WS pings every
/// 30 s), in nanoseconds.
pub const KEEPALIVE_NANOS: [u64; 2] = [30_000_000_000, 300_000_000_000];

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

/// Per-message chances of faults beyond the reference, in parts per million.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Beyond {
    /// A message may pass the one ahead of it on its pair.
    pub reorder_ppm: u32,
    /// A message arrives twice.
    pub duplicate_ppm: u32,
    /// A message is lost alone.
    pub drop_ppm: u32,
}

/// What became of a message handed to the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// On its link, due at this time (twice when duplicated).
    Queued(Timestamp),
    /// It cannot reach its node: its sender hears `Offline` at this time.
    Offline(Timestamp, OfflineReason),
    /// Lost with its connection's queued tail (this many messages in all), for this reason.
    Lost(LossReason, usize),
}

/// Why a message could not reach its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    /// The world has no such node.
    Unknown,
    /// The node is down: the connection was refused.
    Down,
    /// The node is cut off: the connection attempt timed out.
    Cut,
}

/// Why messages were lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    /// A message over [`NET_MESSAGE_BYTES_MAX`] broke its connection.
    TooLarge,
    /// A source that is not on the sending node broke its connection.
    Spoofed,
    /// The connection was reset.
    Reset,
    /// A node of the connection crashed.
    Crash,
    /// The beyond-reference `drop` fault took one message.
    Dropped,
    /// A cut outlasted the connection's keepalive.
    Keepalive,
}

/// One ordered pair's link.
#[derive(Debug, Default)]
struct Link {
    // In flight, in send order, each with its due time.
    // Invariant: without `reorder`, no message of `queue` is due before the one ahead of it.
    queue: VecDeque<(Timestamp, KernelMessage)>,
    tail: Timestamp,
    connected: bool,
    // Connections made on this pair so far.
    epoch: u64,
    cut: bool,
    // When a live connection across the cut gives up (its keepalive).
    keepalive_until: Option<Timestamp>,
    clog_until: Timestamp,
    // Its own delay (min, mean in nanoseconds), if overridden.
    delay: Option<(u64, u64)>,
}

/// An `Offline` on its way back to its sender.
#[derive(Debug)]
struct Refusal {
    at: Timestamp,
    from: usize,
    message: KernelMessage,
    reason: OfflineReason,
}

/// The network of one world.
#[derive(Debug)]
pub struct Net {
    config: NetConfig,
    beyond: Beyond,
    rng: ChaCha8Rng,
    // Keyed by (from, to) node index.
    links: BTreeMap<(usize, usize), Link>,
    down: BTreeSet<usize>,
    node_clogs: BTreeMap<usize, Timestamp>,
    refusals: VecDeque<Refusal>,
    sent: u64,
    delivered: u64,
    lost: u64,
}

impl Net {
    /// A network drawing its delays from `rng`.
    pub fn new(config: NetConfig, rng: ChaCha8Rng) -> Self {
        Self {
            config,
            beyond: Beyond::default(),
            rng,
            links: BTreeMap::new(),
            down: BTreeSet::new(),
            node_clogs: BTreeMap::new(),
            refusals: VecDeque::new(),
            sent: 0,
            delivered: 0,
            lost: 0,
        }
    }

    /// Gives the link between `a` and `b` (both ways) its own delay, in nanoseconds.
    pub fn set_link_delay(&mut self, a: usize, b: usize, min: u64, mean: u64) {
        for pair in [(a, b), (b, a)] {
            self.links.entry(pair).or_default().delay = Some((min, mean));
        }
    }

    /// Sets the faults beyond the reference (zero turns them off).
    pub fn set_beyond(&mut self, beyond: Beyond) {
        self.beyond = beyond;
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.next_u64() % 1_000_000 < u64::from(ppm)
    }

    /// A delay on `pair`: its minimum plus an exponential tail with its mean.
    fn delay(&mut self, pair: (usize, usize)) -> u64 {
        let (min, mean) = self
            .links
            .get(&pair)
            .and_then(|link| link.delay)
            .unwrap_or((self.config.delay_min_nanos, self.config.delay_mean_nanos));
        let unit = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let tail = -(1.0 - unit).ln() * mean as f64;
        let tail = if tail.is_finite() { tail as u64 } else { 0 };
        min.saturating_add(tail.min(60_000_000_000))
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
            return self.refuse(now, from, message, OfflineReason::Unknown);
        };
        let broken = if *message.source.node != *from_name {
            Some(LossReason::Spoofed)
        } else if message_bytes(&message) > NET_MESSAGE_BYTES_MAX {
            Some(LossReason::TooLarge)
        } else {
            None
        };
        if let Some(reason) = broken {
            // The connection closes: what was queued on it is lost with the message.
            let lost = self.reset(from, to) + 1;
            self.lost += 1;
            return Sent::Lost(reason, lost);
        }
        let delay = self.delay((from, to));
        let cut = self.links.get(&(from, to)).is_some_and(|link| link.cut);
        let connected = self.links.get(&(from, to)).is_some_and(|l| l.connected);
        if !connected && self.down.contains(&to) {
            let at = Timestamp(now.0.saturating_add(delay.saturating_mul(2)));
            return self.refuse(at, from, message, OfflineReason::Down);
        }
        if !connected && cut {
            let at = Timestamp(now.0.saturating_add(CONNECT_TIMEOUT_NANOS));
            return self.refuse(at, from, message, OfflineReason::Cut);
        }
        if self.chance(self.beyond.drop_ppm) {
            self.lost += 1;
            return Sent::Lost(LossReason::Dropped, 1);
        }
        let reorder = self.chance(self.beyond.reorder_ppm);
        let copies = if self.chance(self.beyond.duplicate_ppm) {
            2
        } else {
            1
        };
        let link = self.links.entry((from, to)).or_default();
        if !link.connected {
            link.connected = true;
            link.epoch += 1;
        }
        let mut due = Timestamp(now.0.saturating_add(delay));
        if !reorder {
            due = due.max(link.tail);
        }
        link.tail = link.tail.max(due);
        for _ in 0..copies {
            let place = link.queue.partition_point(|(at, _)| *at <= due);
            link.queue.insert(place, (due, message.clone()));
        }
        debug_assert!(
            link.queue
                .iter()
                .zip(link.queue.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0),
            "a link's queue is in due order"
        );
        Sent::Queued(due)
    }

    fn refuse(
        &mut self,
        at: Timestamp,
        from: usize,
        message: KernelMessage,
        reason: OfflineReason,
    ) -> Sent {
        let place = self.refusals.partition_point(|r| r.at <= at);
        self.refusals.insert(
            place,
            Refusal {
                at,
                from,
                message,
                reason,
            },
        );
        Sent::Offline(at, reason)
    }

    /// The next refusal due by `now`: its sender, message and reason.
    pub fn take_refusal(
        &mut self,
        now: Timestamp,
    ) -> Option<(usize, KernelMessage, OfflineReason)> {
        if self.refusals.front().is_none_or(|r| r.at > now) {
            return None;
        }
        let refusal = self.refusals.pop_front()?;
        Some((refusal.from, refusal.message, refusal.reason))
    }

    /// When link `pair`'s messages may move again: the end of its clog and of its nodes'.
    fn held_until(&self, pair: (usize, usize), link: &Link) -> Timestamp {
        let node = |n: usize| self.node_clogs.get(&n).copied().unwrap_or_default();
        link.clog_until.max(node(pair.0)).max(node(pair.1))
    }

    /// When the next message or refusal is due anywhere (a cut link's are not).
    pub fn next_due(&self) -> Option<Timestamp> {
        let links = self.links.iter().filter(|(_, link)| !link.cut);
        let heads = links.filter_map(|(pair, link)| {
            let (at, _) = link.queue.front()?;
            Some((*at).max(self.held_until(*pair, link)))
        });
        heads
            .chain(self.refusals.front().map(|r| r.at))
            .chain(self.next_keepalive())
            .min()
    }

    /// The links with a message deliverable by `now`, as (from, to), in a fixed order.
    pub fn due_links(&self, now: Timestamp) -> Vec<(usize, usize)> {
        self.links
            .keys()
            .filter(|pair| self.peek_due(**pair, now).is_some())
            .copied()
            .collect()
    }

    /// The head of link `pair`, if it may be delivered at `now`.
    pub fn peek_due(&self, pair: (usize, usize), now: Timestamp) -> Option<&KernelMessage> {
        let link = self.links.get(&pair)?;
        let (at, message) = link.queue.front()?;
        let free = !link.cut && self.held_until(pair, link) <= now && !self.down.contains(&pair.1);
        (*at <= now && free).then_some(message)
    }

    /// Takes the head of link `pair` off: it was delivered. Returns it with its connection's
    /// epoch.
    pub fn pop(&mut self, pair: (usize, usize)) -> Option<(KernelMessage, u64)> {
        let link = self.links.get_mut(&pair)?;
        let (_, message) = link.queue.pop_front()?;
        self.delivered += 1;
        Some((message, link.epoch))
    }

    /// The epoch of the connection on `pair` (0: none was ever made).
    pub fn epoch(&self, pair: (usize, usize)) -> u64 {
        self.links.get(&pair).map_or(0, |link| link.epoch)
    }

    /// Whether `pair` has a live connection.
    pub fn connected(&self, pair: (usize, usize)) -> bool {
        self.links.get(&pair).is_some_and(|link| link.connected)
    }

    /// Breaks the connection between `a` and `b` (both ways): returns the messages lost.
    pub fn reset(&mut self, a: usize, b: usize) -> usize {
        let mut lost = 0;
        for pair in [(a, b), (b, a)] {
            if let Some(link) = self.links.get_mut(&pair) {
                lost += link.queue.len();
                link.queue.clear();
                link.connected = false;
                link.tail = Timestamp(0);
            }
        }
        self.lost += lost as u64;
        lost
    }

    /// Node `node` crashed: every connection of it breaks; until [`Net::boot`], connections
    /// to it are refused. Returns the messages lost.
    pub fn crash(&mut self, node: usize) -> usize {
        self.down.insert(node);
        let peers: BTreeSet<usize> = self
            .links
            .keys()
            .filter_map(|&(a, b)| match (a == node, b == node) {
                (true, _) => Some(b),
                (_, true) => Some(a),
                _ => None,
            })
            .collect();
        peers.into_iter().map(|peer| self.reset(node, peer)).sum()
    }

    /// Node `node` is up again.
    pub fn boot(&mut self, node: usize) {
        self.down.remove(&node);
    }

    /// Whether `node` is down.
    pub fn is_down(&self, node: usize) -> bool {
        self.down.contains(&node)
    }

    /// Cuts every link from a node of `from` to a node of `to` (and back unless `one_way`) at
    /// `now`; a live connection across it gives up after a keepalive drawn per link.
    pub fn cut(&mut self, from: &[usize], to: &[usize], one_way: bool, now: Timestamp) {
        for &a in from {
            for &b in to {
                self.cut_link((a, b), now);
                if !one_way {
                    self.cut_link((b, a), now);
                }
            }
        }
    }

    fn cut_link(&mut self, pair: (usize, usize), now: Timestamp) {
        let [min, max] = KEEPALIVE_NANOS;
        let keepalive = min + self.rng.next_u64() % (max - min + 1);
        let link = self.links.entry(pair).or_default();
        if !link.cut {
            link.cut = true;
            link.keepalive_until = link
                .connected
                .then(|| Timestamp(now.0.saturating_add(keepalive)));
        }
        debug_assert!(link.cut, "the link is cut");
    }

    /// Every cut heals.
    pub fn heal(&mut self) {
        for link in self.links.values_mut() {
            link.cut = false;
            link.keepalive_until = None;
        }
    }

    /// When the next live connection across a cut gives up.
    pub fn next_keepalive(&self) -> Option<Timestamp> {
        self.links
            .values()
            .filter(|link| link.cut && link.connected)
            .filter_map(|link| link.keepalive_until)
            .min()
    }

    /// Breaks every live connection whose cut outlasted its keepalive by `now`: each pair
    /// broken (the lower node first) with the messages it lost.
    pub fn expire_keepalives(&mut self, now: Timestamp) -> Vec<((usize, usize), usize)> {
        let expired: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(_, link)| link.cut && link.connected)
            .filter(|(_, link)| link.keepalive_until.is_some_and(|t| t <= now))
            .map(|(pair, _)| *pair)
            .collect();
        let mut out = Vec::new();
        for (a, b) in expired {
            if !self.connected((a, b)) {
                continue; // broken already, with its reverse
            }
            for pair in [(a, b), (b, a)] {
                if let Some(link) = self.links.get_mut(&pair) {
                    link.keepalive_until = None;
                }
            }
            out.push(((a, b), self.reset(a, b)));
        }
        debug_assert!(
            self.next_keepalive().is_none_or(|t| t > now),
            "every expired keepalive broke its connection"
        );
        out
    }

    /// Whether link `pair` is cut.
    pub fn is_cut(&self, pair: (usize, usize)) -> bool {
        self.links.get(&pair).is_some_and(|link| link.cut)
    }

    /// The link between `a` and `b` (both ways) holds its messages until `until`.
    pub fn clog_link(&mut self, a: usize, b: usize, until: Timestamp) {
        for pair in [(a, b), (b, a)] {
            let link = self.links.entry(pair).or_default();
            link.clog_until = link.clog_until.max(until);
        }
    }

    /// Everything `node` sends or receives is held until `until`.
    pub fn clog_node(&mut self, node: usize, until: Timestamp) {
        let clog = self.node_clogs.entry(node).or_default();
        *clog = (*clog).max(until);
    }

    /// Faults stop: cuts heal, clogs end, the beyond-reference faults turn off.
    pub fn stop_faults(&mut self) {
        self.heal();
        for link in self.links.values_mut() {
            link.clog_until = Timestamp(0);
        }
        self.node_clogs.clear();
        self.beyond = Beyond::default();
    }

    /// Messages sent, delivered and lost so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.sent, self.delivered, self.lost)
    }

    /// Messages still in flight, and refusals on their way.
    pub fn in_flight(&self) -> usize {
        self.links
            .values()
            .map(|link| link.queue.len())
            .sum::<usize>()
            + self.refusals.len()
    }

    /// Each link with something in flight, or cut, or clogged: one line each.
    pub fn describe(&self, names: &[String], now: Timestamp) -> Vec<String> {
        let name = |i: usize| names.get(i).map_or("?", String::as_str);
        let mut out = Vec::new();
        for (&(a, b), link) in &self.links {
            let held = self.held_until((a, b), link);
            if link.queue.is_empty() && !link.cut && held <= now {
                continue;
            }
            let mut line = format!(
                "{} -> {}: {} in flight, connection {}{}",
                name(a),
                name(b),
                link.queue.len(),
                link.epoch,
                if link.connected { "" } else { " (none live)" }
            );
            if link.cut {
                line.push_str(", cut");
            }
            if held > now {
                line.push_str(&format!(", clogged until {held}"));
            }
            out.push(line);
        }
        for node in &self.down {
            out.push(format!("{} is down", name(*node)));
        }
        out
    }
}

/// The bytes of a message's body, metadata and blob.
fn message_bytes(message: &KernelMessage) -> usize {
    message.message.body().len()
        + message.message.metadata().map_or(0, str::len)
        + message.lazy_load_blob.as_ref().map_or(0, |b| b.bytes.len())
}
