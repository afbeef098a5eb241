//! The `network` section of a one-node scenario: peers on other nodes, each node a real
//! kernel (`crate::node::peers`), and the latency between (`crate::node::network` carries
//! their messages).

use hyperkernel::Address;
use serde::{Deserialize, Serialize};

/// A peer: a process on another node, run by that node's kernel as a native.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSpec {
    /// Its address, `node@process:package:publisher` (a node other than ours).
    pub address: String,
    /// How it behaves: `echo` or `sink`.
    pub native: String,
}

/// The `network` section of a scenario.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way latency in simulated milliseconds, uniform in `[min, max]` (default `[1, 10]`).
    #[serde(default = "default_latency")]
    pub latency_ms: [u64; 2],
    /// The peers.
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
}

fn default_latency() -> [u64; 2] {
    [1, 10]
}

impl NetworkSpec {
    /// Why the section cannot be used, if it cannot.
    pub fn problem(&self, our: &str) -> Option<String> {
        let [min, max] = self.latency_ms;
        if min > max {
            return Some(format!("latency_ms [{min}, {max}]: min is over max"));
        }
        for (i, peer) in self.peers.iter().enumerate() {
            let address: Address = match peer.address.parse() {
                Ok(address) => address,
                Err(e) => return Some(format!("peers[{i}]: address `{}`: {e}", peer.address)),
            };
            if *address.node == *our || &*address.node == "our" {
                return Some(format!("peers[{i}]: {address} is on our node"));
            }
            if !super::NATIVES.contains(&peer.native.as_str()) {
                return Some(format!(
                    "peers[{i}]: unknown native `{}` (known: {})",
                    peer.native,
                    super::NATIVES.join(", ")
                ));
            }
        }
        None
    }
}
