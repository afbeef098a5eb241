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

/// The wire shape of one capability, with the issuer still text.
#[derive(Deserialize)]
#[serde(rename = "Capability")]
struct WireCapability<'a> {
    #[serde(borrow)]
    issuer: std::borrow::Cow<'a, str>,
    params: String,
}

/// Reads a list of capabilities as `Vec<Capability>` does, parsing an issuer only when it
/// differs from the one before: the list's capabilities of one issuer share its strings.
/// A 100 000-capability grant from one issuer so parses one address, not 100 000, and the
/// kernel's ordered maps then compare those issuers by pointer.
///
/// # Errors
/// What `Vec<Capability>` reports: a wrong shape, or an issuer that is not an address.
pub fn deserialize_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Capability>, D::Error> {
    struct List;
    impl<'de> serde::de::Visitor<'de> for List {
        type Value = Vec<Capability>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of capabilities")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            // Never trust a size hint for an allocation: it comes from the input.
            let mut caps: Vec<Capability> =
                Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            let mut last: Option<(String, Address)> = None;
            while let Some(wire) = seq.next_element::<WireCapability<'de>>()? {
                let issuer = match &last {
                    Some((text, address)) if *text == *wire.issuer => address.clone(),
                    _ => {
                        let address: Address =
                            wire.issuer.parse().map_err(serde::de::Error::custom)?;
                        last = Some((wire.issuer.into_owned(), address.clone()));
                        address
                    }
                };
                caps.push(Capability {
                    issuer,
                    params: wire.params,
                });
            }
            Ok(caps)
        }
    }
    deserializer.deserialize_seq(List)
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
        Ok(Self {
            issuer: self.issuer.clone(),
            params: self.canonical_params()?,
        })
    }

    /// The canonical params text alone (see `canonical`).
    ///
    /// # Errors
    /// Params that are not a JSON document, or that hold an integer beyond 64 bits.
    pub fn canonical_params(&self) -> Result<String, CapabilityError> {
        let refuse = |reason: String| CapabilityError {
            issuer: self.issuer.to_string(),
            params: self.params.clone(),
            reason,
        };
        if let Some(integer) = inexact_integer(&self.params) {
            return Err(refuse(format!(
                "the integer {integer} does not fit 64 bits: it would be stored and signed as \
                 a float, not as sent"
            )));
        }
        // Most params arrive canonical already: then the text is kept as it is, without
        // building a value tree and writing it out again.
        if is_canonical(&self.params) {
            return Ok(self.params.clone());
        }
        let value: serde_json::Value =
            serde_json::from_str(&self.params).map_err(|error| refuse(error.to_string()))?;
        // Written straight into bytes (`Display` goes through a formatting adapter, slower).
        let canonical = serde_json::to_string(&value).map_err(|error| refuse(error.to_string()))?;
        Ok(canonical)
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

/// Whether `text` is JSON that canonicalization would leave unchanged, by a scan that
/// allocates nothing. Conservative: false means only "maybe not" (the slow path then parses
/// and writes the text, and reports what is not JSON). True needs: no whitespace; strings
/// without escapes or control characters (serde_json writes those back as they are); object
/// keys in strictly increasing byte order (what a sorted map writes; a repeated key is not
/// canonical); integers only, without a leading zero or `-0`, that fit `i64` or `u64`
/// (fractions and exponents are rewritten); nesting at most 64 deep (the parser's limit is
/// 128). Property-tested against the slow path.
pub(crate) fn is_canonical(text: &str) -> bool {
    let mut scan = Scan {
        bytes: text.as_bytes(),
        at: 0,
    };
    scan.value(0) && scan.at == scan.bytes.len()
}

/// A cursor for `is_canonical`.
struct Scan<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Scan<'t> {
    const DEPTH_MAX: usize = 64;

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        self.at += usize::from(matched);
        matched
    }

    fn value(&mut self, depth: usize) -> bool {
        if depth > Self::DEPTH_MAX {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => false,
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let matched = self.bytes[self.at..].starts_with(word);
        self.at += if matched { word.len() } else { 0 };
        matched
    }

    /// A string without escapes or control characters; returns its contents.
    fn string(&mut self) -> Option<&'t [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        let length = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        self.at = start + length;
        if !self.eat(b'"') {
            return None;
        }
        Some(&self.bytes[start..start + length])
    }

    fn integer(&mut self) -> bool {
        let start = self.at;
        let negative = self.eat(b'-');
        let digits = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        let digits = &self.bytes[digits..self.at];
        if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
            return false;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return false;
        }
        let Ok(token) = std::str::from_utf8(&self.bytes[start..self.at]) else {
            return false;
        };
        if negative {
            token.parse::<i64>().is_ok()
        } else {
            token.parse::<u64>().is_ok()
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous: Option<&[u8]> = None;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            if previous.is_some_and(|previous| previous >= key) {
                return false;
            }
            previous = Some(key);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
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
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    fn issuer() -> Address {
        "alice.os@app:pkg:pub.os".parse().unwrap()
    }

    /// JSON texts near the canonical form: values with integers, floats, escapes and
    /// unicode, written compactly, pretty, or with keys out of order and repeated, plus
    /// damaged copies (a byte cut, doubled or replaced).
    fn arb_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            "[a-c\\\\\"/\\u{0}-\\u{1f}é☃]{0,4}".prop_map(serde_json::Value::from),
        ];
        let value = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec(("[a-c]{0,2}", inner), 0..4).prop_map(|entries| {
                    serde_json::Value::Object(entries.into_iter().collect())
                }),
            ]
        });
        let written = (value, 0..3u8).prop_map(|(value, style)| match style {
            0 => value.to_string(),
            1 => serde_json::to_string_pretty(&value).unwrap_or_default(),
            // Keys reversed and the first one repeated: order and duplicates matter.
            _ => value
                .to_string()
                .replacen('{', "{\"b\":1,\"a\":2,\"b\":3,", 1),
        });
        let hand = prop_oneof![
            Just("-0".to_string()),
            Just("01".to_string()),
            Just("1.0".to_string()),
            Just("1e2".to_string()),
            Just("\"\\u0041\"".to_string()),
            Just("{\"a\":1,\"a\":1}".to_string()),
            Just("[1,]".to_string()),
            Just(" 1".to_string()),
            Just("-9223372036854775808".to_string()),
            Just("18446744073709551615".to_string()),
            Just("18446744073709551616".to_string()),
            Just("[".repeat(70) + &"]".repeat(70)),
        ];
        let text = prop_oneof![3 => written, 1 => hand];
        (text, any::<prop::sample::Index>(), 0..4u8, any::<u8>()).prop_map(
            |(text, at, damage, byte)| {
                if text.is_empty() || damage > 0 {
                    return text;
                }
                let mut bytes = text.into_bytes();
                let at = at.index(bytes.len());
                match byte % 3 {
                    0 => drop(bytes.remove(at)),
                    1 => bytes.insert(at, bytes[at]),
                    _ => bytes[at] = byte,
                }
                String::from_utf8_lossy(&bytes).into_owned()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 4096,
            failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/proptest-regressions/canonical_params.txt"
            )))),
            ..ProptestConfig::default()
        })]

        /// The allocation-free canonical check is sound: whatever it accepts, parsing and
        /// writing gives back byte for byte. And it is complete for what canonicalization
        /// writes without floats or escapes: such output is accepted as it is.
        #[test]
        fn the_canonical_scan_agrees_with_parsing_and_writing(text in arb_text()) {
            let slow = serde_json::from_str::<serde_json::Value>(&text).map(|v| v.to_string());
            if is_canonical(&text) {
                prop_assert_eq!(slow.as_deref().ok(), Some(text.as_str()));
            }
            if let Ok(canonical) = &slow {
                let plain = !canonical.contains(['\\', '.', 'e', 'E'])
                    && canonical.bytes().all(|b| b >= 0x20)
                    && inexact_integer(canonical).is_none()
                    && canonical.bytes().filter(|b| matches!(b, b'[' | b'{')).count() <= 64;
                if plain {
                    prop_assert!(is_canonical(canonical), "{} not seen as canonical", canonical);
                }
            }
            // And the fast path changes nothing the kernel stores or signs.
            let cap = Capability::new(issuer(), text.clone());
            if let Ok(canonical) = cap.canonical_params() {
                prop_assert_eq!(Ok(canonical), slow.map_err(|_| ()));
            }
        }
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
