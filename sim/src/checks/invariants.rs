//! Invariants the harness checks after every step, beyond the kernel's own
//! (`Kernel::check_invariants`): they read the trace events the step added.
//!
//! - **No delivery without the needed capability**: every message queued for a local process
//!   came from a source the kernel does not check (the kernel, `state`, `vfs`), or went to a
//!   public process, or its source held messaging to the target at that step.
//! - **The trace hash chain is intact** over the new records.
//! - **Every request that expects a response gets at most one answer** (a response or a send
//!   error queued for its sender); once the node is quiescent (after the liveness phase),
//!   **exactly one** for every request whose sender still lives.
//! - **Nothing runs after it ended**: no delivery, print, yield or trap of a process between
//!   its exit and its next start.
//! - **No process runs twice**: a process starts again only after it exited (across a
//!   reboot too: the rebooted node starts each restored process once).
//! - **Capabilities held are exactly those granted**: the capability store agrees, process by
//!   process, with the grants and removals the trace recorded (`Initialized`,
//!   `CapabilitiesChanged`, exits), so no capability appears without a recorded grant; at the
//!   end every signature verifies.

use hyperkernel::{
    Address, CapKey, Capability, Event, Fault, Kernel, MessageKind, ProcessId, TraceRecord,
};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Answers queued so far for each request (id, sender) that expects one.
    answers: BTreeMap<(u64, ProcessId), u32>,
    /// Processes that exited and have not started again.
    ended: BTreeSet<ProcessId>,
    /// Capabilities per process, as the trace recorded them.
    held: BTreeMap<ProcessId, BTreeSet<CapKey>>,
    /// Processes whose capabilities changed in the records being checked.
    touched: BTreeSet<ProcessId>,
    /// Processes started and not exited since: a second start would run one twice.
    running: BTreeSet<ProcessId>,
    scratch: Vec<u8>,
}

fn keys(caps: &[Capability]) -> impl Iterator<Item = CapKey> + '_ {
    caps.iter()
        .filter_map(|c| CapKey::try_from_capability(c).ok())
}

impl Checker {
    /// The node rebooted: what its previous run had in flight is gone (requests outstanding,
    /// processes ended or running, capabilities held); the trace goes on, so the chain and
    /// the records already read are kept. The new run's `Initialized` events rebuild the rest.
    pub fn rebooted(&mut self) {
        self.sources.clear();
        self.answers.clear();
        self.ended.clear();
        self.running.clear();
        self.held.clear();
        self.touched.clear();
        debug_assert!(self.seen > 0, "a node that rebooted had run");
    }

    /// The node is crashing: the records since the last check (a fail-stopped step's, whose
    /// effects died with the node) are verified in the hash chain but not read as effects.
    ///
    /// # Errors
    /// The chain is broken.
    pub fn skip_unread(&mut self, kernel: &Kernel) -> Result<(), String> {
        let records = kernel.trace().records();
        for record in records.get(self.seen..).unwrap_or_default() {
            self.chain(record)?;
        }
        self.seen = records.len();
        Ok(())
    }

    /// Extends the checked hash chain by `record`.
    fn chain(&mut self, record: &TraceRecord) -> Result<(), String> {
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
        Ok(())
    }

    /// Checks the records added since the last call.
    ///
    /// # Errors
    /// The first broken invariant, described.
    pub fn check(&mut self, kernel: &Kernel) -> Result<(), String> {
        let records = kernel.trace().records();
        let new: &[TraceRecord] = records.get(self.seen..).unwrap_or_default();
        for record in new {
            self.chain(record)?;
            self.read(kernel, record)?;
        }
        for process in std::mem::take(&mut self.touched) {
            self.compare_caps(kernel, &process)?;
        }
        self.seen = records.len();
        Ok(())
    }

