//! `Storage`: the kernel's door to durable bytes, transactional and in tables.
//!
//! A step's durable effects are collected in a [`Batch`] (the write set) and handed to
//! [`Storage::commit`] once, when the step ends: the backend applies all of it or none of it.
//! [`Storage::sync`] makes every commit so far durable (a real or simulated disk's `fsync`).
//! Reads are by table and key, and scans by table and key prefix, in key byte order.
//!
//! Tables: [`Table::Meta`] (format version, node name, signing key), [`Table::Process`] (one
//! entry per persisted process), [`Table::Code`] (wasm code under its SHA-256, so one module
//! used by a thousand processes is stored once), [`Table::State`] (process state under the
//! process id), [`Table::Vfs`] (vfs files under their path).
//!
//! `MemStorage` is the in-memory backend for simulation and tests; [`RedbStorage`] is redb on
//! a real file (production) or on any redb backend (the simulator's simulated disk).
//!
//! Invariant: scans are in key order; a commit is all or nothing; a batch holds at most one
//! write per (table, key), the last one made.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

mod on_redb;

pub use on_redb::{AtPath, Panicked, RedbStorage};

/// One table of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Format version, node name, signing key.
    Meta,
    /// Persisted process entries, under the process id.
    Process,
    /// Wasm code under the SHA-256 of its bytes.
    Code,
    /// Process state, under the process id.
    State,
    /// Vfs files, under their path.
    Vfs,
}

impl Table {
    /// Every table, in order.
    pub const ALL: [Table; 5] = [
        Table::Meta,
        Table::Process,
        Table::Code,
        Table::State,
        Table::Vfs,
    ];

    /// The table's name in a backend (redb table names, error messages).
    pub fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Process => "process",
            Table::Code => "code",
            Table::State => "state",
            Table::Vfs => "vfs",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the backend was doing when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Opening or creating the store.
    Open,
    /// Reading a key or scanning.
    Read,
    /// Committing a batch.
    Commit,
    /// Making commits durable.
    Sync,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Open => "opening the store",
            Operation::Read => "reading",
            Operation::Commit => "committing",
            Operation::Sync => "syncing",
        })
    }
}

/// The error a backend carries as its source.
pub type BackendError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A storage failure.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend failed while doing `operation` on `table` (when one table was involved).
    Backend {
        /// What it was doing.
        operation: Operation,
        /// The table, if one.
        table: Option<Table>,
        /// The backend's error.
        source: BackendError,
    },
    /// A stored value fails its checksum: the disk returned or kept other bytes than written.
    Corrupt {
        /// The table.
        table: Table,
        /// The key.
        key: Vec<u8>,
    },
}

impl StorageError {
    /// A backend failure.
    pub fn backend(
        operation: Operation,
        table: Option<Table>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            operation,
            table,
            source: Arc::new(source),
        }
    }

    /// What the backend was doing.
    pub fn operation(&self) -> Operation {
        match self {
            Self::Backend { operation, .. } => *operation,
            Self::Corrupt { .. } => Operation::Read,
        }
    }
}

/// Two storage errors are equal when they are the same failure: the same operation and table
/// and the same source error (by identity; backend errors have no equality of their own).
impl PartialEq for StorageError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Backend {
                    operation,
                    table,
                    source,
                },
                Self::Backend {
                    operation: o,
                    table: t,
                    source: s,
                },
            ) => operation == o && table == t && Arc::ptr_eq(source, s),
            (Self::Corrupt { table, key }, Self::Corrupt { table: t, key: k }) => {
                table == t && key == k
            }
            _ => false,
        }
    }
}

impl Eq for StorageError {}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Backend {
                operation,
                table: Some(table),
                source,
            } => write!(f, "storage failed {operation} table {table}: {source}"),
            Self::Backend {
                operation, source, ..
            } => write!(f, "storage failed {operation}: {source}"),
            Self::Corrupt { table, key } => write!(
                f,
                "the stored value of key {:?} in table {table} fails its checksum",
                String::from_utf8_lossy(key)
            ),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Backend { source, .. } => Some(source.as_ref()),
            Self::Corrupt { .. } => None,
        }
    }
}

