//! `ProcessId`, `PackageId` and `Address`: the reference's string forms, parse rules and the
//! separate hypermap-safe validation (spec §1.2–§1.4).
//!
//! Invariant: a `ProcessId` always holds exactly three non-empty `:`-free segments; parsing is
//! the only constructor from text, so a value can never violate it. Character validation is a
//! separate step (`check`), as in the reference, because message addresses are never validated.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A node's name, e.g. `alice.os`.
pub type NodeId = String;

/// Why a process id or address string was rejected (the reference's `AddressParseError`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AddressParseError {
    /// More than one `@`.
    TooManyAts,
    /// More than two `:` in the process part.
    TooManyColons,
    /// No `@`, or an empty node.
    MissingNodeId,
    /// Fewer than three segments, or an empty segment.
    MissingField,
    /// The process name is not `[a-z0-9-]+`.
    ProcessNameNotHypermapSafe(String),
    /// The package name is not `[a-z0-9-]+`.
    PackageNameNotHypermapSafe(String),
    /// The node is not `[a-z0-9-.]+`.
    NodeNotHypermapSafe(String),
    /// The publisher node is not `[a-z0-9-.]+`.
    PublisherNodeNotHypermapSafe(String),
}

impl fmt::Display for AddressParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyAts => write!(f, "too many '@' in address"),
            Self::TooManyColons => write!(f, "too many ':' in process id"),
            Self::MissingNodeId => write!(f, "missing node id"),
            Self::MissingField => write!(f, "missing field in process id"),
            Self::ProcessNameNotHypermapSafe(s) => {
                write!(f, "process name {s:?} is not hypermap-safe")
            }
            Self::PackageNameNotHypermapSafe(s) => {
                write!(f, "package name {s:?} is not hypermap-safe")
            }
            Self::NodeNotHypermapSafe(s) => write!(f, "node {s:?} is not hypermap-safe"),
            Self::PublisherNodeNotHypermapSafe(s) => {
                write!(f, "publisher node {s:?} is not hypermap-safe")
            }
        }
    }
}

impl std::error::Error for AddressParseError {}

/// `[a-z0-9-]+` when `dots` is false, `[a-z0-9-.]+` when true.
fn is_hypermap_safe(segment: &str, dots: bool) -> bool {
    !segment.is_empty()
        && segment.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
        })
}

/// `process_name:package_name:publisher_node`. Cheap to clone (one shared string).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProcessId {
    // Invariant: `text` = process ":" package ":" publisher, all three non-empty and `:`-free;
    // `colon_a`/`colon_b` are the byte offsets of the two colons. Kept by `from_str` only.
    text: Arc<str>,
    colon_a: u32,
    colon_b: u32,
    // Invariant: xxh3-64 of `text`; the binary (trace-hash) encoding writes this instead of
    // the text. Computed once, in `from_str`.
    digest: u64,
    // Invariant: the first 8 bytes of `text`, zero-padded, big-endian: comparing prefixes
    // orders ids as their text does whenever the prefixes differ (see `Ord`).
    prefix: u64,
}

impl ProcessId {
    /// Builds an id from its three segments.
    ///
    /// # Errors
    /// The same errors as parsing `process:package:publisher`.
    pub fn new(process: &str, package: &str, publisher: &str) -> Result<Self, AddressParseError> {
        format!("{process}:{package}:{publisher}").parse()
    }

    /// The process name segment.
    pub fn process(&self) -> &str {
        &self.text[..self.colon_a as usize]
    }

    /// The package name segment.
    pub fn package(&self) -> &str {
        &self.text[self.colon_a as usize + 1..self.colon_b as usize]
    }

    /// The publisher node segment.
    pub fn publisher(&self) -> &str {
        &self.text[self.colon_b as usize + 1..]
    }

    /// The whole id as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// xxh3-64 of the text, computed once at parse time: what the trace hash encodes.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The reference's `check_process_id_hypermap_safe`: process, then package, then publisher.
    ///
    /// # Errors
    /// The first segment that is not hypermap-safe.
    pub fn check(&self) -> Result<(), AddressParseError> {
        if !is_hypermap_safe(self.process(), false) {
            return Err(AddressParseError::ProcessNameNotHypermapSafe(
                self.process().into(),
            ));
        }
        if !is_hypermap_safe(self.package(), false) {
            return Err(AddressParseError::PackageNameNotHypermapSafe(
                self.package().into(),
            ));
        }
        if !is_hypermap_safe(self.publisher(), true) {
            return Err(AddressParseError::PublisherNodeNotHypermapSafe(
                self.publisher().into(),
            ));
        }
        Ok(())
    }

