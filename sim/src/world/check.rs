//! The world's invariants, checked on every network event and delivery (worlds.md §4.6):
//!
//! - W2, no spoofing: a message is delivered only from the node its source names, and only to
//!   the node its target names.
//! - W3, order: per ordered pair and connection, the arrivals are an in-order prefix of the
//!   sends, with no duplicates (waived while a beyond-reference fault is on).
//! - W4: nothing is delivered to a node that is down.
//! - W5: `Offline` only for a node the world does not know, or one down or cut off when a
//!   connection had to be made; never over a live connection.
//!
//! The first broken one is kept (`take_broken`); the world stops its run on it.

use super::net::{Net, OfflineReason};
use super::{NetEvent, Node};
use hyperkernel::KernelMessage;
use std::collections::{BTreeMap, VecDeque};

/// The world's invariant checker.
#[derive(Debug, Default)]
pub struct WorldCheck {
    /// Per ordered pair: ids sent on its live connection, not yet delivered.
    in_flight: BTreeMap<(usize, usize), VecDeque<u64>>,
    /// A beyond-reference fault is on (W3 is waived).
    pub beyond: bool,
    broken: Option<String>,
}

impl WorldCheck {
    fn fail(&mut self, broken: String) {
        if self.broken.is_none() {
            self.broken = Some(broken);
        }
    }

    /// The first invariant that broke, once.
    pub fn take_broken(&mut self) -> Option<String> {
        self.broken.take()
    }

    /// A network event happened (after the network changed for it).
    pub fn on_event(&mut self, event: &NetEvent, net: &Net, nodes: &[Node]) {
        let name = |i: usize| nodes.get(i).map_or("?", |n| n.name.as_str()).to_owned();
        match event {
            NetEvent::Sent { from, to, id, .. } => {
                self.in_flight
                    .entry((*from, *to))
                    .or_default()
                    .push_back(*id);
            }
            NetEvent::Delivered { from, to, id } => self.delivered((*from, *to), *id, nodes),
            NetEvent::Offline {
                from, to, reason, ..
            } => {
                let fine = match (reason, to) {
                    (OfflineReason::Unknown, None) => true,
                    (OfflineReason::Down, Some(to)) => {
                        net.is_down(*to) && !net.connected((*from, *to))
                    }
                    (OfflineReason::Cut, Some(to)) => {
                        net.is_cut((*from, *to)) && !net.connected((*from, *to))
                    }
                    _ => false,
                };
                if !fine {
                    self.fail(format!(
                        "W5: Offline ({reason:?}) from {} to {} over a healthy link",
                        name(*from),
                        to.map_or("an unknown node".into(), name)
                    ));
                }
            }
            NetEvent::Lost { from, to, .. } | NetEvent::Reset { a: from, b: to, .. } => {
                self.in_flight.remove(&(*from, *to));
                self.in_flight.remove(&(*to, *from));
            }
            NetEvent::Crash { node, .. } => {
                self.in_flight.retain(|(a, b), _| a != node && b != node);
            }
            NetEvent::Cut { .. }
            | NetEvent::Heal
            | NetEvent::Clog { .. }
            | NetEvent::Boot { .. }
            | NetEvent::FaultsStopped => {}
        }
    }

    fn delivered(&mut self, pair: (usize, usize), id: u64, nodes: &[Node]) {
        let name = |i: usize| nodes.get(i).map_or("?", |n| n.name.as_str()).to_owned();
        if nodes.get(pair.1).is_some_and(|n| n.down_until.is_some()) {
            self.fail(format!(
                "W4: message {id} delivered to {}, which is down",
                name(pair.1)
            ));
        }
        if self.beyond {
            return;
        }
        let queue = self.in_flight.entry(pair).or_default();
        match queue.pop_front() {
            Some(expected) if expected == id => {}
            other => {
                let next = other.map_or("nothing".to_owned(), |o| format!("message {o}"));
                self.fail(format!(
                    "W3: {} -> {} delivered message {id} where {next} was next in send order",
                    name(pair.0),
                    name(pair.1)
                ));
            }
        }
    }

