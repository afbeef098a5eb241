//! Trace files and replay debugging.
//!
//! A trace file is JSON lines: a header `{"trace_format":1,"scenario":…,"seed":…,
//! "planted_bug":…}` that says how the run can be made again, then one line per event.
//! `sim replay` re-runs the header's scenario and seed (a run is a pure function of them) and
//! stops at the event asked for, where the whole kernel can be inspected; the events already
//! in the file must come out again, or the replay reports where the build or the scenario
//! changed. `sim diff` finds the first event where two traces part, with context.

use hyperkernel::{Kernel, TraceRecord};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The trace format this build writes and reads.
pub const TRACE_FORMAT: u32 = 1;

/// Largest trace file read, in bytes (its events are held in memory to compare).
pub const TRACE_LEN_MAX: u64 = 1 << 30;

/// The first line of a trace file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`TRACE_FORMAT`].
    pub trace_format: u32,
    /// The scenario file, as given to `sim run` (`demo` for `sim demo`).
    pub scenario: PathBuf,
    /// The seed.
    pub seed: u64,
    /// Whether the test-only planted bug was on.
    #[serde(default)]
    pub planted_bug: bool,
    /// The node home whose journal was replayed (`sim replay --journal`), and its epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<(PathBuf, u64)>,
}

/// A trace file read back.
#[derive(Clone, Debug)]
pub struct TraceFile {
    /// How the run was made.
    pub header: Header,
    /// Its events.
    pub records: Vec<TraceRecord>,
}

/// The text of a trace file: the header line, then the kernel's events.
pub fn trace_text(header: &Header, kernel: &Kernel) -> String {
    let mut text = serde_json::to_string(header).unwrap_or_default();
    text.push('\n');
    text.push_str(&kernel.trace().to_json_lines());
    text
}

/// Reads a trace file.
///
/// # Errors
/// The file cannot be read, has no header of this format, or has a line that is not an
/// event; the message names the file, the line and the problem.
pub fn read_trace(path: &Path) -> Result<TraceFile, String> {
    let text = crate::files::read_text(path, TRACE_LEN_MAX).map_err(|e| e.to_string())?;
    parse_trace(path, &text)
}

/// Parses the text of trace file `path`.
///
/// # Errors
/// As [`read_trace`], but for reading the file.
pub fn parse_trace(path: &Path, text: &str) -> Result<TraceFile, String> {
    let place =
        |line: usize, problem: String| format!("{}: line {line}: {problem}", path.display());
    let mut lines = text.lines();
    let first = lines
        .next()
        .ok_or_else(|| place(1, "empty file, not a trace".into()))?;
    let value: serde_json::Value =
        serde_json::from_str(first).map_err(|e| place(1, format!("not JSON: {e}")))?;
    let format = value
        .get("trace_format")
        .and_then(serde_json::Value::as_u64);
    match format {
        Some(f) if f == u64::from(TRACE_FORMAT) => {}
        Some(f) => {
            return Err(place(
                1,
                format!("trace format {f} is not supported (this sim reads {TRACE_FORMAT})"),
            ));
        }
        None => {
            return Err(place(
                1,
                "no trace header (`trace_format`); was it written by `sim run --trace`?".into(),
            ));
        }
    }
    let header: Header =
        serde_json::from_value(value).map_err(|e| place(1, format!("bad header: {e}")))?;
    let mut records = Vec::new();
    for (i, line) in lines.enumerate() {
        let record: TraceRecord =
            serde_json::from_str(line).map_err(|e| place(i + 2, format!("not an event: {e}")))?;
        if record.seq != records.len() as u64 {
            return Err(place(i + 2, format!("event {} out of order", record.seq)));
        }
        records.push(record);
    }
    Ok(TraceFile { header, records })
}

/// Where two traces part: the index of the first differing event, if any.
pub fn divergence(a: &[TraceRecord], b: &[TraceRecord]) -> Option<usize> {
    (0..a.len().max(b.len())).find(|i| a.get(*i) != b.get(*i))
}

/// One event as a line for people: `#seq at time: event`.
pub fn event_line(record: &TraceRecord) -> String {
    let event = serde_json::to_string(&record.event).unwrap_or_default();
    format!("#{} at {}: {event}", record.seq, record.at)
}

