//! World scenario files: several nodes, each described as a one-node scenario's setup is (its
//! processes, packages and store), a network (delays, per-link overrides), a workload whose
//! entries act on one node or on the network (cut, heal, clog, reset, crash), and faults drawn
//! per seed that become explicit workload entries (`draw.rs`). Documented in
//! `docs/scenarios.md` ("Worlds").
//!
//! A file is a world scenario when it has `nodes`; every other scenario is read as before.
//! Loading validates everything before anything runs; each node's setup is validated as the
//! one-node scenario it becomes, so errors name the node.

pub use crate::format::world::{
    DelaySpec, LinkSpec, NODES_MAX, NodeSpec, WorldFile, WorldNetSpec, WorldWork,
};
use crate::format::{MS_MAX, ScenarioFile, VERSION};
use crate::node::scenario::{Scenario, ScenarioError};
use hyperkernel::{Address, ProcessId};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a workload entry does, once validated (node indices).
#[derive(Clone, Debug, PartialEq)]
pub enum WorldAction {
    /// Node `0`'s driven process acts (the entry's `send` or `command`).
    Act(usize),
    /// Cut `from` side off from `to` side (both ways unless one-way).
    Cut {
        /// The first side.
        from: Vec<usize>,
        /// The second side.
        to: Vec<usize>,
        /// Only the first side's messages to the second.
        one_way: bool,
    },
    /// Every cut heals.
    Heal,
    /// A link (both ways) or a node's interface holds messages until `for_ms` later.
    Clog {
        /// The link's two nodes, or the node alone.
        nodes: Vec<usize>,
        /// How long.
        for_ms: u64,
    },
    /// The connection between two nodes breaks.
    Reset(usize, usize),
    /// A node crashes and is down for `downtime_ms`.
    Crash {
        /// The node.
        node: usize,
        /// How long.
        downtime_ms: u64,
    },
}

/// A validated world scenario.
#[derive(Clone, Debug)]
pub struct WorldScenario {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file's contents.
    pub file: WorldFile,
    /// Each node's setup as a one-node scenario.
    pub nodes: Vec<Scenario>,
    /// Each workload entry's action, in file order.
    pub actions: Vec<WorldAction>,
}

/// Whether `text` is a world scenario (a JSON object with `nodes`).
pub fn is_world(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|value| value.get("nodes").is_some())
}

impl WorldScenario {
    /// Reads and validates the world scenario at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or is not a valid world scenario.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        Self::parse(path, &crate::node::scenario::read(path)?)
    }

    /// Parses and validates `text` as the world scenario at `path`.
    ///
    /// # Errors
    /// Not a world scenario of this version, or inconsistent; the error names the place.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let file: WorldFile = serde_json::from_str(text).map_err(|e| ScenarioError {
            path: path.to_owned(),
            place: format!("line {} column {}", e.line(), e.column()),
            problem: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_owned(),
        })?;
        Self::from_file(path, file)
    }

    /// A world scenario made in memory (by `sim shrink`, or drawn faults), validated as if
    /// read from `path`.
    ///
    /// # Errors
    /// As [`WorldScenario::parse`].
    pub fn from_file(path: &Path, file: WorldFile) -> Result<Self, ScenarioError> {
        let error = |place: String, problem: String| ScenarioError {
            path: path.to_owned(),
            place,
            problem,
        };
        if file.version != VERSION {
            let problem = format!(
                "version {} is not supported (this sim reads {VERSION})",
                file.version
            );
            return Err(error("version".into(), problem));
        }
        let nodes = node_scenarios(path, &file)?;
        let actions = validate(&file).map_err(|(place, problem)| error(place, problem))?;
        assert_eq!(actions.len(), file.workload.len(), "an action an entry");
        assert_eq!(nodes.len(), file.nodes.len(), "a setup a node");
        Ok(Self {
            path: path.to_owned(),
            file,
            nodes,
            actions,
        })
    }

    /// The workload entries that are faults (not a process's send or command).
    pub fn fault_entries(&self) -> Vec<&WorldWork> {
        self.file
            .workload
            .iter()
            .zip(&self.actions)
            .filter(|(_, action)| !matches!(action, WorldAction::Act(_)))
            .map(|(work, _)| work)
            .collect()
    }

    /// The index of node `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.file.nodes.iter().position(|node| node.name == name)
    }

    /// This scenario as `seed` runs it: the faults it draws become workload entries, in time
    /// order after the listed ones at the same time, so every fault is explicit (and
    /// printable, and shrinkable).
    ///
    /// # Errors
    /// Never for a validated scenario: drawn entries name only its nodes, within its time.
    pub fn for_seed(&self, seed: u64) -> Result<Self, ScenarioError> {
        let Some(faults) = &self.file.faults else {
            return Ok(self.clone());
        };
        let names: Vec<String> = self.file.nodes.iter().map(|n| n.name.clone()).collect();
        let mut file = self.file.clone();
        file.workload.extend(crate::world::draw::draw(
            faults,
            seed,
            &names,
            file.run_for_ms,
        ));
        file.workload.sort_by_key(|work| work.at_ms);
        // What is not drawn into entries stays: the beyond-reference chances.
        file.faults = faults
            .beyond_reference
            .map(|beyond| crate::format::world::WorldFaultSpec {
                beyond_reference: Some(beyond),
                ..Default::default()
            });
        Self::from_file(&self.path, file)
    }
}

