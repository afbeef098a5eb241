//! The one hook a driver may put into the kernel (a simulator's fault injection): hold a
//! message in transit until an instant, stop a run at a fuel point, move a timer's deadline.
//! No hook (the default) changes nothing, and the kernel reads no hook state of its own: the
//! faults, their chances, their randomness and their counts belong to the driver.
//!
//! Invariant: a held message keeps its place among the messages of its source→target pair
//! whatever the hook says (a later message of the pair is held at least as long, and timers
//! with equal deadlines fire in the order they were set), so only messages of different pairs
//! reorder. The kernel, not the hook, keeps this: `Transit` below.

use super::Kernel;
use super::schedule::Timer;
use crate::env::Timestamp;
use crate::trace::{Event, Fault};
use crate::types::{Address, KernelMessage, ProcessId};
use std::collections::BTreeMap;

/// A driver's say in the kernel's routing, runs and timers. Every method is asked at a
/// deterministic point of a step, so a hook that draws from a seeded stream keeps runs
/// reproducible.
pub trait FaultHook {
    /// A message from `source` to `target` leaves the inbox at `now`: the instant to hold it
    /// until (after `now`), or `None` to route it now.
    fn hold(&mut self, now: Timestamp, source: &Address, target: &Address) -> Option<Timestamp>;

    /// A run of `process` is about to start: the fuel point at which it must trap, if any
    /// (runtimes that meter fuel honour it; a run that blocks before that point escapes).
    fn trap_at(&mut self, process: &ProcessId) -> Option<u64>;

    /// The run of `process` reached the fuel point `trap_at` gave it and trapped.
    fn trapped(&mut self, process: &ProcessId, fuel: u64) {
        let _ = (process, fuel);
    }

    /// A timer set at `now` for `deadline` (a request's timeout, an alarm): the deadline it
    /// gets instead.
    fn deadline(&mut self, now: Timestamp, deadline: Timestamp) -> Timestamp {
        let _ = now;
        deadline
    }
}

/// The deadline of a timer set at `now` for `deadline`, as `hook` moves it (never before
/// `now`: a hook cannot make a timer fire in the past).
pub(crate) fn moved_deadline(
    hook: &mut Option<Box<dyn FaultHook>>,
    now: Timestamp,
    deadline: Timestamp,
) -> Timestamp {
    let Some(hook) = hook.as_mut() else {
        return deadline;
    };
    let moved = hook.deadline(now, deadline).max(now);
    debug_assert!(moved >= now, "a timer moved into the past");
    moved
}

/// Messages held in transit by the hook, and per pair the release time of its last one.
#[derive(Debug, Default)]
pub(crate) struct Transit {
    holds: BTreeMap<(Address, Address), Timestamp>,
    // Invariant: the number of `Timer::Deliver` in the timer queue.
    held: usize,
}

impl Kernel {
    /// Messages held in transit now (by a driver's [`FaultHook`]).
    pub fn messages_held(&self) -> usize {
        self.transit.held
    }

    /// The deadline of a timer set now for `deadline`, as the hook moves it.
    pub(crate) fn timer_deadline(&mut self, deadline: Timestamp) -> Timestamp {
        moved_deadline(&mut self.hook, self.clock.now(), deadline)
    }

    /// Whether a message leaving the inbox must be offered to `hold_in_transit`.
    pub(crate) fn may_hold(&self) -> bool {
        self.hook.is_some() || self.transit.held > 0
    }

    /// Holds `message` in transit if the hook says so or its pair has a message held; gives
    /// it back otherwise.
    pub(crate) fn hold_in_transit(
        &mut self,
        message: Box<KernelMessage>,
    ) -> Option<Box<KernelMessage>> {
        let now = self.clock.now();
        let chosen = self
            .hook
            .as_mut()
            .and_then(|hook| hook.hold(now, &message.source, &message.target))
            .filter(|until| *until > now);
        let pending = if self.transit.held > 0 {
            let pair = (message.source.clone(), message.target.clone());
            self.transit.holds.get(&pair).copied().filter(|t| *t > now)
        } else {
            None
        };
        let Some(until) = chosen.max(pending) else {
            return Some(message);
        };
        assert!(until > now, "a message held until now or before");
        let pair = (message.source.clone(), message.target.clone());
        let before = self.transit.holds.insert(pair, until);
        assert!(
            before.is_none_or(|t| t <= until),
            "a later message of a pair released before an earlier one"
        );
        self.transit.held += 1;
        let fault = Fault::Delayed {
            id: message.id,
            until,
        };
        self.trace.push(now, Event::FaultInjected { fault });
        self.timers.insert(until, Timer::Deliver(message));
        None
    }

