//! `sim shrink`: turns a failing seed of a scenario into a smaller scenario that fails the
//! same way with the same seed.
//!
//! "The same way" is the failure's signature: its text with every number replaced by `#`, so
//! the same invariant about the same processes (message ids, steps and event numbers may
//! change). Reductions are tried greedily until none applies: remove workload entries (halves,
//! then one at a time), processes (with the capabilities and entries that name them),
//! capabilities, faults, the liveness phase; make numbers in message bodies smaller (a round
//! count) and delays shorter (the delay fault's longest hold, the network's latency); then
//! move workload times earlier and shorten `run_for_ms`. Removing a fault leaves the other faults' per-seed draws unchanged
//! (`faults.rs`), so a reduction does not reshuffle what it keeps.

use crate::node::scenario::{CapabilitySpec, Scenario, ScenarioFile};
use crate::run::{Options, run};
use std::path::Path;

/// Removes runs of the items of `file` (`len` of them; `drain` takes a range out) while
/// `fails` says a smaller file still fails: halves first, then quarters, down to one at a
/// time (delta debugging's greedy pass). Returns whether anything went.
pub fn drop_runs<F: Clone>(
    file: &mut F,
    len: impl Fn(&F) -> usize,
    drain: impl Fn(&mut F, std::ops::Range<usize>),
    mut fails: impl FnMut(&F) -> bool,
) -> bool {
    let before = len(file);
    let mut changed = false;
    let mut chunk = before.div_ceil(2).max(1);
    loop {
        let mut start = 0;
        while start < len(file) {
            let mut candidate = file.clone();
            let end = (start + chunk).min(len(&candidate));
            drain(&mut candidate, start..end);
            if fails(&candidate) {
                *file = candidate;
                changed = true;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 {
            assert!(len(file) <= before, "dropping never adds");
            return changed;
        }
        chunk = chunk.div_ceil(2);
    }
}

/// A failure's signature: its text with every run of digits replaced by `#`.
pub fn signature(failure: &str) -> String {
    let mut out = String::with_capacity(failure.len());
    let mut in_number = false;
    for c in failure.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// How big a scenario is, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// Processes declared.
    pub processes: usize,
    /// Workload entries.
    pub workload: usize,
    /// Capabilities declared.
    pub capabilities: usize,
    /// Kinds of fault listed.
    pub faults: usize,
    /// `run_for_ms`.
    pub run_for_ms: u64,
    /// Events in the failing run's trace.
    pub events: u64,
}

impl Size {
    fn of(file: &ScenarioFile, events: u64) -> Self {
        let faults = file.faults.as_ref().map_or(0, |f| {
            usize::from(f.delay.is_some())
                + usize::from(f.trap.is_some())
                + usize::from(f.crash.is_some())
                + usize::from(f.timer_skew.is_some())
                + usize::from(f.drop.is_some())
                + usize::from(f.duplicate.is_some())
        });
        Self {
            processes: file.processes.len(),
            workload: file.workload.len(),
            capabilities: file.processes.iter().map(|p| p.capabilities.len()).sum(),
            faults,
            run_for_ms: file.run_for_ms,
            events,
        }
    }
}

/// What shrinking produced.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smaller scenario (wasm paths absolute, so it runs from anywhere).
    pub file: ScenarioFile,
    /// The failure's signature.
    pub signature: String,
    /// The failure of the smaller scenario, in full.
    pub failure: String,
    /// Sizes before and after.
    pub before: Size,
    /// Size after.
    pub after: Size,
    /// Runs tried.
    pub runs: u64,
}

struct Shrinker<'a> {
    path: &'a Path,
    seed: u64,
    options: Options,
    signature: String,
    runs: u64,
    runs_max: u64,
    events: u64,
    failure: String,
}

