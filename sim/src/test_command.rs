//! `sim test TESTS.toml` and `sim build PACKAGE…` (module docs of `hyperkernel_sim::kit`).

use super::{progress_line, reproduce, write_atomically};
use hyperkernel_sim::explore::{Exploration, SeedResult, explore};
use hyperkernel_sim::replay::{Header, TRACE_FORMAT, trace_text};
use hyperkernel_sim::{apps, faults::FaultSpec, kit, run, scenario::Scenario};
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
}

/// `sim test` and `sim build`: whether a test failed on some seed.
pub(crate) fn dispatch(command: super::Command) -> anyhow::Result<bool> {
    match command {
        super::Command::Test {
            tests,
            seed,
            seeds,
            faults,
            jobs,
            out,
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
            })
        }
        super::Command::Build { packages, features } => {
            build(&packages, &features)?;
            Ok(false)
        }
        _ => unreachable!("only test and build come here"),
    }
}

/// `sim test`: whether a test failed on some seed.
pub(crate) fn test(how: &TestRun) -> anyhow::Result<bool> {
    let file = kit::read_tests(&how.tests).map_err(anyhow::Error::msg)?;
    let faults: Option<FaultSpec> = match &how.faults {
        Some(path) => {
            let text = hyperkernel_sim::files::read_text(path, 1 << 20)?;
            Some(serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{}:{}:{}: {e}", path.display(), e.line(), e.column())
            })?)
        }
        None => None,
    };
    let base = how.tests.parent().unwrap_or(Path::new("."));
    let out_dir = how
        .out
        .clone()
        .unwrap_or_else(|| base.join("target").join("sim-test"));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out_dir.display()))?;
    let mut failed = false;
    for index in 0..file.tests.len() {
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
    let options = run::Options::default();
    let plan = Exploration {
        seeds: how.seeds.clone(),
        jobs: how.jobs,
        options,
        fresh_every: 10,
    };
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
    writeln!(
        out,
        "seeds/s     {:.1}",
        results.len() as f64 / seconds.max(1e-9)
    )?;
    // Each distinct failure: the first seed it failed, its command and its trace.
    for seed in &explain {
        let trace = out_dir.join(format!("tests-{index}.seed-{seed}.trace.jsonl"));
        let until = write_trace(scenario, *seed, &trace)?;
        writeln!(out, "seed {seed}")?;
        writeln!(
            out,
            "reproduce   {}",
            reproduce(&scenario.path, *seed, options)
        )?;
        writeln!(out, "trace       {}", trace.display())?;
        let until = until.map_or(String::new(), |n| format!(" --until {n}"));
        writeln!(out, "replay      sim replay {}{until}", trace.display())?;
    }
    Ok(!explain.is_empty())
}

/// PASS or FAIL for each test over `results`, then any other failure; the first seed of each
/// failure, in order, without repeats (empty: all passed).
fn report_tests(
    out: &mut dyn Write,
    loaded: &apps::Loaded,
    results: &[SeedResult],
    total: u64,
) -> anyhow::Result<Vec<u64>> {
    let mut explain: Vec<u64> = Vec::new();
    let marker = |name: &str| format!("test {name} failed: ");
    for case in &loaded.tests {
        let marker = marker(&case.name);
        let failing: Vec<&SeedResult> = results
            .iter()
            .filter(|r| r.failure.as_deref().is_some_and(|f| f.contains(&marker)))
            .collect();
        let Some(first) = failing.first() else {
            writeln!(out, "PASS {}   {total} seeds", case.name)?;
            continue;
        };
        if !explain.contains(&first.seed) {
            explain.push(first.seed);
        }
        let why = first
            .failure
            .as_deref()
            .and_then(|f| f.split(&marker).nth(1))
            .and_then(|rest| rest.split("; ").next())
            .unwrap_or_default();
        writeln!(
            out,
            "FAIL {}   {} of {total} seeds, first seed {}: {why}",
            case.name,
            failing.len(),
            first.seed
        )?;
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
        for module in written {
            let len = std::fs::metadata(&module).map_or(0, |m| m.len());
            writeln!(out, "built       {} ({len} bytes)", module.display())?;
        }
    }
    Ok(())
}