/// Keys with their values, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One write of a batch: the new value, or `None` for a removal.
pub type Write = Option<Arc<[u8]>>;

/// A write set: puts and removals by (table, key), applied together by `Storage::commit`.
/// Later writes to a key replace earlier ones, so reads through the batch see the step's own
/// writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    writes: BTreeMap<(Table, Vec<u8>), Write>,
    // Invariant: the sum of the key and value lengths in `writes`.
    bytes: u64,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `value` under `key` in `table`.
    pub fn put(&mut self, table: Table, key: &[u8], value: impl Into<Arc<[u8]>>) {
        self.write(table, key, Some(value.into()));
    }

    /// Removes `key` from `table`.
    pub fn delete(&mut self, table: Table, key: &[u8]) {
        self.write(table, key, None);
    }

    fn write(&mut self, table: Table, key: &[u8], value: Write) {
        let added = (key.len() + value.as_ref().map_or(0, |v| v.len())) as u64;
        let replaced = self.writes.insert((table, key.to_vec()), value);
        if let Some(old) = replaced {
            let removed = (key.len() + old.as_ref().map_or(0, |v| v.len())) as u64;
            assert!(self.bytes >= removed, "a batch counts the bytes it holds");
            self.bytes -= removed;
        }
        self.bytes += added;
    }

    /// The batch's write to `key` in `table`, if it has one: `Some(None)` is a removal.
    pub fn get(&self, table: Table, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes
            .get(&(table, key.to_vec()))
            .map(|write| write.as_deref())
    }

    /// The writes, in (table, key) order.
    pub fn iter(&self) -> impl Iterator<Item = (Table, &[u8], Option<&[u8]>)> {
        self.writes
            .iter()
            .map(|((table, key), write)| (*table, key.as_slice(), write.as_deref()))
    }

    /// The writes to `table` whose key starts with `prefix`, in key order.
    pub fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &'a [u8],
    ) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a {
        self.writes
            .range((table, prefix.to_vec())..)
            .take_while(move |((t, key), _)| *t == table && key.starts_with(prefix))
            .map(|((_, key), write)| (key.as_slice(), write.as_deref()))
    }

    /// How many writes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Key and value bytes written.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Empties the batch.
    pub fn clear(&mut self) {
        self.writes.clear();
        self.bytes = 0;
    }
}

/// A transactional store of tables of ordered keys.
pub trait Storage {
    /// The value under `key` in `table`, as last committed.
    ///
    /// # Errors
    /// A backend failure.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;

    /// Every key of `table` that starts with `prefix`, with its value, in key order.
    ///
    /// # Errors
    /// A backend failure.
    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError>;

    /// Applies every write of `batch`, or none of them.
    ///
    /// # Errors
    /// A backend failure; nothing of the batch was applied.
    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError>;

    /// Makes every commit so far durable.
    ///
    /// # Errors
    /// A backend failure; commits since the last successful sync may be lost at a crash.
    fn sync(&mut self) -> Result<(), StorageError>;

    /// `commit` then `sync`, in one durable transaction where the backend can.
    ///
    /// # Errors
    /// As `commit` (nothing applied) or `sync` (applied, maybe not durable).
    fn commit_and_sync(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.commit(batch)?;
        self.sync()
    }
}

/// Storage in memory: every commit is durable at once (nothing is lost but by dropping it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemStorage {
    tables: BTreeMap<(Table, Vec<u8>), Vec<u8>>,
    commits: u64,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys are stored, in all tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// How many batches were committed.
    pub fn commits(&self) -> u64 {
        self.commits
    }
}

