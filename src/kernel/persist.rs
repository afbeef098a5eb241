//! Persistence of the process map: after any step that changed it, the kernel writes the whole
//! map synchronously to `Storage` under the reference's key `kernel:distro:sys`, before the next
//! step (fixes W5: a kill is persisted; W12: writes are ordered; W3: `OnExit::None` processes
//! are never written, so they cannot resurrect). Booting from it comes with the production node.
//!
//! Invariant: when a step ends, the stored map equals `persisted_map()` unless the write
//! failed, which is a `StorageFailed` trace event.

use super::Kernel;
use crate::trace::Event;
use crate::types::{Capability, OnExit, ProcessId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The storage key of the process map (the reference's).
pub const PROCESS_MAP_KEY: &[u8] = b"kernel:distro:sys";

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
    /// Marks the process map as changed; it is written when the step ends.
    pub(crate) fn mark_map_dirty(&mut self) {
        self.map_dirty = true;
    }

    /// The map as it would be persisted now: every process whose on-exit is not `None`.
    pub fn persisted_map(&self) -> BTreeMap<ProcessId, PersistedProcess> {
        let mut map = BTreeMap::new();
        for (process, entry) in &self.table {
            if entry.on_exit.is_none() {
                continue;
            }
            let capabilities = self.caps.held_signed(process).into_iter().collect();
            let persisted = PersistedProcess {
                wasm_bytes_handle: entry.wasm_bytes_handle.clone(),
                wit_version: entry.wit_version,
                on_exit: entry.on_exit.clone(),
                capabilities,
                public: entry.public,
            };
            map.insert(process.clone(), persisted);
        }
        map
    }

    /// Writes the map if it changed since the last write.
    pub(crate) fn persist_if_dirty(&mut self) {
        if !self.map_dirty {
            return;
        }
        self.map_dirty = false;
        let bytes = serde_json::to_vec(&self.persisted_map()).unwrap_or_default();
        if let Err(error) = self.storage.put(PROCESS_MAP_KEY, &bytes) {
            let event = Event::StorageFailed {
                reason: error.to_string(),
            };
            self.trace.push(self.clock.now(), event);
        }
    }

    /// The storage (read-only), e.g. to inspect what was persisted.
    pub fn storage(&self) -> &dyn crate::storage::Storage {
        self.storage.as_ref()
    }
}
