//! Scenario files: the processes of a simulated node, a workload of messages and kernel
//! commands at simulated times, and how long to run. Documented in `docs/scenarios.md`.
//!
//! Loading validates everything before anything runs; every error names the file, the place
//! in it (`processes[2]`, `workload[0]`, or a line and column) and the problem.

pub use crate::format::{
    CapabilitySpec, Code, FILE_LEN_MAX, Invalid, MS_MAX, NETWORK, ProcessSpec, SECONDS_MAX,
    ScenarioFile, SendSpec, StorageKind, VERSION, WORKLOAD_LEN_MAX, WorkSpec,
};
use hyperkernel::{Address, ProcessId};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

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
    pub apps: crate::node::apps::Cache,
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
        Self::parse(path, &read(path)?)
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
            apps: crate::node::apps::Cache::default(),
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
            apps: crate::node::apps::Cache::default(),
        })
    }

    /// Its packages and tests, read from disk on first use (once for all its clones).
    ///
    /// # Errors
    /// A package or test package that does not read, with the file, place and problem.
    pub fn apps(&self) -> Result<std::sync::Arc<crate::node::apps::Loaded>, String> {
        self.apps
            .get_or_init(|| {
                crate::node::apps::load(&self.path, &self.file).map(std::sync::Arc::new)
            })
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
        let generated = crate::node::generate::expand(&scenario.file.generators, seed);
        scenario.file.workload.extend(generated);
        scenario.file.generators.clear();
        scenario
    }

    /// A wasm path as the scenario names it, resolved against the scenario's directory.
    pub fn resolve(&self, wasm: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(wasm)
    }
}

/// The text of the scenario file at `path` (bounded, a regular file).
///
/// # Errors
/// It cannot be read; the error's place is `file`.
pub fn read(path: &Path) -> Result<String, ScenarioError> {
    crate::files::read_text(path, FILE_LEN_MAX).map_err(|e| ScenarioError {
        path: path.to_owned(),
        place: "file".to_owned(),
        problem: e.to_string(),
    })
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
        (_, _, Some(native)) if crate::format::NATIVES.contains(&native.as_str()) => {
            Code::Native(native.clone())
        }
        (_, _, Some(native)) => {
            return Err(format!(
                "unknown native process `{native}` (known: {})",
                crate::format::NATIVES.join(", ")
            ));
        }
        _ => Code::Driven,
    })
}

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
    crate::node::apps::validate(file, &processes)?;
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
