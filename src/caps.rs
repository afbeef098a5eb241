//! The capability store: per-process capability sets, the kernel's ed25519 signatures, and the
//! reverse index (issuer → grantee → how many of its keys) that `KillProcess` revocation uses.
//!
//! Invariants (checked by `check_invariants`; signatures by `verify_signatures`):
//! - every key is canonical (`Capability::canonical`), so equality is byte equality and each
//!   signature verifies over exactly the stored bytes (W15). This holds by construction: a
//!   `CapKey`'s fields are private and every constructor canonicalizes or builds one of the two
//!   fixed canonical forms (`"messaging"`, `"net"`);
//! - a signature is computed the first time it is needed (attached to a message, persisted,
//!   checked) and kept: ed25519 signatures are deterministic, so this gives the same bytes as
//!   signing at insert time, without paying ~20 µs for capabilities nobody ever shows;
//! - `issued[i][g]` is the number of keys issued by `our@i` that `held[g]` contains, and is
//!   absent when that number is 0: the index is complete and exact (W11), because `insert`,
//!   `remove`, `remove_process` and `revoke_issued_by` are the only writers of either map.
//!   Held sets are ordered by issuer first, so the keys an index entry counts are one range
//!   of `held[g]`: the index needs no copy of them (a second ordered set made every grant
//!   pay two set insertions per key).

use crate::types::{Address, Capability, CapabilityError, ProcessId, SignedCapability};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A canonical capability, usable as an ordered key. Canonical by construction: the fields
/// are private and every constructor canonicalizes. Ordered by issuer, then params.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapKey {
    issuer: Address,
    params: Arc<str>,
}

impl Ord for CapKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.issuer.cmp(&other.issuer).then_with(|| {
            if Arc::ptr_eq(&self.params, &other.params) {
                std::cmp::Ordering::Equal
            } else {
                self.params.cmp(&other.params)
            }
        })
    }
}

impl PartialOrd for CapKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl CapKey {
    /// `issuer`'s messaging capability, whose params are canonical already.
    pub fn messaging(issuer: Address) -> Self {
        Self {
            issuer,
            params: Arc::from(crate::types::MESSAGING_PARAMS),
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &Address {
        &self.issuer
    }

    /// The canonical params text.
    pub fn params(&self) -> &str {
        &self.params
    }

    /// The canonical key of `cap`.
    ///
    /// # Errors
    /// Params that are not JSON.
    pub fn try_from_capability(cap: &Capability) -> Result<Self, CapabilityError> {
        Ok(Self {
            issuer: cap.issuer.clone(),
            params: Arc::from(cap.canonical_params()?),
        })
    }

    /// The key issued by `issuer` with `params` built as a JSON value: the one way runtime
    /// modules make capabilities, so no text a process sent can change their shape (a drive
    /// name that closes a string and adds a key stays one string).
    pub fn from_params(issuer: Address, params: &serde_json::Value) -> Self {
        // A `Value`'s maps are ordered and written compactly: this is the canonical form.
        let text = params.to_string();
        let key = Self {
            issuer,
            params: Arc::from(text.as_str()),
        };
        debug_assert!(
            key.to_capability().canonical_params().as_deref() == Ok(&*key.params),
            "params written from a value are canonical"
        );
        assert!(!key.params.is_empty(), "a value writes at least one byte");
        key
    }

    /// The canonical keys of `caps`, in order, duplicates kept. Keys of one issuer share its
    /// strings (the issuer of the key before is reused when equal), so the ordered maps they
    /// go into compare them by pointer: a 100 000-capability grant from one issuer spends
    /// its time on params, not on comparing the same issuer text again.
    ///
    /// # Errors
    /// The first capability whose params are not JSON.
    pub fn from_capabilities(caps: &[Capability]) -> Result<Vec<Self>, CapabilityError> {
        let mut keys: Vec<Self> = Vec::with_capacity(caps.len());
        for cap in caps {
            let mut key = Self::try_from_capability(cap)?;
            if let Some(before) = keys.last()
                && before.issuer == key.issuer
            {
                key.issuer = before.issuer.clone();
            }
            keys.push(key);
        }
        assert_eq!(keys.len(), caps.len(), "one key per capability");
        Ok(keys)
    }

    /// The wire form.
    pub fn to_capability(&self) -> Capability {
        Capability::new(self.issuer.clone(), self.params.to_string())
    }
}

/// Where an attached capability went when a message was filtered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilteredCaps {
    /// Kept, with the signatures the receiver gets.
    pub kept: Vec<SignedCapability>,
    /// Removed: not held, not self-issued, or not JSON.
    pub dropped: Vec<Capability>,
}

/// Every process's capabilities, signed by the kernel.
pub struct CapabilityStore {
    our: Arc<str>,
    signer: SigningKey,
    /// The params of the messaging and network capabilities, shared by the keys the hot
    /// checks build (a clone is a reference count, not an allocation).
    messaging_params: Arc<str>,
    network_params: Arc<str>,
    // Invariant: each value, once set, is the signature of the key.
    held: BTreeMap<ProcessId, BTreeMap<CapKey, OnceCell<Vec<u8>>>>,
    // Invariant: the exact reverse of `held` for locally issued keys, as counts (module docs).
    issued: BTreeMap<ProcessId, BTreeMap<ProcessId, usize>>,
}

impl CapabilityStore {
    /// An empty store for node `our`, signing with `key_bytes`.
    pub fn new(our: &str, key_bytes: &[u8; 32]) -> Self {
        Self {
            our: Arc::from(our),
            signer: SigningKey::from_bytes(key_bytes),
            messaging_params: Arc::from(crate::types::MESSAGING_PARAMS),
            network_params: Arc::from(crate::types::NETWORK_PARAMS),
            held: BTreeMap::new(),
            issued: BTreeMap::new(),
        }
    }