/// The report of `sim diff`: the first divergent event of both traces, with `context` events
/// before it (shared by both) and after it (each side's own).
pub fn diff_report(a: &[TraceRecord], b: &[TraceRecord], context: usize) -> Option<String> {
    let index = divergence(a, b)?;
    let mut out = format!("traces differ from event {index}\n");
    let start = index.saturating_sub(context);
    for record in &a[start..index] {
        out.push_str(&format!("  {}\n", event_line(record)));
    }
    for (name, side) in [("first", a), ("second", b)] {
        out.push_str(&format!("{name}:\n"));
        let end = (index + 1 + context).min(side.len());
        if index >= side.len() {
            out.push_str(&format!("  (ends after {} events)\n", side.len()));
        }
        for (offset, record) in side.get(index..end).unwrap_or_default().iter().enumerate() {
            let mark = if offset == 0 { '>' } else { ' ' };
            out.push_str(&format!("{mark} {}\n", event_line(record)));
        }
    }
    Some(out)
}

/// What `sim replay` does.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// Stop after the step that recorded this event.
    pub until: Option<u64>,
    /// Step interactively (from `until`, or from the start).
    pub step: bool,
    /// Print the world as JSON instead of text.
    pub json: bool,
}

/// Where a replay comes from: a trace file (its header says how to re-run it, and its events
/// are checked against the re-run) or a scenario and seed.
pub struct Source {
    /// The scenario.
    pub scenario: crate::node::scenario::Scenario,
    /// The seed.
    pub seed: u64,
    /// How to run.
    pub options: crate::run::Options,
    /// The events the re-run must reproduce (from a trace file).
    pub expected: Option<Vec<TraceRecord>>,
}

impl Source {
    /// Reads `path`: a trace file if its first line is a trace header, else a scenario run
    /// with `seed`.
    ///
    /// # Errors
    /// The file is neither, or the trace's scenario cannot be loaded.
    pub fn open(path: &Path, seed: u64, options: crate::run::Options) -> Result<Self, String> {
        let text = crate::files::read_text(path, TRACE_LEN_MAX).map_err(|e| e.to_string())?;
        let first = text.lines().next().unwrap_or_default();
        if !first.contains("\"trace_format\"") {
            let scenario =
                crate::node::scenario::Scenario::load(path).map_err(|e| e.to_string())?;
            return Ok(Self {
                scenario,
                seed,
                options,
                expected: None,
            });
        }
        let trace = parse_trace(path, &text)?;
        drop(text);
        if let Some((home, epoch)) = &trace.header.journal {
            return Err(format!(
                "{}: a trace of a node's journal is replayed with `sim replay --journal {} --epoch {epoch}`",
                path.display(),
                home.display()
            ));
        }
        if trace.header.scenario == Path::new("demo") {
            return Err(format!(
                "{}: traces of `sim demo` are replayed with `sim demo --seed {}`",
                path.display(),
                trace.header.seed
            ));
        }
        let scenario = crate::node::scenario::Scenario::load(&trace.header.scenario)
            .map_err(|e| format!("{}: its scenario: {e}", path.display()))?;
        Ok(Self {
            scenario,
            seed: trace.header.seed,
            options: crate::run::Options {
                planted_bug: trace.header.planted_bug,
                ..crate::run::Options::default()
            },
            expected: Some(trace.records),
        })
    }
}

/// Interactive stepping: reads commands after each step.
struct Stepper<'io> {
    input: &'io mut dyn std::io::BufRead,
    out: &'io mut dyn std::io::Write,
    printed: usize,
    json: bool,
}

const STEP_HELP: &str = "step> Enter: next step · w: world · c: run on without stopping · q: quit";

