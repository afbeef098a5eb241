//! Faults inside a node's kernel, injected through its one hook (`hyperkernel::FaultHook`):
//! messages held in transit, wasm runs trapped at a random fuel point, skewed timers; and
//! the faults the simulator injects beside it (crashed processes, network, disk, reboots),
//! counted here. Every decision is drawn from the seed's `Faults` stream, and only while
//! faults are configured, so a run without faults draws nothing.
//!
//! The hook is asked in an order fixed by the kernel's run, so a kernel run again from the
//! same inputs asks the same questions: `Inside::replaying` answers them again from the same
//! seed and the same schedule of `set`s (each kept with the number of questions asked before
//! it), which is how a node of a world with faults inside is run alone (W9).
//!
//! Invariant: the counters only grow, across reboots too (a rebooted kernel gets a fresh
//! stream from its boot seed, as it did when this state lived in the kernel, and the same
//! counts).

use crate::node::streams::{SimStream, rng};
use hyperkernel::{Address, Fault, FaultHook, Kernel, ProcessId, Timestamp};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::cell::RefCell;
use std::rc::Rc;

/// One million: probabilities are given in parts per million, so no float enters a run.
pub const PPM: u32 = 1_000_000;

/// Which faults to inject inside a kernel and how often (all off by default).
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

/// How many faults fired in a node, by kind.
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
    /// Processes crashed.
    pub crashed: u64,
    /// Cross-node messages a network lost.
    pub network_dropped: u64,
    /// Cross-node messages a network delivered twice.
    pub network_duplicated: u64,
    /// Node crashes with a reboot from the store.
    pub reboots: u64,
    /// Simulated disk faults.
    pub disk_faults: u64,
}

impl FaultCounters {
    /// The sum of every count.
    pub fn total(&self) -> u64 {
        self.delayed
            + self.traps_armed
            + self.trapped
            + self.timers_skewed
            + self.crashed
            + self.network_dropped
            + self.network_duplicated
            + self.reboots
            + self.disk_faults
    }
}

#[derive(Debug)]
struct State {
    faults: Faults,
    counters: FaultCounters,
    rng: ChaCha8Rng,
    /// Questions asked so far (hold, trap, deadline).
    asked: u64,
    /// Every `set`, with the questions asked before it.
    changes: Vec<(u64, Faults)>,
    /// When replaying: the `set`s still to apply, in order.
    script: std::collections::VecDeque<(u64, Faults)>,
}

impl State {
    /// A question is about to be answered: a scripted `set` due now applies first.
    fn ask(&mut self) {
        while let Some(&(at, faults)) = self.script.front() {
            debug_assert!(at >= self.asked, "a scripted change was skipped");
            if at != self.asked {
                break;
            }
            self.faults = faults;
            self.script.pop_front();
        }
        self.asked += 1;
    }

    fn chance(&mut self, ppm: u32) -> bool {
        ppm > 0 && self.rng.next_u32() % PPM < ppm
    }

    /// Uniform in `1..=max` (`max` > 0).
    fn upto(&mut self, max: u64) -> u64 {
        debug_assert!(max > 0, "a draw from an empty range");
        1 + self.rng.next_u64() % max
    }
}

/// A node's inside faults; clones share them (the kernel holds one as its hook, the
/// simulator another to configure and count).
#[derive(Clone, Debug)]
pub struct Inside(Rc<RefCell<State>>);

impl Inside {
    /// No faults yet, drawing from the `Faults` stream of `seed` (the kernel's seed).
    pub fn new(seed: u64) -> Self {
        Self::replaying(seed, &[])
    }

    /// As `new`, applying `changes` (another `Inside`'s [`Inside::changes`]) at the questions
    /// they were made at: a kernel run again from the same inputs gets the same answers.
    pub fn replaying(seed: u64, changes: &[(u64, Faults)]) -> Self {
        assert!(
            changes.windows(2).all(|w| w[0].0 <= w[1].0),
            "changes out of order"
        );
        Self(Rc::new(RefCell::new(State {
            faults: Faults::default(),
            counters: FaultCounters::default(),
            rng: rng(seed, SimStream::Faults),
            asked: 0,
            changes: Vec::new(),
            script: changes.iter().copied().collect(),
        })))
    }

    /// Every `set` so far, with the number of questions asked before it.
    pub fn changes(&self) -> Vec<(u64, Faults)> {
        self.0.borrow().changes.clone()
    }

    /// The hook to build a kernel with.
    pub fn hook(&self) -> Box<dyn FaultHook> {
        Box::new(self.clone())
    }

    /// The node booted again with `seed`: a fresh stream and no faults until `set`; the
    /// counts go on.
    pub fn rebooted(&self, seed: u64) {
        let mut state = self.0.borrow_mut();
        let before = state.counters;
        state.faults = Faults::default();
        state.rng = rng(seed, SimStream::Faults);
        assert_eq!(state.counters, before, "a reboot lost fault counts");
    }