    /// The public half of the kernel's key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signer.verifying_key()
    }

    /// The node's signature over `bytes` (`net:distro:sys`'s `Sign`).
    pub fn sign_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let signature = self.signer.sign(bytes).to_bytes().to_vec();
        debug_assert_eq!(signature.len(), 64, "an ed25519 signature");
        signature
    }

    /// Whether `signature` is the holder of `key`'s over `bytes`.
    pub fn verify_bytes(key: &[u8; 32], bytes: &[u8], signature: &[u8]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(key) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        key.verify(bytes, &signature).is_ok()
    }

    /// The kernel's signature over the key's canonical bytes.
    pub fn sign(&self, key: &CapKey) -> Vec<u8> {
        let bytes = key.to_capability().signing_bytes();
        self.signer.sign(&bytes).to_bytes().to_vec()
    }

    /// Whether `signature` is the kernel's signature over `cap`'s canonical bytes.
    pub fn verify(&self, cap: &Capability, signature: &[u8]) -> bool {
        let Ok(key) = CapKey::try_from_capability(cap) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(signature) else {
            return false;
        };
        let bytes = key.to_capability().signing_bytes();
        self.signer
            .verifying_key()
            .verify(&bytes, &signature)
            .is_ok()
    }

    /// Registers `process` with no capabilities (no-op if present).
    pub fn add_process(&mut self, process: &ProcessId) {
        self.held.entry(process.clone()).or_default();
    }

    /// Whether `process` has an entry.
    pub fn has_process(&self, process: &ProcessId) -> bool {
        self.held.contains_key(process)
    }

    fn local_issuer<'k>(&self, key: &'k CapKey) -> Option<&'k ProcessId> {
        (*key.issuer.node == *self.our).then_some(&key.issuer.process)
    }

    /// Gives `key` to `process` (signed on first use). Returns whether `process` holds it
    /// newly: false if `process` is unknown or held it already. One lookup in the held set
    /// and, for a locally issued key, one in the reverse index.
    pub fn insert(&mut self, process: &ProcessId, key: CapKey) -> bool {
        let Some(caps) = self.held.get_mut(process) else {
            return false;
        };
        let std::collections::btree_map::Entry::Vacant(slot) = caps.entry(key) else {
            return false;
        };
        let key = slot.key().clone();
        slot.insert(OnceCell::new());
        let held = caps.len();
        if *key.issuer.node == *self.our {
            // Paired with `unindex`: a key is counted exactly when it enters a held set.
            let count = self
                .issued
                .entry(key.issuer.process.clone())
                .or_default()
                .entry(process.clone())
                .or_default();
            *count += 1;
            if *count > held {
                crate::kernel_bug!("{process} is counted {count} keys of one issuer of {held}");
            }
        }
        true
    }

    /// The kernel's signature of a held key, computed on first use.
    fn signature_of<'s>(&self, key: &CapKey, cell: &'s OnceCell<Vec<u8>>) -> &'s Vec<u8> {
        cell.get_or_init(|| self.sign(key))
    }

    /// Takes `key` from `process`. Returns whether it was held.
    pub fn remove(&mut self, process: &ProcessId, key: &CapKey) -> bool {
        let Some(caps) = self.held.get_mut(process) else {
            return false;
        };
        let was_held = caps.remove(key).is_some();
        if was_held && let Some(issuer) = self.local_issuer(key).cloned() {
            self.unindex(&issuer, process);
        }
        was_held
    }

    /// Counts one key of `issuer` fewer for `grantee` in the reverse index. Paired with
    /// `insert`: a held, locally issued key is always counted, so a missing count is a bug.
    fn unindex(&mut self, issuer: &ProcessId, grantee: &ProcessId) {
        let Some(grantees) = self.issued.get_mut(issuer) else {
            crate::kernel_bug!("{grantee} held a key of {issuer}, who had issued nothing");
        };
        let Some(count) = grantees.get_mut(grantee) else {
            crate::kernel_bug!("{grantee} held a key of {issuer} that the index did not count");
        };
        if *count == 0 {
            crate::kernel_bug!("the reverse index keeps a zero count for {grantee}");
        }
        *count -= 1;
        if *count == 0 {
            grantees.remove(grantee);
        }
        if grantees.is_empty() {
            self.issued.remove(issuer);
        }
    }

    /// Whether `process` holds `key`.
    pub fn has(&self, process: &ProcessId, key: &CapKey) -> bool {
        self.held
            .get(process)
            .is_some_and(|caps| caps.contains_key(key))
    }

    /// Whether `source` may message local process `target` by capability.
    pub fn has_messaging(&self, source: &ProcessId, target: &ProcessId) -> bool {
        let key = CapKey {
            issuer: Address {
                node: self.our.clone(),
                process: target.clone(),
            },
            params: Arc::clone(&self.messaging_params),
        };
        self.has(source, &key)
    }

    /// Whether `process` holds the network capability.
    pub fn has_network(&self, process: &ProcessId) -> bool {
        let key = CapKey {
            issuer: Address {
                node: self.our.clone(),
                process: ProcessId::kernel(),
            },
            params: Arc::clone(&self.network_params),
        };
        self.has(process, &key)
    }

    /// The capabilities `process` holds, in key order.
    pub fn held_keys(&self, process: &ProcessId) -> impl Iterator<Item = &CapKey> {
        self.held.get(process).into_iter().flat_map(BTreeMap::keys)
    }

    /// The capabilities `process` holds with the kernel's signatures, in key order.
    pub fn held_signed(&self, process: &ProcessId) -> Vec<SignedCapability> {
        let Some(caps) = self.held.get(process) else {
            return Vec::new();
        };
        caps.iter()
            .map(|(key, cell)| (key.to_capability(), self.signature_of(key, cell).clone()))
            .collect()
    }

    /// Removes `process` and everything it holds; returns what it held.
    pub fn remove_process(&mut self, process: &ProcessId) -> Vec<CapKey> {
        let Some(caps) = self.held.remove(process) else {
            return Vec::new();
        };
        let keys: Vec<CapKey> = caps.into_keys().collect();
        for key in &keys {
            if let Some(issuer) = self.local_issuer(key).cloned() {
                self.unindex(&issuer, process);
            }
        }
        keys
    }

    /// Removes every capability issued by `our@issuer` from every holder; returns what was
    /// removed, in (grantee, key) order.
    pub fn revoke_issued_by(&mut self, issuer: &ProcessId) -> Vec<(ProcessId, CapKey)> {
        let Some(grantees) = self.issued.remove(issuer) else {
            return Vec::new();
        };
        let mut revoked = Vec::new();
        let address = Address {
            node: self.our.clone(),
            process: issuer.clone(),
        };
        for (grantee, count) in grantees {
            let Some(caps) = self.held.get_mut(&grantee) else {
                crate::kernel_bug!("the reverse index of {issuer} names {grantee}, who is gone");
            };
            let keys: Vec<CapKey> = issued_range(caps, &address).cloned().collect();
            // Paired with `insert`: the count is exactly the keys of the range.
            if keys.len() != count {
                crate::kernel_bug!(
                    "the reverse index counts {count} keys of {issuer} held by {grantee}, who \
                     holds {}",
                    keys.len()
                );
            }
            for key in keys {
                caps.remove(&key);
                revoked.push((grantee.clone(), key));
            }
        }
        assert!(
            !self.issued.contains_key(issuer),
            "revocation left index entries"
        );
        revoked
    }

    /// The reference's `FilterCaps`: what `source` may attach to an outgoing message. Kept:
    /// capabilities it holds (stored signature) and capabilities issued by `our@source`
    /// itself (freshly signed). The issuer node must be ours too, a check the reference omits.
    pub fn filter_attached(&self, source: &ProcessId, caps: &[SignedCapability]) -> FilteredCaps {
        let mut kept = Vec::with_capacity(caps.len());
        let mut dropped = Vec::new();
        for (cap, _signature) in caps {
            let Ok(key) = CapKey::try_from_capability(cap) else {
                dropped.push(cap.clone());
                continue;
            };
            if self.local_issuer(&key) == Some(source) {
                let signature = self.sign(&key);
                kept.push((key.to_capability(), signature));
            } else if let Some(cell) = self.held.get(source).and_then(|c| c.get(&key)) {
                kept.push((key.to_capability(), self.signature_of(&key, cell).clone()));
            } else {
                dropped.push(cap.clone());
            }
        }
        FilteredCaps { kept, dropped }
    }

    /// Checks every signature the store has made (for a message, the persisted map, or a
    /// caller who asked) against a fresh one: ed25519 signing is deterministic, so a stored
    /// signature is right exactly when it equals the kernel's signature of its key, and
    /// signing costs less than half of verifying (~20 µs). Not part of the per-step
    /// `check_invariants`. A capability never signed has no signature to be wrong; signing it
    /// here would test the ed25519 library, not the kernel.
    ///
    /// # Errors
    /// The first capability whose signature is not the kernel's.
    pub fn verify_signatures(&self) -> Result<(), String> {
        for (process, caps) in &self.held {
            for (key, cell) in caps {
                let Some(signature) = cell.get() else {
                    continue;
                };
                if *signature != self.sign(key) {
                    return Err(format!("{process} holds {key:?} with a bad signature"));
                }
            }
        }
        Ok(())
    }

    /// Checks the store's invariants (O(total capabilities), no signature work).
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        // Every count is the size of its range of the held set, and no count is 0; summed,
        // the counts cover every locally issued key held. No allocation but the range bound:
        // this runs after every step of a simulation. (Keys are canonical by construction.)
        let mut counted = 0usize;
        for (issuer, grantees) in &self.issued {
            if grantees.is_empty() {
                return Err("reverse capability index keeps an empty entry".into());
            }
            let address = Address {
                node: self.our.clone(),
                process: issuer.clone(),
            };
            for (grantee, &count) in grantees {
                let held = self
                    .held
                    .get(grantee)
                    .map_or(0, |caps| issued_range(caps, &address).count());
                if count == 0 || held != count {
                    return Err(format!(
                        "reverse capability index counts {count} keys of {issuer} held by \
                         {grantee}, who holds {held}: it lists capabilities nobody holds"
                    ));
                }
                counted += count;
            }
        }
        let held: usize = self
            .held
            .values()
            .flat_map(BTreeMap::keys)
            .filter(|key| self.local_issuer(key).is_some())
            .count();
        if held != counted {
            return Err(format!(
                "reverse capability index lacks capabilities: {held} locally issued are held, \
                 {counted} counted"
            ));
        }
        Ok(())
    }
}