    /// A held message's time has come: route it.
    pub(crate) fn release(&mut self, message: Box<KernelMessage>) {
        let Some(held) = self.transit.held.checked_sub(1) else {
            kernel_bug!("message {} released but none was held", message.id);
        };
        self.transit.held = held;
        let pair = (message.source.clone(), message.target.clone());
        if self
            .transit
            .holds
            .get(&pair)
            .is_some_and(|t| *t <= self.now())
        {
            self.transit.holds.remove(&pair);
        }
        self.route_message(message);
    }

    /// For the run of `process` about to start: the fuel point to trap at, if the hook says.
    pub(crate) fn arm_trap(&mut self, process: &ProcessId) -> Option<u64> {
        let fuel = self.hook.as_mut()?.trap_at(process)?;
        debug_assert!(fuel > 0, "a trap armed before the run's first fuel");
        Some(fuel)
    }

    /// An armed run reached its fuel point.
    pub(crate) fn trap_fired(&mut self, process: &ProcessId, fuel: u64) {
        assert!(self.hook.is_some(), "a trap fired that no hook armed");
        if let Some(hook) = self.hook.as_mut() {
            hook.trapped(process, fuel);
        }
        let fault = Fault::Trapped {
            process: process.clone(),
            fuel,
        };
        self.trace
            .push(self.clock.now(), Event::FaultInjected { fault });
    }

    /// Drops every held message (shutdown).
    pub(crate) fn drop_held(&mut self) {
        while let Some(message) = self.timers.take_held() {
            self.transit.held -= 1;
            self.drop_message(message, crate::trace::DropReason::KernelShutdown);
        }
        assert_eq!(
            self.transit.held, 0,
            "held messages outside the timer queue"
        );
        self.transit.holds.clear();
    }
}

/// The doors a simulator drives faults through beside its inputs (feature `harness`; a
/// production build carries none of them).
#[cfg(feature = "harness")]
impl Kernel {
    /// Puts `hook` in (or takes it out with `None`) from the next step on; messages held
    /// already are still released on time.
    pub(crate) fn set_fault_hook(&mut self, hook: Option<Box<dyn FaultHook>>) {
        assert_eq!(
            self.transit.held,
            self.timers.held_count(),
            "held messages miscounted"
        );
        self.hook = hook;
    }

    /// Crashes `process` as if it trapped: it exits with a failure and its `OnExit` runs.
    /// Returns false for a process not in the table, the kernel's own, or a driven one.
    pub(crate) fn crash(&mut self, process: &ProcessId) -> bool {
        let Some(entry) = self.table.get(process) else {
            return false;
        };
        if entry.driven || process.is_kernel() {
            return false;
        }
        let fault = Fault::Crashed {
            process: process.clone(),
        };
        self.trace
            .push(self.clock.now(), Event::FaultInjected { fault });
        self.exit(
            process,
            crate::trace::ExitReason::Failed("fault: crashed".into()),
        );
        debug_assert!(
            self.table.get(process).is_none_or(|e| !e.driven),
            "a crash reached a driven process"
        );
        true
    }

    /// Records in the trace a fault injected outside the kernel (a simulated network dropped
    /// or duplicated a cross-node message, the node rebooted, a simulated disk failed).
    /// Returns false, recording nothing, for kinds the kernel's hook injects itself.
    pub(crate) fn record_outside_fault(&mut self, fault: Fault) -> bool {
        let outside = matches!(
            fault,
            Fault::NetworkDropped { .. }
                | Fault::NetworkDuplicated { .. }
                | Fault::Rebooted { .. }
                | Fault::Disk { .. }
        );
        if outside {
            self.trace
                .push(self.clock.now(), Event::FaultInjected { fault });
        }
        outside
    }
}