impl Shrinker<'_> {
    /// Whether `file` still fails the same way (a run that cannot be set up does not).
    fn fails(&mut self, file: &ScenarioFile) -> bool {
        if self.runs >= self.runs_max {
            return false;
        }
        self.runs += 1;
        let Ok(scenario) = Scenario::from_file(self.path, file.clone()) else {
            return false;
        };
        let Ok(outcome) = run(&scenario, self.seed, self.options) else {
            return false;
        };
        let Some(error) = outcome.error else {
            return false;
        };
        let text = error.to_string();
        if signature(&text) != self.signature {
            return false;
        }
        self.events = outcome.kernel.trace().len();
        self.failure = text;
        true
    }

    /// Tries `candidate`; keeps it in `file` if it still fails.
    fn try_keep(&mut self, file: &mut ScenarioFile, candidate: ScenarioFile) -> bool {
        if self.fails(&candidate) {
            *file = candidate;
            return true;
        }
        false
    }

    fn workload(&mut self, file: &mut ScenarioFile) -> bool {
        drop_runs(
            file,
            |f: &ScenarioFile| f.workload.len(),
            |f, range| drop(f.workload.drain(range)),
            |candidate| self.fails(candidate),
        )
    }

    fn processes(&mut self, file: &mut ScenarioFile) -> bool {
        let mut changed = false;
        let mut i = 0;
        while i < file.processes.len() {
            let id = file.processes[i].id.clone();
            let mut candidate = file.clone();
            candidate.processes.remove(i);
            candidate.workload.retain(|w| w.from != id);
            for process in &mut candidate.processes {
                process
                    .capabilities
                    .retain(|c| !matches!(c, CapabilitySpec::Messaging(target) if *target == id));
            }
            if self.try_keep(file, candidate) {
                changed = true;
            } else {
                i += 1;
            }
        }
        changed
    }

    fn capabilities(&mut self, file: &mut ScenarioFile) -> bool {
        let mut changed = false;
        for p in 0..file.processes.len() {
            let mut c = 0;
            while c < file.processes[p].capabilities.len() {
                let mut candidate = file.clone();
                candidate.processes[p].capabilities.remove(c);
                if self.try_keep(file, candidate) {
                    changed = true;
                } else {
                    c += 1;
                }
            }
        }
        changed
    }

    fn faults(&mut self, file: &mut ScenarioFile) -> bool {
        let Some(faults) = file.faults.clone() else {
            return false;
        };
        let mut changed = false;
        let mut without = file.clone();
        without.faults = None;
        if self.try_keep(file, without) {
            return true;
        }
        let removals: [fn(&mut crate::node::faults::FaultSpec); 6] = [
            |f| f.delay = None,
            |f| f.trap = None,
            |f| f.crash = None,
            |f| f.timer_skew = None,
            |f| f.drop = None,
            |f| f.duplicate = None,
        ];
        let mut spec = faults;
        for remove in removals {
            let mut smaller = spec.clone();
            remove(&mut smaller);
            if smaller == spec {
                continue;
            }
            let mut candidate = file.clone();
            candidate.faults = Some(smaller.clone());
            if self.try_keep(file, candidate) {
                spec = smaller;
                changed = true;
            }
        }
        changed
    }

    /// Smaller numbers in message bodies (a round count, a size): 1, half, one less.
    fn bodies(&mut self, file: &mut ScenarioFile) -> bool {
        let mut changed = false;
        for i in 0..file.workload.len() {
            let Some(body) = file.workload[i].send.as_ref().map(|s| s.body.clone()) else {
                continue;
            };
            let mut words: Vec<String> = body.split(' ').map(str::to_owned).collect();
            for w in 0..words.len() {
                let Ok(n) = words[w].parse::<u64>() else {
                    continue;
                };
                for smaller in [1, n / 2, n.saturating_sub(1)] {
                    if smaller == 0 || smaller >= n {
                        continue;
                    }
                    let mut candidate = file.clone();
                    let mut tried = words.clone();
                    tried[w] = smaller.to_string();
                    if let Some(send) = candidate.workload[i].send.as_mut() {
                        send.body = tried.join(" ");
                    }
                    if self.try_keep(file, candidate) {
                        words[w] = smaller.to_string();
                        changed = true;
                        break;
                    }
                }
            }
        }
        changed
    }

    /// Shorter delays: the longest hold of the delay fault and the network's latency.
    fn delays(&mut self, file: &mut ScenarioFile) -> bool {
        let mut changed = false;
        while let Some(delay) = file.faults.as_ref().and_then(|f| f.delay) {
            if delay.max_ms <= 1 {
                break;
            }
            let mut candidate = file.clone();
            if let Some(d) = candidate.faults.as_mut().and_then(|f| f.delay.as_mut()) {
                d.max_ms /= 2;
            }
            if !self.try_keep(file, candidate) {
                break;
            }
            changed = true;
        }
        while let Some([min, max]) = file.network.as_ref().map(|n| n.latency_ms) {
            if max <= min {
                break;
            }
            let mut candidate = file.clone();
            if let Some(n) = candidate.network.as_mut() {
                n.latency_ms = [min, min + (max - min) / 2];
            }
            if !self.try_keep(file, candidate) {
                break;
            }
            changed = true;
        }
        changed
    }

    fn liveness(&mut self, file: &mut ScenarioFile) -> bool {
        if file.quiesce_within_ms.is_none() {
            return false;
        }
        let mut candidate = file.clone();
        candidate.quiesce_within_ms = None;
        self.try_keep(file, candidate)
    }

    fn times(&mut self, file: &mut ScenarioFile) -> bool {
        let mut changed = false;
        for i in 0..file.workload.len() {
            for at in [0, file.workload[i].at_ms / 2] {
                if at >= file.workload[i].at_ms {
                    continue;
                }
                let mut candidate = file.clone();
                candidate.workload[i].at_ms = at;
                if self.try_keep(file, candidate) {
                    changed = true;
                    break;
                }
            }
        }
        loop {
            let last = file.workload.iter().map(|w| w.at_ms).max().unwrap_or(0);
            let until = file.faults.as_ref().and_then(|f| f.until_ms).unwrap_or(0);
            let shorter = (file.run_for_ms / 2).max(last).max(until);
            if shorter >= file.run_for_ms {
                return changed;
            }
            let mut candidate = file.clone();
            candidate.run_for_ms = shorter;
            if !self.try_keep(file, candidate) {
                return changed;
            }
            changed = true;
        }
    }
}

