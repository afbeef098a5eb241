//! `sim run` and `sim explore` of a world scenario (a file with `nodes`): the world's summary
//! (nodes, network, faults, each node's hash, the world's hash), its trace file, and on a
//! failure the fault schedule that caused it with the command that reproduces it.

use hyperkernel_sim::tools::explore::{Exploration, SeedResult, explore_with};
use hyperkernel_sim::world::NetEvent;
use hyperkernel_sim::world::drive::{WorldRun, explore_seed, run_world};
use hyperkernel_sim::world::spec::WorldScenario;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether the scenario at `path` is a world (a JSON object with `nodes`). A file that cannot
/// be read is not: loading it as a one-node scenario then says why.
pub(crate) fn is_world_file(path: &Path) -> bool {
    hyperkernel_sim::files::read_text(path, hyperkernel_sim::node::scenario::FILE_LEN_MAX)
        .is_ok_and(|text| hyperkernel_sim::world::spec::is_world(&text))
}

/// The network's events of a run, counted by kind.
fn counts(run: &WorldRun) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    for event in run.world.events() {
        let kind = match event {
            NetEvent::Sent { .. } => "sent",
            NetEvent::Delivered { .. } => "delivered",
            NetEvent::Offline { .. } => "offline",
            NetEvent::Lost { .. } => "lost",
            NetEvent::Cut { .. } => "cut",
            NetEvent::Heal => "heal",
            NetEvent::Clog { .. } => "clog",
            NetEvent::Reset { .. } => "reset",
            NetEvent::Crash { .. } => "crash",
            NetEvent::Boot { .. } => "boot",
            NetEvent::FaultsStopped => "stop",
        };
        *counts.entry(kind).or_default() += 1;
    }
    counts
}

fn summary(out: &mut dyn Write, path: &Path, seed: u64, run: &WorldRun) -> anyhow::Result<()> {
    let world = &run.world;
    let count = counts(run);
    let n = |kind: &str| count.get(kind).copied().unwrap_or(0);
    let (_, _, lost) = world.net_counts();
    writeln!(out, "scenario    {}", path.display())?;
    writeln!(out, "seed        {seed}")?;
    writeln!(
        out,
        "world       {} nodes, {} passes, {:.3} s simulated",
        world.nodes().len(),
        world.passes(),
        world.now().0 as f64 / 1e9
    )?;
    writeln!(
        out,
        "network     {} sent, {} delivered, {lost} lost, {} offline",
        n("sent"),
        n("delivered"),
        n("offline")
    )?;
    writeln!(
        out,
        "faults      {} cuts, {} clogs, {} resets, {} crashes",
        n("cut"),
        n("clog"),
        n("reset"),
        n("crash")
    )?;
    if run.beyond {
        writeln!(
            out,
            "beyond      faults beyond the reference's guarantees were on (reorder, duplicate \
             or drop within a pair)"
        )?;
    }
    for (index, node) in world.nodes().iter().enumerate() {
        let down = if world.is_down_for_good(index) {
            ", down for good (its disk's flipped bits corrupted its store)"
        } else {
            ""
        };
        writeln!(
            out,
            "node        {}: {} events, trace hash {:016x}{down}",
            node.name,
            node.kernel.trace().len(),
            node.kernel.trace().hash()
        )?;
        let counters = node.faults();
        if counters != hyperkernel_sim::node::inside::FaultCounters::default() {
            writeln!(out, "            {}", fault_line(&counters))?;
        }
    }
    writeln!(out, "trace hash  {:016x}", world.hash())?;
    Ok(())
}

/// The command that reproduces one seed.
fn reproduce(path: &Path, seed: u64) -> String {
    format!("sim run {} --seed {seed}", path.display())
}

