//! World scenario files as written (`crate::world::spec` validates them, `crate::world::draw`
//! draws their faults per seed): the nodes, the network, the workload of sends, commands and
//! network faults, and the faults drawn per seed. Documented in `docs/scenarios.md`, "Worlds".

use super::apps::ExpectSpec;
use super::apps::PackageSpec;
use super::faults::FaultSpec;
use super::{ProcessSpec, SendSpec, StorageKind};
use hyperkernel::KernelCommand;
use serde::{Deserialize, Serialize};

/// Most nodes a world may have.
pub const NODES_MAX: usize = 64;

/// One node of a world.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Its name (`first.os`).
    pub name: String,
    /// Its processes, started in order after its packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessSpec>,
    /// Packages installed at its setup, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageSpec>,
    /// Its store (`memory` or `disk`); a node that crashes comes back from it.
    #[serde(default, skip_serializing_if = "is_default")]
    pub storage: StorageKind,
    /// Register `vfs:distro:sys` (implied by `packages`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub vfs: bool,
    /// Initialize every process before running any.
    #[serde(default, skip_serializing_if = "is_false")]
    pub initialize_first: bool,
    /// Record message bodies in its trace.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trace_bodies: bool,
    /// App-level outcomes this node must show by the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<ExpectSpec>,
    /// Kit test packages this node's tester runs after setup (a test group's first node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<crate::format::apps::TestsSpec>,
    /// Faults inside the node, drawn from its own seed, as a one-node scenario's `faults`
    /// (held messages, traps, process crashes, skewed timers, reboots, disk faults); the
    /// network's faults are the world's own `faults`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSpec>,
}

/// A one-way delay: a minimum plus an exponential tail with a mean, in milliseconds.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DelaySpec {
    /// The least delay.
    pub min: u64,
    /// The mean of the tail on top of it.
    pub mean: u64,
}

impl Default for DelaySpec {
    /// The reference's fake-node network as kit runs it: 1 ms at least, 5 ms on average more.
    fn default() -> Self {
        Self { min: 1, mean: 5 }
    }
}

/// A delay for the messages between two nodes (both ways).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The two nodes.
    pub between: [String; 2],
    /// Their delay.
    pub delay_ms: DelaySpec,
}

/// The network of a world.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WorldNetSpec {
    /// Every link's delay unless overridden.
    #[serde(default)]
    pub delay_ms: DelaySpec,
    /// Per-link overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSpec>,
}

/// One workload entry of a world: at a simulated time, a driven process of a node sends a
/// message or a command, or the network or a node suffers a fault.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorldWork {
    /// Simulated milliseconds since the start.
    pub at_ms: u64,
    /// With `from`: the node whose driven process acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The driven process that acts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A message it sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendSpec>,
    /// A kernel command it sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<KernelCommand>,
    /// Seconds to wait for the command's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects_response: Option<u64>,
    /// A partition: no message crosses from one side to the other until `heal` (with
    /// `one_way`, only from the first side to the second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<[Vec<String>; 2]>,
    /// With `cut`: only the first side's messages to the second are cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub one_way: bool,
    /// Every cut heals.
    #[serde(default, skip_serializing_if = "is_false")]
    pub heal: bool,
    /// The link between two nodes (both ways) holds its messages for `for_ms`, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clog: Option<[String; 2]>,
    /// A node's interface (everything it sends and receives) holds messages for `for_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clog_node: Option<String>,
    /// With `clog` or `clog_node`: how long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_ms: Option<u64>,
    /// The connection between two nodes breaks, losing what was queued on it both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<[String; 2]>,
    /// A node crashes (its connections break) and boots again from its store after
    /// `downtime_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<String>,
    /// With `crash`: how long it stays down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
}

/// The world scenario as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorldFile {
    /// The format version ([`super::VERSION`]).
    pub version: u32,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// The nodes, each set up in order.
    pub nodes: Vec<NodeSpec>,
    /// The network.
    #[serde(default)]
    pub network: WorldNetSpec,
    /// Messages, commands and faults at simulated times.
    #[serde(default)]
    pub workload: Vec<WorldWork>,
    /// Faults drawn per seed (`draw.rs`), added to the workload as entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<WorldFaultSpec>,
    /// Simulated milliseconds to run at most.
    pub run_for_ms: u64,
    /// After `run_for_ms`, with every fault stopped and every cut healed, every node must be
    /// quiescent and every link empty within this many simulated milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce_within_ms: Option<u64>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if"
)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// Most fault entries drawn for one seed.
pub const DRAWN_MAX: usize = 10_000;

