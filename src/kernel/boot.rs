//! Boot: a kernel built on an empty store bootstraps and writes the meta table (format
//! version, node name, signing key) in its first commit; built on a store that holds a node, it
//! restores it (spec §6.2): the key, every persisted process with its capabilities (each
//! signature checked) and code (each module's hash checked), the reverse index rebuilt from the
//! held sets, then `Booted`, which starts every restored process.
//!
//! W21 decided: on-exit `Requests` are not fired at boot. A process that really exited fired
//! its requests and left the store in the same committed step, so every persisted process with
//! `Requests` is one that was running when the node stopped: stopping a node is not an exit.
//!
//! Invariant: a kernel is built fully restored or not at all; boot writes nothing over a
//! store it could not read (every check runs before the first commit).

use super::Kernel;
use super::persist::{CodeHash, PersistedProcess, process_key};
use super::state::ProcessEntry;
use crate::caps::CapKey;
use crate::storage::{Storage, StorageError, Table};
use crate::types::ProcessId;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The store format this kernel writes and reads.
pub const STORE_FORMAT_VERSION: u32 = 1;

const META_FORMAT: &[u8] = b"format";
const META_NODE: &[u8] = b"node";
const META_KEY: &[u8] = b"key";

/// What is wrong with stored bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// A meta key the format requires is absent.
    MissingMeta(&'static str),
    /// A key or value that must be text is not UTF-8, or not a number.
    Malformed(&'static str),
    /// A process key is not a process id.
    NotAProcessId(String),
    /// A process entry is not the JSON of a persisted process.
    Json(String),
    /// A capability's signature does not verify with the node's key.
    BadSignature(String),
    /// Code whose bytes do not hash to its key.
    CodeHashMismatch,
    /// A process entry names no code, or code that is not a hash.
    BadCodeRef(String),
    /// An entry that does not read back as it was written (not canonical, duplicates).
    NotAsWritten,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingMeta(key) => write!(f, "the meta key {key:?} is missing"),
            Self::Malformed(what) => write!(f, "{what} is malformed"),
            Self::NotAProcessId(key) => write!(f, "the key {key:?} is not a process id"),
            Self::Json(error) => write!(f, "the entry is not a persisted process: {error}"),
            Self::BadSignature(cap) => write!(f, "the signature of {cap} does not verify"),
            Self::CodeHashMismatch => f.write_str("the code does not hash to its key"),
            Self::BadCodeRef(code) => write!(f, "the code reference {code:?} is not a hash"),
            Self::NotAsWritten => f.write_str("the entry does not read back as it was written"),
        }
    }
}

/// Why a kernel could not be built on its store. Nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootError {
    /// Reading or committing failed.
    Storage(StorageError),
    /// The store was written by another format version.
    FormatVersion {
        /// The version found.
        found: u32,
        /// The version this kernel reads.
        supported: u32,
    },
    /// The store holds another node.
    OtherNode {
        /// The node in the store.
        stored: String,
        /// The node configured.
        configured: String,
    },
    /// The configuration's signing key is not the store's.
    OtherKey,
    /// Stored bytes are corrupt.
    Corrupt {
        /// The table.
        table: Table,
        /// The key, as text (lossy).
        key: String,
        /// What is wrong.
        problem: Corruption,
    },
    /// A process's code is not in the code table.
    MissingCode {
        /// The process.
        process: ProcessId,
        /// The code's hash.
        hash: String,
    },
    /// A process's code did not load.
    Load {
        /// The process.
        process: ProcessId,
        /// The loader's reason.
        reason: String,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Storage(e) => write!(f, "{e}"),
            Self::FormatVersion { found, supported } => write!(
                f,
                "the store has format version {found}; this kernel reads version {supported}"
            ),
            Self::OtherNode { stored, configured } => write!(
                f,
                "the store holds node {stored:?}, not the configured node {configured:?}"
            ),
            Self::OtherKey => f.write_str("the configured signing key is not the store's key"),
            Self::Corrupt {
                table,
                key,
                problem,
            } => write!(
                f,
                "the store is corrupt: table {table}, key {key:?}: {problem}"
            ),
            Self::MissingCode { process, hash } => {
                write!(
                    f,
                    "the code {hash} of process {process} is not in the store"
                )
            }
            Self::Load { process, reason } => {
                write!(f, "the code of process {process} did not load: {reason}")
            }
        }
    }
}

impl std::error::Error for BootError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StorageError> for BootError {
    fn from(error: StorageError) -> Self {
        Self::Storage(error)
    }
}

fn corrupt(table: Table, key: &[u8], problem: Corruption) -> BootError {
    BootError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        problem,
    }
}

fn bad_signature(cap: &crate::types::Capability) -> Corruption {
    Corruption::BadSignature(format!("{} {}", cap.issuer, cap.params))
}

