//! `sim shrink` of a world: a failing seed's world made smaller while it fails the same way
//! (the failure's text with numbers masked, `shrink::signature`). The seed's drawn faults are
//! explicit entries first (`WorldScenario::for_seed`), so the fault schedule shrinks like the
//! rest: workload entries go (halves, then one at a time), nodes other than the first go with
//! every entry naming them (each node keeps its own seed, drawn from its name), then crashes
//! get shorter downtimes, clogs shorter holds, the network shorter delays and the run an
//! earlier end. Greedy: a local minimum. `shrink_faults` shrinks the fault schedule alone.

use super::drive::run_world;
use super::spec::{WorldFile, WorldScenario, WorldWork};
use crate::tools::shrink::signature;
use std::path::Path;

/// A shrunk world.
pub struct WorldShrunk {
    /// The smaller world (faults as entries).
    pub file: WorldFile,
    /// The failure's signature.
    pub signature: String,
    /// The failure as the smaller world shows it.
    pub failure: String,
    /// Runs tried.
    pub runs: u64,
    /// Nodes and workload entries before.
    pub before: (usize, usize),
    /// Nodes and workload entries after.
    pub after: (usize, usize),
}

struct Search<'a> {
    path: &'a Path,
    /// Only the fault schedule shrinks (its entries, downtimes, holds and times): the nodes,
    /// the network's delays and the run's length stay.
    faults_only: bool,
    seed: u64,
    signature: String,
    runs: u64,
    runs_max: u64,
    failure: String,
}

impl Search<'_> {
    /// Whether `file` is valid and fails the same way (counted against the budget).
    fn fails(&mut self, file: &WorldFile) -> bool {
        if self.runs >= self.runs_max {
            return false;
        }
        let Ok(scenario) = WorldScenario::from_file(self.path, file.clone()) else {
            return false;
        };
        self.runs += 1;
        let failure = match run_world(&scenario, self.seed) {
            Ok(run) => run.error.map(|e| e.to_string()),
            Err(error) => Some(error.to_string()),
        };
        match failure {
            Some(text) if signature(&text) == self.signature => {
                self.failure = text;
                true
            }
            _ => false,
        }
    }

    /// Removes workload entries: halves, then quarters… then one at a time.
    fn entries(&mut self, file: &mut WorldFile) -> bool {
        crate::tools::shrink::drop_runs(
            file,
            |f: &WorldFile| f.workload.len(),
            |f, range| drop(f.workload.drain(range)),
            |candidate| self.fails(candidate),
        )
    }

    /// Removes nodes other than the first, with the entries that name them.
    fn nodes(&mut self, file: &mut WorldFile) -> bool {
        let mut progress = false;
        let mut index = file.nodes.len();
        while index > 1 {
            index -= 1;
            let candidate = without_node(file, index);
            if self.fails(&candidate) {
                *file = candidate;
                progress = true;
            }
        }
        progress
    }

    /// Halves numbers that stretch the run: downtimes, clogs, delays, `run_for_ms`.
    fn shorter(&mut self, file: &mut WorldFile) -> bool {
        let mut progress = false;
        for i in 0..file.workload.len() {
            for field in [Field::Downtime, Field::ClogFor, Field::At] {
                while let Some(candidate) = halved(file, i, field) {
                    if !self.fails(&candidate) {
                        break;
                    }
                    *file = candidate;
                    progress = true;
                }
            }
        }
        if self.faults_only {
            return progress;
        }
        loop {
            let mut candidate = file.clone();
            let delay = &mut candidate.network.delay_ms;
            if delay.min == 0 && delay.mean == 0 {
                break;
            }
            (delay.min, delay.mean) = (delay.min / 2, delay.mean / 2);
            if !self.fails(&candidate) {
                break;
            }
            *file = candidate;
            progress = true;
        }
        let last = file.workload.iter().map(|w| w.at_ms).max().unwrap_or(0);
        while file.run_for_ms > last {
            let mut candidate = file.clone();
            candidate.run_for_ms = last + (file.run_for_ms - last) / 2;
            if !self.fails(&candidate) {
                break;
            }
            *file = candidate;
            progress = true;
        }
        progress
    }
}

#[derive(Clone, Copy)]
enum Field {
    Downtime,
    ClogFor,
    At,
}