/// The keys of `caps` issued by `issuer`: one contiguous range, since keys order by issuer
/// first and the empty params sort before every other.
fn issued_range<'c, V>(
    caps: &'c BTreeMap<CapKey, V>,
    issuer: &'c Address,
) -> impl Iterator<Item = &'c CapKey> + 'c {
    let from = CapKey {
        issuer: issuer.clone(),
        params: Arc::from(""),
    };
    caps.range(from..)
        .map(|(key, _)| key)
        .take_while(move |key| key.issuer == *issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(text: &str) -> ProcessId {
        text.parse().unwrap()
    }

    fn key(issuer: &str, params: &str) -> CapKey {
        CapKey::try_from_capability(&Capability::new(issuer.parse().unwrap(), params)).unwrap()
    }

    fn store() -> CapabilityStore {
        let mut store = CapabilityStore::new("our.os", &[7; 32]);
        store.add_process(&pid("a:p:x.os"));
        store.add_process(&pid("b:p:x.os"));
        store
    }

    #[test]
    fn insert_signs_and_indexes_and_remove_unindexes() {
        let mut store = store();
        let cap = key("our.os@a:p:x.os", "\"messaging\"");
        assert!(store.insert(&pid("b:p:x.os"), cap.clone()));
        assert!(store.has_messaging(&pid("b:p:x.os"), &pid("a:p:x.os")));
        let held = store.held_signed(&pid("b:p:x.os"));
        assert_eq!(held.len(), 1);
        let signature = held[0].1.clone();
        assert_eq!(
            signature,
            store.sign(&cap),
            "a lazy signature is the eager one"
        );
        assert!(store.verify(&cap.to_capability(), &signature));
        assert!(!store.verify(&key("our.os@a:p:x.os", "1").to_capability(), &signature));
        assert_eq!(store.check_invariants(), Ok(()));
        assert_eq!(store.verify_signatures(), Ok(()));
        assert!(store.remove(&pid("b:p:x.os"), &cap));
        assert!(!store.has_messaging(&pid("b:p:x.os"), &pid("a:p:x.os")));
        assert_eq!(store.check_invariants(), Ok(()));
    }

    #[test]
    fn revoke_removes_everything_the_issuer_issued_and_nothing_else() {
        let mut store = store();
        let from_a = key("our.os@a:p:x.os", "{\"x\":1}");
        let from_b = key("our.os@b:p:x.os", "\"messaging\"");
        store.insert(&pid("b:p:x.os"), from_a.clone());
        store.insert(&pid("a:p:x.os"), from_b.clone());
        let revoked = store.revoke_issued_by(&pid("a:p:x.os"));
        assert_eq!(revoked, vec![(pid("b:p:x.os"), from_a.clone())]);
        assert!(!store.has(&pid("b:p:x.os"), &from_a));
        assert!(store.has(&pid("a:p:x.os"), &from_b));
        assert_eq!(store.check_invariants(), Ok(()));
    }

    #[test]
    fn the_invariant_check_finds_each_kind_of_broken_index() {
        let a = pid("a:p:x.os");
        let b = pid("b:p:x.os");
        let cap = key("our.os@a:p:x.os", "\"messaging\"");
        let broken = |damage: &dyn Fn(&mut CapabilityStore)| {
            let mut store = store();
            store.insert(&b, cap.clone());
            assert_eq!(store.check_invariants(), Ok(()));
            damage(&mut store);
            store.check_invariants().unwrap_err()
        };
        let missing = broken(&|s| {
            s.issued.clear();
        });
        assert!(missing.contains("lacks"), "{missing}");
        let extra = broken(&|s| {
            s.issued.entry(b.clone()).or_default().insert(a.clone(), 1);
        });
        assert!(extra.contains("nobody holds"), "{extra}");
        let miscounted = broken(&|s| {
            *s.issued.get_mut(&a).unwrap().get_mut(&b).unwrap() = 2;
        });
        assert!(miscounted.contains("counts 2"), "{miscounted}");
        let misfiled = broken(&|s| {
            s.issued.clear();
            s.issued.entry(b.clone()).or_default().insert(b.clone(), 1);
        });
        assert!(misfiled.contains("nobody holds"), "{misfiled}");
        let zero = broken(&|s| {
            *s.issued.get_mut(&a).unwrap().get_mut(&b).unwrap() = 0;
        });
        assert!(zero.contains("counts 0"), "{zero}");
        let empty = broken(&|s| {
            s.issued.entry(b.clone()).or_default();
        });
        assert!(empty.contains("empty"), "{empty}");
    }

    #[test]
    fn verification_covers_the_signatures_made_and_makes_none() {
        let mut store = store();
        let b = pid("b:p:x.os");
        let shown = key("our.os@a:p:x.os", "\"messaging\"");
        let unshown = key("our.os@a:p:x.os", "{\"n\":1}");
        store.insert(&b, shown.clone());
        store.insert(&b, unshown.clone());
        let signed = store.held_signed(&b);
        assert_eq!(store.verify_signatures(), Ok(()));
        // A stored signature that does not match its capability is found.
        let caps = store.held.get_mut(&b).unwrap();
        caps.insert(shown.clone(), OnceCell::from(signed[1].1.clone()));
        caps.insert(unshown.clone(), OnceCell::new());
        let bad = store.verify_signatures().unwrap_err();
        assert!(bad.contains("bad signature"), "{bad}");
        // The unsigned one was not signed by the check.
        assert!(store.held[&b][&unshown].get().is_none());
    }

    #[test]
    fn filter_keeps_held_and_self_issued_only() {
        let mut store = store();
        let held = key("our.os@b:p:x.os", "\"messaging\"");
        store.insert(&pid("a:p:x.os"), held.clone());
        let attached = vec![
            (held.to_capability(), vec![]),
            (
                Capability::new("our.os@a:p:x.os".parse().unwrap(), "{ \"mine\": true }"),
                vec![],
            ),
            (
                Capability::new("other.os@a:p:x.os".parse().unwrap(), "1"),
                vec![],
            ),
            (Capability::network("our.os"), vec![]),
            (
                Capability::new("our.os@a:p:x.os".parse().unwrap(), "not json"),
                vec![],
            ),
        ];
        let filtered = store.filter_attached(&pid("a:p:x.os"), &attached);
        assert_eq!(filtered.kept.len(), 2);
        assert_eq!(filtered.kept[1].0.params, "{\"mine\":true}");
        assert!(store.verify(&filtered.kept[1].0, &filtered.kept[1].1));
        assert_eq!(filtered.dropped.len(), 3);
    }
}
