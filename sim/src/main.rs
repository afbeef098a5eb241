//! The `sim` command line. `sim run SCENARIO --seed N [--trace FILE]` runs a scenario file
//! under the simulated clock, checking the invariants after every step, prints the run
//! summary and writes the trace as JSON lines; `sim explore` runs many seeds; `sim replay`
//! re-runs a trace or seed to an event and shows the kernel there, or steps through it;
//! `sim diff` finds where two traces part; `sim demo` runs the built-in native demo.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hyperkernel_sim::node::scenario::Scenario;
use hyperkernel_sim::tools::explore::{Exploration, SeedResult, explore};
use hyperkernel_sim::tools::replay::{Header, Replay, Source, TRACE_FORMAT, trace_text};
use hyperkernel_sim::tools::{demo, replay, shrink};
use hyperkernel_sim::{run, summary::Summary};
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};

mod cli;

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
        /// A world only: write each node's inputs as a node journal under DIR/NODE, for
        /// `sim replay --journal DIR/NODE` (nodes without faults inside and no crash).
        #[arg(long, value_name = "DIR")]
        journal: Option<PathBuf>,
        /// Test only: plant the kernel's capability bug.
        #[arg(long, hide = true)]
        planted_bug: bool,
        /// Test only: the harness panics after this step.
        #[arg(long, hide = true)]
        planted_panic: Option<u64>,
    },
    /// Run many seeds of a scenario across cores; report failures and nondeterminism.
    Explore {
        /// The scenario (JSON).
        scenario: PathBuf,
        /// Seeds to run, `A..B` (B excluded).
        #[arg(long, value_parser = parse_seeds, default_value = "0..100")]
        seeds: std::ops::Range<u64>,
        /// Worker threads, 1 to 1024 (default: the machine's cores).
        #[arg(long, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Test only: plant the kernel's capability bug.
        #[arg(long, hide = true)]
        planted_bug: bool,
        /// Test only: the harness panics after this step.
        #[arg(long, hide = true)]
        planted_panic: Option<u64>,
    },
    /// Re-run a trace file (or a scenario and seed) and inspect the kernel at an event.
    Replay {
        /// A trace file written by `sim run --trace`, or a scenario (not with --journal).
        #[arg(required_unless_present = "journal", conflicts_with = "journal")]
        source: Option<PathBuf>,
        /// Replay a real session instead: the journal of the node home HOME
        /// (`hyperkernel node --home HOME`), checked against the live run's trace hashes.
        #[arg(long, value_name = "HOME")]
        journal: Option<PathBuf>,
        /// With --journal: the epoch (one per boot of the node; default the latest).
        #[arg(long, requires = "journal")]
        epoch: Option<u64>,
        /// With --journal: write the replayed trace here, for `sim diff`.
        #[arg(long, requires = "journal")]
        trace: Option<PathBuf>,
        /// The seed, when SOURCE is a scenario.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Stop at this event (its number in the trace) and print the world there.
        #[arg(long)]
        until: Option<u64>,
        /// Step through the run one kernel step at a time (from --until, or the start).
        #[arg(long)]
        step: bool,
        /// Print the world as JSON.
        #[arg(long)]
        json: bool,
        /// Test only: plant the kernel's capability bug (scenario sources).
        #[arg(long, hide = true)]
        planted_bug: bool,
    },
    /// Print the first event where two trace files differ, with context.
    Diff {
        /// The first trace file.
        first: PathBuf,
        /// The second trace file.
        second: PathBuf,
        /// Events of context around the difference.
        #[arg(long, default_value_t = 5)]
        context: usize,
    },
    /// Shrink a failing seed into a smaller scenario that fails the same way.
    Shrink {
        /// The scenario (JSON).
        scenario: PathBuf,
        /// The failing seed.
        #[arg(long)]
        seed: u64,
        /// Where to write the smaller scenario (default: NAME-seedN-shrunk.json here).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Most runs to try.
        #[arg(long, default_value_t = 5_000)]
        runs_max: u64,
        /// Test only: plant the kernel's capability bug.
        #[arg(long, hide = true)]
        planted_bug: bool,
    },
    /// Run kit's tests.toml on the simulated kernel: its setup packages installed, its test
    /// packages run by the tester, over seeds (each run twice); PASS or FAIL per test.
    Test {
        /// kit's tests.toml.
        tests: PathBuf,
        /// One seed (instead of --seeds).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Seeds to run, `A..B` (B excluded).
        #[arg(long, value_parser = parse_seeds, default_value = "0..10")]
        seeds: std::ops::Range<u64>,
        /// A fault plan: a scenario's `faults` object, as a JSON file.
        #[arg(long)]
        faults: Option<PathBuf>,
        /// Worker threads, 1 to 1024 (default: the machine's cores).
        #[arg(long, value_parser = parse_jobs)]
        jobs: Option<usize>,
        /// Run the packages as they are built (default: build the setup and test packages
        /// first, as `kit run-tests` does: release, with the group's features, `test` by
        /// default, where a crate declares them).
        #[arg(long)]
        no_build: bool,
        /// Where the generated scenarios and failing traces go (default:
        /// target/sim-test beside tests.toml).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Export a trace (one node's or a world's) for other tools: `--format chrome` writes
    /// Chrome trace-event JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
    Export {
        /// The trace (`sim run --trace`, or a failure's trace).
        trace: PathBuf,
        /// The format: `chrome`.
        #[arg(long, default_value = "chrome", value_parser = ["chrome"])]
        format: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// The time axis: `order` (events in trace order) or `sim` (simulated time).
        #[arg(long, default_value = "order", value_parser = ["order", "sim"])]
        time: String,
    },
    /// Build packages (kit's layout): each process crate for wasm32-wasip1 into its pkg/.
    Build {
        /// Package directories.
        #[arg(required = true)]
        packages: Vec<PathBuf>,
        /// Cargo features to build with (each crate with those it declares, as kit builds).
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
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

/// Refuses to write `output` over one of `inputs` (a scenario written over by its own trace
/// is lost). Paths are compared as the files they name, so `./x.json` and `x.json` match.
fn refuse_overwriting(output: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    let Ok(out) = std::fs::canonicalize(output) else {
        return Ok(()); // It does not exist yet, so it is no input.
    };
    for input in inputs {
        if std::fs::canonicalize(input).is_ok_and(|i| i == out) {
            anyhow::bail!(
                "{} is an input of this command; refusing to write over it",
                output.display()
            );
        }
    }
    Ok(())
}

/// Writes `text` to `path` atomically: a temporary file of a name no other file has (created
/// new, never truncating an existing file), synced, then renamed over `path`.
pub(crate) fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let (temporary, mut file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temporary = path.with_file_name(format!(".{name}.{}.{n}.partial", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => break (temporary, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", temporary.display()));
            }
        }
    };
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))
        .and_then(|()| {
            std::fs::rename(&temporary, path)
                .with_context(|| format!("cannot rename to {}", path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// `--jobs`: 1 to 1024 worker threads.
fn parse_jobs(text: &str) -> Result<usize, String> {
    let jobs: usize = text.parse().map_err(|e| format!("`{text}`: {e}"))?;
    if !(1..=1024).contains(&jobs) {
        return Err(format!("{jobs} jobs: give 1 to 1024"));
    }
    Ok(jobs)
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

/// The progress report of `sim explore`: a live line on a terminal; otherwise (CI logs) one
/// line per tenth of the seeds.
fn progress_line(total: u64) -> impl Fn(u64, u64) + Sync {
    let live = std::io::stderr().is_terminal();
    let tenth = total.div_ceil(10).max(1);
    move |done: u64, failed: u64| {
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
    }
}

/// Each failing seed with its reproduce command, then the distinct failures with the command
/// that shrinks the first seed of each.
fn report_failures(
    out: &mut dyn Write,
    path: &Path,
    results: &[SeedResult],
    options: run::Options,
) -> anyhow::Result<()> {
    for result in results {
        let Some(what) = result.failure.as_deref().or(result.divergence.as_deref()) else {
            continue;
        };
        writeln!(out, "seed {}: {what}", result.seed)?;
        writeln!(
            out,
            "    reproduce: {}",
            reproduce(path, result.seed, options)
        )?;
    }
    let groups = hyperkernel_sim::tools::explore::distinct_failures(results);
    if !groups.is_empty() {
        writeln!(out, "distinct    {} failure(s)", groups.len())?;
    }
    for (signature, seeds) in &groups {
        writeln!(
            out,
            "  {} seed(s), first {}: {signature}",
            seeds.len(),
            seeds[0]
        )?;
        let shrink = reproduce(path, seeds[0], options).replacen("sim run", "sim shrink", 1);
        writeln!(out, "    shrink: {shrink}")?;
    }
    Ok(())
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
) -> anyhow::Result<bool> {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let plan = Exploration {
        seeds: seeds.clone(),
        jobs,
        options,
        fresh_every: 10,
    };
    let progress = progress_line(seeds.end - seeds.start);
    let started = std::time::Instant::now();
    let (results, what) = if cli::world_command::is_world_file(path) {
        cli::world_command::explore(path, &plan, &progress)?
    } else {
        let scenario = Scenario::load(path)?;
        (explore(&scenario, &plan, &progress), String::new())
    };
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "explore     {} seeds {}..{} on {jobs} threads{what}",
        path.display(),
        seeds.start,
        seeds.end
    )?;
    let bad = results
        .iter()
        .filter(|r| r.failure.is_some() || r.divergence.is_some())
        .count();
    writeln!(out, "passed      {}", results.len() - bad)?;
    writeln!(out, "failed      {bad}")?;
    writeln!(
        out,
        "seeds/s     {:.1} (each run twice)",
        results.len() as f64 / seconds
    )?;
    let simulated: u64 = results.iter().map(|r| r.simulated).sum();
    writeln!(
        out,
        "compression {:.0} simulated seconds per wall second (first runs only)",
        simulated as f64 / 1e9 / seconds
    )?;
    report_failures(&mut out, path, &results, options)?;
    if bad > 0 {
        eprintln!("Error: {bad} of {} seeds failed", results.len());
        return Ok(true);
    }
    Ok(false)
}

/// `sim run`: whether the run failed (it then writes the summary and trace first).
fn run_scenario(
    path: &Path,
    seed: u64,
    trace: Option<PathBuf>,
    options: run::Options,
) -> anyhow::Result<bool> {
    if let Some(trace) = &trace {
        refuse_overwriting(trace, &[path])?;
    }
    let scenario = Scenario::load(path)?;
    let outcome = run::run(&scenario, seed, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let summary = Summary::of(&outcome.kernel, seed, outcome.faults);
    let mut out = std::io::stdout().lock();
    writeln!(out, "scenario    {}", path.display())?;
    writeln!(out, "faults plan {}", outcome.plan)?;
    writeln!(out, "{summary}")?;
    writeln!(out, "steps       {}", outcome.steps)?;
    if outcome.reboots > 0 {
        writeln!(out, "reboots     {}", outcome.reboots)?;
    }
    if let Some(down) = &outcome.down {
        writeln!(out, "node        {down}")?;
    }
    if let Some(trace) = trace {
        let header = Header {
            journal: None,
            trace_format: TRACE_FORMAT,
            scenario: path.to_owned(),
            seed,
            planted_bug: options.planted_bug,
        };
        write_atomically(&trace, &trace_text(&header, &outcome.kernel))?;
        let lines = outcome.kernel.trace().len();
        writeln!(out, "trace       {} ({lines} lines)", trace.display())?;
    }
    if let Some(error) = outcome.error {
        // What each process printed last: what happened, in the app's own words.
        for (process, lines) in hyperkernel_sim::node::apps::last_output(&outcome.kernel, 3) {
            writeln!(out, "output      {process}")?;
            for line in lines {
                writeln!(out, "  | {line}")?;
            }
        }
        eprintln!(
            "Error: {error} (replay: {})",
            reproduce(path, seed, options)
        );
        return Ok(true);
    }
    Ok(false)
}

/// `sim shrink`: writes the smaller scenario after checking it reproduces the failure.
fn shrink_scenario(
    path: &Path,
    seed: u64,
    out: Option<PathBuf>,
    runs_max: u64,
    options: run::Options,
) -> anyhow::Result<()> {
    let out_path = out.unwrap_or_else(|| {
        let stem = path
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy());
        PathBuf::from(format!("{stem}-seed{seed}-shrunk.json"))
    });
    refuse_overwriting(&out_path, &[path])?;
    if cli::world_command::is_world_file(path) {
        return cli::world_command::shrink(path, seed, &out_path, runs_max);
    }
    let scenario = Scenario::load(path)?;
    let shrunk = shrink::shrink(&scenario, seed, options, runs_max).map_err(anyhow::Error::msg)?;
    let text = serde_json::to_string_pretty(&shrunk.file)? + "\n";
    // The file as written must fail the same way before it is kept.
    let again = Scenario::from_file(&out_path, serde_json::from_str(&text)?)?;
    let rerun = run::run(&again, seed, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let same = rerun
        .error
        .is_some_and(|e| shrink::signature(&e.to_string()) == shrunk.signature);
    anyhow::ensure!(
        same,
        "the shrunk scenario did not reproduce the failure; nothing written"
    );
    write_atomically(&out_path, &text)?;
    let (b, a) = (shrunk.before, shrunk.after);
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "shrunk       {} seed {seed} in {} runs",
        path.display(),
        shrunk.runs
    )?;
    writeln!(o, "failure      {}", shrunk.failure)?;
    writeln!(o, "processes    {} -> {}", b.processes, a.processes)?;
    writeln!(o, "workload     {} -> {}", b.workload, a.workload)?;
    writeln!(o, "capabilities {} -> {}", b.capabilities, a.capabilities)?;
    writeln!(o, "faults       {} -> {}", b.faults, a.faults)?;
    writeln!(o, "run_for_ms   {} -> {}", b.run_for_ms, a.run_for_ms)?;
    let ratio = b.events as f64 / (a.events.max(1)) as f64;
    writeln!(
        o,
        "events       {} -> {} ({ratio:.1}x smaller)",
        b.events, a.events
    )?;
    writeln!(o, "wrote        {}", out_path.display())?;
    writeln!(o, "reproduce    {}", reproduce(&out_path, seed, options))?;
    Ok(())
}

/// `sim diff`: whether the traces differ (the exit status is then 1; 2 if one cannot be
/// read).
fn diff(first: &Path, second: &Path, context: usize) -> anyhow::Result<bool> {
    if let Some(found) = cli::world_command::diff(first, second, context)? {
        return Ok(found);
    }
    let a = replay::read_trace(first).map_err(anyhow::Error::msg)?;
    let b = replay::read_trace(second).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout().lock();
    if a.header != b.header {
        let show = |h: &Header| format!("{} --seed {}", h.scenario.display(), h.seed);
        writeln!(out, "first:  {}", show(&a.header))?;
        writeln!(out, "second: {}", show(&b.header))?;
    }
    match replay::diff_report(&a.records, &b.records, context) {
        None => {
            writeln!(out, "identical: {} events", a.records.len())?;
            Ok(false)
        }
        Some(report) => {
            write!(out, "{report}")?;
            Ok(true)
        }
    }
}

/// `sim demo`.
fn run_demo(seed: u64, trace: Option<PathBuf>) -> anyhow::Result<bool> {
    let mut kernel = demo::build(seed).context("building the demo scenario")?;
    kernel.harness().run_until_idle();
    if let Err(broken) = kernel.check_invariants() {
        eprintln!("Error: kernel invariant broken: {broken} (replay: sim demo --seed {seed})");
        return Ok(true);
    }
    let summary = Summary::of(&kernel, seed, Default::default());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{summary}")?;
    if let Some(path) = trace {
        let header = Header {
            journal: None,
            trace_format: TRACE_FORMAT,
            scenario: "demo".into(),
            seed,
            planted_bug: false,
        };
        write_atomically(&path, &trace_text(&header, &kernel))?;
        writeln!(
            out,
            "trace       {} ({} lines)",
            path.display(),
            kernel.trace().len()
        )?;
    }
    Ok(false)
}

/// Runs the command. `Ok(true)`: it found something (a failing seed, differing traces).
fn dispatch(command: Command) -> anyhow::Result<bool> {
    let options = |planted_bug, planted_panic| run::Options {
        planted_bug,
        planted_panic,
        crash_at: None,
    };
    Ok(match command {
        Command::Run {
            scenario,
            seed,
            trace,
            journal,
            planted_bug,
            planted_panic,
        } => {
            let options = options(planted_bug, planted_panic);
            run_any(&scenario, seed, (trace, journal), options)?
        }
        Command::Explore {
            scenario,
            seeds,
            jobs,
            planted_bug,
            planted_panic,
        } => explore_scenario(&scenario, seeds, jobs, options(planted_bug, planted_panic))?,
        Command::Replay {
            journal: Some(home),
            epoch,
            trace,
            until,
            step,
            json,
            ..
        } => replay_journal(&home, epoch, trace, Replay { until, step, json })?,
        Command::Replay {
            source,
            seed,
            until,
            step,
            json,
            planted_bug,
            ..
        } => {
            let how = Replay { until, step, json };
            replay_source(&source.unwrap_or_default(), seed, how, planted_bug)?
        }
        Command::Diff {
            first,
            second,
            context,
        } => diff(&first, &second, context)?,
        Command::Shrink {
            scenario,
            seed,
            out,
            runs_max,
            planted_bug,
        } => {
            let options = options(planted_bug, None);
            shrink_scenario(&scenario, seed, out, runs_max, options)?;
            false
        }
        command @ (Command::Test { .. } | Command::Build { .. }) => {
            cli::test_command::dispatch(command)?
        }
        command @ Command::Export { .. } => cli::export::dispatch(command)?,
        Command::Demo { seed, trace } => run_demo(seed, trace)?,
    })
}

/// `sim run`: a world scenario (writing its node journals with `--journal`) or a one-node one.
fn run_any(
    scenario: &Path,
    seed: u64,
    (trace, journal): (Option<PathBuf>, Option<PathBuf>),
    options: run::Options,
) -> anyhow::Result<bool> {
    if cli::world_command::is_world_file(scenario) {
        if let Some(trace) = &trace {
            refuse_overwriting(trace, &[scenario])?;
        }
        return cli::world_command::run(scenario, seed, trace, journal);
    }
    anyhow::ensure!(
        journal.is_none(),
        "--journal writes the journals of a world's nodes; {} is not a world",
        scenario.display()
    );
    run_scenario(scenario, seed, trace, options)
}

/// `sim replay SOURCE`: a world's trace or scenario, or a one-node trace or scenario.
fn replay_source(source: &Path, seed: u64, how: Replay, planted_bug: bool) -> anyhow::Result<bool> {
    if let Some(found) = cli::world_replay::replay(source, seed, how.until, how.json, how.step)? {
        return Ok(found);
    }
    let options = run::Options {
        planted_bug,
        planted_panic: None,
        crash_at: None,
    };
    let source = Source::open(source, seed, options).map_err(anyhow::Error::msg)?;
    let mut input = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    replay::replay(&source, &how, &mut input, &mut out).map_err(anyhow::Error::msg)?;
    Ok(false)
}

/// `sim replay --journal HOME`: a real session run again, its hashes checked, a summary.
/// Found something (exit 1) when the journal is damaged before its end.
fn replay_journal(
    home: &Path,
    epoch: Option<u64>,
    trace: Option<PathBuf>,
    how: Replay,
) -> anyhow::Result<bool> {
    let mut input = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    #[expect(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        reason = "the replay's speed against the session's wall time is reported to the user"
    )]
    let started = std::time::Instant::now();
    let run = hyperkernel_sim::tools::journal_replay::replay_journal(
        home, epoch, &how, &mut input, &mut out,
    )
    .map_err(anyhow::Error::msg)?;
    let took = started.elapsed();
    replay::report(&run.kernel, &how, &mut out).map_err(anyhow::Error::msg)?;
    let trace_hash = run.kernel.trace().hash();
    writeln!(out, "journal     {} epoch {}", home.display(), run.epoch)?;
    writeln!(out, "inputs      {} ({} steps)", run.inputs, run.steps)?;
    writeln!(out, "events      {}", run.kernel.trace().len())?;
    writeln!(out, "trace hash  {trace_hash:016x}")?;
    let live = match run.end {
        Some(end) if end.hash == trace_hash => "the live run's at its end".to_owned(),
        _ => format!("{} checkpoints of the live run matched", run.marks_matched),
    };
    writeln!(out, "matches     {live}")?;
    let session = std::time::Duration::from_nanos(run.session.0);
    let ratio = session.as_secs_f64() / took.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "speed       {:.3} s of the session replayed in {:.3} s ({ratio:.1}x)",
        session.as_secs_f64(),
        took.as_secs_f64()
    )?;
    if let Some(path) = trace {
        let header = Header {
            journal: Some((home.to_owned(), run.epoch)),
            trace_format: TRACE_FORMAT,
            scenario: PathBuf::from("journal"),
            seed: 0,
            planted_bug: false,
        };
        write_atomically(&path, &trace_text(&header, &run.kernel))?;
        writeln!(out, "trace       {}", path.display())?;
    }
    if let Some(damage) = run.damage {
        writeln!(out, "stopped     at {damage}")?;
        return Ok(true);
    }
    Ok(false)
}

/// Exit status: 0 when all is well, 1 when the command found something (a run or seed that
/// failed, traces that differ), 2 when it could not do what was asked (bad arguments, an
/// input that cannot be read or used).
fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse().command) {
        Ok(false) => std::process::ExitCode::SUCCESS,
        Ok(true) => std::process::ExitCode::from(1),
        Err(error) => {
            eprintln!("Error: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}
