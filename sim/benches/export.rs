//! Figures of `sim export` (Chrome trace-event JSON), medians of wall time: reading a trace
//! into the view model, and writing the JSON, for traces of 10 000, 100 000 and 1 000 000
//! events, with the bytes an event takes. The traces are the pingpong example's events (with
//! its crash and restart) repeated, each copy's message ids moved apart, so every message
//! still pairs up.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock"
)]

use hyperkernel_sim::view::{chrome, model};
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The pingpong example's trace, as `sim run --trace` writes it.
fn example_trace() -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let scenario = format!("{}/scenarios/pingpong.json", env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(["run", &scenario, "--seed", "7", "--trace"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the example runs");
    std::fs::read_to_string(&path).unwrap()
}

/// A trace of `events` records: the example's repeated, ids and sequence numbers moved on.
fn trace_of(example: &str, events: usize) -> String {
    let mut lines = example.lines();
    let header = lines.next().unwrap();
    let records: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut out = String::with_capacity(events * 200);
    out.push_str(header);
    out.push('\n');
    for n in 0..events {
        let copy = (n / records.len()) as u64;
        let mut record = records[n % records.len()].clone();
        record["seq"] = n.into();
        if let Some(event) = record["event"]
            .as_object_mut()
            .and_then(|o| o.values_mut().next())
            && let Some(id) = event.get("id").and_then(serde_json::Value::as_u64)
        {
            event["id"] = id.wrapping_add(copy << 40).into();
        }
        out.push_str(&record.to_string());
        out.push('\n');
    }
    out
}

fn main() {
    let example = example_trace();
    println!("export: medians of 3 (view model, then the JSON written)");
    for events in [10_000, 100_000, 1_000_000] {
        let text = trace_of(&example, events);
        let (mut read, mut written, mut bytes) = (Vec::new(), Vec::new(), 0);
        for _ in 0..3 {
            let started = Instant::now();
            let view = model::view_of(&text).unwrap();
            read.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            let mut json = Vec::new();
            chrome::write_chrome(&view, chrome::Axis::Order, &mut json).unwrap();
            written.push(started.elapsed().as_secs_f64() * 1e3);
            bytes = json.len();
        }
        println!(
            "  {events:>9} events: view {:>8.1} ms, JSON {:>8.1} ms, {:>6.1} MB ({:.0} B an event; the trace {:.0} B an event)",
            median(read),
            median(written),
            bytes as f64 / 1e6,
            bytes as f64 / events as f64,
            text.len() as f64 / events as f64,
        );
    }
}