impl Storage for MemStorage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tables.get(&(table, key.to_vec())).cloned())
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        let found: Entries = self
            .tables
            .range((table, prefix.to_vec())..)
            .take_while(|((t, key), _)| *t == table && key.starts_with(prefix))
            .map(|((_, key), value)| (key.clone(), value.clone()))
            .collect();
        debug_assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        Ok(found)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        for (table, key, write) in batch.iter() {
            match write {
                Some(value) => {
                    self.tables.insert((table, key.to_vec()), value.to_vec());
                }
                None => {
                    self.tables.remove(&(table, key.to_vec()));
                }
            }
        }
        self.commits += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// A store shared by handles: the simulator keeps one to reboot a kernel from what the last
/// kernel committed, and tests inspect it while a kernel owns another handle.
#[derive(Clone, Debug, Default)]
pub struct SharedStorage<S> {
    inner: std::rc::Rc<std::cell::RefCell<S>>,
}

impl<S> SharedStorage<S> {
    /// Shares `storage`.
    pub fn new(storage: S) -> Self {
        Self {
            inner: std::rc::Rc::new(std::cell::RefCell::new(storage)),
        }
    }

    /// Runs `f` on the shared store.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }
}

impl<S: Storage> Storage for SharedStorage<S> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.borrow().get(table, key)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        self.inner.borrow().scan(table, prefix)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.inner.borrow_mut().commit(batch)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.inner.borrow_mut().sync()
    }

    fn commit_and_sync(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.inner.borrow_mut().commit_and_sync(batch)
    }
}

impl Storage for Box<dyn Storage> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.as_ref().get(table, key)
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        self.as_ref().scan(table, prefix)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.as_mut().commit(batch)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.as_mut().sync()
    }

    fn commit_and_sync(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.as_mut().commit_and_sync(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_applies_puts_and_removals_by_table() {
        let mut storage = MemStorage::new();
        assert_eq!(storage.get(Table::State, b"k").unwrap(), None);
        let mut batch = Batch::new();
        batch.put(Table::State, b"k", &b"v"[..]);
        batch.put(Table::Vfs, b"k", &b"other table"[..]);
        storage.commit(&batch).unwrap();
        assert_eq!(
            storage.get(Table::State, b"k").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(
            storage.get(Table::Vfs, b"k").unwrap(),
            Some(b"other table".to_vec())
        );
        let mut batch = Batch::new();
        batch.delete(Table::State, b"k");
        storage.commit(&batch).unwrap();
        assert_eq!(storage.get(Table::State, b"k").unwrap(), None);
        assert_eq!(storage.len(), 1);
        assert_eq!(storage.commits(), 2);
    }

    #[test]
    fn scans_stay_in_their_table_and_prefix_in_key_order() {
        let mut storage = MemStorage::new();
        let mut batch = Batch::new();
        for key in [&b"p/b"[..], b"p/a", b"q", b"p"] {
            batch.put(Table::Process, key, key);
            batch.put(Table::State, key, key);
        }
        storage.commit(&batch).unwrap();
        let keys: Vec<_> = storage
            .scan(Table::Process, b"p/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"p/a".to_vec(), b"p/b".to_vec()]);
        let in_batch: Vec<_> = batch.scan(Table::State, b"p").map(|(k, _)| k).collect();
        assert_eq!(in_batch, vec![&b"p"[..], b"p/a", b"p/b"]);
    }

    #[test]
    fn a_batch_keeps_the_last_write_to_a_key_and_counts_its_bytes() {
        let mut batch = Batch::new();
        batch.put(Table::State, b"key", &b"12345"[..]);
        assert_eq!(batch.bytes(), 8);
        batch.put(Table::State, b"key", &b"1"[..]);
        assert_eq!(batch.bytes(), 4);
        assert_eq!(batch.get(Table::State, b"key"), Some(Some(&b"1"[..])));
        batch.delete(Table::State, b"key");
        assert_eq!(batch.get(Table::State, b"key"), Some(None));
        assert_eq!((batch.len(), batch.bytes()), (1, 3));
        assert_eq!(batch.get(Table::Vfs, b"key"), None);
        batch.clear();
        assert!(batch.is_empty() && batch.bytes() == 0);
    }
}
