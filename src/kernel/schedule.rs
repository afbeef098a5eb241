//! Scheduling: the ready set, the timer queue and `step`.
//!
//! Each step the seeded scheduler picks uniformly among the ready pieces of work: routing the
//! oldest inbox message, firing the earliest due timer, or running one ready process. When
//! nothing is ready, a simulated clock jumps to the next timer. This is where the spec leaves
//! freedom (which process runs next, routing versus running); per-pair order is kept because
//! the inbox and every mailbox are FIFO.
//!
//! Invariant: `ready` holds exactly the processes whose `is_ready()` is true;
//! `refresh_ready` is called after every change to a mailbox or a lifecycle state.

use super::Kernel;
use super::state::{Delivery, ProcessEntry, RunState};
use crate::env::Timestamp;
use crate::process::{Flow, Wake};
use crate::trace::{Event, ExitReason};
use crate::types::{KernelMessage, Message, ProcessId, SendError, SendErrorKind, WrappedSendError};
use std::collections::BTreeMap;

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Routed one inbox message.
    Routed,
    /// Fired one timer.
    Fired,
    /// Ran one process until it blocked, yielded or exited.
    Ran(ProcessId),
    /// Nothing was ready; the simulated clock jumped to this time.
    ClockAdvanced(Timestamp),
    /// Nothing is ready; a real clock must reach this deadline first (`None`: nothing pending).
    Idle(Option<Timestamp>),
    /// Busy processes carried the clock past the deadline of `run_until` (to this time) while
    /// work was still ready: the caller regains control instead of waiting for a spinner.
    Overran(Timestamp),
    /// The kernel has shut down.
    ShutDown,
    /// The kernel stopped: a commit, sync or read of its store failed (`Kernel::failure`
    /// says why). Nothing of the failed step was made durable or let out; no step runs again.
    Failed,
}

/// The ready processes, in a deterministic order, with O(1) insert, remove and indexed pick.
///
/// Each entry keeps its own slot (`ProcessEntry::ready_slot`), so scheduling touches no
/// B-tree and allocates nothing: a process becomes ready and unready once per message.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadySet {
    // Invariant: `table[items[i]].ready_slot == Some(i)` for every i, and every entry with a
    // slot is listed at it.
    items: Vec<ProcessId>,
}

impl ReadySet {
    pub(crate) fn insert(&mut self, entry: &mut ProcessEntry, process: &ProcessId) {
        if entry.ready_slot.is_none() {
            entry.ready_slot = Some(self.items.len());
            self.items.push(process.clone());
        }
    }

    /// Removes the process that held `slot` (taken from its entry); fixes the slot of the
    /// process moved into its place.
    pub(crate) fn remove(
        &mut self,
        slot: Option<usize>,
        table: &mut BTreeMap<ProcessId, ProcessEntry>,
    ) {
        let Some(position) = slot else {
            return;
        };
        self.items.swap_remove(position);
        if let Some(moved) = self.items.get(position)
            && let Some(entry) = table.get_mut(moved)
        {
            entry.ready_slot = Some(position);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn get(&self, position: usize) -> Option<&ProcessId> {
        self.items.get(position)
    }

    pub(crate) fn clear(&mut self, table: &mut BTreeMap<ProcessId, ProcessEntry>) {
        for process in self.items.drain(..) {
            if let Some(entry) = table.get_mut(&process) {
                entry.ready_slot = None;
            }
        }
    }
}

/// What a timer does when it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Request `id` of `process` timed out.
    RequestTimeout { process: ProcessId, id: u64 },
    /// Restart `process` after its backoff.
    Restart { process: ProcessId },
    /// A native process's alarm.
    Alarm { process: ProcessId, tag: u64 },
    /// A message held in transit by a driver's fault hook (hook.rs).
    Deliver(Box<KernelMessage>),
    /// Wake `process` from the sleep this timer's sequence number names (`Flow::Sleep`).
    Wakeup { process: ProcessId },
}

/// The key of one run's random stream (`ProcessContext::fill_random`): the kernel's seed,
/// the process, the instant it starts and the kernel's count of starts, hashed.
fn random_key(seed: u64, process: &ProcessId, now: Timestamp, starts: u64) -> [u8; 32] {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(b"hyperkernel process random v1\0");
    hash.update(seed.to_le_bytes());
    hash.update(process.to_string().as_bytes());
    hash.update([0]);
    hash.update(now.0.to_le_bytes());
    hash.update(starts.to_le_bytes());
    hash.finalize().into()
}

/// Timers ordered by deadline, then by the order they were set.
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerQueue {
    timers: BTreeMap<(Timestamp, u64), Timer>,
    // Invariant: greater than every sequence number in `timers`.
    sequence: u64,
}

impl TimerQueue {
    pub(crate) fn insert(&mut self, deadline: Timestamp, timer: Timer) -> (Timestamp, u64) {
        let key = (deadline, self.sequence);
        self.sequence += 1;
        self.timers.insert(key, timer);
        key
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(Timestamp, u64), &Timer)> {
        self.timers.iter()
    }

