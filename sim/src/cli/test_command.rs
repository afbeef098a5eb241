//! `sim test TESTS.toml` and `sim build PACKAGE…` (module docs of `hyperkernel_sim::tools::kit`).

use crate::{progress_line, reproduce, write_atomically};
use hyperkernel_sim::format::world::WorldFaultSpec;
use hyperkernel_sim::node::{apps, faults::FaultSpec, scenario::Scenario};
use hyperkernel_sim::run;
use hyperkernel_sim::tools::explore::{Exploration, SeedResult, explore, explore_with};
use hyperkernel_sim::tools::kit;
use hyperkernel_sim::tools::replay::{Header, TRACE_FORMAT, trace_text};
use hyperkernel_sim::world::drive::{explore_seed, run_world};
use hyperkernel_sim::world::shrink::shrink_faults;
use hyperkernel_sim::world::spec::{WorldScenario, WorldWork};
use hyperkernel_sim::world::trace::world_trace_text;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How `sim test` runs.
pub(crate) struct TestRun {
    /// tests.toml.
    pub(crate) tests: PathBuf,
    /// Seeds, `A..B`.
    pub(crate) seeds: std::ops::Range<u64>,
    /// A fault plan (a scenario's `faults` object, as JSON).
    pub(crate) faults: Option<PathBuf>,
    /// Worker threads.
    pub(crate) jobs: usize,
    /// Where the generated scenarios and traces go.
    pub(crate) out: Option<PathBuf>,
    /// Run the packages as built (no kit-style build first).
    pub(crate) no_build: bool,
}

/// `sim test` and `sim build`: whether a test failed on some seed.
pub(crate) fn dispatch(command: crate::Command) -> anyhow::Result<bool> {
    match command {
        crate::Command::Test {
            tests,
            seed,
            seeds,
            faults,
            jobs,
            out,
            no_build,
        } => {
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
            let seeds = seed.map_or(seeds, |s| s..s.saturating_add(1));
            test(&TestRun {
                tests,
                seeds,
                faults,
                jobs,
                out,
                no_build,
            })
        }
        crate::Command::Build { packages, features } => {
            build(&packages, &features)?;
            Ok(false)
        }
        _ => unreachable!("only test and build come here"),
    }
}

/// `sim test`: whether a test failed on some seed.
pub(crate) fn test(how: &TestRun) -> anyhow::Result<bool> {
    let file = kit::read_tests(&how.tests).map_err(anyhow::Error::msg)?;
    for warning in kit::naming_warnings(&how.tests, &file) {
        eprintln!("warning: {warning}");
    }
    let (faults, network) = match &how.faults {
        Some(path) => read_faults(path)?,
        None => (None, None),
    };
    build_packages(how, &file)?;
    let base = how.tests.parent().unwrap_or(Path::new("."));
    let out_dir = how
        .out
        .clone()
        .unwrap_or_else(|| base.join("target").join("sim-test"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out_dir.display()))?;
    let mut failed = false;
    for index in 0..file.tests.len() {
        let world = kit::world_of(&how.tests, &file, index, (faults.clone(), network.clone()))
            .map_err(anyhow::Error::msg)?;
        if let Some(world) = world {
            let path = out_dir.join(format!("tests-{index}.json"));
            write_atomically(&path, &(serde_json::to_string_pretty(&world)? + "\n"))?;
            let scenario = WorldScenario::load(&path)?;
            failed |= run_world_group(how, &scenario, &out_dir, index)?;
            continue;
        }
        let generated = kit::scenario_of(&how.tests, &file, index, faults.clone())
            .map_err(anyhow::Error::msg)?;
        let path = out_dir.join(format!("tests-{index}.json"));
        write_atomically(&path, &(serde_json::to_string_pretty(&generated)? + "\n"))?;
        let scenario = Scenario::load(&path)?;
        let loaded = scenario.apps().map_err(anyhow::Error::msg)?;
        failed |= run_group(how, &scenario, &loaded, &out_dir, index)?;
    }
    Ok(failed)
}