    /// Updates the model with one record and checks what it can at once.
    fn read(&mut self, kernel: &Kernel, record: &TraceRecord) -> Result<(), String> {
        let seq = record.seq;
        match &record.event {
            Event::Sent {
                id,
                source,
                kind,
                expects_response,
                ..
            } => {
                self.sources.insert(*id, source.clone());
                let local = *source.node == *kernel.our();
                if *kind == MessageKind::Request && expects_response.is_some() && local {
                    self.answers.insert((*id, source.process.clone()), 0);
                }
            }
            Event::Enqueued { id, process, kind } => {
                self.check_enqueued(kernel, *id, process, seq)?;
                if *kind == MessageKind::Response {
                    self.answered(*id, process, seq)?;
                }
            }
            Event::SendErrorQueued { id, process, .. } => self.answered(*id, process, seq)?,
            Event::Initialized {
                process,
                capabilities,
            } => {
                self.ended.remove(process);
                self.held
                    .insert(process.clone(), keys(capabilities).collect());
                self.touched.insert(process.clone());
            }
            Event::CapabilitiesChanged {
                process,
                added,
                removed,
            } => {
                let held = self.held.entry(process.clone()).or_default();
                held.extend(keys(added));
                for key in keys(removed) {
                    held.remove(&key);
                }
                self.touched.insert(process.clone());
            }
            Event::Started { process } => self.started(process, seq)?,
            Event::Exited { process, .. } => self.exited(process),
            Event::Delivered { process, .. }
            | Event::Print { process, .. }
            | Event::Yielded { process }
            | Event::FaultInjected {
                fault: Fault::Trapped { process, .. },
            } if self.ended.contains(process) => {
                return Err(format!("{process} ran after it ended (event {seq})"));
            }
            _ => {}
        }
        Ok(())
    }

    fn started(&mut self, process: &ProcessId, seq: u64) -> Result<(), String> {
        self.ended.remove(process);
        if !self.running.insert(process.clone()) {
            return Err(format!(
                "{process} started twice without exiting (event {seq})"
            ));
        }
        Ok(())
    }

    fn exited(&mut self, process: &ProcessId) {
        self.running.remove(process);
        self.ended.insert(process.clone());
        self.answers.retain(|(_, sender), _| sender != process);
        self.held.remove(process);
        self.touched.insert(process.clone());
    }

    fn answered(&mut self, id: u64, process: &ProcessId, seq: u64) -> Result<(), String> {
        let Some(count) = self.answers.get_mut(&(id, process.clone())) else {
            return Ok(());
        };
        *count += 1;
        if *count > 1 {
            return Err(format!(
                "request {id} of {process} was answered {count} times (event {seq})"
            ));
        }
        Ok(())
    }

    /// The store's capabilities of `process` against the trace's.
    fn compare_caps(&self, kernel: &Kernel, process: &ProcessId) -> Result<(), String> {
        let store: BTreeSet<&CapKey> = kernel.capabilities().held_keys(process).collect();
        let traced: BTreeSet<&CapKey> = self.held.get(process).into_iter().flatten().collect();
        if store == traced {
            return Ok(());
        }
        let extra: Vec<String> = store
            .difference(&traced)
            .map(|k| format!("{} {}", k.issuer(), k.params()))
            .collect();
        let missing: Vec<String> = traced
            .difference(&store)
            .map(|k| format!("{} {}", k.issuer(), k.params()))
            .collect();
        Err(format!(
            "{process} holds capabilities the trace never granted {extra:?}, or lacks ones it did {missing:?}"
        ))
    }

