//! `RedbStorage`: the kernel's tables in a redb database (embedded, ACID, checksummed), on a
//! real file for production or on any `redb::StorageBackend` (the simulator's simulated
//! disk). One redb table per [`Table`]; a [`Batch`] is one write transaction.
//!
//! Commits are unsynced (`Durability::None`: redb makes them durable with the next immediate
//! commit); `sync` is an empty immediate commit, and `commit_and_sync` one immediate
//! transaction, so a step that must be durable costs what a bare redb transaction costs.
//!
//! Every value is stored with a checksum of its table, key and bytes (xxh3, 8 bytes), checked
//! on every read: redb checksums its pages for crash recovery, but a bit the disk flips later
//! would otherwise read as data. A mismatch is `StorageError::Corrupt`.
//!
//! Every open checks the whole file's page checksums (`set_check_integrity_on_open`): a file
//! altered since redb wrote it fails to open instead of being trusted. A panic inside redb
//! (which a plain open of such a file can cause) becomes a storage error.
//!
//! Invariant: every table exists from `open` on, so reads never meet a missing table.

use super::{Batch, Entries, Operation, Storage, StorageError, Table};
use ::redb::{Database, Durability, ReadableDatabase, TableDefinition};
use std::path::Path;

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

const CHECKSUM_LEN: usize = 8;

fn checksum(table: Table, key: &[u8], value: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(table.name().as_bytes());
    hasher.update(&(key.len() as u64).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    hasher.digest().to_le_bytes()
}

/// `value` with its checksum appended.
fn sealed(table: Table, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + CHECKSUM_LEN);
    out.extend_from_slice(value);
    out.extend_from_slice(&checksum(table, key, value));
    out
}

/// The value of stored bytes, checked.
fn unsealed(table: Table, key: &[u8], stored: &[u8]) -> Result<Vec<u8>, StorageError> {
    let corrupt = || StorageError::Corrupt {
        table,
        key: key.to_vec(),
    };
    let split = stored.len().checked_sub(CHECKSUM_LEN).ok_or_else(corrupt)?;
    let (value, sum) = stored.split_at(split);
    if sum != checksum(table, key, value) {
        return Err(corrupt());
    }
    Ok(value.to_vec())
}

/// redb panicked (it can on pages corrupted after its last write: an `unreachable!` deep in a
/// B-tree): the store is corrupt or redb has a bug; either way the kernel must stop.
#[derive(Debug)]
pub struct Panicked(pub String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "redb panicked: {}", self.0)
    }
}

impl std::error::Error for Panicked {}

/// Runs a redb call, turning a panic inside redb into a storage error: a corrupt file must
/// stop the kernel with an error, never unwind through it. The kernel stops on any storage
/// error, so whatever redb left half-done is never used again.
fn guarded<T>(
    operation: Operation,
    table: Option<Table>,
    f: impl FnOnce() -> T,
) -> Result<T, StorageError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        StorageError::backend(operation, table, Panicked(message))
    })
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    operation: Operation,
    table: Option<Table>,
) -> impl FnOnce(E) -> StorageError {
    move |error| StorageError::backend(operation, table, error)
}

/// A failure of the store in the file at `path`.
#[derive(Debug)]
pub struct AtPath {
    /// The file.
    pub path: std::path::PathBuf,
    /// What redb said.
    pub source: ::redb::DatabaseError,
}

impl std::fmt::Display for AtPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for AtPath {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The kernel's store in redb.
#[derive(Debug)]
pub struct RedbStorage {
    db: Database,
}

impl RedbStorage {
    /// Opens the database at `path`, creating it (and its tables) if it does not exist.
    ///
    /// # Errors
    /// redb could not open or create it (not a redb file, corrupt, locked by another
    /// process, or the I/O failed).
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let db = guarded(Operation::Open, None, || {
            ::redb::Builder::new()
                .set_check_integrity_on_open(true)
                .create(path)
        })?
        .map_err(|source| {
            let at = AtPath {
                path: path.to_owned(),
                source,
            };
            StorageError::backend(Operation::Open, None, at)
        })?;
        Self::with_tables(db)
    }