    pub(crate) fn contains(&self, key: (Timestamp, u64)) -> bool {
        self.timers.contains_key(&key)
    }

    pub(crate) fn cancel(&mut self, key: (Timestamp, u64)) {
        self.timers.remove(&key);
    }

    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.timers.keys().next().map(|(deadline, _)| *deadline)
    }

    /// The earliest timer due at `now`, with its sequence number.
    pub(crate) fn pop_due(&mut self, now: Timestamp) -> Option<(u64, Timer)> {
        let first = *self.timers.first_key_value()?.0;
        if first.0 > now {
            return None;
        }
        let timer = self.timers.remove(&first)?;
        debug_assert!(
            first.1 < self.sequence,
            "a timer's sequence number was issued"
        );
        Some((first.1, timer))
    }

    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    /// How many messages are held in transit in the queue.
    #[cfg(feature = "harness")]
    pub(crate) fn held_count(&self) -> usize {
        self.timers
            .values()
            .filter(|timer| matches!(timer, Timer::Deliver(_)))
            .count()
    }

    /// Takes out one message held in transit, the earliest.
    pub(crate) fn take_held(&mut self) -> Option<Box<KernelMessage>> {
        let key = self
            .timers
            .iter()
            .find(|(_, timer)| matches!(timer, Timer::Deliver(_)))
            .map(|(key, _)| *key)?;
        match self.timers.remove(&key) {
            Some(Timer::Deliver(message)) => Some(message),
            _ => None,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.timers.clear();
    }
}

impl Kernel {
    /// Does one piece of work; see [`Step`].
    ///
    /// The step's durable effects are committed in one transaction when it ends; if that
    /// fails (or a read failed during it), the kernel stops: this step and every later one
    /// return `Step::Failed`.
    pub(crate) fn step(&mut self) -> Step {
        if self.durable.failure.is_some() {
            return Step::Failed;
        }
        let step = self.step_work();
        if self.commit_step().is_err() {
            return Step::Failed;
        }
        debug_assert!(
            self.durable.writes.is_empty(),
            "a step leaves nothing uncommitted"
        );
        step
    }

    fn step_work(&mut self) -> Step {
        if self.shut_down {
            return Step::ShutDown;
        }
        let now = self.clock.now();
        let routable = usize::from(!self.inbox.is_empty());
        let due = usize::from(
            self.timers
                .next_deadline()
                .is_some_and(|deadline| deadline <= now),
        );
        let total = routable + due + self.ready.len();
        if total == 0 {
            return self.step_idle();
        }
        let choice = self.entropy.pick(total);
        if choice < routable {
            self.route_next();
            return Step::Routed;
        }
        if choice < routable + due {
            self.fire_timer(now);
            return Step::Fired;
        }
        let Some(process) = self.ready.get(choice - routable - due).cloned() else {
            unreachable!("pick is below the ready count");
        };
        self.run_process(&process);
        Step::Ran(process)
    }