/// `file` with field `field` of entry `i` halved, if it can be.
fn halved(file: &WorldFile, i: usize, field: Field) -> Option<WorldFile> {
    let mut candidate = file.clone();
    let work = &mut candidate.workload[i];
    let slot = match field {
        Field::Downtime => work.downtime_ms.as_mut()?,
        Field::ClogFor => work.for_ms.as_mut()?,
        Field::At => &mut work.at_ms,
    };
    if *slot == 0 {
        return None;
    }
    *slot /= 2;
    Some(candidate)
}

/// `file` without node `index` and every entry that names it (a cut keeps its other nodes).
fn without_node(file: &WorldFile, index: usize) -> WorldFile {
    let mut candidate = file.clone();
    let name = candidate.nodes.remove(index).name;
    let names = |work: &WorldWork| -> bool {
        work.node.as_deref() == Some(name.as_str())
            || work.crash.as_deref() == Some(name.as_str())
            || work.clog_node.as_deref() == Some(name.as_str())
            || work.clog.as_ref().is_some_and(|p| p.contains(&name))
            || work.reset.as_ref().is_some_and(|p| p.contains(&name))
    };
    candidate.workload.retain(|work| !names(work));
    for work in &mut candidate.workload {
        if let Some(sides) = &mut work.cut {
            for side in sides.iter_mut() {
                side.retain(|n| *n != name);
            }
        }
    }
    candidate.workload.retain(|work| {
        work.cut
            .as_ref()
            .is_none_or(|[a, b]| !a.is_empty() && !b.is_empty())
    });
    candidate
        .network
        .links
        .retain(|link| !link.between.contains(&name));
    debug_assert!(
        candidate.nodes.iter().all(|n| n.name != name),
        "the node is gone"
    );
    candidate
}

/// Shrinks failing `seed` of `scenario` within `runs_max` runs.
///
/// # Errors
/// The seed does not fail, or its world does not set up.
pub fn shrink_world(
    scenario: &WorldScenario,
    seed: u64,
    runs_max: u64,
) -> Result<WorldShrunk, String> {
    shrink(scenario, seed, runs_max, false)
}

/// Shrinks the fault schedule of failing `seed` of `scenario` within `runs_max` runs: its
/// fault entries, their downtimes and holds, and when they happen, while the world (its
/// nodes, the network's delays, the run's length) stays as it is; `sim test` prints it. A
/// kit test group's nodes are named by its `Run`, so removing one would fail otherwise.
///
/// # Errors
/// As [`shrink_world`].
pub fn shrink_faults(
    scenario: &WorldScenario,
    seed: u64,
    runs_max: u64,
) -> Result<WorldShrunk, String> {
    shrink(scenario, seed, runs_max, true)
}

fn shrink(
    scenario: &WorldScenario,
    seed: u64,
    runs_max: u64,
    faults_only: bool,
) -> Result<WorldShrunk, String> {
    let explicit = scenario.for_seed(seed).map_err(|e| e.to_string())?;
    let first = run_world(&explicit, seed).map_err(|e| e.to_string())?;
    let Some(error) = first.error else {
        return Err(format!("seed {seed} does not fail; nothing to shrink"));
    };
    let failure = error.to_string();
    let mut search = Search {
        path: &scenario.path,
        faults_only,
        seed,
        signature: signature(&failure),
        runs: 0,
        runs_max,
        failure,
    };
    let mut file = explicit.file.clone();
    let before = (file.nodes.len(), file.workload.len());
    loop {
        let entries = search.entries(&mut file);
        let nodes = !faults_only && search.nodes(&mut file);
        let shorter = search.shorter(&mut file);
        if !(entries || nodes || shorter) || search.runs >= search.runs_max {
            break;
        }
    }
    assert!(
        file.nodes.len() <= before.0 && file.workload.len() <= before.1,
        "shrinking never grows"
    );
    assert!(
        !faults_only
            || (file.nodes.len() == before.0 && file.run_for_ms == explicit.file.run_for_ms),
        "a fault schedule shrinks alone"
    );
    Ok(WorldShrunk {
        after: (file.nodes.len(), file.workload.len()),
        file,
        signature: search.signature,
        failure: search.failure,
        runs: search.runs,
        before,
    })
}