/// Shrinks the failure of `scenario` with `seed`, trying at most `runs_max` runs.
///
/// # Errors
/// The seed does not fail, or the scenario cannot be set up.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    options: Options,
    runs_max: u64,
) -> Result<Shrunk, String> {
    let outcome = run(scenario, seed, options).map_err(|e| e.to_string())?;
    let Some(error) = outcome.error else {
        return Err(format!(
            "seed {seed} does not fail on {}; nothing to shrink",
            scenario.path.display()
        ));
    };
    let failure = error.to_string();
    let events = outcome.kernel.trace().len();
    let mut shrinker = Shrinker {
        path: &scenario.path,
        seed,
        options,
        signature: signature(&failure),
        runs: 0,
        runs_max,
        events,
        failure,
    };
    // Generated entries become explicit, so they can be removed one by one.
    let mut file = scenario.for_seed(seed).file;
    let before = Size::of(&file, events);
    loop {
        let mut changed = shrinker.workload(&mut file);
        changed |= shrinker.processes(&mut file);
        changed |= shrinker.capabilities(&mut file);
        changed |= shrinker.faults(&mut file);
        changed |= shrinker.liveness(&mut file);
        changed |= shrinker.delays(&mut file);
        changed |= shrinker.bodies(&mut file);
        changed |= shrinker.times(&mut file);
        if !changed || shrinker.runs >= runs_max {
            break;
        }
    }
    for process in &mut file.processes {
        if let Some(wasm) = &process.wasm {
            let absolute = scenario.resolve(wasm);
            process.wasm = Some(std::fs::canonicalize(&absolute).unwrap_or(absolute));
        }
    }
    file.description = format!(
        "Shrunk by `sim shrink` from {} with seed {seed}: {}",
        scenario.path.display(),
        shrinker.signature
    );
    Ok(Shrunk {
        after: Size::of(&file, shrinker.events),
        file,
        signature: shrinker.signature,
        failure: shrinker.failure,
        before,
        runs: shrinker.runs,
    })
}

#[cfg(test)]
mod tests {
    use super::signature;

    #[test]
    fn a_signature_keeps_the_words_and_forgets_the_numbers() {
        let a = "broken after step 12: message 9 from a@b:c:d.os (event 250)";
        let b = "broken after step 3: message 18446744073709551615 from a@b:c:d.os (event 7)";
        assert_eq!(
            signature(a),
            "broken after step #: message # from a@b:c:d.os (event #)"
        );
        assert_eq!(signature(a), signature(b));
        assert_ne!(
            signature(a),
            signature("broken after step 1: message 9 from x@b:c:d.os")
        );
    }
}
