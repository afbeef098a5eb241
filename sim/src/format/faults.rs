//! The `faults` section of a one-node scenario: which faults a seed may draw, and how often
//! (the draw itself is `crate::node::faults`).

use serde::{Deserialize, Serialize};

/// A fault that fires with a probability.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    /// 0 to 1.
    pub probability: f64,
}

/// Messages held in transit.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    /// Chance per message leaving the inbox, 0 to 1.
    pub probability: f64,
    /// Longest hold in simulated milliseconds.
    pub max_ms: u64,
}

/// Timers firing early or late.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SkewSpec {
    /// Largest skew in percent of the timer's delay, either way (0 to 100).
    pub max_percent: u32,
}

/// The `faults` section of a scenario.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Per seed, turn each fault on with even odds and draw its probability up to the given
    /// one (default true). False: every listed fault at its given probability.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub swarm: bool,
    /// Simulated milliseconds after which no new fault fires (default: `run_for_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Hold messages in transit (order within each sender→receiver pair is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelaySpec>,
    /// Trap a wasm process's run at a random fuel point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trap: Option<Chance>,
    /// After a kernel step, crash a random non-driven process of the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<Chance>,
    /// Move request timeouts and alarms earlier or later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_skew: Option<SkewSpec>,
    /// Lose a cross-node message on one hop of the simulated network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<Chance>,
    /// Deliver a cross-node message twice on one hop of the simulated network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Chance>,
    /// After a kernel step, crash the whole node and boot it again from its store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot: Option<RebootSpec>,
    /// Faults of the simulated disk (the node then runs on redb on a simulated disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskSpec>,
}

/// Node crashes with a reboot.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RebootSpec {
    /// Chance per step, 0 to 1.
    pub probability: f64,
    /// Longest downtime in simulated milliseconds (at least 1).
    pub max_downtime_ms: u64,
}

/// Faults of the simulated disk: chances per operation, 0 to 1 each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// A read fails.
    #[serde(default)]
    pub read_error: f64,
    /// A write fails.
    #[serde(default)]
    pub write_error: f64,
    /// A sync fails.
    #[serde(default)]
    pub sync_error: f64,
    /// A read returns one bit flipped.
    #[serde(default)]
    pub read_flip: f64,
    /// A write stores one bit flipped (the store is then corrupt: the node may stay down).
    #[serde(default)]
    pub write_flip: f64,
    /// The disk's size in bytes (none: unlimited); growing past it is a full disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_bytes: Option<u64>,
}

fn yes() -> bool {
    true
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_true(value: &bool) -> bool {
    *value
}

impl FaultSpec {
    /// Why the section cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let disk = self.disk.unwrap_or_default();
        let probabilities = [
            ("delay.probability", self.delay.map(|d| d.probability)),
            ("trap.probability", self.trap.map(|c| c.probability)),
            ("crash.probability", self.crash.map(|c| c.probability)),
            ("drop.probability", self.drop.map(|c| c.probability)),
            (
                "duplicate.probability",
                self.duplicate.map(|c| c.probability),
            ),
            ("reboot.probability", self.reboot.map(|r| r.probability)),
            ("disk.read_error", Some(disk.read_error)),
            ("disk.write_error", Some(disk.write_error)),
            ("disk.sync_error", Some(disk.sync_error)),
            ("disk.read_flip", Some(disk.read_flip)),
            ("disk.write_flip", Some(disk.write_flip)),
        ];
        for (name, p) in probabilities {
            if let Some(p) = p.filter(|p| !(0.0..=1.0).contains(p)) {
                return Some(format!("{name} {p} is not between 0 and 1"));
            }
        }
        if self.delay.is_some_and(|d| d.max_ms == 0) {
            return Some("delay.max_ms must be at least 1".into());
        }
        if self.reboot.is_some_and(|r| r.max_downtime_ms == 0) {
            return Some("reboot.max_downtime_ms must be at least 1".into());
        }
        if self.timer_skew.is_some_and(|s| s.max_percent > 100) {
            return Some("timer_skew.max_percent must be at most 100".into());
        }
        None
    }
}
