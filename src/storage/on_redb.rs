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

fn failed<E: std::error::Error + Send + Sync + 'static>(
    operation: Operation,
    table: Option<Table>,
) -> impl FnOnce(E) -> StorageError {
    move |error| StorageError::backend(operation, table, error)
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
        let db = Database::create(path).map_err(failed(Operation::Open, None))?;
        Self::with_tables(db)
    }

    /// Opens or creates a database on `backend` (the simulator's disk).
    ///
    /// # Errors
    /// As `open`.
    pub fn on_backend(backend: impl ::redb::StorageBackend) -> Result<Self, StorageError> {
        let db = ::redb::Builder::new()
            .create_with_backend(backend)
            .map_err(failed(Operation::Open, None))?;
        Self::with_tables(db)
    }

    fn with_tables(db: Database) -> Result<Self, StorageError> {
        let txn = db.begin_write().map_err(failed(Operation::Open, None))?;
        for table in Table::ALL {
            txn.open_table(definition(table))
                .map_err(failed(Operation::Open, Some(table)))?;
        }
        txn.commit().map_err(failed(Operation::Open, None))?;
        Ok(Self { db })
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

    fn scan(&self, table: Table, prefix: &[u8]) -> Result<Entries, StorageError> {
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

    fn commit(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.write(batch, Durability::None)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.write(&Batch::new(), Durability::Immediate)
            .map_err(|e| match e {
                StorageError::Backend { table, source, .. } => StorageError::Backend {
                    operation: Operation::Sync,
                    table,
                    source,
                },
                other => other,
            })
    }

    fn commit_and_sync(&mut self, batch: &Batch) -> Result<(), StorageError> {
        self.write(batch, Durability::Immediate)
    }
}
