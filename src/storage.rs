//! `Storage`: the kernel's door to durable bytes (process state now; the process map when
//! persistence lands). `MemStorage` is the in-memory implementation for simulation and tests;
//! a durable one and a fault-injecting wrapper (in `sim`) implement the same trait.
//!
//! Invariant: keys are iterated in byte order (a `BTreeMap`), so any listing is deterministic.

use std::collections::BTreeMap;
use std::fmt;

/// A storage failure.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend failed; the text says how.
    Io(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(message) => write!(f, "storage failed: {message}"),
        }
    }
}

impl std::error::Error for StorageError {}

/// Keys with their values, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A key-value store with synchronous, ordered writes.
pub trait Storage {
    /// The value under `key`.
    ///
    /// # Errors
    /// A backend failure.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` under `key`; durable when this returns.
    ///
    /// # Errors
    /// A backend failure; nothing was written.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError>;

    /// Removes `key` (no error if absent).
    ///
    /// # Errors
    /// A backend failure; nothing was removed.
    fn delete(&mut self, key: &[u8]) -> Result<(), StorageError>;

    /// Every key that starts with `prefix`, with its value, in key order.
    ///
    /// # Errors
    /// A backend failure.
    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError>;
}

/// Storage in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStorage {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Storage for MemStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.entries.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.entries.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<(), StorageError> {
        self.entries.remove(key);
        Ok(())
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Entries, StorageError> {
        let found: Vec<_> = self
            .entries
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        debug_assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete() {
        let mut storage = MemStorage::new();
        assert_eq!(storage.get(b"k"), Ok(None));
        storage.put(b"k", b"v").unwrap();
        assert_eq!(storage.get(b"k"), Ok(Some(b"v".to_vec())));
        storage.delete(b"k").unwrap();
        assert!(storage.is_empty());
        for key in [&b"p/b"[..], b"p/a", b"q", b"p"] {
            storage.put(key, key).unwrap();
        }
        let keys: Vec<_> = storage
            .scan_prefix(b"p/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"p/a".to_vec(), b"p/b".to_vec()]);
    }
}