#[expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "seeds per wall second is a figure about the harness, outside any simulation"
)]
fn run_group(
    how: &TestRun,
    scenario: &Scenario,
    loaded: &apps::Loaded,
    out_dir: &Path,
    index: usize,
) -> anyhow::Result<bool> {
    let plan = plan_of(how);
    let total = how.seeds.end - how.seeds.start;
    let started = std::time::Instant::now();
    let results = explore(scenario, &plan, &progress_line(total));
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "tests[{index}]    {} on {}, seeds {}..{} (each run twice), {} s simulated per test",
        how.tests.display(),
        scenario.file.node,
        how.seeds.start,
        how.seeds.end,
        loaded.timeout_secs
    )?;
    let explain = report_tests(&mut out, loaded, &results, total)?;
    seeds_per_second(&mut out, results.len(), seconds)?;
    // Each distinct failure: the first seed it failed, its command and its trace.
    for seed in &explain {
        let trace = out_dir.join(format!("tests-{index}.seed-{seed}.trace.jsonl"));
        let until = write_trace(scenario, *seed, &trace)?;
        seed_lines(&mut out, *seed, &scenario.path, &trace, until)?;
    }
    Ok(!explain.is_empty())
}

/// How `sim test` explores a group: its seeds and jobs, every tenth seed also in a fresh
/// process.
fn plan_of(how: &TestRun) -> Exploration {
    Exploration {
        seeds: how.seeds.clone(),
        jobs: how.jobs,
        options: run::Options::default(),
        fresh_every: 10,
    }
}

/// The figure after the verdicts.
fn seeds_per_second(out: &mut dyn Write, seeds: usize, seconds: f64) -> std::io::Result<()> {
    writeln!(out, "seeds/s     {:.1}", seeds as f64 / seconds.max(1e-9))
}

/// A failing seed's lines: the command that reproduces it, its trace, and the replay that
/// stops at line `until` (the tester's report) when known.
fn seed_lines(
    out: &mut dyn Write,
    seed: u64,
    scenario: &Path,
    trace: &Path,
    until: Option<usize>,
) -> std::io::Result<()> {
    writeln!(out, "seed {seed}")?;
    let command = reproduce(scenario, seed, run::Options::default());
    writeln!(out, "reproduce   {command}")?;
    writeln!(out, "trace       {}", trace.display())?;
    let until = until.map_or(String::new(), |n| format!(" --until {n}"));
    writeln!(out, "replay      sim replay {}{until}", trace.display())
}

/// The network fault schedule that made `seed` fail, shrunk while it fails the same way,
/// written to `path` (a world file that `sim run --seed` reproduces) and printed.
fn schedule(
    out: &mut dyn Write,
    scenario: &WorldScenario,
    seed: u64,
    path: &Path,
) -> anyhow::Result<()> {
    let shrunk = match shrink_faults(scenario, seed, SHRINK_RUNS_MAX) {
        Ok(shrunk) => shrunk,
        Err(why) => {
            writeln!(out, "schedule    not shrunk: {why}")?;
            return Ok(());
        }
    };
    write_atomically(path, &(serde_json::to_string_pretty(&shrunk.file)? + "\n"))?;
    let faults: Vec<&WorldWork> = shrunk
        .file
        .workload
        .iter()
        .filter(|w| w.from.is_none())
        .collect();
    writeln!(
        out,
        "schedule    {} fault entries after shrinking ({} runs): {} (sim run {} --seed {seed})",
        faults.len(),
        shrunk.runs,
        path.display(),
        path.display()
    )?;
    for work in faults {
        writeln!(out, "  {}", serde_json::to_string(work)?)?;
    }
    Ok(())
}

/// Most runs a failing seed's fault schedule is shrunk with.
const SHRINK_RUNS_MAX: u64 = 300;

