//! Injected faults, for simulation: messages held in transit, wasm processes trapped at a
//! random fuel point, skewed timers, crashed processes. Every decision is drawn from the
//! seed's `Faults` stream, only while faults are configured, so a run without faults draws
//! exactly what it drew before faults existed.
//!
//! Invariant: a held message keeps its place among the messages of the same source→target
//! pair (a later message of the pair is held at least as long, and timers with equal
//! deadlines fire in the order they were set), so only messages of different pairs reorder.

use super::Kernel;
use super::schedule::Timer;
use crate::env::{Entropy, Stream, Timestamp};
use crate::trace::{Event, ExitReason, Fault};
use crate::types::{Address, KernelMessage, ProcessId};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::collections::BTreeMap;

/// One million: probabilities are given in parts per million, so no float enters the kernel.
pub const PPM: u32 = 1_000_000;

/// Which faults to inject and how often (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Chance (ppm) that a message leaving the inbox is held in transit.
    pub delay_ppm: u32,
    /// Longest hold, in nanoseconds (a hold is uniform in 1..=this).
    pub delay_max_nanos: u64,
    /// Chance (ppm) that a run of a process is armed to trap at a random fuel point (wasm
    /// processes only; a run that blocks before that point escapes).
    pub trap_ppm: u32,
    /// Largest relative skew (ppm of the delay) of request timeouts and alarms, either way.
    pub timer_skew_ppm: u32,
}

impl Faults {
    /// Whether any fault is on.
    pub fn any(&self) -> bool {
        self.delay_ppm > 0 || self.trap_ppm > 0 || self.timer_skew_ppm > 0
    }
}

/// How many faults fired, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// Messages held in transit (by chance; a message held only to keep its pair's order is
    /// not counted).
    pub delayed: u64,
    /// Runs armed to trap.
    pub traps_armed: u64,
    /// Armed runs that reached their fuel point and trapped.
    pub trapped: u64,
    /// Timers whose deadline moved.
    pub timers_skewed: u64,
    /// Processes crashed by [`Kernel::crash`].
    pub crashed: u64,
    /// Cross-node messages a network lost ([`Kernel::record_outside_fault`]).
    pub network_dropped: u64,
    /// Cross-node messages a network delivered twice.
    pub network_duplicated: u64,
    /// Node crashes with a reboot from the store.
    pub reboots: u64,
    /// Simulated disk faults.
    pub disk_faults: u64,
}

/// The kernel's fault state.
#[derive(Debug)]
pub(crate) struct FaultState {
    pub(crate) faults: Faults,
    pub(crate) counters: FaultCounters,
    rng: ChaCha8Rng,
    /// Per pair, the release time of its last held message.
    holds: BTreeMap<(Address, Address), Timestamp>,
    /// Messages held now.
    pub(crate) held: usize,
}

impl FaultState {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            faults: Faults::default(),
            counters: FaultCounters::default(),
            rng: Entropy::stream(seed, Stream::Faults),
            holds: BTreeMap::new(),
            held: 0,
        }
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.next_u32() % PPM < ppm
    }

    /// Uniform in `1..=max` (`max` > 0).
    fn upto(&mut self, max: u64) -> u64 {
        1 + self.rng.next_u64() % max
    }

    /// The deadline of a timer set at `now` for `deadline`, skewed if the fault is on.
    pub(crate) fn skewed(&mut self, now: Timestamp, deadline: Timestamp) -> Timestamp {
        let skew = u64::from(self.faults.timer_skew_ppm);
        let span = deadline.0.saturating_sub(now.0);
        if skew == 0 || span == 0 {
            return deadline;
        }
        // Uniform in -skew..=skew ppm of the span.
        let draw = self.upto(2 * skew + 1) - 1;
        let scaled = |ppm: u64| {
            u64::try_from(u128::from(span) * u128::from(ppm) / u128::from(PPM)).unwrap_or(span)
        };
        let moved = if draw >= skew {
            deadline.0.saturating_add(scaled(draw - skew))
        } else {
            deadline.0 - scaled(skew - draw).min(span)
        };
        if moved != deadline.0 {
            self.counters.timers_skewed += 1;
        }
        Timestamp(moved)
    }
}

