//! The requests `net:distro:sys` takes and its answers, with the reference's shapes
//! (`hyperware_lib::net`, `core::Identity`). Bodies are MessagePack (`rmp_serde::to_vec`): a
//! unit variant is its name as a string, a newtype variant a map of one entry, a struct an
//! array.

use crate::types::Address;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node as the network's directory (the PKI) knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Its name (`fake.os`).
    pub name: String,
    /// Its ed25519 networking key, `0x` and 64 hex digits.
    pub networking_key: String,
    /// How it is reached.
    pub routing: NodeRouting,
}

/// How a node is reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeRouting {
    /// Through these routers.
    Routers(Vec<String>),
    /// Directly.
    Direct {
        /// Its address.
        ip: String,
        /// Its port per protocol (`ws`, `tcp`).
        ports: BTreeMap<String, u16>,
    },
    /// Both (initial registration).
    Both {
        /// Its address.
        ip: String,
        /// Its port per protocol.
        ports: BTreeMap<String, u16>,
        /// Its routers.
        routers: Vec<String>,
    },
}

/// An entry of the directory's log (`HnsUpdate`): taken and ignored here, the directory
/// being the driver's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnsUpdate {
    /// The node.
    pub name: String,
    /// Its key.
    pub public_key: String,
    /// Its addresses.
    pub ips: Vec<String>,
    /// Its ports.
    pub ports: BTreeMap<String, u16>,
    /// Its routers.
    pub routers: Vec<String>,
}

/// A request to `net:distro:sys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetAction {
    /// A router's notice of a pending passthrough (ignored: no routers here).
    ConnectionRequest(String),
    /// A directory entry (ignored: the driver gives the directory).
    HnsUpdate(HnsUpdate),
    /// Directory entries (ignored).
    HnsBatchUpdate(Vec<HnsUpdate>),
    /// The nodes we are connected to.
    GetPeers,
    /// The identity of one node.
    GetPeer(String),
    /// A readable account of the network.
    GetDiagnostics,
    /// Sign the blob, prefixed with the sender's address, with our networking key (local
    /// senders only).
    Sign,
    /// Whether `signature` is `from`'s over `from` and the blob.
    Verify {
        /// The signer's address (prefixed to the blob).
        from: Address,
        /// The signature.
        signature: Vec<u8>,
    },
}

/// An answer of `net:distro:sys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetResponse {
    /// To `ConnectionRequest` (never sent here).
    Accepted(String),
    /// To `ConnectionRequest` (never sent here).
    Rejected(String),
    /// To `GetPeers`.
    Peers(Vec<Identity>),
    /// To `GetPeer`.
    Peer(Option<Identity>),
    /// To `GetDiagnostics`.
    Diagnostics(String),
    /// To `Sign`; the signature is the blob.
    Signed,
    /// To `Verify`.
    Verified(bool),
}

/// `value` in MessagePack as the reference writes it. The reference's `Address` and
/// `ProcessId` are strings in every format, while ours hash compactly in binary formats, so the
/// encoder says it is human-readable (only that flag differs from `rmp_serde::to_vec`).
///
/// # Errors
/// The value does not encode (a map with keys MessagePack cannot hold; none of this module's).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    let mut bytes = Vec::new();
    let mut serializer = rmp_serde::Serializer::new(&mut bytes).with_human_readable();
    value.serialize(&mut serializer)?;
    debug_assert!(!bytes.is_empty(), "every value takes a byte");
    Ok(bytes)
}

/// A value from the reference's MessagePack (see [`encode`]).
///
/// # Errors
/// The bytes are not such a value.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, rmp_serde::decode::Error> {
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    T::deserialize(&mut deserializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_the_references_messagepack() {
        // `GetPeers` is its name as a string; `GetPeer("b.os")` a map of one entry.
        let peers = rmp_serde::to_vec(&NetAction::GetPeers).unwrap();
        assert_eq!(peers, b"\xa8GetPeers");
        let peer = rmp_serde::to_vec(&NetAction::GetPeer("b.os".into())).unwrap();
        assert_eq!(peer, b"\x81\xa7GetPeer\xa4b.os");
        // A struct is an array: `Identity` is [name, key, routing].
        let identity = Identity {
            name: "a.os".into(),
            networking_key: "0x00".into(),
            routing: NodeRouting::Routers(vec![]),
        };
        let bytes = rmp_serde::to_vec(&identity).unwrap();
        assert_eq!(bytes[0], 0x93, "an array of three");
        let back: Identity = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, identity);
        let verified = encode(&NetResponse::Verified(true)).unwrap();
        assert_eq!(verified, b"\x81\xa8Verified\xc3");
        // An address is its string, as the reference's is in every format.
        let verify = NetAction::Verify {
            from: "a.os@p:k:s".parse().unwrap(),
            signature: vec![1],
        };
        let bytes = encode(&verify).unwrap();
        assert_eq!(bytes, b"\x81\xa6Verify\x92\xaaa.os@p:k:s\x91\x01");
        assert_eq!(decode::<NetAction>(&bytes).unwrap(), verify);
    }
}