/// Before the runs, as `kit run-tests` does: builds every group's setup and test packages
/// (release, with the group's features where a crate declares them); with `--no-build`, says
/// which modules are older than their sources instead.
fn build_packages(how: &TestRun, file: &kit::TestsFile) -> anyhow::Result<()> {
    for index in 0..file.tests.len() {
        let packages = kit::group_packages(&how.tests, file, index).map_err(anyhow::Error::msg)?;
        for package in &packages {
            if how.no_build {
                for stale in kit::stale(package) {
                    eprintln!("warning: {stale}");
                }
                continue;
            }
            let features = &file.tests[index].features;
            let written = kit::build_for_tests(package, features).map_err(anyhow::Error::msg)?;
            eprintln!(
                "built       {} ({} modules)",
                package.display(),
                written.len()
            );
        }
    }
    Ok(())
}

/// A `--faults` file: a node's faults (a scenario's `faults`: delays, traps, crashes, skew,
/// disk, reboots; inside every node), or a world's network faults (a world's `faults`:
/// partitions, clogs, resets, node crashes; a group of several nodes only).
fn read_faults(path: &Path) -> anyhow::Result<(Option<FaultSpec>, Option<WorldFaultSpec>)> {
    let text = hyperkernel_sim::files::read_text(path, 1 << 20)?;
    let node_error = match serde_json::from_str::<FaultSpec>(&text) {
        Ok(node) => return Ok((Some(node), None)),
        Err(error) => error,
    };
    match serde_json::from_str::<WorldFaultSpec>(&text) {
        Ok(world) => {
            if let Some(problem) = world.problem() {
                anyhow::bail!("{}: {problem}", path.display());
            }
            Ok((None, Some(world)))
        }
        Err(world_error) => anyhow::bail!(
            "{}: neither a node's faults ({}:{}: {node_error}) nor a world's network faults \
             ({}:{}: {world_error})",
            path.display(),
            node_error.line(),
            node_error.column(),
            world_error.line(),
            world_error.column()
        ),
    }
}

/// A group of several nodes, run as a world over the seeds: each test's verdict, and for
/// each distinct failure its reproduce line, trace and replay.
#[expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "seeds per wall second is a figure about the harness, outside any simulation"
)]
fn run_world_group(
    how: &TestRun,
    scenario: &WorldScenario,
    out_dir: &Path,
    index: usize,
) -> anyhow::Result<bool> {
    let loaded = scenario.nodes[0].apps().map_err(anyhow::Error::msg)?;
    let plan = plan_of(how);
    let total = how.seeds.end - how.seeds.start;
    let started = std::time::Instant::now();
    let results = explore_with(&plan, &progress_line(total), &|seed| {
        explore_seed(scenario, seed, &plan)
    });
    let seconds = started.elapsed().as_secs_f64();
    let names: Vec<&str> = scenario
        .file
        .nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "tests[{index}]    {} on {} (a world; the tests on {}), seeds {}..{} (each run twice), \
         {} s simulated per test",
        how.tests.display(),
        names.join(", "),
        names[0],
        how.seeds.start,
        how.seeds.end,
        loaded.timeout_secs
    )?;
    let explain = report_tests(&mut out, &loaded, &results, total)?;
    seeds_per_second(&mut out, results.len(), seconds)?;
    for seed in &explain {
        let trace = out_dir.join(format!("tests-{index}.seed-{seed}.trace.jsonl"));
        let run = run_world(scenario, *seed).map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = world_trace_text(&scenario.path, *seed, &run.world);
        write_atomically(&trace, &text)?;
        // The world line where the tester reported the first failure.
        let until = text
            .lines()
            .skip(1)
            .position(|l| l.contains("\"tester: FAIL "));
        seed_lines(&mut out, *seed, &scenario.path, &trace, until)?;
        if scenario.file.faults.is_some() {
            let shrunk = out_dir.join(format!("tests-{index}.seed-{seed}.shrunk.json"));
            schedule(&mut out, scenario, *seed, &shrunk)?;
        }
    }
    Ok(!explain.is_empty())
}

/// What one seed's run showed of one test.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Passed,
    Failed(String),
    /// It never ran to its end: setup failed, or an earlier test never finished.
    NotRun(String),
}