    fn step_idle(&mut self) -> Step {
        let Some(deadline) = self.timers.next_deadline() else {
            return Step::Idle(None);
        };
        if !self.clock.advance_to(deadline) {
            return Step::Idle(Some(deadline));
        }
        let now = self.clock.now();
        assert!(
            now >= deadline,
            "a simulated clock reaches the deadline it jumps to"
        );
        self.trace.push(now, Event::ClockAdvanced { to: now });
        Step::ClockAdvanced(now)
    }

    /// Steps until nothing is ready and no timer is pending (under a simulated clock), or a
    /// real clock must wait, or `steps_max` steps were taken. Returns the last step.
    #[cfg(feature = "harness")]
    pub(crate) fn run_until_idle(&mut self) -> Step {
        self.run_steps(super::STEPS_MAX)
    }

    /// Like `run_until_idle` with an explicit step budget.
    #[cfg(feature = "harness")]
    pub(crate) fn run_steps(&mut self, steps_max: u64) -> Step {
        let mut last = Step::Idle(None);
        for _ in 0..steps_max {
            last = self.step();
            if matches!(last, Step::Idle(_) | Step::ShutDown | Step::Failed) {
                break;
            }
        }
        last
    }

    /// Whether nothing is ready, no timer is due, and no timer falls before `deadline`.
    fn nothing_due_before(&self, deadline: Timestamp) -> bool {
        let next_timer = self.timers.next_deadline();
        let has_work = !self.inbox.is_empty() || self.ready.len() > 0;
        let timer_due = next_timer.is_some_and(|t| t <= self.clock.now());
        !has_work && !timer_due && next_timer.is_none_or(|t| t > deadline)
    }

    /// One step of `run_until(deadline)`: `None` when nothing is due before `deadline` (the
    /// clock then moves to `deadline` if it can) or the clock is already past it (busy
    /// processes charge simulated time). For harnesses that check after every step.
    pub(crate) fn step_before(&mut self, deadline: Timestamp) -> Option<Step> {
        if self.clock.now() > deadline {
            // Busy processes carried the clock past `deadline`.
            return None;
        }
        if self.nothing_due_before(deadline) {
            self.clock.advance_to(deadline);
            return None;
        }
        Some(self.step())
    }

    /// Steps until idle without letting the simulated clock pass `deadline`; then sets the
    /// clock to `deadline`. For workloads that inject input at given times.
    ///
    /// Returns `Step::Overran` when the clock passed `deadline` with work still ready (a
    /// process that spins charges time, so `run_until(now)` returns after one slice of a
    /// spinner instead of never).
    #[cfg(feature = "harness")]
    pub(crate) fn run_until(&mut self, deadline: Timestamp) -> Step {
        loop {
            let now = self.clock.now();
            if now > deadline {
                debug_assert!(!self.shut_down, "a shut-down kernel moves no clock");
                return Step::Overran(now);
            }
            let next_timer = self.timers.next_deadline();
            if self.nothing_due_before(deadline) {
                if self.clock.advance_to(deadline) && self.clock.now() == deadline {
                    return Step::ClockAdvanced(deadline);
                }
                return Step::Idle(next_timer);
            }
            let step = self.step();
            if matches!(step, Step::Idle(_) | Step::ShutDown | Step::Failed) {
                return step;
            }
        }
    }

    /// Puts `process` in or out of the ready set according to its state.
    pub(crate) fn refresh_ready(&mut self, process: &ProcessId) {
        let Some(entry) = self.table.get_mut(process) else {
            return;
        };
        if entry.is_ready() {
            self.ready.insert(entry, process);
        } else {
            let slot = entry.ready_slot.take();
            self.ready.remove(slot, &mut self.table);
        }
    }