/// A module restored from the code table, with its hash.
type Module = (CodeHash, Arc<[u8]>);

/// What the meta table says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) node: String,
    pub(crate) key: [u8; 32],
}

/// The meta table: `None` for an empty store.
pub(crate) fn read_meta(storage: &dyn Storage) -> Result<Option<Meta>, BootError> {
    let Some(format) = storage.get(Table::Meta, META_FORMAT)? else {
        let empty = Table::ALL
            .iter()
            .all(|table| storage.scan(*table, b"").is_ok_and(|e| e.is_empty()));
        if !empty {
            return Err(corrupt(
                Table::Meta,
                META_FORMAT,
                Corruption::MissingMeta("format"),
            ));
        }
        return Ok(None);
    };
    let found = std::str::from_utf8(&format)
        .ok()
        .and_then(|text| text.parse::<u32>().ok())
        .ok_or_else(|| corrupt(Table::Meta, META_FORMAT, Corruption::Malformed("format")))?;
    if found != STORE_FORMAT_VERSION {
        return Err(BootError::FormatVersion {
            found,
            supported: STORE_FORMAT_VERSION,
        });
    }
    let required = |key: &'static [u8], name: &'static str| -> Result<Vec<u8>, BootError> {
        storage
            .get(Table::Meta, key)?
            .ok_or_else(|| corrupt(Table::Meta, key, Corruption::MissingMeta(name)))
    };
    debug_assert_eq!(found, STORE_FORMAT_VERSION, "only our format reads on");
    let node = String::from_utf8(required(META_NODE, "node")?)
        .map_err(|_| corrupt(Table::Meta, META_NODE, Corruption::Malformed("node")))?;
    let key: [u8; 32] = required(META_KEY, "key")?
        .try_into()
        .map_err(|_| corrupt(Table::Meta, META_KEY, Corruption::Malformed("key")))?;
    Ok(Some(Meta { node, key }))
}

/// The node a store holds (`None`: an empty store), as its meta table names it.
///
/// # Errors
/// The store cannot be read, or its meta table is corrupt or of another format.
pub fn stored_node(storage: &dyn Storage) -> Result<Option<String>, BootError> {
    Ok(read_meta(storage)?.map(|meta| meta.node))
}

/// Every entry of the process table, parsed.
pub(crate) fn read_process_table(
    storage: &dyn Storage,
) -> Result<BTreeMap<ProcessId, PersistedProcess>, BootError> {
    let mut map = BTreeMap::new();
    for (key, value) in storage.scan(Table::Process, b"")? {
        let id = std::str::from_utf8(&key)
            .ok()
            .and_then(|id| id.parse::<ProcessId>().ok())
            .ok_or_else(|| {
                let shown = String::from_utf8_lossy(&key).into_owned();
                corrupt(Table::Process, &key, Corruption::NotAProcessId(shown))
            })?;
        let process: PersistedProcess = serde_json::from_slice(&value)
            .map_err(|e| corrupt(Table::Process, &key, Corruption::Json(e.to_string())))?;
        map.insert(id, process);
    }
    Ok(map)
}

impl Kernel {
    /// Puts the meta table of a new node into the write set.
    pub(crate) fn write_meta(&mut self, key: &[u8; 32]) {
        let writes = &mut self.durable.writes;
        let format = STORE_FORMAT_VERSION.to_string();
        writes.put(Table::Meta, META_FORMAT, format.as_bytes());
        writes.put(Table::Meta, META_NODE, self.our.as_bytes());
        writes.put(Table::Meta, META_KEY, &key[..]);
        assert_eq!(
            writes.len(),
            3,
            "a new node's first write set is its meta table"
        );
    }

    /// The code `persisted` names, read and checked once per module.
    fn restore_code(
        &self,
        process: &ProcessId,
        persisted: &PersistedProcess,
        modules: &mut BTreeMap<CodeHash, Arc<[u8]>>,
    ) -> Result<Option<Module>, BootError> {
        let Some(text) = &persisted.code else {
            return Ok(None);
        };
        let key = process_key(process);
        let hash = CodeHash::from_hex(text)
            .ok_or_else(|| corrupt(Table::Process, key, Corruption::BadCodeRef(text.clone())))?;
        if let Some(code) = modules.get(&hash) {
            return Ok(Some((hash, Arc::clone(code))));
        }
        let bytes =
            self.storage
                .get(Table::Code, &hash.0)?
                .ok_or_else(|| BootError::MissingCode {
                    process: process.clone(),
                    hash: hash.to_hex(),
                })?;
        if CodeHash::of(&bytes) != hash {
            return Err(corrupt(
                Table::Code,
                hash.to_hex().as_bytes(),
                Corruption::CodeHashMismatch,
            ));
        }
        let code: Arc<[u8]> = Arc::from(bytes);
        modules.insert(hash, Arc::clone(&code));
        debug_assert!(
            modules.len() <= self.durable.stored.len() + 1,
            "one module per user at most"
        );
        Ok(Some((hash, code)))
    }

