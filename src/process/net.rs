//! `net:distro:sys`: the reference's questions about the network, answered from the node's
//! view of it (spec: the net module; `types::net` has the shapes).
//!
//! The view is kept by the kernel from its inputs: the directory of identities (the PKI) is
//! what its driver gives (`Input::Identities`: a world gives every node all nodes', as kit's
//! fake chain does); a peer is a node whose message reached us (`Input::Submit`) and that has
//! not since been unreachable (`Input::Unreachable`). The module is not public, as in the
//! reference: a sender needs its messaging capability, and hears the answer only if the
//! module may message it (it is public, or granted `net:distro:sys` messaging).
//!
//! From a local sender: `GetPeers`, `GetPeer`, `GetDiagnostics`, `Sign` (the blob, prefixed
//! with the sender's address, signed with the node's key) and `Verify`, answered in
//! MessagePack; the directory updates are taken and ignored; any other body is ignored (the
//! sender times out), as in the reference. From another node: a body that is no `NetAction` is
//! a "hi", printed and answered `ack`; anything else is ignored. Stricter than the reference:
//! `Verify` of a node the directory does not hold is false (the reference checks it against
//! our own key).

use crate::process::{Flow, Process, ProcessContext, Wake};
use crate::types::net::{Identity, NetAction, NetResponse, NodeRouting};
use crate::types::{LazyLoadBlob, Message, Response};
use std::collections::{BTreeMap, BTreeSet};

/// Identities the directory holds.
pub const IDENTITIES_MAX: usize = 100_000;
/// Bytes a directory entry's name and key may have each.
pub const IDENTITY_FIELD_MAX: usize = 1_024;

/// The node's view of the network (module docs).
#[derive(Debug, Default)]
pub struct NetView {
    // Invariant: at most `IDENTITIES_MAX` entries, each keyed by its own name.
    directory: BTreeMap<String, Identity>,
    // Invariant: never our own node.
    peers: BTreeSet<String>,
}

impl NetView {
    /// Takes `identities` into the directory (an entry replaces one of the same name);
    /// entries past the bound or with over-long fields are left out. Returns how many went in.
    pub(crate) fn learn(&mut self, identities: Vec<Identity>) -> usize {
        let mut taken = 0;
        for identity in identities {
            let fits = identity.name.len() <= IDENTITY_FIELD_MAX
                && identity.networking_key.len() <= IDENTITY_FIELD_MAX;
            let room = self.directory.len() < IDENTITIES_MAX
                || self.directory.contains_key(&identity.name);
            if fits && room {
                self.directory.insert(identity.name.clone(), identity);
                taken += 1;
            }
        }
        debug_assert!(self.directory.len() <= IDENTITIES_MAX, "directory bound");
        taken
    }

    /// A message from `node` reached us.
    pub(crate) fn heard_from(&mut self, node: &str, our: &str) {
        debug_assert_ne!(node, our, "a remote message comes from another node");
        if node != our && !self.peers.contains(node) {
            self.peers.insert(node.to_owned());
        }
    }

    /// A message of ours could not reach `node`.
    pub(crate) fn lost(&mut self, node: &str) {
        self.peers.remove(node);
        debug_assert!(!self.peers.contains(node), "a lost peer is gone");
    }

    /// The directory's identity of `name`.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.directory.get(name)
    }

    /// The peers' identities, by name (a peer the directory lacks is named with no key).
    pub fn peers(&self) -> Vec<Identity> {
        self.peers
            .iter()
            .map(|name| {
                self.directory
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Identity {
                        name: name.clone(),
                        networking_key: String::new(),
                        routing: NodeRouting::Routers(Vec::new()),
                    })
            })
            .collect()
    }

    /// How many identities the directory holds.
    pub fn directory_len(&self) -> usize {
        self.directory.len()
    }
}