/// What `failure` (a seed's failure, `None`: all met) says of test `index`, named `name`: a
/// test passes in a seed only when the seed shows it ran (no failure; or other tests failed
/// and the tests finished, or finished past it).
fn seen_in(index: usize, name: &str, failure: Option<&str>) -> Seen {
    let Some(failure) = failure else {
        return Seen::Passed;
    };
    let marker = format!("test {name} failed: ");
    if let Some(rest) = failure.split(&marker).nth(1) {
        return Seen::Failed(rest.split("; ").next().unwrap_or_default().to_owned());
    }
    const UNFINISHED: &str = "the tests did not finish within the run (";
    if let Some(rest) = failure.split(UNFINISHED).nth(1) {
        let ran: usize = rest
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return if index < ran {
            Seen::Passed
        } else {
            Seen::NotRun("the tests before it did not finish within the run".into())
        };
    }
    if failure.contains("test ") && failure.contains(" failed: ") {
        return Seen::Passed;
    }
    // Nothing of the tests: the run failed before or around them.
    Seen::NotRun(failure.split("; ").next().unwrap_or_default().to_owned())
}

/// Test `index` (`name`)'s line over `results`, and the first seed that did not pass it.
fn case_verdict(
    index: usize,
    name: &str,
    results: &[SeedResult],
    total: u64,
) -> (String, Option<u64>) {
    let seen: Vec<(u64, Seen)> = results
        .iter()
        .map(|r| (r.seed, seen_in(index, name, r.failure.as_deref())))
        .collect();
    let pick = |failed: bool| -> Vec<(u64, &str)> {
        seen.iter()
            .filter_map(|(seed, s)| match s {
                Seen::Failed(why) if failed => Some((*seed, why.as_str())),
                Seen::NotRun(why) if !failed => Some((*seed, why.as_str())),
                _ => None,
            })
            .collect()
    };
    let (failed, not_run) = (pick(true), pick(false));
    debug_assert!(seen.len() == results.len(), "one verdict a seed");
    if let Some((seed, why)) = failed.first() {
        let count = failed.len();
        let line = format!("FAIL {name}   {count} of {total} seeds, first seed {seed}: {why}");
        return (line, Some(*seed));
    }
    if let Some((seed, why)) = not_run.first() {
        let count = not_run.len();
        let line = format!(
            "FAIL {name}   did not run in {count} of {total} seeds, first seed {seed}: {why}"
        );
        return (line, Some(*seed));
    }
    (format!("PASS {name}   {total} seeds"), None)
}

/// PASS or FAIL for each test over `results`, then any other failure; the first seed of each
/// failure, in order, without repeats (empty: all passed). A test passes only if every seed
/// shows it ran and passed: one that never ran (a setup that failed) is a FAIL that says so.
fn report_tests(
    out: &mut dyn Write,
    loaded: &apps::Loaded,
    results: &[SeedResult],
    total: u64,
) -> anyhow::Result<Vec<u64>> {
    let mut explain: Vec<u64> = Vec::new();
    let marker = |name: &str| format!("test {name} failed: ");
    for (index, case) in loaded.tests.iter().enumerate() {
        let (line, first) = case_verdict(index, &case.name, results, total);
        writeln!(out, "{line}")?;
        if let Some(seed) = first
            && !explain.contains(&seed)
        {
            explain.push(seed);
        }
    }
    // Anything else that failed a seed: a setup error, a kernel invariant, a divergence, a
    // test run that did not finish.
    let other = results.iter().find(|r| {
        r.divergence.is_some()
            || r.failure
                .as_deref()
                .is_some_and(|f| !loaded.tests.iter().any(|c| f.contains(&marker(&c.name))))
    });
    if let Some(result) = other {
        let what = result
            .divergence
            .as_deref()
            .or(result.failure.as_deref())
            .unwrap_or_default();
        writeln!(out, "FAIL seed {}: {what}", result.seed)?;
        if !explain.contains(&result.seed) {
            explain.push(result.seed);
        }
    }
    Ok(explain)
}

