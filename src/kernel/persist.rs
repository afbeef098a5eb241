//! Persistence of the process map, one entry per process: after any step that changed a
//! process's entry (its on-exit, its capabilities, its existence), the kernel writes that
//! entry, and only it, synchronously to `Storage` under `kernel:distro:sys/process/<id>`
//! before the next step (W5: a kill is persisted; W12: writes are ordered; W3: `OnExit::None`
//! processes are never written, so they cannot resurrect). Writing the whole map after every
//! change made 10 000 initializations quadratic (93 s). Booting from it comes with the
//! durable kernel.
//!
//! Invariant: when a step ends, the stored entries equal `persisted_map()` unless a write
//! failed, which is a `StorageFailed` trace event.

use super::Kernel;
use crate::trace::Event;
use crate::types::{Capability, OnExit, ProcessId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The prefix of the storage keys of persisted processes; the process id follows it.
pub const PROCESS_KEY_PREFIX: &[u8] = b"kernel:distro:sys/process/";

fn process_key(process: &ProcessId) -> Vec<u8> {
    let mut key = PROCESS_KEY_PREFIX.to_vec();
    key.extend_from_slice(process.as_str().as_bytes());
    key
}

/// A process as persisted: the reference's `PersistedProcess`, with the capabilities as a list
/// of (capability, signature) pairs in canonical order (JSON has no struct-keyed maps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistedProcess {
    /// Where the code came from.
    pub wasm_bytes_handle: String,
    /// The process ABI version.
    pub wit_version: Option<u32>,
    /// What happens on exit.
    pub on_exit: OnExit,
    /// Held capabilities and the kernel's signatures.
    pub capabilities: Vec<(Capability, Vec<u8>)>,
    /// Whether any local process may message it.
    pub public: bool,
}

impl Kernel {
    /// Marks `process`'s persisted entry as changed; it is written when the step ends.
    pub(crate) fn mark_dirty(&mut self, process: &ProcessId) {
        self.map_dirty.insert(process.clone());
    }

    /// `process` as it would be persisted now, if it would be (its on-exit is not `None`).
    fn persisted(&self, process: &ProcessId) -> Option<PersistedProcess> {
        let entry = self.table.get(process)?;
        if entry.on_exit.is_none() {
            return None;
        }
        Some(PersistedProcess {
            wasm_bytes_handle: entry.wasm_bytes_handle.clone(),
            wit_version: entry.wit_version,
            on_exit: entry.on_exit.clone(),
            capabilities: self.caps.held_signed(process).into_iter().collect(),
            public: entry.public,
        })
    }

    /// The map as it would be persisted now: every process whose on-exit is not `None`.
    pub fn persisted_map(&self) -> BTreeMap<ProcessId, PersistedProcess> {
        self.table
            .keys()
            .filter_map(|process| Some((process.clone(), self.persisted(process)?)))
            .collect()
    }

    /// The map as stored: every persisted entry read back.
    ///
    /// # Errors
    /// The storage failed, or an entry does not read back as a process.
    pub fn stored_map(&self) -> Result<BTreeMap<ProcessId, PersistedProcess>, String> {
        let entries = self
            .storage
            .scan_prefix(PROCESS_KEY_PREFIX)
            .map_err(|e| e.to_string())?;
        let mut map = BTreeMap::new();
        for (key, value) in entries {
            let id = std::str::from_utf8(&key[PROCESS_KEY_PREFIX.len()..])
                .ok()
                .and_then(|id| id.parse::<ProcessId>().ok())
                .ok_or_else(|| format!("a stored process key {key:?} is not a process id"))?;
            let process = serde_json::from_slice(&value)
                .map_err(|e| format!("the stored entry of {id}: {e}"))?;
            map.insert(id, process);
        }
        Ok(map)
    }

    /// Writes the entries that changed since the last write (deleting those that are no
    /// longer persisted).
    pub(crate) fn persist_if_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.map_dirty);
        for process in dirty {
            let key = process_key(&process);
            let written = match self.persisted(&process) {
                Some(persisted) => match serde_json::to_vec(&persisted) {
                    Ok(bytes) => self.storage.put(&key, &bytes).map_err(|e| e.to_string()),
                    Err(error) => Err(format!("serializing {process}: {error}")),
                },
                None => self.storage.delete(&key).map_err(|e| e.to_string()),
            };
            if let Err(reason) = written {
                let event = Event::StorageFailed { reason };
                self.trace.push(self.clock.now(), event);
            }
        }
        debug_assert!(self.map_dirty.is_empty(), "every change was written");
    }

    /// The storage (read-only), e.g. to inspect what was persisted.
    pub fn storage(&self) -> &dyn crate::storage::Storage {
        self.storage.as_ref()
    }
}
