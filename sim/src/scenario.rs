//! Scenario files: the processes of a simulated node, a workload of messages and kernel
//! commands at simulated times, and how long to run. Documented in `docs/scenarios.md`.
//!
//! Loading validates everything before anything runs; every error names the file, the place
//! in it (`processes[2]`, `workload[0]`, or a line and column) and the problem.

use crate::faults::FaultSpec;
use crate::generate::GeneratorSpec;
use crate::network::NetworkSpec;
use hyperkernel::{Address, Capability, KernelCommand, OnExit, ProcessId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

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
pub const WORKLOAD_LEN_MAX: u64 = crate::generate::COUNT_MAX;

/// `value` at `place` as a number of milliseconds, or why it is out of range.
fn check_ms(place: &str, value: u64) -> Result<(), Invalid> {
    if value > MS_MAX {
        return Err((
            place.to_owned(),
            format!("{value} ms is over the largest simulated time, {MS_MAX} ms"),
        ));
    }
    Ok(())
}

/// `value` at `place` as `expects_response` seconds, or why it is out of range.
fn check_seconds(place: &str, value: Option<u64>) -> Result<(), Invalid> {
    match value {
        Some(seconds) if seconds > SECONDS_MAX => Err((
            place.to_owned(),
            format!("{seconds} s is over the largest timeout, {SECONDS_MAX} s"),
        )),
        _ => Ok(()),
    }
}

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
    pub packages: Vec<crate::apps::PackageSpec>,
    /// Kit test packages that a native tester runs after setup, in the reference's tester
    /// protocol (`apps.rs`); every test must answer `Run` Ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<crate::apps::TestsSpec>,
    /// Initialize every package process and scenario process before running any, as the
    /// reference's boot does (the default starts each as soon as it is initialized).
    #[serde(default, skip_serializing_if = "is_false")]
    pub initialize_first: bool,
    /// Register `vfs:distro:sys` (implied by `packages` and `tests`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub vfs: bool,
    /// App-level outcomes the run must show, or it fails (`apps.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<crate::apps::ExpectSpec>,
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

/// A validated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file's contents.
    pub file: ScenarioFile,
    /// Each process's parsed id and code, in file order.
    pub processes: Vec<(ProcessId, Code)>,
    /// Its packages and tests once read (`Scenario::apps`), shared by its clones.
    pub apps: crate::apps::Cache,
}

/// A scenario that cannot be used: the file, the place, the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file.
    pub path: PathBuf,
    /// Where in it (`line 3 column 7`, `processes[1]`, …).
    pub place: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.path.display(),
            self.place,
            self.problem
        )
    }
}

impl std::error::Error for ScenarioError {}