impl Kernel {
    /// Sets the faults to inject from now on (`Faults::default()` stops them; messages
    /// already held are still released on time).
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults.faults = faults;
    }

    /// The faults configured now.
    pub fn faults(&self) -> Faults {
        self.faults.faults
    }

    /// How many faults fired so far.
    pub fn fault_counters(&self) -> FaultCounters {
        self.faults.counters
    }

    /// Messages held in transit now.
    pub fn messages_held(&self) -> usize {
        self.faults.held
    }

    /// Crashes `process` as if it trapped: it exits with a failure and its `OnExit` runs.
    /// Returns false for a process not in the table, the kernel's own, or a driven one.
    pub fn crash(&mut self, process: &ProcessId) -> bool {
        let Some(entry) = self.table.get(process) else {
            return false;
        };
        if entry.driven || process.is_kernel() {
            return false;
        }
        self.faults.counters.crashed += 1;
        let fault = Fault::Crashed {
            process: process.clone(),
        };
        self.trace
            .push(self.clock.now(), Event::FaultInjected { fault });
        self.exit(process, ExitReason::Failed("fault: crashed".into()));
        true
    }

    /// Records a fault injected outside the kernel (a simulated network dropped or
    /// duplicated a cross-node message, the node rebooted, a simulated disk failed), so the
    /// trace and the counters show it. Other kinds are ignored: the kernel injects those itself.
    pub fn record_outside_fault(&mut self, fault: Fault) {
        match fault {
            Fault::NetworkDropped { .. } => self.faults.counters.network_dropped += 1,
            Fault::NetworkDuplicated { .. } => self.faults.counters.network_duplicated += 1,
            Fault::Rebooted { .. } => self.faults.counters.reboots += 1,
            Fault::Disk { .. } => self.faults.counters.disk_faults += 1,
            _ => return,
        }
        self.trace
            .push(self.clock.now(), Event::FaultInjected { fault });
    }

    /// Holds `message` in transit if a delay fault fires or its pair has a message held;
    /// gives it back otherwise.
    pub(crate) fn hold_in_transit(
        &mut self,
        message: Box<KernelMessage>,
    ) -> Option<Box<KernelMessage>> {
        let now = self.clock.now();
        let pair = (message.source.clone(), message.target.clone());
        let pending = self.faults.holds.get(&pair).copied().filter(|t| *t > now);
        let max = self.faults.faults.delay_max_nanos;
        let chosen = if max > 0 && self.faults.chance(self.faults.faults.delay_ppm) {
            self.faults.counters.delayed += 1;
            Some(Timestamp(now.0.saturating_add(self.faults.upto(max))))
        } else {
            None
        };
        let Some(until) = chosen.max(pending) else {
            return Some(message);
        };
        self.faults.holds.insert(pair, until);
        self.faults.held += 1;
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
        self.faults.held -= 1;
        let pair = (message.source.clone(), message.target.clone());
        if self
            .faults
            .holds
            .get(&pair)
            .is_some_and(|t| *t <= self.now())
        {
            self.faults.holds.remove(&pair);
        }
        self.route_message(message);
    }

    /// For the run about to start: a fuel point to trap at, if the trap fault fires.
    pub(crate) fn arm_trap(&mut self) -> Option<u64> {
        if !self.faults.chance(self.faults.faults.trap_ppm) {
            return None;
        }
        self.faults.counters.traps_armed += 1;
        // Log-uniform over 1..2^20, so short runs are hit as often as long ones.
        let bits = self.faults.upto(20);
        Some(self.faults.upto(1 << bits))
    }

    /// An armed run reached its fuel point.
    pub(crate) fn trap_fired(&mut self, process: &ProcessId, fuel: u64) {
        self.faults.counters.trapped += 1;
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
            self.faults.held -= 1;
            self.drop_message(message, crate::trace::DropReason::KernelShutdown);
        }
        self.faults.holds.clear();
    }
}