/// A rate of arrivals per simulated second.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    /// Arrivals per simulated second, on average.
    pub per_second: f64,
}

/// Partitions.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// Partitions per simulated second, on average, while none holds.
    pub per_second: f64,
    /// How long one holds before it heals: uniform in `[min, max]` ms.
    #[serde(default = "heal_after")]
    pub heal_after_ms: [u64; 2],
    /// The chance that a partition cuts one way only.
    #[serde(default)]
    pub one_way: f64,
}

fn heal_after() -> [u64; 2] {
    [100, 2_000]
}

/// Clogs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClogSpec {
    /// Clogs per simulated second, on average.
    pub per_second: f64,
    /// The mean of a clog's exponential length, in ms.
    pub mean_ms: u64,
    /// Swizzle three clogs in ten: clog several nodes' interfaces one after another and
    /// unclog them in reverse order.
    #[serde(default)]
    pub swizzle: bool,
}

/// Node crashes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// Crashes per simulated second, on average, in the whole world.
    pub per_second: f64,
    /// The longest downtime; each is uniform in `[1, max]` ms.
    pub max_downtime_ms: u64,
    /// The nodes that may crash (default: any), say every node but a kit test group's first,
    /// whose tester does not run its tests again after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
}

/// Faults beyond the reference's guarantees: per-message chances.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BeyondSpec {
    /// A message may pass the one sent before it on its pair.
    #[serde(default)]
    pub reorder: f64,
    /// A message arrives twice.
    #[serde(default)]
    pub duplicate: f64,
    /// A message is lost alone, its connection kept.
    #[serde(default)]
    pub drop: f64,
}

impl BeyondSpec {
    /// Whether any is on.
    pub fn any(&self) -> bool {
        self.reorder > 0.0 || self.duplicate > 0.0 || self.drop > 0.0
    }
}

/// The `faults` section of a world scenario.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorldFaultSpec {
    /// Turn each kind on in half the seeds, at a rate scaled per seed.
    #[serde(default)]
    pub swarm: bool,
    /// Faults stop here (default: `run_for_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionSpec>,
    /// Clogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clog: Option<ClogSpec>,
    /// Connection resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<RateSpec>,
    /// Node crashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash: Option<CrashSpec>,
    /// Faults beyond the reference (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beyond_reference: Option<BeyondSpec>,
}

fn rate_problem(name: &str, rate: f64) -> Option<String> {
    (!(0.0..=1000.0).contains(&rate)).then(|| format!("{name}: {rate} is not in [0, 1000]"))
}

fn chance_problem(name: &str, chance: f64) -> Option<String> {
    (!(0.0..=1.0).contains(&chance)).then(|| format!("{name}: {chance} is not in [0, 1]"))
}

impl WorldFaultSpec {
    /// Why the section cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let ms = super::MS_MAX;
        let mut problems = Vec::new();
        if let Some(p) = &self.partition {
            problems.push(rate_problem("partition.per_second", p.per_second));
            problems.push(chance_problem("partition.one_way", p.one_way));
            let [min, max] = p.heal_after_ms;
            if min > max || max > ms {
                problems.push(Some(format!("partition.heal_after_ms [{min}, {max}]")));
            }
        }
        if let Some(c) = &self.clog {
            problems.push(rate_problem("clog.per_second", c.per_second));
            if c.mean_ms > ms {
                problems.push(Some(format!("clog.mean_ms {} is too long", c.mean_ms)));
            }
        }
        if let Some(r) = &self.reset {
            problems.push(rate_problem("reset.per_second", r.per_second));
        }
        if let Some(c) = &self.crash {
            problems.push(rate_problem("crash.per_second", c.per_second));
            if c.max_downtime_ms == 0 || c.max_downtime_ms > ms {
                problems.push(Some("crash.max_downtime_ms is 1 or more".into()));
            }
            if c.nodes.as_ref().is_some_and(Vec::is_empty) {
                problems.push(Some(
                    "crash.nodes names no node (leave it out for any)".into(),
                ));
            }
        }
        if let Some(b) = &self.beyond_reference {
            problems.push(chance_problem("beyond_reference.reorder", b.reorder));
            problems.push(chance_problem("beyond_reference.duplicate", b.duplicate));
            problems.push(chance_problem("beyond_reference.drop", b.drop));
        }
        problems.into_iter().flatten().next()
    }
}