    /// The package this process belongs to.
    pub fn package_id(&self) -> PackageId {
        PackageId {
            package_name: self.package().into(),
            publisher_node: self.publisher().into(),
        }
    }
}

impl Ord for ProcessId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Clones share one string, so most table lookups end on a pointer comparison.
        if Arc::ptr_eq(&self.text, &other.text) {
            return std::cmp::Ordering::Equal;
        }
        // Differing zero-padded prefixes order exactly as the texts do: the first differing
        // byte is either a real byte of both, or the end of the shorter (a prefix sorts first).
        match self.prefix.cmp(&other.prefix) {
            std::cmp::Ordering::Equal => self.text.cmp(&other.text),
            unequal => unequal,
        }
    }
}

impl PartialOrd for ProcessId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for ProcessId {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Two colons exactly, three non-empty segments; no allocation until the id is built.
        let mut colons = text
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b':')
            .map(|(n, _)| n);
        let (Some(colon_a), Some(colon_b)) = (colons.next(), colons.next()) else {
            return Err(AddressParseError::MissingField);
        };
        if colons.next().is_some() {
            return Err(AddressParseError::TooManyColons);
        }
        if colon_a == 0 || colon_b == colon_a + 1 || colon_b + 1 == text.len() {
            return Err(AddressParseError::MissingField);
        }
        let (Ok(colon_a), Ok(colon_b)) = (u32::try_from(colon_a), u32::try_from(colon_b)) else {
            return Err(AddressParseError::MissingField);
        };
        let digest = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
        let mut head = [0u8; 8];
        let head_len = text.len().min(8);
        head[..head_len].copy_from_slice(&text.as_bytes()[..head_len]);
        Ok(Self {
            text: Arc::from(text),
            colon_a,
            colon_b,
            digest,
            prefix: u64::from_be_bytes(head),
        })
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcessId({})", self.text)
    }
}

impl PartialEq<str> for ProcessId {
    fn eq(&self, other: &str) -> bool {
        &*self.text == other
    }
}

impl PartialEq<&str> for ProcessId {
    fn eq(&self, other: &&str) -> bool {
        &*self.text == *other
    }
}

/// Human-readable formats (JSON) get the reference's string. Binary formats get the 64-bit
/// digest of the string: they exist only to feed the trace hash, so they are one-way.
impl Serialize for ProcessId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.text)
        } else {
            // Eight raw bytes: cheaper to encode than a varint, and the same in any format.
            serializer.serialize_bytes(&self.digest.to_le_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for ProcessId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            let message = "the binary form of a process id is a one-way digest; read JSON";
            return Err(serde::de::Error::custom(message));
        }
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `package_name:publisher_node`; serialized as a JSON object, unlike `ProcessId`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PackageId {
    /// The package name.
    pub package_name: String,
    /// The publisher node.
    pub publisher_node: String,
}

impl PackageId {
    /// Validates the two segments.
    ///
    /// # Errors
    /// The reference reports a bad package as `ProcessNameNotHypermapSafe`; we report
    /// `PackageNameNotHypermapSafe`, since the error never crosses the wire.
    pub fn check(&self) -> Result<(), AddressParseError> {
        if !is_hypermap_safe(&self.package_name, false) {
            return Err(AddressParseError::PackageNameNotHypermapSafe(
                self.package_name.clone(),
            ));
        }
        if !is_hypermap_safe(&self.publisher_node, true) {
            return Err(AddressParseError::PublisherNodeNotHypermapSafe(
                self.publisher_node.clone(),
            ));
        }
        Ok(())
    }
}

impl FromStr for PackageId {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let segments: Vec<&str> = text.split(':').collect();
        if segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
            return Err(AddressParseError::MissingField);
        }
        if segments.len() > 2 {
            return Err(AddressParseError::TooManyColons);
        }
        Ok(Self {
            package_name: segments[0].into(),
            publisher_node: segments[1].into(),
        })
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.package_name, self.publisher_node)
    }
}

/// `node@process:package:publisher`. Serialized as that string. Ordered by node, then
/// process; clones share their strings, so comparing two clones is two pointer checks.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// The node; the literal `our` is replaced by the kernel's node name during routing.
    pub node: Arc<str>,
    /// The process on that node.
    pub process: ProcessId,
}

impl Address {
    /// Builds an address.
    pub fn new(node: &str, process: ProcessId) -> Self {
        Self {
            node: Arc::from(node),
            process,
        }
    }

    /// The reference's `Address::check`: node `[a-z0-9-.]+` plus the process id check.
    ///
    /// # Errors
    /// The first part that is not hypermap-safe.
    pub fn check(&self) -> Result<(), AddressParseError> {
        if !is_hypermap_safe(&self.node, true) {
            return Err(AddressParseError::NodeNotHypermapSafe(
                self.node.to_string(),
            ));
        }
        self.process.check()
    }
}