    fn fire_timer(&mut self, now: Timestamp) {
        let Some((sequence, timer)) = self.timers.pop_due(now) else {
            return;
        };
        match timer {
            Timer::RequestTimeout { process, id } => self.fire_request_timeout(&process, id),
            Timer::Restart { process } => self.restart_now(&process),
            Timer::Deliver(message) => self.release(message),
            Timer::Alarm { process, tag } => {
                let Some(entry) = self.table.get_mut(&process) else {
                    return;
                };
                entry.push(Delivery::Alarm(tag));
                self.trace.push(
                    now,
                    Event::Alarm {
                        process: process.clone(),
                        tag,
                    },
                );
                self.refresh_ready(&process);
            }
            Timer::Wakeup { process } => self.wake_sleeper(&process, sequence),
        }
    }

    /// A sleep timer fired: the process runs again if it still sleeps on this timer (a
    /// process killed and started again under the same name sleeps on another one, or not).
    fn wake_sleeper(&mut self, process: &ProcessId, sequence: u64) {
        let Some(entry) = self.table.get_mut(process) else {
            return;
        };
        if entry.state != RunState::Sleeping(sequence) {
            return;
        }
        entry.set_state(RunState::Yielded);
        debug_assert!(entry.is_ready(), "a woken sleeper is ready");
        self.refresh_ready(process);
    }

    /// Puts a process that returned `Flow::Sleep(until)` to sleep on a timer; one whose
    /// instant has come is only yielded.
    fn sleep(&mut self, process: &ProcessId, until: Timestamp) -> RunState {
        let now = self.clock.now();
        if until <= now {
            return RunState::Yielded;
        }
        let timer = Timer::Wakeup {
            process: process.clone(),
        };
        let (deadline, sequence) = self.timers.insert(until, timer);
        debug_assert_eq!(deadline, until, "the timer is set for the sleep's instant");
        let event = Event::Sleeping {
            process: process.clone(),
            until,
        };
        self.trace.push(now, event);
        RunState::Sleeping(sequence)
    }

    fn fire_request_timeout(&mut self, process: &ProcessId, id: u64) {
        let Some(pending) = self
            .table
            .get_mut(process)
            .and_then(|e| e.host.contexts.get_mut(&id))
        else {
            return;
        };
        // The timer fired, so it is no longer in the queue.
        pending.deadline = None;
        let error = WrappedSendError {
            id,
            source: pending.target.clone(),
            error: SendError {
                kind: SendErrorKind::Timeout,
                target: pending.target.clone(),
                message: Message::Request(pending.request.clone()),
                lazy_load_blob: pending.blob.clone(),
            },
        };
        self.trace.push(
            self.clock.now(),
            Event::TimedOut {
                id,
                process: process.clone(),
            },
        );
        let delivered = self.deliver_answer(process, Delivery::Error(Box::new(error)));
        debug_assert!(
            delivered,
            "a pending timer belongs to an unanswered request"
        );
    }

