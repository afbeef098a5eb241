//! The file formats of `sim`, as written: one-node scenarios (this module), their fault,
//! network, generator and app sections, and worlds of several nodes (`world`). A leaf: it
//! imports nothing of the simulator above it, so every part of the simulator may read the
//! formats without an import circle. Checking a file beyond its shape, and everything a file
//! makes happen, live with the parts that do it (`scenario`, `faults`, `network`, `generate`,
//! `apps`, `world`).

pub mod apps;
pub mod faults;
pub mod generate;
pub mod network;
pub mod world;

use apps::{ExpectSpec, PackageSpec, TestsSpec};
use faults::FaultSpec;
use generate::GeneratorSpec;
use hyperkernel::{Address, Capability, KernelCommand, OnExit, ProcessId};
use network::NetworkSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The built-in native processes a scenario may name.
pub const NATIVES: &[&str] = &["echo", "sink"];

/// The capability shorthand for the network capability.
pub const NETWORK: &str = "network";

/// The scenario format version this build reads.
pub const VERSION: u32 = 1;

/// Largest simulated time a scenario may give, in milliseconds (about 31 years). Every time
/// in nanoseconds, and every sum of two times, then fits a `u64` with room to spare.
pub const MS_MAX: u64 = 1_000_000_000_000;

/// Largest `expects_response` a scenario may give, in seconds (the same 31 years).
pub const SECONDS_MAX: u64 = MS_MAX / 1000;

/// Largest scenario file read, in bytes.
pub const FILE_LEN_MAX: u64 = 16 << 20;

/// Most workload entries, listed and generated together, a scenario may make per seed.
pub const WORKLOAD_LEN_MAX: u64 = generate::COUNT_MAX;

/// A capability in a scenario: a process id (messaging to it on our node) or a full
/// capability object.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CapabilitySpec {
    /// `messaging(our@process)`.
    Messaging(String),
    /// Any capability, as the kernel's JSON has it.
    Full(Capability),
}

/// One process.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Its id, `name:package:publisher`.
    pub id: String,
    /// An example guest from `guests/` by crate name (built on first use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
    /// A wasm module, relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<PathBuf>,
    /// A built-in native process (`echo`, `sink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native: Option<String>,
    /// The harness acts as this process (it sends the workload's messages).
    #[serde(default, skip_serializing_if = "is_false")]
    pub driven: bool,
    /// What the kernel does when it ends.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_exit: OnExit,
    /// Whether any process may message it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    /// What it starts with (besides messaging itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<CapabilitySpec>,
}

/// The code of a process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Code {
    /// An example guest by name.
    Guest(String),
    /// A wasm file.
    Wasm(PathBuf),
    /// A built-in native process.
    Native(String),
    /// Driven by the harness.
    Driven,
}

/// A message the workload sends.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendSpec {
    /// The target address, `node@process:package:publisher` (`our` for our node).
    pub to: String,
    /// The body, as text.
    pub body: String,
    /// Seconds to wait for a response; none for fire-and-forget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects_response: Option<u64>,
}

/// One workload entry: at a simulated time, a driven process sends a message or a command.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkSpec {
    /// Simulated milliseconds since the start.
    pub at_ms: u64,
    /// The driven process that acts.
    pub from: String,
    /// A message to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<SendSpec>,
    /// A kernel command to send to `our@kernel:distro:sys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<KernelCommand>,
    /// Seconds to wait for the command's answer; none for no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expects_response: Option<u64>,
}

/// A scenario file as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Our node's name.
    pub node: String,
    /// The processes, started in order before the workload.
    pub processes: Vec<ProcessSpec>,
    /// Messages and commands at simulated times.
    #[serde(default)]
    pub workload: Vec<WorkSpec>,
    /// Simulated milliseconds to run at most (after the last workload entry the run also ends
    /// when the node is idle).
    pub run_for_ms: u64,
    /// Named, seeded workload generators, expanded per seed (`generate.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<GeneratorSpec>,
    /// A simulated network with peers on other nodes (none by default: other nodes are
    /// `Offline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    /// Faults to inject (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultSpec>,
    /// The liveness phase: after `run_for_ms` (and with faults stopped) the node must become
    /// quiescent within this many simulated milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiesce_within_ms: Option<u64>,
    /// The node's store: `memory` (the fastest runs; the default) or `disk` (redb on a
    /// simulated disk, the production engine under faults; implied by `faults.disk`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub storage: StorageKind,
    /// Simulated milliseconds between syncs of the store (0, the default: every commit is
    /// synced). Whatever it is, commits are synced before anything leaves the node.
    #[serde(default, skip_serializing_if = "is_default")]
    pub sync_interval_ms: u64,
    /// One package, run: the shorthand of `"packages": [{"path": PATH}]`, installed first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PathBuf>,
    /// Packages (kit's layout) installed at setup, in order, before `processes`
    /// (`apps.rs`); they turn the vfs on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PackageSpec>,
    /// Kit test packages that a native tester runs after setup, in the reference's tester
    /// protocol (`apps.rs`); every test must answer `Run` Ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsSpec>,
    /// Initialize every package process and scenario process before running any, as the
    /// reference's boot does (the default starts each as soon as it is initialized).
    #[serde(default, skip_serializing_if = "is_false")]
    pub initialize_first: bool,
    /// Register `vfs:distro:sys` (implied by `packages` and `tests`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub vfs: bool,
    /// App-level outcomes the run must show, or it fails (`apps.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<ExpectSpec>,
    /// Record each message's body in the trace (`Event::Body`: JSON when it parses, cut past
    /// a bound), for `replay` and `diff`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trace_bodies: bool,
}

/// Which store a simulated node runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// `MemStorage`: every commit durable at once.
    #[default]
    Memory,
    /// redb on a simulated disk.
    Disk,
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

/// A place in a file and what is wrong there.
pub type Invalid = (String, String);

impl CapabilitySpec {
    /// The capability on node `node`.
    ///
    /// # Errors
    /// Never for a validated scenario.
    pub fn resolve(&self, node: &str) -> Result<Capability, String> {
        match self {
            Self::Full(cap) => Ok(cap.clone()),
            Self::Messaging(target) if target == NETWORK => Ok(Capability::network(node)),
            Self::Messaging(target) => {
                let id: ProcessId = target.parse().map_err(|e| format!("{target}: {e}"))?;
                Ok(Capability::messaging(Address::new(node, id)))
            }
        }
    }
}
