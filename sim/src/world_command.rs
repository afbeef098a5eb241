//! `sim run` and `sim explore` of a world scenario (a file with `nodes`): the world's summary
//! (nodes, network, faults, each node's hash, the world's hash), its trace file, and on a
//! failure the fault schedule that caused it with the command that reproduces it.

use hyperkernel_sim::explore::{Exploration, explore_with};
use hyperkernel_sim::world::NetEvent;
use hyperkernel_sim::world::drive::{WorldRun, explore_seed, run_world};
use hyperkernel_sim::world::spec::WorldScenario;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether the scenario at `path` is a world (a JSON object with `nodes`). A file that cannot
/// be read is not: loading it as a one-node scenario then says why.
pub(crate) fn is_world_file(path: &Path) -> bool {
    hyperkernel_sim::files::read_text(path, hyperkernel_sim::scenario::FILE_LEN_MAX)
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
    for node in world.nodes() {
        writeln!(
            out,
            "node        {}: {} events, trace hash {:016x}",
            node.name,
            node.kernel.trace().len(),
            node.kernel.trace().hash()
        )?;
    }
    writeln!(out, "trace hash  {:016x}", world.hash())?;
    Ok(())
}

/// The command that reproduces one seed.
fn reproduce(path: &Path, seed: u64) -> String {
    format!("sim run {} --seed {seed}", path.display())
}

/// `sim run` of a world: whether it failed.
pub(crate) fn run(path: &Path, seed: u64, trace: Option<PathBuf>) -> anyhow::Result<bool> {
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

/// `sim explore` of a world: whether any seed failed or diverged.
#[expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "seeds per wall second is a figure about the harness, outside any simulation"
)]
pub(crate) fn explore(
    path: &Path,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> anyhow::Result<bool> {
    let scenario = WorldScenario::load(path)?;
    let plan = Exploration {
        seeds: seeds.clone(),
        jobs,
        options: hyperkernel_sim::run::Options::default(),
        fresh_every: 10,
    };
    let started = std::time::Instant::now();
    let results = explore_with(&plan, progress, &|seed| {
        explore_seed(&scenario, seed, &plan)
    });
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r.failure.is_some() || r.divergence.is_some())
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "explore     {} seeds {}..{} on {jobs} threads ({} nodes)",
        path.display(),
        seeds.start,
        seeds.end,
        scenario.nodes.len()
    )?;
    writeln!(out, "passed      {}", results.len() - bad.len())?;
    writeln!(out, "failed      {}", bad.len())?;
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
    for result in &bad {
        let what = result.failure.as_deref().or(result.divergence.as_deref());
        writeln!(out, "seed {}: {}", result.seed, what.unwrap_or_default())?;
        writeln!(out, "    reproduce: {}", reproduce(path, result.seed))?;
    }
    if !bad.is_empty() {
        eprintln!("Error: {} of {} seeds failed", bad.len(), results.len());
        return Ok(true);
    }
    Ok(false)
}