    /// Runs one slice of a ready process.
    fn run_process(&mut self, process: &ProcessId) {
        let Some(wake) = self.next_wake(process) else {
            self.refresh_ready(process);
            return;
        };
        let Some(entry) = self.table.get_mut(process) else {
            return;
        };
        let Some(mut runtime) = entry.runtime.take() else {
            unreachable!("a ready process has a runtime");
        };
        entry.set_state(RunState::Running);
        let slot = entry.ready_slot.take();
        self.ready.remove(slot, &mut self.table);
        let (flow, awaiting) = {
            let trap = self.arm_trap(process);
            let mut ctx = super::ProcessContext::new(self, process.clone());
            ctx.arm_trap(trap);
            let flow = runtime.wake(&mut ctx, wake);
            (flow, ctx.awaiting())
        };
        let cost = std::mem::take(&mut self.run_cost);
        if cost > 0 {
            let until = Timestamp(self.clock.now().0.saturating_add(cost));
            if !self.clock.advance_to(until) {
                // Driven time: the driver learns what was burnt (`Kernel::time_charged`) and
                // carries its own clock on; ours moves only by its readings.
                let before = self.time_charged;
                self.time_charged = self.time_charged.saturating_add(cost);
                debug_assert!(self.time_charged >= before, "charged time only grows");
            }
        }
        let Some(entry) = self.table.get_mut(process) else {
            return;
        };
        entry.runtime = Some(runtime);
        // Not a borrow of the entry: the sleep's timer goes into the kernel's queue.
        let slept = match &flow {
            Flow::Sleep(until) => Some(self.sleep(process, *until)),
            _ => None,
        };
        let Some(entry) = self.table.get_mut(process) else {
            kernel_bug!("{process} left the table while its run ended");
        };
        let next = match (flow, awaiting) {
            (Flow::Receive, _) => RunState::Receiving,
            (Flow::Await, Some(id)) => RunState::Awaiting(id),
            (Flow::Await, None) => {
                return self.exit(
                    process,
                    ExitReason::Failed("awaited without sending a request to await".into()),
                );
            }
            (Flow::Yield, _) => {
                let event = Event::Yielded {
                    process: process.clone(),
                };
                self.trace.push(self.clock.now(), event);
                RunState::Yielded
            }
            (Flow::Sleep(_), _) => match slept {
                Some(state) => state,
                None => kernel_bug!("a sleep without its state"),
            },
            (Flow::Return, _) => return self.exit(process, ExitReason::Returned),
            (Flow::Fail(reason), _) => return self.exit(process, ExitReason::Failed(reason)),
        };
        entry.set_state(next);
        self.refresh_ready(process);
    }

    /// Takes what wakes `process` now from its state and mailbox.
    fn next_wake(&mut self, process: &ProcessId) -> Option<Wake> {
        let entry = self.table.get_mut(process)?;
        match entry.state {
            RunState::Starting => {
                self.starts += 1;
                let key = random_key(self.entropy.seed(), process, self.clock.now(), self.starts);
                let entry = self.table.get_mut(process)?;
                entry.host.random_key = Some(key);
                entry.host.random = None;
                Some(Wake::Init)
            }
            RunState::Yielded => Some(Wake::Resume),
            RunState::Receiving => {
                let delivery = entry.pop_front()?;
                Some(self.convert_for_receive(process, delivery))
            }
            RunState::Awaiting(id) => {
                let delivery = entry.take_answer(id)?;
                Some(self.convert_for_await(process, delivery))
            }
            RunState::PreBoot | RunState::Running | RunState::Sleeping(_) => None,
        }
    }

    /// Checks the kernel's invariants (O(state)); `sim` runs it after every step.
    ///
    /// # Errors
    /// A description of the first broken invariant.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.caps.check_invariants()?;
        self.check_durable()?;
        let mut held = 0;
        for (process, entry) in &self.table {
            if !self.caps.has_process(process) {
                return Err(format!(
                    "{process} is in the table but not in the capability store"
                ));
            }
            let listed = entry
                .ready_slot
                .is_some_and(|slot| self.ready.get(slot) == Some(process));
            if entry.is_ready() != listed || entry.is_ready() != entry.ready_slot.is_some() {
                return Err(format!(
                    "ready set disagrees with {process}'s state {:?}",
                    entry.state
                ));
            }
            if entry.state == RunState::Running {
                return Err(format!("{process} is still marked running between steps"));
            }
            let requests = entry
                .mailbox
                .iter()
                .filter(|d| matches!(d, Delivery::Message(m) if m.message.is_request()))
                .count();
            if requests != entry.requests_queued || requests > self.config.mailbox_len_max {
                return Err(format!(
                    "{process} mailbox count is wrong or over its bound"
                ));
            }
            self.check_pending_against_answers(process, entry)?;
            held += self.check_bytes_of(process, entry)?;
        }
        let inbox: u64 = self
            .inbox
            .iter()
            .map(|m| super::state::message_len(m))
            .sum();
        held += inbox;
        held += self
            .outbound
            .iter()
            .map(|m| super::state::message_len(m))
            .sum::<u64>();
        if inbox != self.inbox_bytes || inbox > self.config.inbox_bytes_max {
            return Err(format!(
                "the inbox holds {inbox} bytes, counted {}, bound {}",
                self.inbox_bytes, self.config.inbox_bytes_max
            ));
        }
        if held != self.held_bytes || held > self.config.held_bytes_max {
            return Err(format!(
                "the kernel holds {held} message bytes, counted {}, bound {}",
                self.held_bytes, self.config.held_bytes_max
            ));
        }
        for process in self.pending_restarts.keys() {
            if self.table.contains_key(process) {
                return Err(format!("{process} is both running and waiting to restart"));
            }
        }
        if self.ready.len() > self.table.len() {
            return Err("ready set is larger than the table".into());
        }
        Ok(())
    }

