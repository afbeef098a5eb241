//! The peers of a one-node scenario's network as real nodes: one kernel per node the peers
//! are on, each running its peers as the simulator's natives (`echo`, `sink`), public and
//! networked, seeded from the run's seed and the node's name (`streams::node_seed`), on driven
//! time. A message for a peer reaches its kernel through its door (`Input::Submit`); what the
//! kernel sends out after it settles goes back on the network. A workload entry from a peer
//! is the peer's kernel sending as that process (`Input::Local`). So a peer answers, drops and
//! refuses exactly as a real node would; its kernel's invariants are checked after it settles.

use crate::node::feed::Logged;
use crate::node::network::NetworkSpec;
use crate::node::scenario::Scenario;
use hyperkernel::{Input, Kernel, KernelBuilder, KernelMessage, Output, Step, Time, Timestamp};
use std::collections::BTreeMap;
use std::path::Path;

/// Most steps a peer's kernel takes to settle after one message (natives answer at once).
const SETTLE_STEPS_MAX: u32 = 10_000;

/// The peers' nodes of one run.
pub struct Peers {
    nodes: BTreeMap<String, Kernel>,
}

impl Peers {
    /// A kernel for each node of `spec`'s peers, its peers started, for the run of `seed`.
    ///
    /// # Errors
    /// A peer node did not boot or set up (a bug: the spec was validated).
    pub fn new(spec: &NetworkSpec, seed: u64) -> Result<Self, String> {
        let mut by_node: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for peer in &spec.peers {
            let Ok(address) = peer.address.parse::<hyperkernel::Address>() else {
                return Err(format!("peer {}: not an address", peer.address));
            };
            by_node
                .entry(address.node.to_string())
                .or_default()
                .push(serde_json::json!({
                    "id": address.process.to_string(),
                    "native": peer.native,
                    "public": true,
                    "capabilities": ["network"],
                }));
        }
        let mut nodes = BTreeMap::new();
        for (name, processes) in by_node {
            let kernel = boot(&name, processes, seed).map_err(|e| format!("peer {name}: {e}"))?;
            nodes.insert(name, kernel);
        }
        assert!(
            nodes.len() <= spec.peers.len(),
            "more peer nodes than peers"
        );
        Ok(Self { nodes })
    }

    /// Whether `node` is a peer's node.
    pub fn has_node(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
    }

    /// The kernel of peer node `node`, to read.
    pub fn kernel(&self, node: &str) -> Option<&Kernel> {
        self.nodes.get(node)
    }

    /// Whether every peer's kernel has nothing left to do.
    pub fn quiescent(&self) -> bool {
        self.nodes.values().all(Kernel::is_quiescent)
    }

    /// `message` reaches its peer node at `at`; returns what the node sends out.
    ///
    /// # Errors
    /// The peer's kernel broke an invariant.
    pub fn deliver(
        &mut self,
        at: Timestamp,
        message: KernelMessage,
    ) -> Result<Vec<KernelMessage>, String> {
        let node = message.target.node.to_string();
        self.take(&node, at, Input::Submit(Box::new(message)))
    }

    /// A peer process sends `message` at `at` (a workload entry from a peer): its node's
    /// kernel takes it as its own. Returns what the node sends out.
    ///
    /// # Errors
    /// As [`Peers::deliver`].
    pub fn send(
        &mut self,
        at: Timestamp,
        message: KernelMessage,
    ) -> Result<Vec<KernelMessage>, String> {
        let node = message.source.node.to_string();
        self.take(&node, at, Input::Local(Box::new(message)))
    }

    /// A message a peer sent cannot be carried (its node is unknown): its sender hears
    /// `Offline`, and what that makes the node send goes out.
    ///
    /// # Errors
    /// As [`Peers::deliver`].
    pub fn unreachable(
        &mut self,
        at: Timestamp,
        message: KernelMessage,
    ) -> Result<Vec<KernelMessage>, String> {
        let node = message.source.node.to_string();
        self.take(&node, at, Input::Unreachable(Box::new(message)))
    }

    /// Gives `node`'s kernel the time `at` and `input`, lets it settle, checks it, and
    /// returns what it sends out.
    fn take(
        &mut self,
        node: &str,
        at: Timestamp,
        input: Input,
    ) -> Result<Vec<KernelMessage>, String> {
        let Some(kernel) = self.nodes.get_mut(node) else {
            return Err(format!("{node} is not a peer's node"));
        };
        let _ = kernel.input(Input::Time(at));
        // The inbox is empty (every message settles before the next): a refusal is a bug.
        kernel
            .input(input)
            .map_err(|e| format!("peer node {node} refused a message: {e}"))?;
        settle(kernel);
        kernel.check_invariants()?;
        let mut out = Vec::new();
        while let Some(message) = kernel.take_outbound() {
            out.push(message);
        }
        debug_assert!(
            out.iter().all(|m| &*m.source.node == node),
            "a peer sent as another node"
        );
        Ok(out)
    }
}