impl Ord for Address {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let node = if Arc::ptr_eq(&self.node, &other.node) {
            std::cmp::Ordering::Equal
        } else {
            self.node.cmp(&other.node)
        };
        node.then_with(|| self.process.cmp(&other.process))
    }
}

impl PartialOrd for Address {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((node, process)) = text.split_once('@') else {
            return Err(AddressParseError::MissingNodeId);
        };
        if process.contains('@') {
            return Err(AddressParseError::TooManyAts);
        }
        if node.is_empty() {
            return Err(AddressParseError::MissingNodeId);
        }
        Ok(Self {
            node: Arc::from(node),
            process: process.parse()?,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node, self.process)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Human-readable formats (JSON) get the reference's string `node@process`. Binary formats
/// (postcard, for the trace hash) get the pair `(node, process digest)`: one-way, like
/// `ProcessId`'s.
impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // One string built directly: `collect_str` goes through the formatting machinery,
            // a third of the cost of writing a large capability list.
            let process = self.process.as_str();
            let mut text = String::with_capacity(self.node.len() + 1 + process.len());
            text.push_str(&self.node);
            text.push('@');
            text.push_str(process);
            serializer.serialize_str(&text)
        } else {
            (&*self.node, &self.process).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
            return text.parse().map_err(serde::de::Error::custom);
        }
        let (node, process) = <(String, ProcessId)>::deserialize(deserializer)?;
        if node.is_empty() {
            return Err(serde::de::Error::custom(AddressParseError::MissingNodeId));
        }
        Ok(Self {
            node: Arc::from(node),
            process,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_id_parse_rules() {
        assert_eq!(
            "a:b".parse::<ProcessId>(),
            Err(AddressParseError::MissingField)
        );
        assert_eq!(
            "a:b:c:d".parse::<ProcessId>(),
            Err(AddressParseError::TooManyColons)
        );
        assert_eq!(
            "a::c".parse::<ProcessId>(),
            Err(AddressParseError::MissingField)
        );
        let id: ProcessId = "A B:C:D".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(id.process(), "A B");
        assert_eq!(id.package(), "C");
        assert_eq!(id.publisher(), "D");
        assert_eq!(
            id.check(),
            Err(AddressParseError::ProcessNameNotHypermapSafe("A B".into()))
        );
    }

    #[test]
    fn hypermap_check_order_and_dots() {
        let ok: ProcessId = "chat:chat:template.os"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.check(), Ok(()));
        let bad_pkg: ProcessId = "chat:ch.at:x".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            bad_pkg.check(),
            Err(AddressParseError::PackageNameNotHypermapSafe(
                "ch.at".into()
            ))
        );
        let bad_name: ProcessId = "c.h:ch.at:X".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            bad_name.check(),
            Err(AddressParseError::ProcessNameNotHypermapSafe("c.h".into()))
        );
    }

    #[test]
    fn address_parse_rules() {
        assert_eq!(
            "a:b:c".parse::<Address>(),
            Err(AddressParseError::MissingNodeId)
        );
        assert_eq!(
            "x@y@a:b:c".parse::<Address>(),
            Err(AddressParseError::TooManyAts)
        );
        assert_eq!(
            "@a:b:c".parse::<Address>(),
            Err(AddressParseError::MissingNodeId)
        );
        let address: Address = "alice.os@chat:chat:template.os"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&*address.node, "alice.os");
        assert_eq!(address.to_string(), "alice.os@chat:chat:template.os");
    }

    #[test]
    fn ordering_is_the_texts_ordering() {
        let texts = [
            "a:b:c",
            "a-b:c:d",
            "ab:c:d",
            "abcdefgh:x:y",
            "abcdefgh:x:z",
            "abcdefg:x:y",
            "b:a:a",
            "a\0:b:c",
        ];
        for left in texts {
            for right in texts {
                let (l, r): (ProcessId, ProcessId) =
                    (left.parse().unwrap(), right.parse().unwrap());
                assert_eq!(l.cmp(&r), left.cmp(right), "{left:?} vs {right:?}");
            }
        }
    }

    #[test]
    fn ids_serialize_as_strings_and_package_as_object() {
        let address: Address = "alice.os@kernel:distro:sys"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_string(&address).unwrap_or_default();
        assert_eq!(json, "\"alice.os@kernel:distro:sys\"");
        let package = address.process.package_id();
        let json = serde_json::to_string(&package).unwrap_or_default();
        assert_eq!(json, r#"{"package_name":"distro","publisher_node":"sys"}"#);
        assert!(serde_json::from_str::<ProcessId>("\"a:b\"").is_err());
    }
}