    /// Opens or creates a database on `backend` (the simulator's disk).
    ///
    /// # Errors
    /// As `open`.
    pub fn on_backend(backend: impl ::redb::StorageBackend) -> Result<Self, StorageError> {
        let db = guarded(Operation::Open, None, || {
            ::redb::Builder::new()
                .set_check_integrity_on_open(true)
                .create_with_backend(backend)
        })?
        .map_err(failed(Operation::Open, None))?;
        Self::with_tables(db)
    }

    fn with_tables(db: Database) -> Result<Self, StorageError> {
        guarded(Operation::Open, None, || Self::create_tables(&db))??;
        Ok(Self { db })
    }

    fn create_tables(db: &Database) -> Result<(), StorageError> {
        let txn = db.begin_write().map_err(failed(Operation::Open, None))?;
        for table in Table::ALL {
            txn.open_table(definition(table))
                .map_err(failed(Operation::Open, Some(table)))?;
        }
        txn.commit().map_err(failed(Operation::Open, None))
    }

    fn write(&mut self, batch: &Batch, durability: Durability) -> Result<(), StorageError> {
        let mut txn = self
            .db
            .begin_write()
            .map_err(failed(Operation::Commit, None))?;
        txn.set_durability(durability)
            .map_err(failed(Operation::Commit, None))?;
        let mut writes = batch.iter().peekable();
        while let Some(&(table, _, _)) = writes.peek() {
            let mut open = txn
                .open_table(definition(table))
                .map_err(failed(Operation::Commit, Some(table)))?;
            while let Some((_, key, write)) = writes.next_if(|(t, _, _)| *t == table) {
                match write {
                    Some(value) => open
                        .insert(key, sealed(table, key, value).as_slice())
                        .map(drop),
                    None => open.remove(key).map(drop),
                }
                .map_err(failed(Operation::Commit, Some(table)))?;
            }
        }
        txn.commit().map_err(failed(Operation::Commit, None))
    }
}

impl Storage for RedbStorage {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        guarded(Operation::Read, Some(table), || {
            self.get_unguarded(table, key)
        })?
    }

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        guarded(Operation::Read, Some(table), || {
            self.scan_unguarded(table, prefix)
        })?
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        guarded(Operation::Commit, None, || {
            self.write(batch, Durability::None)
        })?
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        let synced = guarded(Operation::Sync, None, || {
            self.write(&Batch::new(), Durability::Immediate)
        })?;
        synced.map_err(|e| match e {
            StorageError::Backend { table, source, .. } => StorageError::Backend {
                operation: Operation::Sync,
                table,
                source,
            },
            other => other,
        })
    }

    fn commit_and_sync(&mut self, batch: &Batch) -> Result<(), StorageError> {
        guarded(Operation::Commit, None, || {
            self.write(batch, Durability::Immediate)
        })?
    }
}

impl RedbStorage {
    fn get_unguarded(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let read = failed(Operation::Read, Some(table));
        let txn = self.db.begin_read().map_err(read)?;
        let open = txn
            .open_table(definition(table))
            .map_err(failed(Operation::Read, Some(table)))?;
        let value = open
            .get(key)
            .map_err(failed(Operation::Read, Some(table)))?;
        value
            .map(|guard| unsealed(table, key, guard.value()))
            .transpose()
    }

    fn scan_unguarded(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
        let txn = self
            .db
            .begin_read()
            .map_err(failed(Operation::Read, Some(table)))?;
        let open = txn
            .open_table(definition(table))
            .map_err(failed(Operation::Read, Some(table)))?;
        let mut found = Vec::new();
        let range = open
            .range::<&[u8]>(prefix..)
            .map_err(failed(Operation::Read, Some(table)))?;
        for item in range {
            let (key, value) = item.map_err(failed(Operation::Read, Some(table)))?;
            if !key.value().starts_with(prefix) {
                break;
            }
            let value = unsealed(table, key.value(), value.value())?;
            found.push((key.value().to_vec(), value));
        }
        debug_assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        Ok(found)
    }
}
