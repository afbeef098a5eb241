//! Process lifecycle: registration, start, exit with its `OnExit`, kill with revocation,
//! restart with the reference's backoff on the kernel clock, and shutdown (spec §5).
//!
//! Fixes kept here: a killed process's queued requests answer their senders at once instead of
//! vanishing; `KillProcess` cancels a pending restart and frees its backoff (W4); the exit path
//! reads the one on-exit value that `SetOnExit` and `set-on-exit` both write (W10).

use super::Kernel;
use super::schedule::Timer;
use super::state::{Delivery, ProcessEntry, RunState};
use crate::caps::CapKey;
use crate::env::Timestamp;
use crate::process::Process;
use crate::trace::{DropReason, Event, ExitReason};
use crate::types::{Capability, OnExit, ProcessId};

/// Restart backoff base.
pub const RESTART_BACKOFF_BASE_NANOS: u64 = Timestamp::NANOS_PER_SECOND;
/// Longest wait before a restart.
pub const RESTART_BACKOFF_MAX_NANOS: u64 = 600 * Timestamp::NANOS_PER_SECOND;
/// A run this long (at most) counts as healthy and resets the backoff.
pub const RESTART_HEALTHY_MAX_NANOS: u64 = 3_000 * Timestamp::NANOS_PER_SECOND;
/// A run of this many times the current backoff counts as healthy.
pub const RESTART_HEALTHY_MULTIPLIER: u64 = 5;

/// The reference's restart backoff state (hyperdrive since PR #877).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    attempts: u32,
    current_nanos: u64,
    last_start: Timestamp,
}

impl Backoff {
    fn fresh(now: Timestamp) -> Self {
        Self {
            attempts: 1,
            current_nanos: RESTART_BACKOFF_BASE_NANOS,
            last_start: now,
        }
    }

    /// Updates the state for an exit at `now`; returns the wait before restarting (zero for an
    /// immediate restart).
    fn on_exit(&mut self, now: Timestamp) -> u64 {
        let uptime = now.nanos_since(self.last_start);
        let healthy = self
            .current_nanos
            .saturating_mul(RESTART_HEALTHY_MULTIPLIER)
            .min(RESTART_HEALTHY_MAX_NANOS);
        if uptime >= healthy {
            self.attempts = 1;
            self.current_nanos = RESTART_BACKOFF_BASE_NANOS;
        } else {
            self.attempts = self.attempts.saturating_add(1);
            let doublings = self.attempts.saturating_sub(1).min(20);
            let raw = RESTART_BACKOFF_BASE_NANOS.saturating_mul(1 << doublings);
            self.current_nanos = raw.clamp(RESTART_BACKOFF_BASE_NANOS, RESTART_BACKOFF_MAX_NANOS);
        }
        if self.attempts == 1 {
            0
        } else {
            self.current_nanos.min(RESTART_BACKOFF_MAX_NANOS)
        }
    }
}

/// A process between its exit and its restart: not in the table, so messages to it fail.
/// It stays persisted as it was, so a crash during its backoff does not lose it.
pub(crate) struct PendingRestart {
    entry: ProcessEntry,
    caps: Vec<CapKey>,
    timer: Option<(Timestamp, u64)>,
}

impl PendingRestart {
    /// The entry it will restart with.
    pub(crate) fn entry(&self) -> &ProcessEntry {
        &self.entry
    }

    /// The capabilities it will restart with.
    pub(crate) fn caps(&self) -> &[CapKey] {
        &self.caps
    }
}