    /// The capabilities of `persisted` as keys. Their signatures are checked by
    /// `check_restored` (ed25519 signing is deterministic: re-signing must give the stored
    /// bytes, at half the cost of verifying), or here with `verify` for entries boot extends.
    fn restore_caps(
        &self,
        process: &ProcessId,
        persisted: &PersistedProcess,
        verify: bool,
    ) -> Result<Vec<CapKey>, BootError> {
        let key = process_key(process);
        let mut keys = Vec::with_capacity(persisted.capabilities.len());
        for (cap, signature) in &persisted.capabilities {
            if verify && !self.caps.verify(cap, signature) {
                return Err(corrupt(Table::Process, key, bad_signature(cap)));
            }
            let canonical = CapKey::try_from_capability(cap)
                .map_err(|_| corrupt(Table::Process, key, Corruption::NotAsWritten))?;
            keys.push(canonical);
        }
        assert_eq!(
            keys.len(),
            persisted.capabilities.len(),
            "every capability read"
        );
        Ok(keys)
    }

    /// Restores every persisted process (the kernel's own entry gains its persisted
    /// capabilities), then queues `Booted`. Nothing is written unless all of it succeeds.
    pub(crate) fn restore(&mut self) -> Result<(), BootError> {
        let map = read_process_table(self.storage.as_ref())?;
        let mut modules = BTreeMap::new();
        for (process, persisted) in &map {
            let code = self.restore_code(process, persisted, &mut modules)?;
            let extended = self.table.contains_key(process);
            let keys = self.restore_caps(process, persisted, extended)?;
            if extended {
                let mut added = Vec::new();
                for key in keys {
                    if self.caps.insert(process, key.clone()) {
                        added.push(key.to_capability());
                    }
                }
                if !added.is_empty() {
                    self.trace_caps_changed(process, added, Vec::new());
                }
                self.durable.stored.insert(process.clone(), None);
                continue;
            }
            let Some((hash, code)) = code else {
                let problem = Corruption::BadCodeRef(String::new());
                return Err(corrupt(Table::Process, process_key(process), problem));
            };
            let runtime = self
                .loader
                .load(process, &code)
                .map_err(|reason| BootError::Load {
                    process: process.clone(),
                    reason,
                })?;
            let mut entry = ProcessEntry::with_hash(
                persisted.wasm_bytes_handle.clone(),
                persisted.on_exit.clone(),
                persisted.public,
                code,
                Some(hash),
            );
            entry.wit_version = persisted.wit_version;
            assert_eq!(
                entry.code_hash,
                Some(hash),
                "restored code hashes to its key"
            );
            let caps: Vec<_> = keys.iter().map(CapKey::to_capability).collect();
            self.insert_entry(process, entry, Some(runtime), &caps);
            assert!(
                self.table.contains_key(process),
                "a restored process is in the table"
            );
            self.durable.stored.insert(process.clone(), Some(hash));
            *self.durable.code_refs.entry(hash).or_insert(0) += 1;
        }
        self.check_restored(&map)?;
        let booted = crate::wire::KernelCommand::Booted;
        let kernel = crate::types::ProcessId::kernel();
        if let Err(error) = self.command_as(&kernel, &booted, None, None) {
            crate::kernel_bug!("the kernel could not queue Booted at boot: {error}");
        }
        Ok(())
    }

    /// The read path's pair of the write path's assertion: every restored process persists
    /// exactly as it was read, so nothing needs rewriting (the kernel's own entry, extended by
    /// bootstrap, is the exception).
    fn check_restored(
        &mut self,
        map: &BTreeMap<ProcessId, PersistedProcess>,
    ) -> Result<(), BootError> {
        for (process, read) in map {
            if process.is_kernel() {
                continue;
            }
            let Some(restored) = self.persisted(process) else {
                crate::kernel_bug!("restored {process} is not persisted");
            };
            if restored != *read {
                let signatures = restored.capabilities.iter().zip(&read.capabilities);
                let problem = match signatures.into_iter().find(|(a, b)| a != b) {
                    Some(((cap, _), (read_cap, _))) if cap == read_cap => bad_signature(cap),
                    _ => Corruption::NotAsWritten,
                };
                return Err(corrupt(Table::Process, process_key(process), problem));
            }
            self.map_dirty.remove(process);
        }
        if let Err(problem) = self.check_durable() {
            crate::kernel_bug!("after boot: {problem}");
        }
        Ok(())
    }
}
