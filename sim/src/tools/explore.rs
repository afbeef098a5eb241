//! `sim explore`: many seeds of one scenario across cores. Every seed runs twice in this
//! process and the two traces must be identical; every tenth seed also runs a third time in a
//! fresh `sim` process (static state cannot leak between runs there). A failure or a
//! divergence is reported with the one-line command that reproduces it.

use crate::node::scenario::Scenario;
use crate::run::{self, Options};
use hyperkernel::TraceRecord;
use std::ops::Range;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The trace hash of its first run.
    pub hash: u64,
    /// Simulated nanoseconds its first run covered.
    pub simulated: u64,
    /// Why it failed (an invariant, a setup error), if it did.
    pub failure: Option<String>,
    /// How its runs differed, if they did.
    pub divergence: Option<String>,
    /// Nodes of a world run again alone from their inputs and found the same (W9).
    pub alone: u64,
}

/// How to explore.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Seeds to run, `start..end`.
    pub seeds: Range<u64>,
    /// Worker threads.
    pub jobs: usize,
    /// How each run is done.
    pub options: Options,
    /// Every how many seeds a run is repeated in a fresh process (0: never).
    pub fresh_every: u64,
}

/// The first event where two traces differ, with both versions and some context.
pub fn first_difference(a: &[TraceRecord], b: &[TraceRecord]) -> Option<String> {
    crate::tools::replay::diff_report(a, b, 2)
}

/// Failures grouped by their signature (`shrink::signature`: the text with numbers masked),
/// each with its seeds, in the order of their first seed. A divergence counts by its first
/// line.
pub fn distinct_failures(results: &[SeedResult]) -> Vec<(String, Vec<u64>)> {
    let mut groups: Vec<(String, Vec<u64>)> = Vec::new();
    for result in results {
        let Some(what) = result.failure.as_deref().or(result.divergence.as_deref()) else {
            continue;
        };
        let first_line = what.lines().next().unwrap_or_default();
        let signature = crate::tools::shrink::signature(first_line);
        match groups.iter_mut().find(|(s, _)| *s == signature) {
            Some((_, seeds)) => seeds.push(result.seed),
            None => groups.push((signature, vec![result.seed])),
        }
    }
    groups
}

/// Runs `scenario` with `seed` in a fresh `sim` process; returns its trace hash line.
fn fresh_hash(path: &Path, seed: u64, options: Options) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["run", &path.to_string_lossy(), "--seed", &seed.to_string()]);
    if options.planted_bug {
        command.arg("--planted-bug");
    }
    if let Some(step) = options.planted_panic {
        command.args(["--planted-panic", &step.to_string()]);
    }
    let output = command.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace hash").map(|h| h.trim().to_owned()))
        .ok_or_else(|| "the fresh process printed no trace hash".into())
}

/// One seed: two runs here, a third in a fresh process when sampled.
pub fn explore_seed(scenario: &Scenario, seed: u64, plan: &Exploration) -> SeedResult {
    let first = run::run(scenario, seed, plan.options);
    let second = run::run(scenario, seed, plan.options);
    let (first, second) = match (first, second) {
        (Ok(first), Ok(second)) => (first, second),
        (Err(error), _) | (_, Err(error)) => {
            return SeedResult {
                seed,
                hash: 0,
                simulated: 0,
                failure: Some(error.to_string()),
                divergence: None,
                alone: 0,
            };
        }
    };
    let hash = first.kernel.trace().hash();
    let mut divergence = first_difference(
        first.kernel.trace().records(),
        second.kernel.trace().records(),
    );
    let sampled = plan.fresh_every > 0 && seed.is_multiple_of(plan.fresh_every);
    if divergence.is_none() && sampled {
        divergence = fresh_divergence(&scenario.path, seed, plan.options, hash);
    }
    SeedResult {
        seed,
        hash,
        simulated: first.kernel.now().0,
        failure: first.error.map(|e| e.to_string()),
        divergence,
        alone: 0,
    }
}

/// How a run of `path` with `seed` in a fresh `sim` process differs from `hash`, if it does.
pub fn fresh_divergence(path: &Path, seed: u64, options: Options, hash: u64) -> Option<String> {
    match fresh_hash(path, seed, options) {
        Ok(fresh) if fresh == format!("{hash:016x}") => None,
        Ok(fresh) => Some(format!(
            "a fresh process got trace hash {fresh}, this one {hash:016x}"
        )),
        Err(error) => Some(format!("the fresh-process rerun failed: {error}")),
    }
}

/// Runs every seed of `plan` on `plan.jobs` threads; `progress(done, failed)` is called after
/// each seed. Results come back in seed order.
pub fn explore(
    scenario: &Scenario,
    plan: &Exploration,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<SeedResult> {
    explore_with(plan, progress, &|seed| explore_seed(scenario, seed, plan))
}

/// [`explore`] of any kind of scenario: `one(seed)` explores one seed.
pub fn explore_with(
    plan: &Exploration,
    progress: &(dyn Fn(u64, u64) + Sync),
    one: &(dyn Fn(u64) -> SeedResult + Sync),
) -> Vec<SeedResult> {
    // Seeds are taken by index, so a range that ends at u64::MAX never wraps around.
    let total = plan.seeds.end.saturating_sub(plan.seeds.start);
    let next = AtomicU64::new(0);
    let results = Mutex::new(Vec::new());
    let failed = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| {
                while let Ok(index) = next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| {
                    (i < total).then_some(i + 1)
                }) {
                    let seed = plan.seeds.start + index;
                    debug_assert!(plan.seeds.contains(&seed), "seed {seed} is in the range");
                    // A panic (a kernel bug) fails its seed; the other seeds go on.
                    let result =
                        crate::run::catch(|| one(seed)).unwrap_or_else(|message| SeedResult {
                            seed,
                            hash: 0,
                            simulated: 0,
                            failure: Some(format!("panic: {message}")),
                            divergence: None,
                            alone: 0,
                        });
                    if result.failure.is_some() || result.divergence.is_some() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    let done = {
                        let mut results = results
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        results.push(result);
                        results.len() as u64
                    };
                    progress(done, failed.load(Ordering::Relaxed));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|r| r.seed);
    results
}