/// Each node's setup as the one-node scenario it is, validated as one.
fn node_scenarios(path: &Path, file: &WorldFile) -> Result<Vec<Scenario>, ScenarioError> {
    if file.nodes.is_empty() || file.nodes.len() > NODES_MAX {
        return Err(ScenarioError {
            path: path.to_owned(),
            place: "nodes".into(),
            problem: format!("give 1 to {NODES_MAX} nodes, not {}", file.nodes.len()),
        });
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(file.nodes.len());
    for (i, node) in file.nodes.iter().enumerate() {
        let place = format!("nodes[{i}]");
        if !seen.insert(node.name.as_str()) {
            return Err(ScenarioError {
                path: path.to_owned(),
                place,
                problem: format!("a second node named `{}`", node.name),
            });
        }
        let one = ScenarioFile {
            version: VERSION,
            description: String::new(),
            node: node.name.clone(),
            processes: node.processes.clone(),
            workload: Vec::new(),
            run_for_ms: file.run_for_ms,
            generators: Vec::new(),
            network: Some(crate::node::network::NetworkSpec {
                latency_ms: [1, 10],
                peers: Vec::new(),
            }),
            faults: node.faults.clone(),
            quiesce_within_ms: None,
            storage: node.storage,
            sync_interval_ms: 0,
            package: None,
            packages: node.packages.clone(),
            tests: node.tests.clone(),
            initialize_first: node.initialize_first,
            vfs: node.vfs,
            expect: node.expect.clone(),
            trace_bodies: node.trace_bodies,
        };
        if node
            .faults
            .as_ref()
            .is_some_and(|f| f.drop.is_some() || f.duplicate.is_some())
        {
            return Err(ScenarioError {
                path: path.to_owned(),
                place: format!("{place}.faults"),
                problem: "drop and duplicate are faults of a one-node scenario's network; a \
                          world's network faults are its own `faults` (beyond_reference)"
                    .into(),
            });
        }
        let scenario = Scenario::from_file(path, one).map_err(|e| ScenarioError {
            path: path.to_owned(),
            place: format!("{place} ({}): {}", node.name, e.place),
            problem: e.problem,
        })?;
        out.push(scenario);
    }
    Ok(out)
}

type Invalid = (String, String);

fn node_index(file: &WorldFile, place: &str, name: &str) -> Result<usize, Invalid> {
    file.nodes
        .iter()
        .position(|node| node.name == name)
        .ok_or_else(|| {
            (
                place.to_owned(),
                format!("`{name}` is not a node of this world"),
            )
        })
}

fn check_ms(place: &str, value: u64) -> Result<(), Invalid> {
    if value > MS_MAX {
        return Err((
            place.to_owned(),
            format!("{value} ms is over the largest simulated time, {MS_MAX} ms"),
        ));
    }
    Ok(())
}

fn validate(file: &WorldFile) -> Result<Vec<WorldAction>, Invalid> {
    check_ms("run_for_ms", file.run_for_ms)?;
    if let Some(quiesce) = file.quiesce_within_ms {
        check_ms("quiesce_within_ms", quiesce)?;
    }
    let delays = std::iter::once(("network.delay_ms".to_owned(), file.network.delay_ms)).chain(
        file.network
            .links
            .iter()
            .enumerate()
            .map(|(i, link)| (format!("network.links[{i}].delay_ms"), link.delay_ms)),
    );
    for (place, delay) in delays {
        check_ms(&format!("{place}.min"), delay.min)?;
        check_ms(&format!("{place}.mean"), delay.mean)?;
    }
    for (i, link) in file.network.links.iter().enumerate() {
        let place = format!("network.links[{i}]");
        let a = node_index(file, &place, &link.between[0])?;
        let b = node_index(file, &place, &link.between[1])?;
        if a == b {
            return Err((place, "a link is between two different nodes".into()));
        }
    }
    if let Some(faults) = &file.faults
        && let Some(problem) = faults.problem()
    {
        return Err(("faults".into(), problem));
    }
    let crashing = file.faults.as_ref().and_then(|f| f.crash.as_ref());
    for name in crashing
        .and_then(|c| c.nodes.as_ref())
        .into_iter()
        .flatten()
    {
        node_index(file, "faults.crash.nodes", name)?;
    }
    let entries = u64::try_from(file.workload.len()).unwrap_or(u64::MAX);
    if entries > crate::node::scenario::WORKLOAD_LEN_MAX {
        return Err((
            "workload".into(),
            format!(
                "{entries} entries are over {}",
                crate::node::scenario::WORKLOAD_LEN_MAX
            ),
        ));
    }
    file.workload
        .iter()
        .enumerate()
        .map(|(i, work)| action(file, &format!("workload[{i}]"), work))
        .collect()
}

/// The one thing entry `work` does, checked.
fn action(file: &WorldFile, place: &str, work: &WorldWork) -> Result<WorldAction, Invalid> {
    if work.at_ms > file.run_for_ms {
        return Err((
            place.to_owned(),
            format!(
                "at_ms {} is after run_for_ms {}",
                work.at_ms, file.run_for_ms
            ),
        ));
    }
    let given = [
        work.from.is_some(),
        work.cut.is_some(),
        work.heal,
        work.clog.is_some() || work.clog_node.is_some(),
        work.reset.is_some(),
        work.crash.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err((
            place.to_owned(),
            "give exactly one of from (with node), cut, heal, clog or clog_node, reset and crash"
                .into(),
        ));
    }
    let two = |pair: &[String; 2]| -> Result<(usize, usize), Invalid> {
        let a = node_index(file, place, &pair[0])?;
        let b = node_index(file, place, &pair[1])?;
        if a == b {
            return Err((place.to_owned(), "name two different nodes".into()));
        }
        Ok((a, b))
    };
    if let Some(from) = &work.from {
        return act(file, place, work, from);
    }
    if let Some([a, b]) = &work.cut {
        return cut(file, place, a, b, work.one_way);
    }
    if work.heal {
        return Ok(WorldAction::Heal);
    }
    if work.clog.is_some() || work.clog_node.is_some() {
        let for_ms = work
            .for_ms
            .ok_or_else(|| (place.to_owned(), "a clog needs for_ms".into()))?;
        check_ms(&format!("{place}.for_ms"), for_ms)?;
        let nodes = match (&work.clog, &work.clog_node) {
            (Some(pair), None) => {
                let (a, b) = two(pair)?;
                vec![a, b]
            }
            (None, Some(node)) => vec![node_index(file, place, node)?],
            _ => return Err((place.to_owned(), "give one of clog and clog_node".into())),
        };
        return Ok(WorldAction::Clog { nodes, for_ms });
    }
    if let Some(pair) = &work.reset {
        let (a, b) = two(pair)?;
        return Ok(WorldAction::Reset(a, b));
    }
    let crash = work.crash.as_deref().unwrap_or_default();
    let node = node_index(file, place, crash)?;
    let downtime_ms = work
        .downtime_ms
        .ok_or_else(|| (place.to_owned(), "a crash needs downtime_ms".into()))?;
    check_ms(&format!("{place}.downtime_ms"), downtime_ms)?;
    Ok(WorldAction::Crash { node, downtime_ms })
}

fn act(
    file: &WorldFile,
    place: &str,
    work: &WorldWork,
    from: &str,
) -> Result<WorldAction, Invalid> {
    let name = work.node.as_deref().ok_or_else(|| {
        (
            place.to_owned(),
            "`from` needs the `node` it acts on".into(),
        )
    })?;
    let index = node_index(file, place, name)?;
    let driven = file.nodes[index]
        .processes
        .iter()
        .any(|p| p.id == from && p.driven);
    if !driven {
        return Err((
            place.to_owned(),
            format!("`{from}` is not a driven process of node `{name}`"),
        ));
    }
    match (&work.send, &work.command) {
        (Some(send), None) => {
            send.to
                .parse::<Address>()
                .map_err(|e| (place.to_owned(), format!("to `{}`: {e}", send.to)))?;
            check_seconds(
                &format!("{place}.send.expects_response"),
                send.expects_response,
            )?;
        }
        (None, Some(_)) => {
            check_seconds(&format!("{place}.expects_response"), work.expects_response)?;
        }
        _ => {
            return Err((
                place.to_owned(),
                "give exactly one of send and command".into(),
            ));
        }
    }
    from.parse::<ProcessId>()
        .map_err(|e| (place.to_owned(), format!("from `{from}`: {e}")))?;
    Ok(WorldAction::Act(index))
}

fn check_seconds(place: &str, value: Option<u64>) -> Result<(), Invalid> {
    match value {
        Some(s) if s > crate::node::scenario::SECONDS_MAX => Err((
            place.to_owned(),
            format!(
                "{s} s is over the largest timeout, {} s",
                crate::node::scenario::SECONDS_MAX
            ),
        )),
        _ => Ok(()),
    }
}

fn cut(
    file: &WorldFile,
    place: &str,
    a: &[String],
    b: &[String],
    one_way: bool,
) -> Result<WorldAction, Invalid> {
    let side = |names: &[String]| -> Result<Vec<usize>, Invalid> {
        let mut out: Vec<usize> = names
            .iter()
            .map(|name| node_index(file, place, name))
            .collect::<Result<_, _>>()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    };
    let (from, to) = (side(a)?, side(b)?);
    if from.is_empty() || to.is_empty() || from.iter().any(|n| to.contains(n)) {
        return Err((
            place.to_owned(),
            "a cut has two sides, each with a node, none on both".into(),
        ));
    }
    Ok(WorldAction::Cut { from, to, one_way })
}
