//! The `sim` command line. `sim run SCENARIO --seed N [--trace FILE]` runs a scenario file
//! under the simulated clock, checking the kernel's invariants after every step, prints the run
//! summary and writes the trace as JSON lines; `sim demo` runs the built-in native demo.
//! Faults, `explore`, `replay`, `diff` and `shrink` come next (issue 4).

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hyperkernel_sim::{demo, run, scenario::Scenario, summary::Summary};
use std::io::Write as _;
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

/// `sim run`: exits non-zero (after writing the summary and trace) if an invariant broke.
fn run_scenario(path: &Path, seed: u64, trace: Option<PathBuf>) -> anyhow::Result<()> {
    let scenario = Scenario::load(path)?;
    let outcome = run::run(&scenario, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = Summary::of(&outcome.kernel, seed);
    let mut out = std::io::stdout().lock();
    writeln!(out, "scenario    {}", path.display())?;
    writeln!(out, "{summary}")?;
    writeln!(out, "steps       {}", outcome.steps)?;
    if let Some(trace) = trace {
        write_atomically(&trace, &outcome.kernel.trace().to_json_lines())?;
        let lines = outcome.kernel.trace().len();
        writeln!(out, "trace       {} ({lines} lines)", trace.display())?;
    }
    if let Some(error) = outcome.error {
        let replay = format!("sim run {} --seed {seed}", path.display());
        anyhow::bail!("{error} (replay: {replay})");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run {
            scenario,
            seed,
            trace,
        } => run_scenario(&scenario, seed, trace)?,
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