    /// The bytes `entry`'s mailbox and kept requests hold, checked against their counts and
    /// bounds; returns their sum.
    fn check_bytes_of(&self, process: &ProcessId, entry: &ProcessEntry) -> Result<u64, String> {
        let mailbox: u64 = entry.mailbox.iter().map(Delivery::len).sum();
        let pending: u64 = entry.host.contexts.values().map(|p| p.len()).sum();
        let c = &self.config;
        // Send errors made of kept requests may take a mailbox past its own bound.
        if mailbox != entry.mailbox_bytes || mailbox > c.mailbox_bytes_max + c.outstanding_bytes_max
        {
            return Err(format!(
                "{process}'s mailbox holds {mailbox} bytes, counted {}",
                entry.mailbox_bytes
            ));
        }
        let outstanding = entry.host.contexts.len();
        if pending != entry.host.pending_bytes
            || pending > c.outstanding_bytes_max
            || outstanding > c.outstanding_max
        {
            return Err(format!(
                "{process} keeps {outstanding} outstanding requests of {pending} bytes, \
                 counted {}",
                entry.host.pending_bytes
            ));
        }
        Ok(mailbox + pending)
    }

    /// Outstanding requests against queued answers: every queued answer (response or send
    /// error) belongs to exactly one accepted request, every accepted request has exactly one
    /// queued answer, and every unaccepted one has its timeout in the timer queue.
    fn check_pending_against_answers(
        &self,
        process: &ProcessId,
        entry: &ProcessEntry,
    ) -> Result<(), String> {
        let mut queued: BTreeMap<u64, usize> = BTreeMap::new();
        for delivery in &entry.mailbox {
            let answer = match delivery {
                Delivery::Message(m) if !m.message.is_request() => m.id,
                Delivery::Error(e) => e.id,
                _ => continue,
            };
            *queued.entry(answer).or_default() += 1;
        }
        for (id, count) in &queued {
            let accepted = entry.host.contexts.get(id).is_some_and(|p| p.answered);
            if !accepted || *count != 1 {
                return Err(format!(
                    "{process} has {count} queued answer(s) to request {id}, which is {}",
                    if accepted {
                        "accepted"
                    } else {
                        "not an accepted request"
                    }
                ));
            }
        }
        for (id, pending) in &entry.host.contexts {
            let timer_queued = pending
                .deadline
                .is_some_and(|key| self.timers.contains(key));
            // Shutdown clears the timer queue and leaves the table as it was.
            let timer_wrong = !self.shut_down && pending.answered == timer_queued;
            if pending.answered != queued.contains_key(id) || timer_wrong {
                return Err(format!(
                    "{process}'s request {id} (accepted: {}) has {} queued answer and {} timer",
                    pending.answered,
                    if queued.contains_key(id) { "a" } else { "no" },
                    if timer_queued { "a" } else { "no" },
                ));
            }
        }
        Ok(())
    }

    /// When the earliest pending timer fires.
    pub fn next_timer(&self) -> Option<Timestamp> {
        self.timers.next_deadline()
    }

    /// How many timers are pending (request timeouts, restarts, alarms).
    pub fn timers_pending(&self) -> usize {
        self.timers.len()
    }

    pub(crate) fn clear_scheduling(&mut self) {
        self.ready.clear(&mut self.table);
        self.timers.clear();
    }
}