    /// Before a delivery on `pair`: the message's source and target name its two nodes.
    pub fn on_delivery(&mut self, pair: (usize, usize), message: &KernelMessage, nodes: &[Node]) {
        let name = |i: usize| nodes.get(i).map_or("?", |n| n.name.as_str());
        let (from, to) = (name(pair.0), name(pair.1));
        if *message.source.node != *from || *message.target.node != *to {
            self.fail(format!(
                "W2: message {} from {} to {} went from {from} to {to}",
                message.id, message.source, message.target
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::net::NetConfig;
    use rand_core::SeedableRng;

    fn net() -> Net {
        Net::new(
            NetConfig::default(),
            rand_chacha::ChaCha8Rng::seed_from_u64(0),
        )
    }

    fn sent(from: usize, to: usize, id: u64) -> NetEvent {
        NetEvent::Sent {
            from,
            to,
            id,
            due: hyperkernel::Timestamp(0),
        }
    }

    #[test]
    fn an_arrival_out_of_send_order_breaks_w3_unless_beyond_reference_faults_are_on() {
        let net = net();
        let mut check = WorldCheck::default();
        check.on_event(&sent(0, 1, 7), &net, &[]);
        check.on_event(&sent(0, 1, 8), &net, &[]);
        check.on_event(
            &NetEvent::Delivered {
                from: 0,
                to: 1,
                id: 8,
            },
            &net,
            &[],
        );
        let broken = check.take_broken().unwrap_or_default();
        assert!(broken.starts_with("W3:"), "{broken}");
        assert!(broken.contains("message 7 was next"), "{broken}");
        let mut waived = WorldCheck {
            beyond: true,
            ..WorldCheck::default()
        };
        waived.on_event(&sent(0, 1, 7), &net, &[]);
        waived.on_event(&sent(0, 1, 8), &net, &[]);
        waived.on_event(
            &NetEvent::Delivered {
                from: 0,
                to: 1,
                id: 8,
            },
            &net,
            &[],
        );
        assert_eq!(waived.take_broken(), None);
    }

    #[test]
    fn a_lost_connection_starts_its_order_over() {
        let net = net();
        let mut check = WorldCheck::default();
        check.on_event(&sent(0, 1, 7), &net, &[]);
        let reset = NetEvent::Reset {
            a: 1,
            b: 0,
            count: 1,
        };
        check.on_event(&reset, &net, &[]);
        check.on_event(&sent(0, 1, 9), &net, &[]);
        check.on_event(
            &NetEvent::Delivered {
                from: 0,
                to: 1,
                id: 9,
            },
            &net,
            &[],
        );
        assert_eq!(check.take_broken(), None, "7 was lost with its connection");
        check.on_event(
            &NetEvent::Delivered {
                from: 0,
                to: 1,
                id: 9,
            },
            &net,
            &[],
        );
        let broken = check.take_broken().unwrap_or_default();
        assert!(
            broken.contains("where nothing was next"),
            "a duplicate: {broken}"
        );
    }

    #[test]
    fn offline_over_a_healthy_link_breaks_w5() {
        let mut net = net();
        let mut check = WorldCheck::default();
        let offline = |reason| NetEvent::Offline {
            from: 0,
            to: Some(1),
            id: 3,
            reason,
        };
        check.on_event(&offline(OfflineReason::Down), &net, &[]);
        assert!(check.take_broken().unwrap_or_default().starts_with("W5:"));
        check.on_event(&offline(OfflineReason::Cut), &net, &[]);
        assert!(check.take_broken().unwrap_or_default().starts_with("W5:"));
        net.crash(1);
        check.on_event(&offline(OfflineReason::Down), &net, &[]);
        assert_eq!(check.take_broken(), None, "1 is down and never connected");
        let unknown = NetEvent::Offline {
            from: 0,
            to: None,
            id: 4,
            reason: OfflineReason::Unknown,
        };
        check.on_event(&unknown, &net, &[]);
        assert_eq!(check.take_broken(), None);
    }
}
