//! `Capability`: an (issuer, params) pair (spec §1.6), its reference equality, and the
//! canonical form our kernel stores and signs (the fix for W15).
//!
//! Reference equality parses `params` as JSON and compares the values, with a parse failure
//! counting as `null`. Our kernel rejects non-JSON params at its boundary (a typed error), so
//! every stored capability is canonical: params re-serialized compactly from the parsed value,
//! object keys in byte order. Two capabilities are then equal under the reference's rule iff
//! their canonical forms are byte-equal, and the signature covers exactly the stored bytes.

use crate::types::{Address, ProcessId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};

/// The params of the messaging capability, with the JSON quotes.
pub const MESSAGING_PARAMS: &str = "\"messaging\"";
/// The params of the network capability, with the JSON quotes.
pub const NETWORK_PARAMS: &str = "\"network\"";

/// A capability as it appears on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Capability {
    /// Who issued it.
    pub issuer: Address,
    /// What it allows: a JSON document in a string.
    pub params: String,
}

/// A capability whose params are not a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityError {
    /// The capability's issuer.
    pub issuer: String,
    /// The rejected params.
    pub params: String,
    /// The JSON parser's message.
    pub reason: String,
}

impl fmt::Display for CapabilityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capability params {:?} from {} are not JSON: {}",
            self.params, self.issuer, self.reason
        )
    }
}

impl std::error::Error for CapabilityError {}

impl Capability {
    /// A capability with the given issuer and params text.
    pub fn new(issuer: Address, params: impl Into<String>) -> Self {
        Self {
            issuer,
            params: params.into(),
        }
    }

    /// `messaging(issuer)`: lets the holder message `issuer`'s process.
    pub fn messaging(issuer: Address) -> Self {
        Self::new(issuer, MESSAGING_PARAMS)
    }

    /// The network capability of node `our`.
    pub fn network(our: &str) -> Self {
        Self::new(Address::new(our, ProcessId::kernel()), NETWORK_PARAMS)
    }

    /// The canonical form: params parsed and re-serialized compactly with sorted keys.
    ///
    /// # Errors
    /// Params that are not a JSON document.
    pub fn canonical(&self) -> Result<Capability, CapabilityError> {
        if let Some(integer) = inexact_integer(&self.params) {
            return Err(CapabilityError {
                issuer: self.issuer.to_string(),
                params: self.params.clone(),
                reason: format!(
                    "the integer {integer} does not fit 64 bits: it would be stored and signed \
                     as a float, not as sent"
                ),
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(&self.params).map_err(|error| CapabilityError {
                issuer: self.issuer.to_string(),
                params: self.params.clone(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            issuer: self.issuer.clone(),
            params: value.to_string(),
        })
    }

    fn params_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.params).unwrap_or(serde_json::Value::Null)
    }

    /// The bytes the kernel signs: a MessagePack array of the issuer string and the params
    /// string (the reference's `rmp_serde` encoding), taken from the canonical form.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let issuer = self.issuer.to_string();
        let mut bytes = Vec::with_capacity(issuer.len() + self.params.len() + 11);
        bytes.push(0x92);
        msgpack_str(&mut bytes, &issuer);
        msgpack_str(&mut bytes, &self.params);
        bytes
    }
}

/// Appends a MessagePack `str` (fixstr, str8, str16 or str32 header, then the bytes).
fn msgpack_str(bytes: &mut Vec<u8>, text: &str) {
    let len = text.len();
    if let Ok(short) = u8::try_from(len) {
        if short < 32 {
            bytes.push(0xa0 | short);
        } else {
            bytes.extend_from_slice(&[0xd9, short]);
        }
    } else if let Ok(medium) = u16::try_from(len) {
        bytes.push(0xda);
        bytes.extend_from_slice(&medium.to_be_bytes());
    } else {
        let long = u32::try_from(len).unwrap_or(u32::MAX);
        bytes.push(0xdb);
        bytes.extend_from_slice(&long.to_be_bytes());
    }
    bytes.extend_from_slice(text.as_bytes());
}

/// The reference's equality: same issuer and equal parsed params (invalid JSON counts as null).
impl PartialEq for Capability {
    fn eq(&self, other: &Self) -> bool {
        self.issuer == other.issuer && self.params_value() == other.params_value()
    }
}

impl Eq for Capability {}

impl Hash for Capability {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.issuer.hash(state);
        // Canonical text of the parsed value: consistent with `eq`.
        self.params_value().to_string().hash(state);
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.issuer, self.params)
    }
}

/// The first integer literal of JSON `text` that fits neither `i64` nor `u64` (serde_json
/// would read it as a float, so canonical params would differ from what was sent), if any.
/// Strings are skipped; the text need not be valid JSON (parsing reports that).
fn inexact_integer(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = text.get(start..i)?;
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Some(token);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> Address {
        "alice.os@app:pkg:pub.os".parse().unwrap()
    }

    #[test]
    fn equality_ignores_whitespace_and_key_order_but_keeps_number_types() {
        let a = Capability::new(issuer(), r#"{"a":1,"b":2}"#);
        let b = Capability::new(issuer(), r#"{ "b":2, "a":1 }"#);
        assert_eq!(a, b);
        assert_ne!(
            Capability::new(issuer(), "1"),
            Capability::new(issuer(), "1.0")
        );
        // The reference's quirk: every invalid string equals null.
        assert_eq!(
            Capability::new(issuer(), "not json"),
            Capability::new(issuer(), "null")
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_turned_into_floats() {
        for params in [r#"{"n":18446744073709551616}"#, r#"[-9223372036854775809]"#] {
            let error = Capability::new(issuer(), params).canonical().unwrap_err();
            assert!(error.reason.contains("does not fit 64 bits"), "{error:?}");
        }
        for params in [
            r#"{"n":18446744073709551615,"m":-9223372036854775808}"#,
            r#"{"s":"99999999999999999999999","f":1.5e300}"#,
        ] {
            let cap = Capability::new(issuer(), params).canonical().unwrap();
            let again: serde_json::Value = serde_json::from_str(&cap.params).unwrap();
            assert_eq!(
                again,
                serde_json::from_str::<serde_json::Value>(params).unwrap()
            );
        }
        let exact = Capability::new(issuer(), r#"{"n":18446744073709551615}"#);
        assert_eq!(
            exact.canonical().unwrap().params,
            r#"{"n":18446744073709551615}"#
        );
    }

    #[test]
    fn canonical_form_sorts_keys_and_rejects_non_json() {
        let cap = Capability::new(issuer(), r#"{ "b":2, "a":[1, 2] }"#)
            .canonical()
            .unwrap();
        assert_eq!(cap.params, r#"{"a":[1,2],"b":2}"#);
        let error = Capability::new(issuer(), "not json")
            .canonical()
            .unwrap_err();
        assert_eq!(error.params, "not json");
    }

    #[test]
    fn signing_bytes_match_the_reference_msgpack_encoding() {
        let cap = Capability::network("alice.os");
        let bytes = cap.signing_bytes();
        let issuer_bytes = b"alice.os@kernel:distro:sys";
        let mut expected = vec![0x92, 0xa0 | 26];
        expected.extend_from_slice(issuer_bytes);
        expected.push(0xa9);
        expected.extend_from_slice(b"\"network\"");
        assert_eq!(bytes, expected);
        let long = Capability::new(issuer(), format!("\"{}\"", "x".repeat(40))).signing_bytes();
        assert_eq!(
            long[1 + 1 + 23],
            0xd9,
            "params of 42 bytes use a str8 header"
        );
    }
}