    /// Sets the faults to inject from now on (`Faults::default()` stops them; messages
    /// already held are still released on time).
    pub fn set(&self, faults: Faults) {
        let mut state = self.0.borrow_mut();
        state.faults = faults;
        let asked = state.asked;
        state.changes.push((asked, faults));
    }

    /// The faults configured now.
    pub fn faults(&self) -> Faults {
        self.0.borrow().faults
    }

    /// How many faults fired so far.
    pub fn counters(&self) -> FaultCounters {
        self.0.borrow().counters
    }

    /// Crashes `process` of `kernel` as if it trapped (its `OnExit` runs) and counts it.
    /// Returns false for a process not in the table, the kernel's own, or a driven one.
    pub fn crash(&self, kernel: &mut Kernel, process: &ProcessId) -> bool {
        let crashed = kernel.harness().crash(process);
        if crashed {
            self.0.borrow_mut().counters.crashed += 1;
        }
        crashed
    }

    /// Records in `kernel`'s trace, and counts, a fault injected outside it (network, disk,
    /// reboot). Other kinds are the hook's own and are refused.
    pub fn record(&self, kernel: &mut Kernel, fault: Fault) {
        let counters = &mut self.0.borrow_mut().counters;
        let count = match fault {
            Fault::NetworkDropped { .. } => &mut counters.network_dropped,
            Fault::NetworkDuplicated { .. } => &mut counters.network_duplicated,
            Fault::Rebooted { .. } => &mut counters.reboots,
            Fault::Disk { .. } => &mut counters.disk_faults,
            other => panic!("{other:?} is injected inside the kernel, not recorded"),
        };
        *count += 1;
        let recorded = kernel.harness().record_outside_fault(fault);
        assert!(recorded, "the kernel refused an outside fault");
    }
}

impl FaultHook for Inside {
    fn hold(&mut self, now: Timestamp, _: &Address, _: &Address) -> Option<Timestamp> {
        let mut state = self.0.borrow_mut();
        state.ask();
        let max = state.faults.delay_max_nanos;
        let ppm = state.faults.delay_ppm;
        if max == 0 || !state.chance(ppm) {
            return None;
        }
        state.counters.delayed += 1;
        let until = Timestamp(now.0.saturating_add(state.upto(max)));
        debug_assert!(until > now, "a hold that ends before it begins");
        Some(until)
    }

    fn trap_at(&mut self, _: &ProcessId) -> Option<u64> {
        let mut state = self.0.borrow_mut();
        state.ask();
        let ppm = state.faults.trap_ppm;
        if !state.chance(ppm) {
            return None;
        }
        state.counters.traps_armed += 1;
        // Log-uniform over 1..2^20, so short runs are hit as often as long ones.
        let bits = state.upto(20);
        Some(state.upto(1 << bits))
    }

    fn trapped(&mut self, _: &ProcessId, _: u64) {
        let mut state = self.0.borrow_mut();
        state.counters.trapped += 1;
        assert!(
            state.counters.trapped <= state.counters.traps_armed,
            "more traps fired than were armed"
        );
    }

