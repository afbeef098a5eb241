//! The write path: every durable effect of a step goes into the step's write set
//! (`Kernel::writes`, a [`Batch`]) and is committed in one transaction when the step ends
//! (`commit_step`). Reads within the step see its own writes (`read`).
//!
//! What a step writes: the entries of the process map it changed, one key per process in
//! [`Table::Process`] (never the whole map: writing all of it made 10 000 initializations
//! quadratic); the code of a newly persisted process, once per distinct module, under its
//! SHA-256 in [`Table::Code`] (removed when no persisted process uses it); process state set
//! and cleared in [`Table::State`]; vfs files in [`Table::Vfs`]; at first boot the meta table.
//! W5: a kill is committed; W12: writes are in step order; W3: `OnExit::None` processes are
//! never written, so they cannot resurrect.
//!
//! Fail-stop: a commit that fails, or a read that fails during a step, stops the kernel
//! (`Kernel::failure`, `Step::Failed`); nothing of the failed step leaves it.
//!
//! Invariant: when a step has committed, the store's process table equals `persisted_map()`,
//! `stored` lists exactly its keys with their code, and `code_refs` counts `stored`'s code.

use super::state::ProcessEntry;
use super::{Kernel, KernelError};
use crate::storage::{Batch, StorageError, Table};
use crate::trace::Event;
use crate::types::{Capability, OnExit, ProcessId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The SHA-256 of a module's bytes: its key in [`Table::Code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CodeHash(pub [u8; 32]);

impl CodeHash {
    /// The hash of `code`.
    pub fn of(code: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(code).into())
    }

    /// Lowercase hex, as persisted entries name it.
    pub fn to_hex(self) -> String {
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        debug_assert_eq!(Self::from_hex(&out), Some(self), "hex reads back");
        out
    }

    /// Parses 64 lowercase hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let high = HEX.iter().position(|d| *d == pair[0])?;
            let low = HEX.iter().position(|d| *d == pair[1])?;
            bytes[i] = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Self(bytes))
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A process as persisted: the reference's `PersistedProcess`, with the capabilities as a list
/// of (capability, signature) pairs in canonical order (JSON has no struct-keyed maps), and the
/// hash of its code (`None` for the kernel's own entry, which has none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedProcess {
    /// Where the code came from.
    pub wasm_bytes_handle: String,
    /// The code's SHA-256 in lowercase hex: its key in the code table.
    pub code: Option<String>,
    /// The process ABI version.
    pub wit_version: Option<u32>,
    /// What happens on exit.
    pub on_exit: OnExit,
    /// Held capabilities and the kernel's signatures.
    pub capabilities: Vec<(Capability, Vec<u8>)>,
    /// Whether any local process may message it.
    pub public: bool,
}

/// Why the kernel stopped (fail-stop): the store could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelFailure {
    /// The step's commit failed: nothing of it is durable or was let out.
    Commit(StorageError),
    /// A read from the store failed during a step.
    Read(StorageError),
    /// Making commits durable failed.
    Sync(StorageError),
}

impl KernelFailure {
    /// The storage error behind it.
    pub fn storage_error(&self) -> &StorageError {
        match self {
            Self::Commit(e) | Self::Read(e) | Self::Sync(e) => e,
        }
    }
}

impl fmt::Display for KernelFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Commit(e) => write!(f, "the kernel stopped: a step's commit failed: {e}"),
            Self::Read(e) => write!(f, "the kernel stopped: a read failed: {e}"),
            Self::Sync(e) => write!(f, "the kernel stopped: a sync failed: {e}"),
        }
    }
}

impl std::error::Error for KernelFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.storage_error())
    }
}

/// The durable-side bookkeeping of a kernel: the step's write set and what the store holds.
#[derive(Debug, Default)]
pub(crate) struct Durable {
    /// The current step's writes.
    pub(crate) writes: Batch,
    // Invariant: the processes in the store's process table (as of the last commit plus
    // `writes`), each with its code.
    pub(crate) stored: BTreeMap<ProcessId, Option<CodeHash>>,
    // Invariant: for each hash, how many `stored` processes use it (never zero).
    pub(crate) code_refs: BTreeMap<CodeHash, usize>,
    /// Set once: the kernel stopped.
    pub(crate) failure: Option<KernelFailure>,
    /// Commits made; `synced` of them are durable, the last sync at `synced_at`.
    pub(crate) commits: u64,
    pub(crate) synced: u64,
    pub(crate) synced_at: crate::env::Timestamp,
}