/// Runs `seed` again and writes its trace; returns the number of the event where the tester
/// reported the first failure, if it did.
fn write_trace(scenario: &Scenario, seed: u64, path: &Path) -> anyhow::Result<Option<usize>> {
    let outcome =
        run::run(scenario, seed, run::Options::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let header = Header {
        journal: None,
        trace_format: TRACE_FORMAT,
        scenario: scenario.path.clone(),
        seed,
        planted_bug: false,
    };
    write_atomically(path, &trace_text(&header, &outcome.kernel))?;
    let tester: hyperkernel::ProcessId = apps::TESTER.parse()?;
    let at = outcome.kernel.trace().records().iter().position(|r| {
        matches!(&r.event, hyperkernel::Event::Print { process, text, .. }
                if *process == tester && text.starts_with("tester: FAIL"))
    });
    Ok(at)
}

/// `sim build`: builds each package's process crates into its `pkg/`.
pub(crate) fn build(packages: &[PathBuf], features: &[String]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for package in packages {
        let written = kit::build_package(package, features).map_err(anyhow::Error::msg)?;
        for built in written {
            let len = std::fs::metadata(&built.module).map_or(0, |m| m.len());
            writeln!(out, "built       {} ({len} bytes)", built.module.display())?;
            if !built.dropped.is_empty() && built.dropped != ["test"] {
                // As kit's build says it (not for `test` alone, as kit does not): the crate
                // declares none of these.
                eprintln!(
                    "note: {} declares no feature {}; built without it",
                    built.manifest.display(),
                    built.dropped.join(", ")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(seed: u64, failure: Option<&str>) -> SeedResult {
        SeedResult {
            seed,
            hash: 0,
            simulated: 0,
            failure: failure.map(str::to_owned),
            divergence: None,
            alone: 0,
        }
    }

    fn loaded(names: &[&str]) -> apps::Loaded {
        apps::Loaded {
            packages: Vec::new(),
            tests: names
                .iter()
                .map(|name| apps::TestCase {
                    name: (*name).to_owned(),
                    module: std::sync::Arc::from(&[][..]),
                    request: Vec::new(),
                    grant: Vec::new(),
                })
                .collect(),
            timeout_secs: 5,
            nodes: Vec::new(),
        }
    }

    fn report(names: &[&str], results: &[SeedResult]) -> (String, Vec<u64>) {
        let mut out = Vec::new();
        let explain = report_tests(&mut out, &loaded(names), results, results.len() as u64);
        (
            String::from_utf8(out).unwrap_or_default(),
            explain.unwrap_or_default(),
        )
    }

    /// SECURITY.md, sim test: every seed failing at setup once printed `PASS echo-test`.
    #[test]
    fn a_test_that_never_ran_is_a_fail_that_says_so() {
        let setup = "setup: app:app:our.os does not load: not wasm";
        let results = [result(0, Some(setup)), result(1, Some(setup))];
        let (text, explain) = report(&["echo-test"], &results);
        assert!(!text.contains("PASS"), "{text}");
        assert!(
            text.contains("FAIL echo-test   did not run in 2 of 2 seeds, first seed 0: setup"),
            "{text}"
        );
        assert_eq!(explain, vec![0]);
    }

    #[test]
    fn tests_after_one_that_never_finished_did_not_run_and_others_keep_their_verdicts() {
        let results = [
            result(0, None),
            result(
                1,
                Some(
                    "test b failed: no answer; the tests did not finish within the run (2 of them ran)",
                ),
            ),
            result(2, Some("test a failed: boom")),
        ];
        let (text, _) = report(&["a", "b", "c"], &results);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "FAIL a   1 of 3 seeds, first seed 2: boom");
        assert_eq!(lines[1], "FAIL b   1 of 3 seeds, first seed 1: no answer");
        assert!(
            lines[2].starts_with("FAIL c   did not run in 1 of 3 seeds, first seed 1"),
            "{text}"
        );
        let (text, explain) = report(&["a"], &[result(0, None), result(1, None)]);
        assert_eq!((text.as_str(), explain), ("PASS a   2 seeds\n", vec![]));
    }
}