impl Scenario {
    /// Reads and validates the scenario at `path`.
    ///
    /// # Errors
    /// The file cannot be read, is not a scenario of this version, or is inconsistent.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = crate::files::read_text(path, FILE_LEN_MAX).map_err(|e| ScenarioError {
            path: path.to_owned(),
            place: "file".to_owned(),
            problem: e.to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates `text` as the scenario at `path` (wasm paths resolve against its
    /// directory; nothing is read).
    ///
    /// # Errors
    /// As [`Scenario::load`], but for reading the file.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let error = |place: &str, problem: String| ScenarioError {
            path: path.to_owned(),
            place: place.to_owned(),
            problem,
        };
        let file: ScenarioFile = serde_json::from_str(text).map_err(|e| {
            let place = format!("line {} column {}", e.line(), e.column());
            let problem = e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned();
            error(&place, problem)
        })?;
        if file.version != VERSION {
            let problem = format!(
                "version {} is not supported (this sim reads {VERSION})",
                file.version
            );
            return Err(error("version", problem));
        }
        let processes = validate(&file).map_err(|(place, problem)| error(&place, problem))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            processes,
            apps: crate::apps::Cache::default(),
        })
    }

    /// A scenario made in memory (by `sim shrink`), validated as if read from `path` (wasm
    /// paths resolve against its directory).
    ///
    /// # Errors
    /// As [`Scenario::load`], for an inconsistent scenario.
    pub fn from_file(path: &Path, file: ScenarioFile) -> Result<Self, ScenarioError> {
        let processes = validate(&file).map_err(|(place, problem)| ScenarioError {
            path: path.to_owned(),
            place,
            problem,
        })?;
        Ok(Self {
            path: path.to_owned(),
            file,
            processes,
            apps: crate::apps::Cache::default(),
        })
    }

    /// Its packages and tests, read from disk on first use (once for all its clones).
    ///
    /// # Errors
    /// A package or test package that does not read, with the file, place and problem.
    pub fn apps(&self) -> Result<std::sync::Arc<crate::apps::Loaded>, String> {
        self.apps
            .get_or_init(|| crate::apps::load(&self.path, &self.file).map(std::sync::Arc::new))
            .clone()
    }

    /// Whether the node registers `vfs:distro:sys`.
    pub fn vfs(&self) -> bool {
        self.file.vfs
            || self.file.package.is_some()
            || !self.file.packages.is_empty()
            || self.file.tests.is_some()
    }

    /// This scenario as `seed` runs it: generators expanded into plain workload entries
    /// (after the listed ones), so every entry is explicit.
    pub fn for_seed(&self, seed: u64) -> Self {
        let mut scenario = self.clone();
        if scenario.file.generators.is_empty() {
            return scenario;
        }
        let generated = crate::generate::expand(&scenario.file.generators, seed);
        scenario.file.workload.extend(generated);
        scenario.file.generators.clear();
        scenario
    }

    /// A wasm path as the scenario names it, resolved against the scenario's directory.
    pub fn resolve(&self, wasm: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(wasm)
    }
}

fn code_of(spec: &ProcessSpec) -> Result<Code, String> {
    let kinds = [
        spec.guest.is_some(),
        spec.wasm.is_some(),
        spec.native.is_some(),
        spec.driven,
    ];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("give exactly one of guest, wasm, native and driven".into());
    }
    Ok(match (&spec.guest, &spec.wasm, &spec.native) {
        (Some(guest), _, _) => Code::Guest(guest.clone()),
        (_, Some(wasm), _) => Code::Wasm(wasm.clone()),
        (_, _, Some(native)) if crate::run::NATIVES.contains(&native.as_str()) => {
            Code::Native(native.clone())
        }
        (_, _, Some(native)) => {
            return Err(format!(
                "unknown native process `{native}` (known: {})",
                crate::run::NATIVES.join(", ")
            ));
        }
        _ => Code::Driven,
    })
}

pub(crate) type Invalid = (String, String);

fn validate(file: &ScenarioFile) -> Result<Vec<(ProcessId, Code)>, Invalid> {
    if file.node.is_empty() || file.node == "our" {
        return Err((
            "node".into(),
            "give the node a name other than `our`".into(),
        ));
    }
    if let Err(e) = Address::new(&file.node, ProcessId::kernel()).check() {
        return Err((
            "node".into(),
            format!("`{}` is not a node name ({e}; use [a-z0-9-.])", file.node),
        ));
    }
    check_ms("run_for_ms", file.run_for_ms)?;
    if let Some(quiesce) = file.quiesce_within_ms {
        check_ms("quiesce_within_ms", quiesce)?;
    }
    let mut processes = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, spec) in file.processes.iter().enumerate() {
        let place = format!("processes[{i}]");
        let id: ProcessId = spec
            .id
            .parse()
            .map_err(|e| (place.clone(), format!("id `{}`: {e}", spec.id)))?;
        if id.is_kernel() || id.as_str() == "timer:distro:sys" {
            return Err((place, format!("`{id}` is the kernel's own process")));
        }
        if !seen.insert(id.clone()) {
            return Err((place, format!("`{id}` is declared twice")));
        }
        for (j, cap) in spec.capabilities.iter().enumerate() {
            if let CapabilitySpec::Messaging(target) = cap
                && target != NETWORK
            {
                target.parse::<ProcessId>().map_err(|e| {
                    (
                        format!("{place}.capabilities[{j}]"),
                        format!("`{target}`: {e}"),
                    )
                })?;
            }
        }
        let code = code_of(spec).map_err(|e| (place, e))?;
        processes.push((id, code));
    }
    validate_faults(file)?;
    if let Some(network) = &file.network {
        for (i, latency) in network.latency_ms.iter().enumerate() {
            check_ms(&format!("network.latency_ms[{i}]"), *latency)?;
        }
        if let Some(problem) = network.problem(&file.node) {
            return Err(("network".into(), problem));
        }
    }
    validate_generators(file, &processes)?;
    validate_workload(file, &processes)?;
    crate::apps::validate(file, &processes)?;
    Ok(processes)
}