impl Durable {
    /// Takes a reference to `hash` for a stored process; the first one writes the code.
    fn retain(&mut self, hash: CodeHash, code: &Arc<[u8]>) {
        let refs = self.code_refs.entry(hash).or_insert(0);
        *refs += 1;
        if *refs == 1 {
            assert!(!code.is_empty(), "only non-empty code has a hash");
            self.writes.put(Table::Code, &hash.0, Arc::clone(code));
        }
        debug_assert!(
            self.code_refs.get(&hash).is_some_and(|refs| *refs >= 1),
            "a retained module is counted"
        );
    }

    /// Drops a reference to `hash`; the last one removes the code.
    fn release(&mut self, hash: CodeHash) {
        let Some(refs) = self.code_refs.get_mut(&hash) else {
            crate::kernel_bug!("code {hash} released more often than it was retained");
        };
        *refs -= 1;
        if *refs == 0 {
            self.code_refs.remove(&hash);
            self.writes.delete(Table::Code, &hash.0);
        }
    }
}

pub(crate) fn process_key(process: &ProcessId) -> &[u8] {
    process.as_str().as_bytes()
}

impl Kernel {
    /// Marks `process`'s persisted entry as changed; it is written when the step ends.
    pub(crate) fn mark_dirty(&mut self, process: &ProcessId) {
        self.map_dirty.insert(process.clone());
    }

    /// The live or restarting entry of `process`.
    fn persistable_entry(&self, process: &ProcessId) -> Option<&ProcessEntry> {
        self.table
            .get(process)
            .or_else(|| self.pending_restarts.get(process).map(|p| p.entry()))
    }

    /// `process` as it would be persisted now, if it would be (its on-exit is not `None`). A
    /// process waiting to restart is persisted as it was, so a crash in its backoff keeps it.
    pub(crate) fn persisted(&self, process: &ProcessId) -> Option<PersistedProcess> {
        debug_assert!(
            !(self.table.contains_key(process) && self.pending_restarts.contains_key(process)),
            "a process is live or restarting, never both"
        );
        let entry = self.persistable_entry(process)?;
        if entry.on_exit.is_none() {
            return None;
        }
        let capabilities = match self.pending_restarts.get(process) {
            Some(pending) => pending
                .caps()
                .iter()
                .map(|key| (key.to_capability(), self.caps.sign(key)))
                .collect(),
            None => self.caps.held_signed(process).into_iter().collect(),
        };
        Some(PersistedProcess {
            wasm_bytes_handle: entry.wasm_bytes_handle.clone(),
            code: entry.code_hash.map(CodeHash::to_hex),
            wit_version: entry.wit_version,
            on_exit: entry.on_exit.clone(),
            capabilities,
            public: entry.public,
        })
    }

    /// The map as it would be persisted now: every process whose on-exit is not `None`.
    pub fn persisted_map(&self) -> BTreeMap<ProcessId, PersistedProcess> {
        let restarting = self.pending_restarts.keys();
        self.table
            .keys()
            .chain(restarting)
            .filter_map(|process| Some((process.clone(), self.persisted(process)?)))
            .collect()
    }

