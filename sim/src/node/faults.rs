//! The fault plan of a scenario and its per-seed draw (swarm testing): each fault the
//! scenario lists is, for one seed, on or off with even odds, and when on its probability is
//! uniform up to the scenario's figure. So one scenario explores runs with few and with many
//! kinds of fault, which finds bugs that a fixed mix hides.
//!
//! Every seed draws the same number of values in the same order whatever the scenario lists,
//! so removing one fault (as `sim shrink` does) leaves the draws of the others unchanged.

use crate::node::disk::DiskFaults;
use crate::node::inside::{Faults, Inside, PPM};
use crate::node::streams::{SimStream, rng as stream};
use hyperkernel::{Kernel, ProcessId};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use std::fmt;

pub use crate::format::faults::{Chance, DelaySpec, DiskSpec, FaultSpec, RebootSpec, SkewSpec};

/// A probability as parts per million (validated to lie in 0..=1).
fn ppm(probability: f64) -> u32 {
    let scaled = (probability.clamp(0.0, 1.0) * f64::from(PPM)).round();
    // In 0..=PPM after the clamp, so the cast is exact.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..=1e6"
    )]
    let ppm = scaled as u32;
    ppm
}

/// The faults one seed runs with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// What the kernel injects.
    pub kernel: Faults,
    /// Chance (ppm) of a crash after each step.
    pub crash_ppm: u32,
    /// Chance (ppm) that a network hop loses a cross-node message.
    pub drop_ppm: u32,
    /// Chance (ppm) that a network hop delivers a cross-node message twice.
    pub duplicate_ppm: u32,
    /// Chance (ppm) of a node crash with a reboot after each step.
    pub reboot_ppm: u32,
    /// Longest downtime of a reboot, simulated milliseconds.
    pub max_downtime_ms: u64,
    /// The simulated disk's faults.
    pub disk: DiskFaults,
    /// Simulated milliseconds after which faults stop.
    pub until_ms: u64,
}

/// The harness's fault decisions for one run.
pub struct Injector {
    /// The plan, as drawn.
    pub plan: Plan,
    rng: ChaCha8Rng,
    /// Reboot decisions, a stream of their own so they leave the crash draws unchanged.
    reboots: ChaCha8Rng,
    stopped: bool,
}

impl Injector {
    /// Draws the plan of `seed` from `spec` (none: no faults).
    pub fn draw(spec: Option<&FaultSpec>, seed: u64, run_for_ms: u64) -> Self {
        let mut rng = stream(seed, SimStream::Swarm);
        let empty = FaultSpec::default();
        let spec = spec.unwrap_or(&empty);
        let swarm = spec.swarm;
        // Always six draws of two values each, in this order.
        let mut pick = |given: Option<u32>| {
            let on = rng.next_u32().is_multiple_of(2);
            let fraction = rng.next_u32() % PPM + 1;
            let given = given?;
            if !swarm {
                return Some(given);
            }
            let drawn = u64::from(given) * u64::from(fraction) / u64::from(PPM);
            on.then(|| u32::try_from(drawn).unwrap_or(given).max(1))
        };
        let delay = pick(spec.delay.map(|d| ppm(d.probability)));
        let trap = pick(spec.trap.map(|c| ppm(c.probability)));
        let crash = pick(spec.crash.map(|c| ppm(c.probability)));
        let skew = pick(spec.timer_skew.map(|s| s.max_percent * (PPM / 100)));
        let drop = pick(spec.drop.map(|c| ppm(c.probability)));
        let duplicate = pick(spec.duplicate.map(|c| ppm(c.probability)));
        // Drawn after the six above, so scenarios without these draw as before.
        let reboot = pick(spec.reboot.map(|r| ppm(r.probability)));
        let disk_spec = spec.disk;
        let mut disk_pick = |chance: fn(&DiskSpec) -> f64| {
            pick(disk_spec.map(|d| ppm(chance(&d))).filter(|p| *p > 0)).unwrap_or(0)
        };
        let disk = DiskFaults {
            read_error_ppm: disk_pick(|d| d.read_error),
            write_error_ppm: disk_pick(|d| d.write_error),
            sync_error_ppm: disk_pick(|d| d.sync_error),
            read_flip_ppm: disk_pick(|d| d.read_flip),
            write_flip_ppm: disk_pick(|d| d.write_flip),
            capacity: disk_spec.and_then(|d| d.capacity_bytes).unwrap_or(0),
        };
        let kernel = Faults {
            delay_ppm: delay.unwrap_or(0),
            delay_max_nanos: spec.delay.map_or(0, |d| d.max_ms.saturating_mul(1_000_000)),
            trap_ppm: trap.unwrap_or(0),
            timer_skew_ppm: skew.unwrap_or(0),
        };
        let plan = Plan {
            kernel,
            crash_ppm: crash.unwrap_or(0),
            drop_ppm: drop.unwrap_or(0),
            duplicate_ppm: duplicate.unwrap_or(0),
            reboot_ppm: reboot.unwrap_or(0),
            max_downtime_ms: spec.reboot.map_or(0, |r| r.max_downtime_ms),
            disk,
            until_ms: spec.until_ms.unwrap_or(run_for_ms),
        };
        Self {
            plan,
            rng,
            reboots: stream(seed ^ REBOOT_SALT, SimStream::Swarm),
            stopped: false,
        }
    }