fn validate_workload(file: &ScenarioFile, processes: &[(ProcessId, Code)]) -> Result<(), Invalid> {
    let generated: u64 = file.generators.iter().map(|g| g.count).sum();
    let entries = u64::try_from(file.workload.len()).unwrap_or(u64::MAX);
    if entries.saturating_add(generated) > WORKLOAD_LEN_MAX {
        return Err((
            "workload".into(),
            format!(
                "{entries} listed and {generated} generated entries are over \
                 {WORKLOAD_LEN_MAX}"
            ),
        ));
    }
    for (i, work) in file.workload.iter().enumerate() {
        let place = format!("workload[{i}]");
        check_seconds(&format!("{place}.expects_response"), work.expects_response)?;
        if let Some(send) = &work.send {
            check_seconds(
                &format!("{place}.send.expects_response"),
                send.expects_response,
            )?;
        }
        let driven = processes
            .iter()
            .any(|(id, code)| id.as_str() == work.from && *code == Code::Driven);
        let peer = file
            .network
            .iter()
            .flat_map(|n| &n.peers)
            .any(|p| p.address == work.from);
        if peer && work.command.is_some() {
            return Err((place, "a peer sends messages, not kernel commands".into()));
        }
        if !driven && !peer {
            return Err((
                place,
                format!(
                    "`{}` is not a driven process or a peer of this scenario",
                    work.from
                ),
            ));
        }
        match (&work.send, &work.command) {
            (Some(send), None) => {
                send.to
                    .parse::<Address>()
                    .map_err(|e| (place.clone(), format!("to `{}`: {e}", send.to)))?;
            }
            (None, Some(_)) => {}
            _ => return Err((place, "give exactly one of send and command".into())),
        }
        if work.at_ms > file.run_for_ms {
            return Err((
                place,
                format!(
                    "at_ms {} is after run_for_ms {}",
                    work.at_ms, file.run_for_ms
                ),
            ));
        }
    }
    Ok(())
}

fn validate_generators(
    file: &ScenarioFile,
    processes: &[(ProcessId, Code)],
) -> Result<(), Invalid> {
    let driven = |id: &str| {
        processes
            .iter()
            .any(|(p, code)| p.as_str() == id && *code == Code::Driven)
    };
    for (i, generator) in file.generators.iter().enumerate() {
        if let Some(problem) = generator.problem(file.run_for_ms, &driven) {
            return Err((format!("generators[{i}]"), problem));
        }
        check_seconds(
            &format!("generators[{i}].expects_response"),
            generator.expects_response,
        )?;
    }
    Ok(())
}

fn validate_faults(file: &ScenarioFile) -> Result<(), Invalid> {
    check_ms("sync_interval_ms", file.sync_interval_ms)?;
    let Some(faults) = &file.faults else {
        return Ok(());
    };
    if let Some(problem) = faults.problem() {
        return Err(("faults".into(), problem));
    }
    if let Some(delay) = faults.delay {
        check_ms("faults.delay.max_ms", delay.max_ms)?;
    }
    if let Some(reboot) = faults.reboot {
        check_ms("faults.reboot.max_downtime_ms", reboot.max_downtime_ms)?;
    }
    if faults.until_ms.is_some_and(|until| until > file.run_for_ms) {
        return Err((
            "faults.until_ms".into(),
            format!("is after run_for_ms {}", file.run_for_ms),
        ));
    }
    Ok(())
}

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
