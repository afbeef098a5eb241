//! Invariants the harness checks after every step, beyond the kernel's own
//! (`Kernel::check_invariants`): they read the trace events the step added.
//!
//! - **No delivery without the needed capability**: every message queued for a local process
//!   came from a source the kernel does not check (the kernel, `state`, `vfs`), or went to a
//!   public process, or its source held messaging to the target at that step.
//! - **The trace hash chain is intact** over the new records.

use hyperkernel::{Address, Event, Kernel, ProcessId, TraceRecord};
use std::collections::BTreeMap;

/// Processes whose messages the kernel does not check (spec §3.3).
const UNCHECKED: [&str; 3] = ["kernel:distro:sys", "state:distro:sys", "vfs:distro:sys"];

/// What the checker has read so far.
#[derive(Default)]
pub struct Checker {
    /// Trace records already checked.
    seen: usize,
    /// The last chain hash checked.
    hash: u64,
    /// Source of each message id, from its `Sent` event.
    sources: BTreeMap<u64, Address>,
    scratch: Vec<u8>,
}

impl Checker {
    /// Checks the records added since the last call.
    ///
    /// # Errors
    /// The first broken invariant, described.
    pub fn check(&mut self, kernel: &Kernel) -> Result<(), String> {
        let records = kernel.trace().records();
        let new: &[TraceRecord] = records.get(self.seen..).unwrap_or_default();
        for record in new {
            let expected = hyperkernel::trace::chain_hash(
                self.hash,
                record.seq,
                record.at,
                &record.event,
                &mut self.scratch,
            );
            if expected != record.hash {
                return Err(format!("trace hash chain broken at event {}", record.seq));
            }
            self.hash = record.hash;
            match &record.event {
                Event::Sent { id, source, .. } => {
                    self.sources.insert(*id, source.clone());
                }
                Event::Enqueued { id, process, .. } => {
                    self.check_enqueued(kernel, *id, process, record.seq)?
                }
                _ => {}
            }
        }
        self.seen = records.len();
        Ok(())
    }

    fn check_enqueued(
        &self,
        kernel: &Kernel,
        id: u64,
        target: &ProcessId,
        seq: u64,
    ) -> Result<(), String> {
        let Some(source) = self.sources.get(&id) else {
            return Ok(());
        };
        let local = *source.node == *kernel.our() || &*source.node == "our";
        let allowed = !local
            || UNCHECKED.contains(&source.process.as_str())
            || kernel.is_public(target) == Some(true)
            || kernel.capabilities().has_messaging(&source.process, target);
        if allowed {
            return Ok(());
        }
        Err(format!(
            "message {id} from {source} was queued for {target} without a messaging capability (event {seq})"
        ))
    }
}