    /// At quiescence: every request whose sender lives got exactly one answer, every
    /// process's capabilities agree with the trace, and every signature verifies.
    ///
    /// # Errors
    /// The first broken invariant, described.
    pub fn finish(&mut self, kernel: &Kernel) -> Result<(), String> {
        self.check(kernel)?;
        if let Some(((id, process), _)) = self.answers.iter().find(|(_, n)| **n == 0) {
            return Err(format!(
                "request {id} of {process} was never answered, though the node is quiescent"
            ));
        }
        for process in kernel.process_ids() {
            self.compare_caps(kernel, &process)?;
        }
        kernel.capabilities().verify_signatures()
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
        // The source's capabilities as the trace had them at this event: a process that
        // exits in the same step had its last sends routed before it left (and its
        // capabilities with it), so the store after the step no longer shows them.
        let messaging = Capability::messaging(Address::new(kernel.our(), target.clone()));
        let traced = CapKey::try_from_capability(&messaging).is_ok_and(|key| {
            self.held
                .get(&source.process)
                .is_some_and(|held| held.contains(&key))
        });
        let allowed = !local
            || UNCHECKED.contains(&source.process.as_str())
            || kernel.is_public(target) == Some(true)
            || traced;
        if allowed {
            return Ok(());
        }
        Err(format!(
            "message {id} from {source} was queued for {target} without a messaging capability (event {seq})"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use hyperkernel::{KernelBuilder, SendErrorKind, Timestamp};

    const NODE: &str = "t.os";

    fn pid(text: &str) -> ProcessId {
        text.parse().unwrap()
    }

    /// A kernel with driven `a:t:t.os`, and a checker that has read its setup.
    fn setup() -> (Kernel, Checker, ProcessId) {
        let mut kernel = KernelBuilder::new(NODE, 1).build().unwrap();
        let a = pid("a:t:t.os");
        kernel.harness().register_driven(&a, &[], false).unwrap();
        let mut checker = Checker::default();
        checker.check(&kernel).unwrap();
        (kernel, checker, a)
    }

    fn push(kernel: &mut Kernel, event: Event) {
        kernel.trace_mut().push(Timestamp(0), event);
    }

    fn request(kernel: &mut Kernel, id: u64, from: &ProcessId) {
        let source = Address::new(NODE, from.clone());
        let event = Event::Sent {
            id,
            target: source.clone(),
            source,
            kind: MessageKind::Request,
            expects_response: Some(5),
            body_len: 0,
            body_hash: 0,
        };
        push(kernel, event);
    }

    fn send_error(id: u64, process: &ProcessId) -> Event {
        Event::SendErrorQueued {
            id,
            process: process.clone(),
            kind: SendErrorKind::Timeout,
        }
    }

    #[test]
    fn a_second_answer_to_one_request_is_caught() {
        let (mut kernel, mut checker, a) = setup();
        request(&mut kernel, 7, &a);
        push(&mut kernel, send_error(7, &a));
        checker.check(&kernel).unwrap();
        push(&mut kernel, send_error(7, &a));
        let broken = checker.check(&kernel).unwrap_err();
        assert!(
            broken.contains("request 7 of a:t:t.os was answered 2 times"),
            "{broken}"
        );
    }

    #[test]
    fn an_unanswered_request_fails_at_quiescence_unless_its_sender_ended() {
        let (mut kernel, mut checker, a) = setup();
        request(&mut kernel, 8, &a);
        let broken = checker.finish(&kernel).unwrap_err();
        assert!(
            broken.contains("request 8 of a:t:t.os was never answered"),
            "{broken}"
        );
        // A process outside the table, so the fake exit agrees with the capability store.
        let (mut kernel, mut checker, _) = setup();
        let a = pid("ghost:t:t.os");
        request(&mut kernel, 8, &a);
        let exit = Event::Exited {
            process: a.clone(),
            reason: hyperkernel::ExitReason::Killed,
        };
        push(&mut kernel, exit);
        checker.check(&kernel).unwrap();
        assert!(
            checker.answers.is_empty(),
            "an ended sender waits for nothing"
        );
    }

    #[test]
    fn running_after_the_end_is_caught_until_the_next_start() {
        let (mut kernel, mut checker, _) = setup();
        let a = pid("ghost:t:t.os");
        let print = Event::Print {
            process: a.clone(),
            verbosity: 0,
            text: "hi".into(),
        };
        let exit = Event::Exited {
            process: a.clone(),
            reason: hyperkernel::ExitReason::Killed,
        };
        push(&mut kernel, exit);
        push(&mut kernel, Event::Started { process: a.clone() });
        push(&mut kernel, print.clone());
        checker.check(&kernel).unwrap();
        let exit = Event::Exited {
            process: a.clone(),
            reason: hyperkernel::ExitReason::Killed,
        };
        push(&mut kernel, exit);
        push(&mut kernel, print);
        let broken = checker.check(&kernel).unwrap_err();
        assert!(
            broken.contains("ghost:t:t.os ran after it ended"),
            "{broken}"
        );
    }

    #[test]
    fn a_capability_the_trace_never_granted_is_caught() {
        let (mut kernel, mut checker, a) = setup();
        let cap = Capability::messaging(Address::new(NODE, pid("b:t:t.os")));
        let changed = Event::CapabilitiesChanged {
            process: a.clone(),
            added: vec![cap],
            removed: vec![],
        };
        push(&mut kernel, changed);
        let broken = checker.check(&kernel).unwrap_err();
        assert!(broken.contains("a:t:t.os holds capabilities"), "{broken}");
        assert!(
            broken.contains("b:t:t.os"),
            "names the capability: {broken}"
        );
    }
}