impl Stepper<'_> {
    /// Prints the events since the last call, then takes commands until one moves on.
    /// Returns `Some(go_on)` once decided.
    fn after_step(&mut self, kernel: &Kernel) -> bool {
        let records = kernel.trace().records();
        for record in records.get(self.printed..).unwrap_or_default() {
            let _ = writeln!(self.out, "{}", event_line(record));
        }
        self.printed = records.len();
        loop {
            let _ = writeln!(self.out, "{STEP_HELP}");
            let _ = self.out.flush();
            let mut line = String::new();
            match self.input.read_line(&mut line) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            match line.trim() {
                "" | "s" => return true,
                "w" => {
                    let view = kernel.view();
                    let _ = if self.json {
                        writeln!(
                            self.out,
                            "{}",
                            serde_json::to_string_pretty(&view).unwrap_or_default()
                        )
                    } else {
                        write!(self.out, "{view}")
                    };
                }
                "c" => {
                    self.printed = usize::MAX;
                    return true;
                }
                "q" => return false,
                other => {
                    let _ = writeln!(self.out, "unknown command `{other}`");
                }
            }
        }
    }
}

/// Checks that the re-run reproduced the trace file's events as far as both go.
fn same_prefix(expected: &[TraceRecord], got: &[TraceRecord]) -> Result<(), String> {
    let n = got.len().min(expected.len());
    let Some(index) = divergence(&expected[..n], &got[..n]) else {
        return Ok(());
    };
    let report = diff_report(&expected[..n], &got[..n], 3).unwrap_or_default();
    Err(format!(
        "the re-run differs from the trace at event {index} (the build or the scenario changed since it was written)\n{report}"
    ))
}

/// What a replay does after each step: stop at `--until`, or step interactively.
pub(crate) struct Watch<'io> {
    stepper: Stepper<'io>,
    until: Option<u64>,
    step: bool,
    stepping: bool,
}

impl<'io> Watch<'io> {
    pub(crate) fn new(
        how: &Replay,
        input: &'io mut dyn std::io::BufRead,
        out: &'io mut dyn std::io::Write,
    ) -> Self {
        Self {
            stepper: Stepper {
                input,
                out,
                printed: 0,
                json: how.json,
            },
            until: how.until,
            step: how.step,
            stepping: how.step && how.until.is_none(),
        }
    }

    /// Called after every step; false stops the replay there.
    pub(crate) fn after_step(&mut self, kernel: &Kernel) -> bool {
        let reached = self.until.is_some_and(|u| kernel.trace().len() > u);
        if reached && !self.step {
            return false;
        }
        if reached && !self.stepping {
            self.stepping = true;
            self.stepper.printed = self.until.map_or(0, |u| usize::try_from(u).unwrap_or(0));
        }
        if self.stepping && self.stepper.printed != usize::MAX {
            return self.stepper.after_step(kernel);
        }
        true
    }
}

/// Runs a replay, writing to `out` and reading step commands from `input`.
///
/// # Errors
/// Setup failed, the run ended before `until`, or the re-run differs from the trace file.
pub fn replay(
    source: &Source,
    how: &Replay,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    let mut watch = Watch::new(how, input, out);
    let mut hook = |kernel: &Kernel| watch.after_step(kernel);
    let run = crate::run::run_with(&source.scenario, source.seed, source.options, &mut hook)
        .map_err(|e| e.to_string())?;
    let got = run.kernel.trace().records();
    if let Some(expected) = &source.expected {
        same_prefix(expected, got)?;
    }
    report(&run.kernel, how, out)
}

/// Prints where a replay stopped: the world at its end, or the events up to `--until` and the
/// world after the step that recorded it.
///
/// # Errors
/// The run has no event `--until`.
pub fn report(kernel: &Kernel, how: &Replay, out: &mut dyn std::io::Write) -> Result<(), String> {
    let got = kernel.trace().records();
    if how.step {
        return Ok(());
    }
    let Some(until) = how.until else {
        let _ = write!(out, "{}", kernel.view());
        return Ok(());
    };
    let Some(record) = got.get(usize::try_from(until).unwrap_or(usize::MAX)) else {
        return Err(format!(
            "the run has only {} events; there is no event {until}",
            got.len()
        ));
    };
    let start = usize::try_from(until.saturating_sub(5)).unwrap_or(0);
    for earlier in &got[start..] {
        let mark = if earlier.seq == record.seq { '>' } else { ' ' };
        let _ = writeln!(out, "{mark} {}", event_line(earlier));
    }
    let _ = writeln!(out, "world after the step that recorded event {until}:");
    let view = kernel.view();
    if how.json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&view).unwrap_or_default()
        );
    } else {
        let _ = write!(out, "{view}");
    }
    Ok(())
}