/// `sim run` of a world: whether it failed.
pub(crate) fn run(
    path: &Path,
    seed: u64,
    trace: Option<PathBuf>,
    journal: Option<PathBuf>,
) -> anyhow::Result<bool> {
    let scenario = WorldScenario::load(path)?;
    let run = run_world(&scenario, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::io::stdout().lock();
    summary(&mut out, path, seed, &run)?;
    if let Some(trace) = trace {
        let text = hyperkernel_sim::world::trace::world_trace_text(path, seed, &run.world);
        crate::write_atomically(&trace, &text)?;
        writeln!(
            out,
            "trace       {} ({} lines)",
            trace.display(),
            run.world.lines().len() + 1
        )?;
    }
    if let Some(dir) = journal {
        let written = run.world.write_journals(&dir).map_err(anyhow::Error::msg)?;
        if written.is_empty() {
            writeln!(
                out,
                "journal     none: every node crashed or has faults inside"
            )?;
        }
        for (name, home) in written {
            writeln!(
                out,
                "journal     {name}: {} (replay: sim replay --journal {})",
                home.display(),
                home.display()
            )?;
        }
    }
    let Some(error) = run.error else {
        return Ok(false);
    };
    let faults = run.scenario.fault_entries();
    if !faults.is_empty() {
        writeln!(out, "fault schedule ({} entries):", faults.len())?;
        for work in faults {
            writeln!(out, "  {}", serde_json::to_string(work)?)?;
        }
    }
    eprintln!("Error: {error} (replay: {})", reproduce(path, seed));
    Ok(true)
}

/// `sim explore` of a world: each seed's result, and what to add to the summary's first line.
pub(crate) fn explore(
    path: &Path,
    plan: &Exploration,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<(Vec<SeedResult>, String)> {
    let scenario = WorldScenario::load(path)?;
    let results = explore_with(plan, progress, &|seed| explore_seed(&scenario, seed, plan));
    let alone: u64 = results.iter().map(|r| r.alone).sum();
    let runs = scenario.nodes.len() as u64 * results.len() as u64;
    let what = format!(
        " ({} nodes; {alone} of {runs} node runs also run alone from their inputs, W9)",
        scenario.nodes.len()
    );
    Ok((results, what))
}

/// Paths in `file` made absolute against the directory of `path`, so the shrunk world runs
/// from anywhere.
fn absolute(path: &Path, file: &mut hyperkernel_sim::world::spec::WorldFile) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    for node in &mut file.nodes {
        for process in &mut node.processes {
            if let Some(wasm) = &mut process.wasm {
                *wasm = dir.join(&*wasm);
            }
        }
        for package in &mut node.packages {
            package.path = dir.join(&package.path);
        }
    }
}

/// `sim shrink` of a world: writes the smaller world after checking it fails the same way.
pub(crate) fn shrink(path: &Path, seed: u64, out: &Path, runs_max: u64) -> anyhow::Result<()> {
    use hyperkernel_sim::world::shrink::shrink_world;
    let scenario = WorldScenario::load(path)?;
    let mut shrunk = shrink_world(&scenario, seed, runs_max).map_err(anyhow::Error::msg)?;
    absolute(path, &mut shrunk.file);
    let text = serde_json::to_string_pretty(&shrunk.file)? + "\n";
    // The file as written must fail the same way before it is kept.
    let again = WorldScenario::parse(out, &text)?;
    let rerun = run_world(&again, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
    let same = rerun.error.is_some_and(|e| {
        hyperkernel_sim::tools::shrink::signature(&e.to_string()) == shrunk.signature
    });
    anyhow::ensure!(
        same,
        "the shrunk world did not reproduce the failure; nothing written"
    );
    crate::write_atomically(out, &text)?;
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "shrunk       {} seed {seed} in {} runs",
        path.display(),
        shrunk.runs
    )?;
    writeln!(o, "failure      {}", shrunk.failure)?;
    writeln!(o, "nodes        {} -> {}", shrunk.before.0, shrunk.after.0)?;
    writeln!(
        o,
        "workload     {} -> {} (faults included)",
        shrunk.before.1, shrunk.after.1
    )?;
    writeln!(o, "wrote        {}", out.display())?;
    writeln!(o, "reproduce    {}", reproduce(out, seed))?;
    Ok(())
}

/// `sim diff` of two world traces: `None` when either is not one (the one-node diff reads
/// them), else whether they differ, printing where.
pub(crate) fn diff(first: &Path, second: &Path, context: usize) -> anyhow::Result<Option<bool>> {
    use hyperkernel_sim::world::trace::{diff_world_traces, is_world_trace};
    let read = |path: &Path| {
        hyperkernel_sim::files::read_text(path, hyperkernel_sim::tools::replay::TRACE_LEN_MAX)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    // The headers first, so a one-node diff reads its files once.
    match (is_world_trace(&head(first)), is_world_trace(&head(second))) {
        (false, false) => return Ok(None),
        (true, true) => {}
        _ => anyhow::bail!("one of these is a world trace and the other is not"),
    }
    let (a, b) = (read(first)?, read(second)?);
    let mut out = std::io::stdout().lock();
    let header = |text: &str| text.lines().next().unwrap_or_default().to_owned();
    if header(&a) != header(&b) {
        writeln!(out, "first:  {}", header(&a))?;
        writeln!(out, "second: {}", header(&b))?;
    }
    match diff_world_traces(&a, &b, context) {
        None => {
            writeln!(
                out,
                "identical: {} lines",
                a.lines().count().saturating_sub(1)
            )?;
            Ok(Some(false))
        }
        Some(report) => {
            write!(out, "{report}")?;
            Ok(Some(true))
        }
    }
}

/// The first line of `path` (at most 64 KiB).
pub(crate) fn head(path: &Path) -> String {
    use std::io::{BufRead as _, Read as _};
    let mut line = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = std::io::BufReader::new(file.take(1 << 16)).read_line(&mut line);
    }
    line
}

/// What faults fired inside a node, as one line.
fn fault_line(c: &hyperkernel_sim::node::inside::FaultCounters) -> String {
    let parts = [
        ("held", c.delayed),
        ("trapped", c.trapped),
        ("crashed", c.crashed),
        ("timers skewed", c.timers_skewed),
        ("reboots", c.reboots),
        ("disk faults", c.disk_faults),
    ];
    let fired: Vec<String> = parts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    format!("faults inside: {}", fired.join(", "))
}
