//! `sim replay` of a world: its trace (or its scenario and a seed) run again to a world line,
//! every line up to it checked against the trace, then every node and every link there; or,
//! with `--step`, pass by pass with commands read from standard input. Each step runs the
//! world again from its start to one pass further: determinism makes that exact, and a
//! world's run to any point takes milliseconds.

use crate::cli::world_command::{head, is_world_file};
use hyperkernel_sim::world::drive::{WorldRun, run_world_until};
use hyperkernel_sim::world::spec::WorldScenario;
use hyperkernel_sim::world::trace::{is_world_trace, world_trace_text};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// What a world replay replays: its scenario, its seed, the trace it must follow.
struct Source {
    scenario: WorldScenario,
    path: PathBuf,
    seed: u64,
    /// The trace file's name and its lines after the header, if replaying a trace.
    expected: Option<(PathBuf, Vec<String>)>,
}

impl Source {
    /// `source` as a world (its trace, or its scenario with `seed`); `None`: not a world.
    fn open(source: &Path, seed: u64) -> anyhow::Result<Option<Self>> {
        let (path, seed, expected) = if is_world_trace(&head(source)) {
            let text = hyperkernel_sim::files::read_text(
                source,
                hyperkernel_sim::tools::replay::TRACE_LEN_MAX,
            )
            .map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
            let mut lines = text.lines();
            let header: serde_json::Value = serde_json::from_str(lines.next().unwrap_or_default())?;
            let named =
                |field: &str| anyhow::anyhow!("{}: the header has no {field}", source.display());
            let scenario = header["scenario"]
                .as_str()
                .ok_or_else(|| named("scenario"))?;
            let seed = header["seed"].as_u64().ok_or_else(|| named("seed"))?;
            let expected = lines.map(str::to_owned).collect();
            (
                PathBuf::from(scenario),
                seed,
                Some((source.to_owned(), expected)),
            )
        } else if is_world_file(source) {
            (source.to_owned(), seed, None)
        } else {
            return Ok(None);
        };
        let scenario = WorldScenario::load(&path)?;
        Ok(Some(Self {
            scenario,
            path,
            seed,
            expected,
        }))
    }

    /// The world run to the pass that records line `line` (the whole run: `None`), with its
    /// trace's lines, checked against the expected trace up to `line`.
    fn run(&self, line: Option<usize>) -> anyhow::Result<(WorldRun, Vec<String>)> {
        let run =
            run_world_until(&self.scenario, self.seed, line).map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = world_trace_text(&self.path, self.seed, &run.world);
        let got: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
        if let Some((file, want)) = &self.expected {
            let last = line.unwrap_or(got.len()).min(got.len().saturating_sub(1));
            if let Some(at) = (0..=last).find(|i| want.get(*i) != got.get(*i)) {
                let show = |l: Option<&String>| l.map_or("nothing".to_owned(), Clone::clone);
                anyhow::bail!(
                    "the replay departs from {} at world line {at}: the trace has {}, the replay {}",
                    file.display(),
                    show(want.get(at)),
                    show(got.get(at))
                );
            }
        }
        Ok((run, got))
    }
}

/// `sim replay` of a world trace or world scenario (module docs). `None` when `source` is
/// no world.
pub(crate) fn replay(
    source: &Path,
    seed: u64,
    until: Option<u64>,
    json: bool,
    step: bool,
) -> anyhow::Result<Option<bool>> {
    let Some(source) = Source::open(source, seed)? else {
        return Ok(None);
    };
    let line = until.map(|u| usize::try_from(u).unwrap_or(usize::MAX));
    if step {
        let mut input = std::io::stdin().lock();
        let mut out = std::io::stdout().lock();
        step_through(&source, line.unwrap_or(0), json, &mut input, &mut out)?;
        return Ok(Some(false));
    }
    let (run, got) = source.run(line)?;
    let until = line.unwrap_or(got.len().saturating_sub(1));
    anyhow::ensure!(
        until < got.len(),
        "the run has only {} world lines; there is no line {until}",
        got.len()
    );
    let mut out = std::io::stdout().lock();
    for (i, text) in got
        .iter()
        .enumerate()
        .take(until + 1)
        .skip(until.saturating_sub(5))
    {
        let mark = if i == until { '>' } else { ' ' };
        writeln!(out, "{mark} {i:>6} {text}")?;
    }
    world_state(&mut out, &run, until, json)?;
    Ok(Some(false))
}

const STEP_HELP: &str =
    "step> Enter: next pass · w: every node and link · c: run on without stopping · q: quit";

/// Pass by pass from line `from`: prints each pass's new lines, then reads commands.
fn step_through(
    source: &Source,
    from: usize,
    json: bool,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut line = from;
    let mut printed = 0;
    loop {
        let (run, got) = source.run(Some(line))?;
        for (i, text) in got.iter().enumerate().skip(printed) {
            writeln!(out, "  {i:>6} {text}")?;
        }
        printed = got.len();
        if !run.world.stopped() {
            writeln!(
                out,
                "the run ended after world line {}",
                got.len().saturating_sub(1)
            )?;
            return Ok(());
        }
        loop {
            writeln!(out, "{STEP_HELP}")?;
            out.flush()?;
            let mut command = String::new();
            if input.read_line(&mut command)? == 0 {
                return Ok(());
            }
            match command.trim() {
                "" | "s" => break,
                "w" => world_state(out, &run, got.len().saturating_sub(1), json)?,
                "c" => {
                    let (_, all) = source.run(None)?;
                    for (i, text) in all.iter().enumerate().skip(printed) {
                        writeln!(out, "  {i:>6} {text}")?;
                    }
                    return Ok(());
                }
                "q" => return Ok(()),
                other => writeln!(out, "unknown command `{other}`")?,
            }
        }
        // The next pass: it records at least one line past those shown.
        line = printed;
    }
}

/// Every node and every link of `run`'s world, after world line `until`.
fn world_state(
    out: &mut dyn Write,
    run: &WorldRun,
    until: usize,
    json: bool,
) -> anyhow::Result<()> {
    let world = &run.world;
    writeln!(
        out,
        "world after the pass that recorded line {until}, at {}:",
        world.now()
    )?;
    for (index, node) in world.nodes().iter().enumerate() {
        let life = if world.is_down(index) { "down" } else { "up" };
        writeln!(
            out,
            "node {} ({life}, clock {}):",
            node.name,
            node.kernel.now()
        )?;
        let view = node.kernel.view();
        if json {
            writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
        } else {
            write!(out, "{view}")?;
        }
    }
    let links = world.describe_links();
    if links.is_empty() {
        writeln!(
            out,
            "links: every link empty, none cut or clogged, every node up"
        )?;
    }
    for link in links {
        writeln!(out, "link {link}")?;
    }
    Ok(())
}
