//! A world's nodes as node journals: each node that can be run alone from its inputs (W9,
//! `alone.rs`) gets a journal in the production node's own format under `DIR/NODE/journal`
//! (an empty store image, its configuration, every input in order with the trace's
//! checkpoints), so `sim replay --journal DIR/NODE` replays that one node of the world alone,
//! steps through it, and checks every checkpoint on the way to the node's trace hash.

use super::World;
use hyperkernel::journal::{Begin, JOURNAL_FORMAT, JournalWriter, Limits};
use hyperkernel::{RedbStorage, Timestamp};
use std::path::{Path, PathBuf};

impl World {
    /// Writes the journal of every node that can be run alone under `dir` (`dir/NODE`, a node
    /// home); returns each node's name and home. Nodes that cannot (they crashed, or have
    /// faults inside) are left out.
    ///
    /// # Errors
    /// A directory or file could not be made or written; or a node's run alone parted from
    /// its run in the world (W9), so its journal would not replay to the same trace.
    pub fn write_journals(&self, dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
        let mut written = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let (Some(inputs), Some(mut kernel)) = (
                node.inputs.as_ref(),
                node.life.as_ref().and_then(|life| life.fresh(false)),
            ) else {
                continue;
            };
            let home = dir.join(&node.name);
            std::fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
            // The store the node booted on: empty (a new node).
            let scratch = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
            let image = scratch.path().join("store.redb");
            drop(RedbStorage::open(&image).map_err(|e| e.to_string())?);
            let config = kernel.config().clone();
            let begin = Begin {
                journal_format: JOURNAL_FORMAT,
                epoch: 0,
                node: node.name.clone(),
                seed: config.seed,
                signing_key: config.signing_key,
                sync_interval_nanos: config.sync_interval_nanos,
                time_start: Timestamp(0),
                vfs: config.vfs,
                network: config.network,
                net: config.net,
                trace_bodies: config.trace_bodies,
            };
            let root = home.join("journal");
            let mut writer = JournalWriter::begin(&root, &image, begin, Limits::default())
                .map_err(|e| format!("{}: {e}", root.display()))?;
            for input in inputs {
                writer
                    .append(input, kernel.trace())
                    .map_err(|e| e.to_string())?;
                let _ = kernel.input(input.clone());
                writer.taken(kernel.trace()).map_err(|e| e.to_string())?;
            }
            if kernel.trace().hash() != node.kernel.trace().hash() {
                return Err(self
                    .replay_alone(index)
                    .and_then(Result::err)
                    .unwrap_or_else(|| format!("W9: node {} parted from its run", node.name)));
            }
            writer.end(kernel.trace()).map_err(|e| e.to_string())?;
            written.push((node.name.clone(), home));
        }
        Ok(written)
    }
}