/// `0x` and the key's hex digits, as the reference writes networking keys.
pub fn key_string(key: &[u8]) -> String {
    let mut text = String::with_capacity(2 + key.len() * 2);
    text.push_str("0x");
    for byte in key {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// The key bytes of a `0x…` networking key string, if it is one.
pub fn key_bytes(text: &str) -> Option<[u8; 32]> {
    let digits = text.strip_prefix("0x")?;
    if digits.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(digits.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(key)
}

/// The module (module docs).
#[derive(Default)]
pub struct NetProcess;

impl NetProcess {
    /// The module; it keeps nothing (the view is the kernel's).
    pub fn new() -> Self {
        Self
    }

    fn local(ctx: &mut ProcessContext<'_>, source: &crate::types::Address, body: &[u8]) {
        let Ok(action) = crate::types::net::decode::<NetAction>(body) else {
            return;
        };
        let blob = ctx.get_blob().map(|b| b.bytes).unwrap_or_default();
        let (answer, signature) = match action {
            NetAction::ConnectionRequest(_)
            | NetAction::HnsUpdate(_)
            | NetAction::HnsBatchUpdate(_) => return,
            NetAction::GetPeers => (NetResponse::Peers(ctx.net_view().peers()), None),
            NetAction::GetPeer(name) => (NetResponse::Peer(ctx.net_identity(&name)), None),
            NetAction::GetDiagnostics => (NetResponse::Diagnostics(diagnostics(ctx)), None),
            NetAction::Sign => {
                let message = [source.to_string().as_bytes(), &blob].concat();
                (NetResponse::Signed, Some(ctx.node_sign(&message)))
            }
            NetAction::Verify { from, signature } => {
                let message = [from.to_string().as_bytes(), &blob].concat();
                let valid = ctx.node_verify(&from.node, &message, &signature);
                (NetResponse::Verified(valid), None)
            }
        };
        let Ok(body) = crate::types::net::encode(&answer) else {
            crate::kernel_bug!("net: a NetResponse always encodes");
        };
        let blob = signature.map(|bytes| LazyLoadBlob { mime: None, bytes });
        ctx.send_response(Response::new(body), blob);
    }

    fn remote(ctx: &mut ProcessContext<'_>, source: &crate::types::Address, body: &[u8]) {
        if crate::types::net::decode::<NetAction>(body).is_ok() {
            return;
        }
        let text = String::from_utf8_lossy(body);
        ctx.print_to_terminal(0, &format!("{}: {text}", source.node));
        ctx.send_response(Response::new(b"ack".to_vec()), None);
    }
}

/// `GetDiagnostics`: our identity, the peers and the directory's size.
fn diagnostics(ctx: &mut ProcessContext<'_>) -> String {
    let our = ctx.our();
    let peers = ctx.net_view().peers();
    let mut text = format!("our Identity: {:?}\r\n", ctx.net_identity(&our.node));
    text.push_str(&format!(
        "we have connections with {} peers:\r\n",
        peers.len()
    ));
    for peer in &peers {
        text.push_str(&format!("    {}\r\n", peer.name));
    }
    let entries = ctx.net_view().directory_len();
    text.push_str(&format!("we have {entries} entries in the PKI\r\n"));
    text
}

impl Process for NetProcess {
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        if let Wake::Received(Ok((source, Message::Request(request)))) = wake {
            if *source.node == *ctx.our().node {
                Self::local(ctx, &source, &request.body);
            } else {
                Self::remote(ctx, &source, &request.body);
            }
        }
        Flow::Receive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_back_as_written_and_the_view_stays_bounded() {
        let key = [0xab; 32];
        let text = key_string(&key);
        assert_eq!(text.len(), 66);
        assert_eq!(key_bytes(&text), Some(key));
        assert_eq!(key_bytes("0x12"), None);
        assert_eq!(key_bytes(&text.replace("0x", "")), None);
        let mut view = NetView::default();
        let identity = |name: &str| Identity {
            name: name.into(),
            networking_key: text.clone(),
            routing: NodeRouting::Routers(Vec::new()),
        };
        let long = "x".repeat(IDENTITY_FIELD_MAX + 1);
        assert_eq!(view.learn(vec![identity("a.os"), identity(&long)]), 1);
        view.heard_from("a.os", "b.os");
        view.heard_from("c.os", "b.os");
        let names: Vec<String> = view.peers().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["a.os", "c.os"]);
        assert!(
            view.peers()[1].networking_key.is_empty(),
            "not in the directory"
        );
        view.lost("a.os");
        assert_eq!(view.peers().len(), 1);
    }
}