impl Kernel {
    /// Adds `process` to the table and the capability store with `caps` (canonicalized; the
    /// callers have already rejected non-JSON params).
    pub(crate) fn insert_entry(
        &mut self,
        process: &ProcessId,
        mut entry: ProcessEntry,
        runtime: Option<Box<dyn Process>>,
        caps: &[Capability],
    ) {
        assert!(
            !self.table.contains_key(process),
            "insert over a live process"
        );
        entry.runtime = runtime;
        self.caps.add_process(process);
        let mut admitted = Vec::with_capacity(caps.len());
        for cap in caps {
            if let Ok(key) = CapKey::try_from_capability(cap)
                && self.caps.insert(process, key.clone())
            {
                admitted.push(key.to_capability());
            }
        }
        self.table.insert(process.clone(), entry);
        self.mark_dirty(process);
        admitted.sort_by(|a, b| (&a.issuer, &a.params).cmp(&(&b.issuer, &b.params)));
        self.trace.push(
            self.clock.now(),
            Event::Initialized {
                process: process.clone(),
                capabilities: admitted,
            },
        );
    }

    /// Starts a pre-boot process: its `init` runs at its first slice. Driven processes go
    /// straight to receiving.
    pub(crate) fn start(&mut self, process: &ProcessId) {
        let now = self.clock.now();
        let Some(entry) = self.table.get_mut(process) else {
            return;
        };
        let next = if entry.driven {
            RunState::Receiving
        } else {
            RunState::Starting
        };
        entry.set_state(next);
        self.backoffs
            .entry(process.clone())
            .and_modify(|b| b.last_start = now)
            .or_insert_with(|| Backoff::fresh(now));
        self.trace.push(
            now,
            Event::Started {
                process: process.clone(),
            },
        );
        self.refresh_ready(process);
    }

    /// A process's `init` returned or failed: apply its on-exit behaviour.
    pub(crate) fn exit(&mut self, process: &ProcessId, reason: ExitReason) {
        let Some(entry) = self.table.get(process) else {
            return;
        };
        // A guest writes its own exit reason (a trap with its last prints): bounded.
        let reason = match reason {
            ExitReason::Failed(text) => {
                ExitReason::Failed(crate::wire::bounded_text(text, crate::wire::ERROR_TEXT_MAX))
            }
            other => other,
        };
        let on_exit = entry.on_exit.clone();
        // What it sent before it ended goes out while it still holds its capabilities.
        self.route_sent_by(process);
        self.trace.push(
            self.clock.now(),
            Event::Exited {
                process: process.clone(),
                reason,
            },
        );
        match on_exit {
            OnExit::None => {
                self.remove_process(process, true);
                self.backoffs.remove(process);
            }
            OnExit::Requests(requests) => {
                for (target, mut request, blob) in requests {
                    request.expects_response = None;
                    request.inherit = false;
                    // The process is still in the table, so this cannot fail.
                    let _ = self.sys_send_request(process, target, request, None, blob);
                }
                // Route them now, while the sender is still in the table (the reference's
                // FIFO inbox routes them before the kill that follows them).
                self.route_sent_by(process);
                self.remove_process(process, true);
                self.backoffs.remove(process);
            }
            OnExit::Restart => self.schedule_restart(process),
        }
    }

    fn schedule_restart(&mut self, process: &ProcessId) {
        let now = self.clock.now();
        let wait = self
            .backoffs
            .entry(process.clone())
            .or_insert_with(|| Backoff::fresh(now))
            .on_exit(now);
        let Some((entry, caps)) = self.remove_process(process, false) else {
            return;
        };
        let mut pending = PendingRestart {
            entry,
            caps,
            timer: None,
        };
        let at = Timestamp(now.0.saturating_add(wait));
        self.trace.push(
            now,
            Event::RestartScheduled {
                process: process.clone(),
                at,
            },
        );
        if wait > 0 {
            pending.timer = Some(self.timers.insert(
                at,
                Timer::Restart {
                    process: process.clone(),
                },
            ));
        }
        self.pending_restarts.insert(process.clone(), pending);
        if wait == 0 {
            self.restart_now(process);
        }
    }