    /// Puts the changed entries of the process map into the write set, with the code that a
    /// newly persisted process needs and the removal of code no longer used.
    fn write_dirty_entries(&mut self) {
        let dirty = std::mem::take(&mut self.map_dirty);
        for process in dirty {
            let key = process_key(&process);
            match self.persisted(&process) {
                Some(persisted) => {
                    let Some(entry) = self.persistable_entry(&process) else {
                        crate::kernel_bug!("{process} is persisted without an entry");
                    };
                    let (hash, code) = (entry.code_hash, Arc::clone(&entry.code));
                    let bytes = match serde_json::to_vec(&persisted) {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            crate::kernel_bug!("the entry of {process} did not serialize: {e}")
                        }
                    };
                    self.durable.writes.put(Table::Process, key, bytes);
                    let old = self.durable.stored.insert(process.clone(), hash);
                    if old != Some(hash) {
                        if let Some(hash) = hash {
                            self.durable.retain(hash, &code);
                        }
                        if let Some(Some(old)) = old {
                            self.durable.release(old);
                        }
                    }
                }
                None => {
                    if let Some(old) = self.durable.stored.remove(&process) {
                        self.durable.writes.delete(Table::Process, key);
                        if let Some(old) = old {
                            self.durable.release(old);
                        }
                    }
                }
            }
            debug_assert_eq!(
                self.durable.stored.contains_key(&process),
                self.persistable_entry(&process)
                    .is_some_and(|entry| !entry.on_exit.is_none()),
                "the store holds exactly the persisted processes"
            );
        }
        debug_assert!(self.map_dirty.is_empty(), "every change was written");
    }

    /// Ends a step: commits its write set in one transaction and, by the sync rule, syncs.
    /// A failure stops the kernel.
    ///
    /// The sync rule: with `KernelConfig::sync_interval_nanos` zero every commit is synced
    /// (one durable transaction); otherwise commits are synced once that much kernel time has
    /// passed since the last sync, and always before anything leaves the kernel
    /// (`sync_before_output`).
    pub(crate) fn commit_step(&mut self) -> Result<(), KernelFailure> {
        if let Some(failure) = &self.durable.failure {
            return Err(failure.clone());
        }
        self.write_dirty_entries();
        let now = self.clock.now();
        let sync_due = now.nanos_since(self.durable.synced_at) >= self.config.sync_interval_nanos;
        if self.durable.writes.is_empty() {
            if sync_due && self.durable.synced < self.durable.commits {
                return self.sync_now();
            }
            return Ok(());
        }
        let committed = if sync_due {
            self.storage.commit_and_sync(&self.durable.writes)
        } else {
            self.storage.commit(&self.durable.writes)
        };
        if let Err(error) = committed {
            let failure = match error.operation() {
                crate::storage::Operation::Sync => KernelFailure::Sync(error),
                _ => KernelFailure::Commit(error),
            };
            return Err(self.fail(failure));
        }
        self.durable.writes.clear();
        self.durable.commits += 1;
        if sync_due {
            self.durable.synced = self.durable.commits;
            self.durable.synced_at = now;
        }
        assert!(
            self.durable.writes.is_empty(),
            "a committed write set is spent"
        );
        assert!(
            self.durable.synced <= self.durable.commits,
            "syncs follow commits"
        );
        Ok(())
    }

    fn sync_now(&mut self) -> Result<(), KernelFailure> {
        if let Err(error) = self.storage.sync() {
            return Err(self.fail(KernelFailure::Sync(error)));
        }
        self.durable.synced = self.durable.commits;
        self.durable.synced_at = self.clock.now();
        assert!(
            self.durable.failure.is_none(),
            "a stopped kernel does not sync"
        );
        Ok(())
    }

    /// Makes every commit durable now (a driver's checkpoint: the end of setup, a shutdown).
    ///
    /// # Errors
    /// The sync failed: the kernel has stopped.
    pub fn sync(&mut self) -> Result<(), KernelFailure> {
        self.sync_before_output()
    }

    /// Durable before visible: syncs every commit before a message or answer leaves the
    /// kernel. `Err` when the kernel has stopped (now or earlier).
    pub(crate) fn sync_before_output(&mut self) -> Result<(), KernelFailure> {
        if let Some(failure) = &self.durable.failure {
            return Err(failure.clone());
        }
        if self.durable.synced < self.durable.commits {
            self.sync_now()?;
        }
        debug_assert_eq!(self.durable.synced, self.durable.commits, "all synced");
        Ok(())
    }

    /// Stops the kernel with `failure` (the first one is kept); returns it.
    pub(crate) fn fail(&mut self, failure: KernelFailure) -> KernelFailure {
        let failure = self.durable.failure.get_or_insert(failure).clone();
        let reason = failure.to_string();
        self.trace
            .push(self.clock.now(), Event::StorageFailed { reason });
        failure
    }

    /// Why the kernel stopped, if a commit, sync or read failed.
    pub fn failure(&self) -> Option<&KernelFailure> {
        self.durable.failure.as_ref()
    }

    /// The value under `key` in `table` as this step sees it: its own writes first, then the
    /// store. A read failure stops the kernel (it never reads as "absent").
    pub(crate) fn read(&mut self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        if let Some(write) = self.durable.writes.get(table, key) {
            return Ok(write.map(<[u8]>::to_vec));
        }
        match self.storage.get(table, key) {
            Ok(value) => Ok(value),
            Err(error) => {
                self.fail(KernelFailure::Read(error));
                Err(())
            }
        }
    }

    /// Every key in `table` that starts with `prefix`, as this step sees them: the store's,
    /// less what the step deleted, plus what it wrote. A scan failure stops the kernel.
    pub(crate) fn scan_keys(&mut self, table: Table, prefix: &[u8]) -> Result<Vec<Vec<u8>>, ()> {
        let stored = match self.storage.scan(table, prefix) {
            Ok(entries) => entries,
            Err(error) => {
                self.fail(KernelFailure::Read(error));
                return Err(());
            }
        };
        let mut keys: std::collections::BTreeSet<Vec<u8>> =
            stored.into_iter().map(|(key, _)| key).collect();
        for (key, write) in self.durable.writes.scan(table, prefix) {
            if write.is_some() {
                keys.insert(key.to_vec());
            } else {
                keys.remove(key);
            }
        }
        debug_assert!(
            keys.iter().all(|k| k.starts_with(prefix)),
            "a scan stays in its prefix"
        );
        Ok(keys.into_iter().collect())
    }

    /// Deletes `process`'s saved state (what `set-state` wrote), committed at once: the
    /// operator's `clear-state`. The process keeps what it holds in memory; it starts without
    /// state when it next starts. Returns whether there was state to delete.
    ///
    /// # Errors
    /// No such process, or the store failed (the kernel has stopped).
    pub(crate) fn clear_state(&mut self, process: &ProcessId) -> Result<bool, KernelError> {
        if !self.table.contains_key(process) {
            return Err(KernelError::NoSuchProcess(process.clone()));
        }
        if self.durable.failure.is_some() {
            return Err(KernelError::Stopped);
        }
        assert!(
            self.durable.writes.is_empty(),
            "clear-state comes between steps"
        );
        let key = process_key(process);
        let had = self
            .read(Table::State, key)
            .map_err(|()| KernelError::Stopped)?;
        if had.is_some() {
            self.write(Table::State, key, None);
            self.commit_step().map_err(|_| KernelError::Stopped)?;
        }
        assert!(self.durable.writes.is_empty(), "the deletion is committed");
        Ok(had.is_some())
    }

    /// Puts a write into the step's write set.
    pub(crate) fn write(&mut self, table: Table, key: &[u8], value: Option<&[u8]>) {
        assert!(table != Table::Meta, "meta is written at first boot only");
        match value {
            Some(bytes) => self.durable.writes.put(table, key, bytes),
            None => self.durable.writes.delete(table, key),
        }
        debug_assert!(
            self.durable.writes.get(table, key).is_some(),
            "the write is seen"
        );
    }

    /// The write set not yet committed: empty between steps, except after a failed commit,
    /// when it is what the failed step tried to write (which a crash may or may not have
    /// made durable).
    pub fn uncommitted(&self) -> &Batch {
        &self.durable.writes
    }

    /// Commits made and how many of them are synced.
    pub fn commits(&self) -> (u64, u64) {
        (self.durable.commits, self.durable.synced)
    }

    /// The map as stored: every persisted entry read back from the last commit.
    ///
    /// # Errors
    /// The storage failed, or an entry does not read back as a process.
    pub fn stored_map(&self) -> Result<BTreeMap<ProcessId, PersistedProcess>, super::BootError> {
        super::boot::read_process_table(self.storage.as_ref())
    }

    /// The storage (read-only), e.g. to inspect what was persisted.
    pub fn storage(&self) -> &dyn crate::storage::Storage {
        self.storage.as_ref()
    }

    /// Checks the durable bookkeeping: `code_refs` counts `stored`'s code.
    pub(crate) fn check_durable(&self) -> Result<(), String> {
        let mut counted: BTreeMap<CodeHash, usize> = BTreeMap::new();
        for hash in self.durable.stored.values().flatten() {
            *counted.entry(*hash).or_insert(0) += 1;
        }
        if counted != self.durable.code_refs {
            return Err("the code reference counts differ from the stored processes".into());
        }
        Ok(())
    }
}