    /// After a step: whether the node crashes now, and its downtime in milliseconds.
    pub fn reboot_due(&mut self) -> Option<u64> {
        let ppm = self.plan.reboot_ppm;
        if ppm == 0 || self.stopped || self.reboots.next_u32() % PPM >= ppm {
            return None;
        }
        Some(self.downtime())
    }

    /// A downtime, uniform in `1..=max_downtime_ms` (1 when no reboot fault is planned:
    /// a node restarted after a fail-stop).
    pub fn downtime(&mut self) -> u64 {
        1 + self.reboots.next_u64() % self.plan.max_downtime_ms.max(1)
    }

    /// Whether faults have stopped.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// After a step: maybe crash one of `candidates` (those still in the table) through
    /// `inside`. Returns the crashed process.
    pub fn after_step(
        &mut self,
        kernel: &mut Kernel,
        inside: &Inside,
        candidates: &[ProcessId],
    ) -> Option<ProcessId> {
        let ppm = self.plan.crash_ppm;
        if ppm == 0 || self.stopped || self.rng.next_u32() % PPM >= ppm {
            return None;
        }
        let alive: Vec<&ProcessId> = candidates
            .iter()
            .filter(|p| kernel.has_process(p))
            .collect();
        if alive.is_empty() {
            return None;
        }
        let len = u32::try_from(alive.len()).unwrap_or(u32::MAX);
        let index = usize::try_from(self.rng.next_u32() % len).unwrap_or(0);
        let victim = alive[index].clone();
        inside.crash(kernel, &victim).then_some(victim)
    }

    /// Faults stop (the liveness phase, or `until_ms`).
    pub fn stop(&mut self, inside: &Inside) {
        self.stopped = true;
        inside.set(Faults::default());
    }
}

/// Mixed into the seed of the reboot stream.
const REBOOT_SALT: u64 = 0x7265_626f_6f74;

fn percent(ppm: u32) -> String {
    format!("{:.2}%", f64::from(ppm) / f64::from(PPM / 100))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kernel;
        let mut parts = Vec::new();
        if k.delay_ppm > 0 {
            let max_ms = k.delay_max_nanos / 1_000_000;
            parts.push(format!("delay {} up to {max_ms} ms", percent(k.delay_ppm)));
        }
        if k.trap_ppm > 0 {
            parts.push(format!("trap {} per run", percent(k.trap_ppm)));
        }
        if self.crash_ppm > 0 {
            parts.push(format!("crash {} per step", percent(self.crash_ppm)));
        }
        if k.timer_skew_ppm > 0 {
            parts.push(format!("timer skew ±{}", percent(k.timer_skew_ppm)));
        }
        if self.drop_ppm > 0 {
            parts.push(format!("network drop {} per hop", percent(self.drop_ppm)));
        }
        if self.duplicate_ppm > 0 {
            parts.push(format!(
                "network duplicate {} per hop",
                percent(self.duplicate_ppm)
            ));
        }
        if self.reboot_ppm > 0 {
            parts.push(format!(
                "reboot {} per step, down up to {} ms",
                percent(self.reboot_ppm),
                self.max_downtime_ms
            ));
        }
        let d = &self.disk;
        for (name, ppm) in [
            ("read-error", d.read_error_ppm),
            ("write-error", d.write_error_ppm),
            ("sync-error", d.sync_error_ppm),
            ("read-flip", d.read_flip_ppm),
            ("write-flip", d.write_flip_ppm),
        ] {
            if ppm > 0 {
                parts.push(format!("disk {name} {} per operation", percent(ppm)));
            }
        }
        if d.capacity > 0 {
            parts.push(format!("disk of {} bytes", d.capacity));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        write!(f, "{} until {} ms", parts.join(", "), self.until_ms)
    }
}
