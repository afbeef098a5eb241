//! The `sim` command line. `sim run SCENARIO --seed N [--trace FILE]` runs a scenario file
//! under the simulated clock, checking the kernel's invariants after every step, prints the run
//! summary and writes the trace as JSON lines; `sim demo` runs the built-in native demo.
//! Faults, `explore`, `replay`, `diff` and `shrink` come next (issue 4).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hyperkernel_sim::explore::{Exploration, explore};
use hyperkernel_sim::{demo, run, scenario::Scenario, summary::Summary};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "sim", about = "Deterministic simulation of the hyperkernel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario file (see docs/scenarios.md).
    Run {
        /// The scenario (JSON).
        scenario: PathBuf,
        /// The seed of every random choice.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the trace here as JSON lines.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Test only: plant the kernel's capability bug.
        #[arg(long, hide = true)]
        planted_bug: bool,
    },
    /// Run many seeds of a scenario across cores; report failures and nondeterminism.
    Explore {
        /// The scenario (JSON).
        scenario: PathBuf,
        /// Seeds to run, `A..B` (B excluded).
        #[arg(long, value_parser = parse_seeds, default_value = "0..100")]
        seeds: std::ops::Range<u64>,
        /// Worker threads (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Test only: plant the kernel's capability bug.
        #[arg(long, hide = true)]
        planted_bug: bool,
    },
    /// Run the built-in demo scenario.
    Demo {
        /// The seed of every random choice.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Write the trace here as JSON lines.
        #[arg(long)]
        trace: Option<PathBuf>,
    },
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a rename.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(())
}

fn parse_seeds(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a range like 0..100"))?;
    let start: u64 = start.parse().map_err(|e| format!("`{start}`: {e}"))?;
    let end: u64 = end.parse().map_err(|e| format!("`{end}`: {e}"))?;
    if end <= start {
        return Err(format!("`{text}` is empty"));
    }
    Ok(start..end)
}

/// The command that reproduces one seed.
fn reproduce(path: &Path, seed: u64, options: run::Options) -> String {
    let bug = if options.planted_bug {
        " --planted-bug"
    } else {
        ""
    };
    format!("sim run {} --seed {seed}{bug}", path.display())
}

/// `sim explore`: exits non-zero if any seed failed or diverged.
#[expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "seeds per wall second is a figure about the harness, outside any simulation"
)]
fn explore_scenario(
    path: &Path,
    seeds: std::ops::Range<u64>,
    jobs: Option<usize>,
    options: run::Options,
) -> anyhow::Result<()> {
    let scenario = Scenario::load(path)?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let plan = Exploration {
        seeds: seeds.clone(),
        jobs,
        options,
        fresh_every: 10,
    };
    let total = seeds.end - seeds.start;
    // A live line on a terminal; otherwise (CI logs) one line per tenth.
    let live = std::io::stderr().is_terminal();
    let tenth = total.div_ceil(10).max(1);
    let progress = |done: u64, failed: u64| {
        let mut err = std::io::stderr().lock();
        let text = format!("explore: {done}/{total} seeds, {failed} failed");
        if live {
            let _ = write!(err, "\r{text}");
            if done == total {
                let _ = writeln!(err);
            }
        } else if done.is_multiple_of(tenth) || done == total {
            let _ = writeln!(err, "{text}");
        }
    };
    let started = std::time::Instant::now();
    let results = explore(&scenario, &plan, &progress);
    let seconds = started.elapsed().as_secs_f64();
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r.failure.is_some() || r.divergence.is_some())
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "explore     {} seeds {}..{} on {jobs} threads",
        path.display(),
        seeds.start,
        seeds.end
    )?;
    writeln!(out, "passed      {}", results.len() - bad.len())?;
    writeln!(out, "failed      {}", bad.len())?;
    writeln!(
        out,
        "seeds/s     {:.1} (each run twice)",
        results.len() as f64 / seconds.max(1e-9)
    )?;
    for result in &bad {
        let what = result
            .failure
            .as_deref()
            .or(result.divergence.as_deref())
            .unwrap_or_default();
        writeln!(out, "seed {}: {what}", result.seed)?;
        writeln!(
            out,
            "    reproduce: {}",
            reproduce(path, result.seed, options)
        )?;
    }
    if !bad.is_empty() {
        anyhow::bail!("{} of {} seeds failed", bad.len(), results.len());
    }
    Ok(())
}

/// `sim run`: exits non-zero (after writing the summary and trace) if an invariant broke.
fn run_scenario(
    path: &Path,
    seed: u64,
    trace: Option<PathBuf>,
    options: run::Options,
) -> anyhow::Result<()> {
    let scenario = Scenario::load(path)?;
    let outcome = run::run(&scenario, seed, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = Summary::of(&outcome.kernel, seed);
    let mut out = std::io::stdout().lock();
    writeln!(out, "scenario    {}", path.display())?;
    writeln!(out, "faults plan {}", outcome.plan)?;
    writeln!(out, "{summary}")?;
    writeln!(out, "steps       {}", outcome.steps)?;
    if let Some(trace) = trace {
        write_atomically(&trace, &outcome.kernel.trace().to_json_lines())?;
        let lines = outcome.kernel.trace().len();
        writeln!(out, "trace       {} ({lines} lines)", trace.display())?;
    }
    if let Some(error) = outcome.error {
        anyhow::bail!("{error} (replay: {})", reproduce(path, seed, options));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            scenario,
            seed,
            trace,
            planted_bug,
        } => run_scenario(&scenario, seed, trace, run::Options { planted_bug })?,
        Command::Explore {
            scenario,
            seeds,
            jobs,
            planted_bug,
        } => explore_scenario(&scenario, seeds, jobs, run::Options { planted_bug })?,
        Command::Demo { seed, trace } => {
            let mut kernel = demo::build(seed).context("building the demo scenario")?;
            kernel.run_until_idle();
            if let Err(broken) = kernel.check_invariants() {
                anyhow::bail!("kernel invariant broken: {broken} (replay: sim demo --seed {seed})");
            }
            let summary = Summary::of(&kernel, seed);
            let mut out = std::io::stdout().lock();
            writeln!(out, "{summary}")?;
            if let Some(path) = trace {
                write_atomically(&path, &kernel.trace().to_json_lines())?;
                writeln!(
                    out,
                    "trace       {} ({} lines)",
                    path.display(),
                    kernel.trace().len()
                )?;
            }
        }
    }
    Ok(())
}