    /// Re-creates a process from its pending restart and runs it.
    pub(crate) fn restart_now(&mut self, process: &ProcessId) {
        let Some(pending) = self.pending_restarts.remove(process) else {
            return;
        };
        self.mark_dirty(process);
        let runtime = match self.loader.load(process, &pending.entry.code) {
            Ok(runtime) => runtime,
            Err(error) => {
                let reason = ExitReason::Failed(format!("restart failed to load: {error}"));
                self.trace.push(
                    self.clock.now(),
                    Event::Exited {
                        process: process.clone(),
                        reason,
                    },
                );
                self.backoffs.remove(process);
                let revoked = self.caps.revoke_issued_by(process);
                self.trace_revoked(revoked);
                return;
            }
        };
        let old = pending.entry;
        let mut entry = ProcessEntry::with_hash(
            old.wasm_bytes_handle,
            old.on_exit,
            old.public,
            old.code,
            old.code_hash,
        );
        entry.wit_version = old.wit_version;
        let caps: Vec<Capability> = pending.caps.iter().map(CapKey::to_capability).collect();
        self.insert_entry(process, entry, Some(runtime), &caps);
        self.start(process);
    }

    /// `KillProcess`: removes a live process or cancels a pending restart. Returns false if
    /// there was neither.
    pub(crate) fn kill(&mut self, process: &ProcessId, revoke: bool) -> bool {
        self.backoffs.remove(process);
        if let Some(pending) = self.pending_restarts.remove(process) {
            self.mark_dirty(process);
            if let Some(key) = pending.timer {
                self.timers.cancel(key);
            }
            if revoke {
                let revoked = self.caps.revoke_issued_by(process);
                self.trace_revoked(revoked);
            }
            self.trace.push(
                self.clock.now(),
                Event::Exited {
                    process: process.clone(),
                    reason: ExitReason::Killed,
                },
            );
            return true;
        }
        if !self.table.contains_key(process) {
            return false;
        }
        self.trace.push(
            self.clock.now(),
            Event::Exited {
                process: process.clone(),
                reason: ExitReason::Killed,
            },
        );
        self.remove_process(process, revoke).is_some()
    }

    /// Takes `process` out of the table: queued requests answer their senders, its own
    /// request timers stop, its capabilities go, and with `revoke` every capability it issued
    /// is taken from every holder. Returns the entry and what it held.
    pub(crate) fn remove_process(
        &mut self,
        process: &ProcessId,
        revoke: bool,
    ) -> Option<(ProcessEntry, Vec<CapKey>)> {
        let mut entry = self.table.remove(process)?;
        self.mark_dirty(process);
        self.ready.remove(entry.ready_slot.take(), &mut self.table);
        for pending in entry.host.contexts.values_mut() {
            if let Some(key) = pending.deadline.take() {
                self.timers.cancel(key);
            }
        }
        let kept = entry.host.pending_bytes + entry.mailbox_bytes;
        if kept > self.held_bytes {
            crate::kernel_bug!("{process} held {kept} bytes, more than the kernel counts");
        }
        self.held_bytes -= kept;
        entry.host.pending_bytes = 0;
        while let Some(delivery) = entry.pop_front() {
            if let Delivery::Message(message) = delivery
                && message.message.is_request()
            {
                self.drop_message(message, DropReason::TargetKilled);
            }
        }
        let held = self.caps.remove_process(process);
        if revoke {
            let revoked = self.caps.revoke_issued_by(process);
            self.trace_revoked(revoked);
        }
        assert!(!self.table.contains_key(process), "removed process is gone");
        Some((entry, held))
    }

    fn trace_revoked(&mut self, revoked: Vec<(ProcessId, CapKey)>) {
        let mut current: Option<(ProcessId, Vec<Capability>)> = None;
        for (grantee, key) in revoked {
            match &mut current {
                Some((holder, removed)) if *holder == grantee => removed.push(key.to_capability()),
                _ => {
                    if let Some((holder, removed)) = current.take() {
                        self.trace_caps_changed(&holder, Vec::new(), removed);
                    }
                    current = Some((grantee, vec![key.to_capability()]));
                }
            }
        }
        if let Some((holder, removed)) = current {
            self.trace_caps_changed(&holder, Vec::new(), removed);
        }
    }

