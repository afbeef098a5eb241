//! A simulated network around a one-node scenario's node: its peers on other nodes, one-way
//! latencies, and the cross-node faults (drop, duplicate) of the scenario's plan.
//!
//! The kernel hands messages for other nodes to its outbox (`KernelConfig::network`); after
//! every step the harness takes them and carries them here. A peer is a process on another
//! node, and that node is a real kernel (`peers.rs`) running it as the native `echo` (answers
//! each request with its body) or `sink` (takes everything). A message for a node without
//! peers answers its sender `Offline`; one for an unknown process on a peer's node is dropped
//! by that node's kernel, and its sender times out. Messages reach a node at a simulated time,
//! one latency after they leave, through its door (`Input::Submit`), so they pass its checks
//! for remote sources. Every hop may be dropped or duplicated; each such fault is recorded in
//! our node's trace and counted in its `Inside`.

use crate::node::inside::{Inside, PPM};
use crate::node::peers::Peers;
use crate::node::streams::{SimStream, rng};
use hyperkernel::{Fault, Kernel, KernelMessage, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::collections::BTreeMap;

pub use crate::format::network::{NetworkSpec, PeerSpec};

/// The network of one run.
pub struct Network {
    peers: Peers,
    latency: [u64; 2],
    drop_ppm: u32,
    duplicate_ppm: u32,
    rng: ChaCha8Rng,
    /// Where its faults are counted.
    inside: Inside,
    /// Messages on their way to our node, by arrival time and send order.
    arriving: BTreeMap<(Timestamp, u64), KernelMessage>,
    /// Messages on their way to a peer's node, likewise.
    to_peers: BTreeMap<(Timestamp, u64), KernelMessage>,
    /// Messages that arrived while our node's inbox was full, oldest first: held on the link
    /// (backpressure) and handed over, before anything later, from `retry_at` on.
    backlog: std::collections::VecDeque<KernelMessage>,
    retry_at: Timestamp,
    sequence: u64,
}

impl Network {
    /// The network of `spec` for `seed`, its peers' nodes booted, with the plan's drop and
    /// duplicate chances, counting its faults in `inside`.
    ///
    /// # Errors
    /// A peer's node did not boot or set up.
    pub fn new(
        spec: &NetworkSpec,
        seed: u64,
        (drop_ppm, duplicate_ppm): (u32, u32),
        inside: Inside,
    ) -> Result<Self, String> {
        Ok(Self {
            peers: Peers::new(spec, seed)?,
            latency: spec.latency_ms,
            drop_ppm,
            duplicate_ppm,
            rng: rng(seed, SimStream::Network),
            inside,
            arriving: BTreeMap::new(),
            to_peers: BTreeMap::new(),
            backlog: std::collections::VecDeque::new(),
            retry_at: Timestamp(0),
            sequence: 0,
        })
    }

    /// An id for a message a peer sends.
    pub fn fresh_id(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// No more drops or duplicates (the liveness phase).
    pub fn stop_faults(&mut self) {
        self.drop_ppm = 0;
        self.duplicate_ppm = 0;
    }

    /// When the next message reaches a node (a held one: when it is offered again).
    pub fn next_arrival(&self) -> Option<Timestamp> {
        let ours = if self.backlog.is_empty() {
            self.arriving.keys().next().map(|(at, _)| *at)
        } else {
            Some(self.retry_at)
        };
        let theirs = self.to_peers.keys().next().map(|(at, _)| *at);
        ours.into_iter().chain(theirs).min()
    }

    /// Whether nothing is on its way and every peer's node is idle.
    pub fn is_empty(&self) -> bool {
        self.arriving.is_empty()
            && self.to_peers.is_empty()
            && self.backlog.is_empty()
            && self.peers.quiescent()
    }

    /// Messages held on the link by a full inbox.
    pub fn held(&self) -> usize {
        self.backlog.len()
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.next_u32() % PPM < ppm
    }

    fn latency(&mut self) -> u64 {
        let [min, max] = self.latency;
        // Validated: min <= max <= MS_MAX, so neither the span nor the product overflows.
        let span = max.saturating_sub(min).saturating_add(1);
        let ms = min.saturating_add(self.rng.next_u64() % span);
        ms.saturating_mul(1_000_000)
    }

    /// How many copies of a message one hop delivers (0, 1 or 2), recording faults.
    fn hop(&mut self, kernel: &mut Kernel, message: &KernelMessage) -> usize {
        let (id, to) = (message.id, message.target.clone());
        if self.chance(self.drop_ppm) {
            self.inside.record(kernel, Fault::NetworkDropped { id, to });
            return 0;
        }
        if self.chance(self.duplicate_ppm) {
            self.inside
                .record(kernel, Fault::NetworkDuplicated { id, to });
            return 2;
        }
        1
    }

    /// Queues `message` to reach its node one latency after `from_time`.
    fn send(&mut self, from_time: Timestamp, message: KernelMessage, to_us: bool) {
        let at = Timestamp(from_time.0.saturating_add(self.latency()));
        let queue = if to_us {
            &mut self.arriving
        } else {
            &mut self.to_peers
        };
        queue.insert((at, self.sequence), message);
        self.sequence += 1;
    }

    /// Carries one message from our node's outbox.
    pub fn carry(&mut self, kernel: &mut Kernel, message: KernelMessage) {
        if !self.peers.has_node(&message.target.node) {
            let _ = kernel.input(hyperkernel::Input::Unreachable(Box::new(message)));
            return;
        }
        let now = kernel.now();
        for _ in 0..self.hop(kernel, &message) {
            self.send(now, message.clone(), false);
        }
    }

    /// A peer sends `message` now (a workload entry from a peer): its node's kernel sends it.
    ///
    /// # Errors
    /// The peer's kernel broke an invariant.
    pub fn send_in(&mut self, kernel: &mut Kernel, message: KernelMessage) -> Result<(), String> {
        let now = kernel.now();
        let out = self.peers.send(now, message)?;
        self.carry_from_peer(kernel, now, out)
    }

    /// Carries what a peer's node sent out at `at`: to our node, to another peer's node, or,
    /// for an unknown node, back to its sender as `Offline`.
    fn carry_from_peer(
        &mut self,
        kernel: &mut Kernel,
        at: Timestamp,
        mut out: Vec<KernelMessage>,
    ) -> Result<(), String> {
        let our = kernel.our().to_owned();
        // Each `Offline` is answered inside the peer, so this ends: at most one round more.
        for _ in 0..2 {
            let mut offline = Vec::new();
            for message in out.drain(..) {
                let to_us = *message.target.node == *our;
                if !to_us && !self.peers.has_node(&message.target.node) {
                    offline.push(message);
                    continue;
                }
                for _ in 0..self.hop(kernel, &message) {
                    self.send(at, message.clone(), to_us);
                }
            }
            for message in offline {
                out.extend(self.peers.unreachable(at, message)?);
            }
            if out.is_empty() {
                return Ok(());
            }
        }
        Err(format!(
            "a peer answered Offline with more messages: {out:?}"
        ))
    }

    /// Hands our node every message due by its clock, held ones first. A full inbox holds the
    /// rest on the link in order (backpressure, as the reference's per-peer queue does), to be
    /// offered again `RETRY_NANOS` later: nothing is lost to it.
    ///
    /// # Errors
    /// A peer's kernel broke an invariant.
    pub fn deliver_due(&mut self, kernel: &mut Kernel) -> Result<(), String> {
        let now = kernel.now();
        // First what reaches the peers' nodes by now, in the order it arrives.
        while let Some(entry) = self.to_peers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((at, _), message) = entry.remove_entry();
            let out = self.peers.deliver(at, message)?;
            self.carry_from_peer(kernel, at, out)?;
        }
        if !self.backlog.is_empty() && now < self.retry_at {
            return Ok(());
        }
        while let Some(entry) = self.arriving.first_entry() {
            if entry.key().0 > now {
                break;
            }
            self.backlog.push_back(entry.remove());
        }
        let before = self.backlog.len();
        while let Some(message) = self.backlog.pop_front() {
            // Taken, refused at the door (traced), or the node is down: gone either way.
            let submit = hyperkernel::Input::Submit(Box::new(message.clone()));
            if let Err(hyperkernel::KernelError::InboxFull) = kernel.input(submit) {
                self.backlog.push_front(message);
                self.retry_at = Timestamp(now.0.saturating_add(RETRY_NANOS));
                break;
            }
        }
        debug_assert!(
            self.backlog.len() <= before,
            "the backlog grew while draining"
        );
        debug_assert!(
            self.backlog.is_empty() || self.retry_at > now,
            "a held message with no retry"
        );
        Ok(())
    }
}

/// How long a message held by a full inbox waits before it is offered again.
const RETRY_NANOS: u64 = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use hyperkernel::{Event, Input, KernelBuilder, KernelConfig, Message, Request};

    #[test]
    fn a_full_inbox_holds_arrivals_on_the_link_in_order_and_loses_none() {
        let mut config = KernelConfig::new("sim.os", 1);
        config.network = true;
        config.inbox_len_max = 3;
        let mut kernel = KernelBuilder::new("sim.os", 1)
            .config(config)
            .build()
            .unwrap();
        let spec: NetworkSpec = serde_json::from_str(
            r#"{"peers": [{"address": "far.os@echo:sim:sim.os", "native": "echo"}]}"#,
        )
        .unwrap();
        let mut network = Network::new(&spec, 1, (0, 0), Inside::new(1)).unwrap();
        let ids: Vec<u64> = (100..108).collect();
        for id in &ids {
            network
                .send_in(
                    &mut kernel,
                    KernelMessage {
                        id: *id,
                        source: "far.os@echo:sim:sim.os".parse().unwrap(),
                        target: "sim.os@nobody:sim:sim.os".parse().unwrap(),
                        rsvp: None,
                        message: Message::Request(Request::new("hi")),
                        lazy_load_blob: None,
                    },
                )
                .unwrap();
        }
        // The order they arrive in (each after its own latency).
        let arrival_order: Vec<u64> = network.arriving.values().map(|m| m.id).collect();
        // All have arrived by 20 ms (latency 1 to 10 ms): the node takes them then.
        kernel.input(Input::Time(Timestamp(20_000_000))).unwrap();
        let mut held = Vec::new();
        while !network.is_empty() {
            let at = network.next_arrival().unwrap().max(kernel.now());
            kernel.input(Input::Time(at)).unwrap();
            network.deliver_due(&mut kernel).unwrap();
            held.push(network.held());
            while let Ok(hyperkernel::Output::Stepped(step)) = kernel.input(Input::Step) {
                if matches!(step, hyperkernel::Step::Idle(_)) {
                    break;
                }
            }
            assert!(held.len() < 10, "the link drains: {held:?}");
        }
        assert_eq!(held, vec![5, 2, 0], "three at a time, the rest held");
        // Every message reached the node's routing, in the order it arrived.
        let routed: Vec<u64> = kernel
            .trace()
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                Event::Dropped { id, .. } if ids.contains(id) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(routed, arrival_order);
        assert_eq!(routed.len(), ids.len());
    }
}