/// Steps `kernel` until nothing is ready (natives never spin; a bound keeps a bug finite).
fn settle(kernel: &mut Kernel) {
    for _ in 0..SETTLE_STEPS_MAX {
        match kernel.input(Input::Step) {
            Ok(Output::Stepped(Step::Idle(_) | Step::ShutDown | Step::Failed)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Boots peer node `name` with `processes` (scenario process specs) for the run of `seed`.
fn boot(name: &str, processes: Vec<serde_json::Value>, seed: u64) -> Result<Kernel, String> {
    let file = serde_json::json!({
        "version": crate::format::VERSION,
        "node": name,
        "processes": processes,
        "network": {},
        "run_for_ms": 1,
    });
    let file = serde_json::from_value(file).map_err(|e| e.to_string())?;
    let scenario = Scenario::from_file(Path::new(name), file).map_err(|e| e.to_string())?;
    let seed = crate::node::streams::node_seed(seed, name);
    let mut config = hyperkernel::KernelConfig::new(name, seed);
    config.network = true;
    let apps = std::sync::Arc::default();
    let mut kernel = KernelBuilder::new(name, seed)
        .config(config)
        .time(Time::Driven(Timestamp(0)))
        .loader(Box::new(crate::node::natives::natives(&apps)))
        .build()
        .map_err(|e| e.to_string())?;
    let mut fed = Logged {
        kernel: &mut kernel,
        log: None,
    };
    crate::node::setup::start_processes(&mut fed, &scenario, &apps)?;
    settle(&mut kernel);
    assert!(kernel.is_quiescent(), "a peer node is busy after its setup");
    Ok(kernel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperkernel::{DropReason, Event, Message, Request};

    fn request(id: u64, from: &str, to: &str, expects: Option<u64>) -> KernelMessage {
        let mut request = Request::new(format!("body {id}"));
        request.expects_response = expects;
        KernelMessage {
            id,
            source: from.parse().unwrap(),
            target: to.parse().unwrap(),
            rsvp: None,
            message: Message::Request(request),
            lazy_load_blob: None,
        }
    }

    fn dropped(peers: &Peers, id: u64) -> Option<DropReason> {
        let kernel = peers.kernel("far.os")?;
        kernel
            .trace()
            .records()
            .iter()
            .find_map(|r| match &r.event {
                Event::Dropped {
                    id: dropped,
                    reason,
                    ..
                } if *dropped == id => Some(*reason),
                _ => None,
            })
    }

    #[test]
    fn a_peer_is_a_real_node_that_answers_drops_and_refuses_as_one() {
        let spec: NetworkSpec = serde_json::from_str(
            r#"{"peers": [{"address": "far.os@echo:sim:sim.os", "native": "echo"},
                          {"address": "far.os@sink:sim:sim.os", "native": "sink"}]}"#,
        )
        .unwrap();
        let mut peers = Peers::new(&spec, 3).unwrap();
        assert!(peers.has_node("far.os") && !peers.has_node("sim.os"));
        let us = "sim.os@client:sim:sim.os";
        // The echo answers with the body, once, to the sender, under the request's id.
        let out = peers
            .deliver(
                Timestamp(5),
                request(1, us, "far.os@echo:sim:sim.os", Some(5)),
            )
            .unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].id, 1);
        assert_eq!(out[0].target.to_string(), us);
        let Message::Response((response, _)) = &out[0].message else {
            panic!("{out:?}");
        };
        assert_eq!(response.body, b"body 1");
        // The sink takes it and says nothing; the node's door refuses a remote message for a
        // process that is not there to take messages from the network.
        let sunk = request(2, us, "far.os@sink:sim:sim.os", Some(5));
        assert!(peers.deliver(Timestamp(6), sunk).unwrap().is_empty());
        let lost = request(3, us, "far.os@nobody:sim:sim.os", Some(5));
        assert!(peers.deliver(Timestamp(7), lost).unwrap().is_empty());
        assert_eq!(dropped(&peers, 3), Some(DropReason::RemoteTargetRefused));
        // Its door refuses a message that claims to come from the node itself.
        let spoof = request(
            4,
            "far.os@sink:sim:sim.os",
            "far.os@echo:sim:sim.os",
            Some(5),
        );
        assert!(peers.deliver(Timestamp(8), spoof).unwrap().is_empty());
        assert_eq!(dropped(&peers, 4), Some(DropReason::SpoofedSource));
        // A peer's own send leaves its node for ours.
        let out = peers
            .send(Timestamp(9), request(5, "far.os@echo:sim:sim.os", us, None))
            .unwrap();
        assert_eq!(out.iter().map(|m| m.id).collect::<Vec<_>>(), vec![5]);
        assert!(peers.quiescent());
    }
}