    /// `Shutdown`: every process stops without its on-exit; queued messages are dropped with a
    /// reason; nothing runs afterwards.
    pub(crate) fn shutdown(&mut self) {
        // Commit and sync first: the stopped processes stay in the stored map for the next
        // boot (W3), and nothing after this point rewrites it. Every earlier step committed
        // its changes; this commits the current step's. A failure has stopped the kernel.
        if self.commit_step().and_then(|()| self.sync()).is_err() {
            return;
        }
        let processes: Vec<ProcessId> = self
            .table
            .keys()
            .filter(|p| !p.is_kernel())
            .cloned()
            .collect();
        for process in &processes {
            self.trace.push(
                self.clock.now(),
                Event::Exited {
                    process: process.clone(),
                    reason: ExitReason::Shutdown,
                },
            );
            self.remove_process(process, false);
        }
        while let Some(message) = self.inbox_pop() {
            self.drop_message(message, DropReason::KernelShutdown);
        }
        self.drop_held();
        self.pending_restarts.clear();
        self.clear_scheduling();
        self.shut_down = true;
        self.map_dirty.clear();
        self.trace.push(self.clock.now(), Event::Shutdown);
    }
}

impl Kernel {
    /// The one rule for a process that a client (`InitializeProcess`), a package
    /// (`install_package`) or a parent (`spawn`) brings into being: a hypermap-safe id, not
    /// in `distro:sys` (the package of the kernel's own processes, whose drives and names they
    /// would own), and not taken. Only the kernel's own doors (`register_native`,
    /// `register_driven`) make processes in `distro:sys`.
    ///
    /// # Errors
    /// Which part of the rule `id` breaks.
    pub(crate) fn check_new_process_id(&self, id: &ProcessId) -> Result<(), NewProcessError> {
        id.check().map_err(NewProcessError::Invalid)?;
        if id.package() == "distro" && id.publisher() == "sys" {
            return Err(NewProcessError::Reserved(id.clone()));
        }
        if self.table.contains_key(id) || self.pending_restarts.contains_key(id) {
            return Err(NewProcessError::Exists(id.clone()));
        }
        debug_assert!(!id.is_kernel(), "the kernel's id is in distro:sys");
        Ok(())
    }
}

/// Why a new process may not have the id it asked for (`Kernel::check_new_process_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewProcessError {
    /// The id is not hypermap-safe.
    Invalid(crate::types::AddressParseError),
    /// The id is in `distro:sys`, the package of the kernel's own processes.
    Reserved(ProcessId),
    /// A process with the id exists, or waits to restart.
    Exists(ProcessId),
}

impl std::fmt::Display for NewProcessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(error) => write!(f, "{error}"),
            Self::Reserved(id) => write!(
                f,
                "{id} is in distro:sys, the package of the kernel's own processes"
            ),
            Self::Exists(id) => write!(f, "process {id} already exists"),
        }
    }
}

impl std::error::Error for NewProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(error) => Some(error),
            Self::Reserved(_) | Self::Exists(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = Timestamp::NANOS_PER_SECOND;

    #[test]
    fn backoff_follows_the_reference_sequence() {
        let mut backoff = Backoff::fresh(Timestamp(0));
        // First crash of a fresh instance that ran under 5 s already waits 2 s.
        assert_eq!(backoff.on_exit(Timestamp(SECOND)), 2 * SECOND);
        let mut waits = Vec::new();
        for _ in 0..10 {
            backoff.last_start = Timestamp(0);
            waits.push(backoff.on_exit(Timestamp(1)) / SECOND);
        }
        assert_eq!(waits, vec![4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
    }

    #[test]
    fn a_healthy_run_resets_to_an_immediate_restart() {
        let mut backoff = Backoff::fresh(Timestamp(0));
        assert_eq!(
            backoff.on_exit(Timestamp(10 * SECOND)),
            0,
            "ran 10 s >= 5 x 1 s"
        );
        backoff.last_start = Timestamp(0);
        assert_eq!(backoff.on_exit(Timestamp(1)), 2 * SECOND);
    }
}
