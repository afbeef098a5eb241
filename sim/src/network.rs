//! A simulated network around the node: peers on other nodes, one-way latencies, and the
//! cross-node faults (drop, duplicate) of a scenario's plan.
//!
//! The kernel hands messages for other nodes to its outbox (`KernelConfig::network`); after
//! every step the harness takes them and carries them here. A peer is a process on another
//! node played by the harness: `echo` answers a request that expects a response with its body,
//! `sink` takes everything. A message for a node without peers answers its sender `Offline`;
//! one for an unknown process on a peer's node is lost, as the remote kernel would drop it,
//! and its sender times out. Messages arrive at the node at a simulated time (after one
//! latency each way) through `Kernel::submit`, so they pass the kernel's checks for remote
//! sources. Every hop may be dropped or duplicated; each such fault is recorded in the
//! kernel's trace and counted in the node's `Inside`.

use crate::inside::{Inside, PPM};
use crate::streams::{SimStream, rng};
use hyperkernel::{Address, Fault, Kernel, KernelMessage, Message, Response, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::collections::BTreeMap;

pub use crate::format::network::{NetworkSpec, PeerSpec};

/// The network of one run.
pub struct Network {
    peers: BTreeMap<Address, String>,
    latency: [u64; 2],
    drop_ppm: u32,
    duplicate_ppm: u32,
    rng: ChaCha8Rng,
    /// Where its faults are counted.
    inside: Inside,
    /// Messages on their way to our node, by arrival time and send order.
    arriving: BTreeMap<(Timestamp, u64), KernelMessage>,
    sequence: u64,
}

impl Network {
    /// The network of `spec` for `seed`, with the plan's drop and duplicate chances, counting
    /// its faults in `inside`.
    pub fn new(
        spec: &NetworkSpec,
        seed: u64,
        drop_ppm: u32,
        duplicate_ppm: u32,
        inside: Inside,
    ) -> Self {
        let peers = spec
            .peers
            .iter()
            .filter_map(|p| Some((p.address.parse().ok()?, p.native.clone())))
            .collect();
        Self {
            peers,
            latency: spec.latency_ms,
            drop_ppm,
            duplicate_ppm,
            rng: rng(seed, SimStream::Network),
            inside,
            arriving: BTreeMap::new(),
            sequence: 0,
        }
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

    /// When the next message reaches our node.
    pub fn next_arrival(&self) -> Option<Timestamp> {
        self.arriving.keys().next().map(|(at, _)| *at)
    }

    /// Whether nothing is on its way.
    pub fn is_empty(&self) -> bool {
        self.arriving.is_empty()
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

    /// Queues `message` to reach our node one latency after `from_time`.
    fn arrive(&mut self, from_time: Timestamp, message: KernelMessage) {
        let at = Timestamp(from_time.0.saturating_add(self.latency()));
        self.arriving.insert((at, self.sequence), message);
        self.sequence += 1;
    }

    /// Carries one message from our node's outbox.
    pub fn carry(&mut self, kernel: &mut Kernel, message: KernelMessage) {
        let node_known = self.peers.keys().any(|a| a.node == message.target.node);
        if !node_known {
            let _ = kernel.input(hyperkernel::Input::Unreachable(Box::new(message)));
            return;
        }
        let copies = self.hop(kernel, &message);
        let Some(behaviour) = self.peers.get(&message.target).cloned() else {
            return;
        };
        let sent_at = Timestamp(kernel.now().0.saturating_add(self.latency()));
        for _ in 0..copies {
            if let Some(answer) = answer(&behaviour, &message) {
                for _ in 0..self.hop(kernel, &answer) {
                    self.arrive(sent_at, answer.clone());
                }
            }
        }
    }

    /// A peer sends `message` into our node now (a workload entry from a peer).
    pub fn send_in(&mut self, kernel: &mut Kernel, message: KernelMessage) {
        for _ in 0..self.hop(kernel, &message) {
            self.arrive(kernel.now(), message.clone());
        }
    }

    /// Hands our node every message due by its clock. A full inbox loses the message, as a
    /// congested link would; the sender times out.
    pub fn deliver_due(&mut self, kernel: &mut Kernel) {
        while let Some(entry) = self.arriving.first_entry() {
            if entry.key().0 > kernel.now() {
                return;
            }
            let message = entry.remove();
            let _ = kernel.input(hyperkernel::Input::Submit(Box::new(message)));
        }
    }
}

/// A peer's answer to `message`, if any.
fn answer(behaviour: &str, message: &KernelMessage) -> Option<KernelMessage> {
    let Message::Request(request) = &message.message else {
        return None;
    };
    if behaviour != "echo" || request.expects_response.is_none() {
        return None;
    }
    Some(KernelMessage {
        id: message.id,
        source: message.target.clone(),
        target: message
            .rsvp
            .clone()
            .unwrap_or_else(|| message.source.clone()),
        rsvp: None,
        message: Message::Response((Response::new(request.body.clone()), None)),
        lazy_load_blob: None,
    })
}