    fn deadline(&mut self, now: Timestamp, deadline: Timestamp) -> Timestamp {
        let mut state = self.0.borrow_mut();
        state.ask();
        let skew = u64::from(state.faults.timer_skew_ppm);
        let span = deadline.0.saturating_sub(now.0);
        if skew == 0 || span == 0 {
            return deadline;
        }
        // Uniform in -skew..=skew ppm of the span.
        let draw = state.upto(2 * skew + 1) - 1;
        let scaled = |ppm: u64| {
            u64::try_from(u128::from(span) * u128::from(ppm) / u128::from(PPM)).unwrap_or(span)
        };
        let moved = if draw >= skew {
            deadline.0.saturating_add(scaled(draw - skew))
        } else {
            deadline.0 - scaled(skew - draw).min(span)
        };
        if moved != deadline.0 {
            state.counters.timers_skewed += 1;
        }
        debug_assert!(moved >= now.0, "a timer skewed into the past");
        Timestamp(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Address {
        Address::new("a.os", ProcessId::kernel())
    }

    #[test]
    fn without_faults_nothing_is_drawn_or_counted() {
        let quiet = Inside::new(3);
        let mut hook = quiet.clone();
        for i in 0..100 {
            assert_eq!(hook.hold(Timestamp(i), &addr(), &addr()), None);
            assert_eq!(hook.trap_at(&ProcessId::kernel()), None);
            assert_eq!(
                hook.deadline(Timestamp(i), Timestamp(i + 50)),
                Timestamp(i + 50)
            );
        }
        assert_eq!(quiet.counters(), FaultCounters::default());
        // The stream is where a fresh one is: the quiet calls drew nothing.
        let fresh = Inside::new(3);
        let on = Faults {
            delay_ppm: PPM,
            delay_max_nanos: 1_000,
            ..Faults::default()
        };
        quiet.set(on);
        fresh.set(on);
        let (mut a, mut b) = (quiet.clone(), fresh.clone());
        for i in 0..20 {
            let now = Timestamp(i);
            assert_eq!(a.hold(now, &addr(), &addr()), b.hold(now, &addr(), &addr()));
        }
        assert_eq!(quiet.counters().delayed, 20);
    }

    #[test]
    fn skewed_deadlines_stay_within_their_bound_and_are_counted() {
        let inside = Inside::new(5);
        inside.set(Faults {
            timer_skew_ppm: PPM / 2,
            ..Faults::default()
        });
        let mut hook = inside.clone();
        let (now, deadline) = (Timestamp(1_000), Timestamp(11_000));
        let mut moved = 0;
        for _ in 0..200 {
            let got = hook.deadline(now, deadline);
            assert!((6_000..=16_000).contains(&got.0), "{got:?}");
            moved += u64::from(got != deadline);
        }
        assert!(moved > 150, "{moved}");
        assert_eq!(inside.counters().timers_skewed, moved);
        assert_eq!(hook.deadline(now, now), now, "a timer due now is not moved");
    }

    #[test]
    fn counts_go_on_across_a_reboot_on_a_fresh_stream() {
        let inside = Inside::new(9);
        let on = Faults {
            trap_ppm: PPM,
            ..Faults::default()
        };
        inside.set(on);
        let mut hook = inside.clone();
        let first = hook.trap_at(&ProcessId::kernel());
        assert!(first.is_some());
        hook.trapped(&ProcessId::kernel(), 1);
        inside.rebooted(9);
        assert_eq!(
            inside.faults(),
            Faults::default(),
            "no faults until set again"
        );
        inside.set(on);
        assert_eq!(
            hook.trap_at(&ProcessId::kernel()),
            first,
            "the stream started over"
        );
        let counters = inside.counters();
        assert_eq!((counters.traps_armed, counters.trapped), (2, 1));
    }

    /// Asks `hook` a fixed mix of questions; returns its answers.
    fn answers(hook: &mut Inside, from: u64) -> Vec<(Option<Timestamp>, Option<u64>, Timestamp)> {
        (from..from + 30)
            .map(|i| {
                let now = Timestamp(i * 1_000);
                (
                    hook.hold(now, &addr(), &addr()),
                    hook.trap_at(&ProcessId::kernel()),
                    hook.deadline(now, Timestamp(now.0 + 10_000)),
                )
            })
            .collect()
    }

    #[test]
    fn a_replaying_hook_answers_as_the_original_did() {
        let on = Faults {
            delay_ppm: PPM / 3,
            delay_max_nanos: 5_000,
            trap_ppm: PPM / 4,
            timer_skew_ppm: PPM / 5,
        };
        let original = Inside::new(11);
        let mut hook = original.clone();
        let mut asked = answers(&mut hook, 0);
        original.set(on);
        asked.extend(answers(&mut hook, 30));
        original.set(Faults::default());
        asked.extend(answers(&mut hook, 60));
        let changes = original.changes();
        assert_eq!(changes, vec![(90, on), (180, Faults::default())]);
        let mut again = Inside::replaying(11, &changes);
        let replayed: Vec<_> = (0..3).flat_map(|k| answers(&mut again, k * 30)).collect();
        assert_eq!(replayed, asked);
        assert_eq!(again.counters(), original.counters());
        // Without the schedule the faults never start: other answers.
        let mut quiet = Inside::new(11);
        let unscheduled: Vec<_> = (0..3).flat_map(|k| answers(&mut quiet, k * 30)).collect();
        assert_ne!(unscheduled, asked);
    }

    #[test]
    fn outside_faults_are_recorded_and_counted() {
        let mut kernel = hyperkernel::KernelBuilder::new("a.os", 1).build().unwrap();
        let inside = Inside::new(1);
        let before = kernel.trace().len();
        inside.record(&mut kernel, Fault::Rebooted { downtime_ms: 3 });
        inside.record(&mut kernel, Fault::NetworkDropped { id: 1, to: addr() });
        assert_eq!(kernel.trace().len(), before + 2);
        let counters = inside.counters();
        assert_eq!((counters.reboots, counters.network_dropped), (1, 1));
        assert_eq!(counters.total(), 2);
        assert!(!inside.crash(&mut kernel, &ProcessId::kernel()));
        assert_eq!(inside.counters().crashed, 0);
    }
}
