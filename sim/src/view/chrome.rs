//! `sim export TRACE --format chrome`: the trace as Chrome trace-event JSON, which Perfetto
//! (ui.perfetto.dev, `trace_processor`) and `chrome://tracing` open.
//!
//! A process per node (and one for the world's network), a thread per lane in the order lanes
//! appear; every event a complete slice (`X`) one unit long, on the event-order axis (an event's
//! line is its microsecond) or, with [`Axis::Simulated`], at its simulated time (each instant's
//! events a nanosecond apart, in order); messages as flow arrows (flow v2: `bind_id`, the line
//! of the message's `Sent`, with `flow_in`/`flow_out`) from the send through its queueing to its
//! delivery, drop or crossing to another node, and send errors from where they were queued to
//! the sender; drops, timeouts and faults in the `drop`, `timeout` and `fault` categories, named
//! with their reasons;
//! inbox and mailbox depths as counters. Each slice's `args` hold the record as the trace has it.

use super::model::View;
use serde::Serialize;
use serde_json::{Value, json};
use std::io::Write;

/// The time axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Axis {
    /// Events in trace order, one microsecond apart.
    Order,
    /// Events at their simulated time.
    Simulated,
}

/// The timestamp (microseconds) of each event on `axis`.
fn timestamps(view: &View, axis: Axis) -> Vec<f64> {
    match axis {
        Axis::Order => view.events.iter().map(|e| e.index as f64).collect(),
        Axis::Simulated => {
            // Events of one instant a nanosecond apart, in trace order.
            let mut last = (u64::MAX, 0u64);
            view.events
                .iter()
                .map(|e| {
                    let spread = if e.at == last.0 { last.1 + 1 } else { 0 };
                    last = (e.at, spread);
                    (e.at + spread) as f64 / 1_000.0
                })
                .collect()
        }
    }
}

/// One slice, written as it is serialized (no JSON tree of the whole trace is built).
#[derive(Serialize)]
struct Slice<'a> {
    ph: &'static str,
    name: &'a str,
    cat: &'static str,
    pid: usize,
    tid: usize,
    ts: f64,
    dur: f64,
    args: SliceArgs<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bind_id: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flow_in: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flow_out: bool,
}

#[derive(Serialize)]
struct SliceArgs<'a> {
    line: u64,
    at_ns: u64,
    record: &'a Value,
}

fn category(event: &super::model::ViewEvent) -> &'static str {
    match (event.mark, event.kind.as_str()) {
        (_, "Dropped") => "drop",
        (_, "TimedOut") => "timeout",
        (true, _) => "fault",
        (false, _) => "event",
    }
}

/// Writes the Chrome trace-event JSON of `view` to `out`, an event at a time.
///
/// # Errors
/// Writing failed.
pub fn write_chrome(view: &View, axis: Axis, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(b"{\"displayTimeUnit\":\"ns\",\"traceEvents\":[")?;
    let mut first = true;
    let mut item = |out: &mut dyn Write, value: &dyn erased::Json| -> std::io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        value.write_to(out)
    };
    let network = view.nodes.len();
    for (pid, name) in view.nodes.iter().enumerate() {
        let meta = json!({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}});
        item(out, &meta)?;
    }
    if view.lanes.iter().any(|l| l.node == network) {
        let meta = json!({"ph": "M", "name": "process_name", "pid": network, "tid": 0, "args": {"name": "network"}});
        item(out, &meta)?;
    }
    for (tid, lane) in view.lanes.iter().enumerate() {
        let meta = json!({"ph": "M", "name": "thread_name", "pid": lane.node, "tid": tid, "args": {"name": lane.name}});
        item(out, &meta)?;
    }
    let ts = timestamps(view, axis);
    let unit = if axis == Axis::Order { 1.0 } else { 0.001 };
    for (event, ts) in view.events.iter().zip(&ts) {
        let slice = Slice {
            ph: "X",
            name: &event.name,
            cat: category(event),
            pid: view.lanes[event.lane].node,
            tid: event.lane,
            ts: *ts,
            dur: unit,
            args: SliceArgs {
                line: event.index,
                at_ns: event.at,
                record: &event.record,
            },
            bind_id: event.flow.map(|f| f.key),
            flow_in: event.flow.is_some_and(|f| f.arrives),
            flow_out: event.flow.is_some_and(|f| f.leaves),
        };
        item(out, &slice)?;
    }
    for depth in &view.depths {
        let Some(ts) = ts.get(depth.index as usize) else {
            continue;
        };
        let counter = json!({"ph": "C", "name": depth.counter, "pid": depth.node, "ts": ts, "args": {"depth": depth.value}});
        item(out, &counter)?;
    }
    out.write_all(b"]}\n")
}

/// Serializing either a `Value` or a `Slice` through one closure.
mod erased {
    pub(super) trait Json {
        fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;
    }

    impl<T: serde::Serialize> Json for T {
        fn write_to(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
            serde_json::to_writer(out, self).map_err(std::io::Error::other)
        }
    }
}
