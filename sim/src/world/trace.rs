//! A world's trace file (`trace_format` 2): a header naming the scenario, the seed and the
//! nodes, then one JSON line per record in world order: a node's trace record with its node's
//! name (`{"node":"a.os","seq":…,"at":…,"hash":…,"event":…}`), or a network event with the
//! world's time (`{"node":null,"at":…,"net":{…}}`, nodes by index into the header's list).
//! Each node's own records are the ones its kernel's trace holds, so per-node hashes are
//! unchanged; the world's hash chains them with the network's events.

use super::{Line, World};
use serde::Serialize;
use std::path::Path;

/// The trace format of world traces.
pub const WORLD_TRACE_FORMAT: u32 = 2;

#[derive(Serialize)]
struct Header<'a> {
    trace_format: u32,
    scenario: &'a Path,
    seed: u64,
    nodes: Vec<String>,
    hash: String,
}

#[derive(Serialize)]
struct NetLine<'a> {
    node: Option<()>,
    at: hyperkernel::Timestamp,
    net: &'a super::NetEvent,
}

/// The world's trace as text: the header line, then one line per record in world order.
pub fn world_trace_text(scenario: &Path, seed: u64, world: &World) -> String {
    let header = Header {
        trace_format: WORLD_TRACE_FORMAT,
        scenario,
        seed,
        nodes: world.names(),
        hash: format!("{:016x}", world.hash()),
    };
    let mut text = serde_json::to_string(&header).unwrap_or_default();
    text.push('\n');
    for line in world.lines() {
        let json = match *line {
            Line::Node { node, seq } => node_line(world, node, seq),
            Line::Net { at, event } => world.events().get(event).and_then(|net| {
                serde_json::to_value(NetLine {
                    node: None,
                    at,
                    net,
                })
                .ok()
            }),
        };
        if let Some(json) = json {
            text.push_str(&json.to_string());
            text.push('\n');
        }
    }
    text
}

/// Record `seq` of node `node`, with the node's name, if its trace still holds it.
fn node_line(world: &World, node: usize, seq: u64) -> Option<serde_json::Value> {
    let the = world.nodes().get(node)?;
    let records = the.kernel.trace().records();
    let at = records.partition_point(|r| r.seq < seq);
    let record = records.get(at).filter(|r| r.seq == seq)?;
    let mut json = serde_json::to_value(record).ok()?;
    let object = json.as_object_mut()?;
    object.insert("node".into(), the.name.clone().into());
    Some(json)
}

/// Whether `text` is a world trace (its header says `trace_format` 2).
pub fn is_world_trace(text: &str) -> bool {
    text.lines()
        .next()
        .and_then(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .is_some_and(|header| header["trace_format"] == WORLD_TRACE_FORMAT)
}

/// Who a world trace's line is about: its node's name, or `network`.
fn whose(line: &str) -> String {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["node"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "network".into())
}

/// Where two world traces part: the first line that differs, naming its node (or the
/// network), with `context` lines before it and both versions; `None` when they are the same
/// after their headers.
pub fn diff_world_traces(a: &str, b: &str, context: usize) -> Option<String> {
    let (a_lines, b_lines): (Vec<&str>, Vec<&str>) =
        (a.lines().skip(1).collect(), b.lines().skip(1).collect());
    let at = a_lines
        .iter()
        .zip(&b_lines)
        .position(|(x, y)| x != y)
        .or_else(|| (a_lines.len() != b_lines.len()).then(|| a_lines.len().min(b_lines.len())))?;
    let mut out = String::new();
    let first = a_lines
        .get(at)
        .or(b_lines.get(at))
        .copied()
        .unwrap_or_default();
    out.push_str(&format!(
        "first difference at world line {at} ({}; `sim replay TRACE --until {at}` shows the \
         world there):\n",
        whose(first)
    ));
    for line in &a_lines[at.saturating_sub(context)..at] {
        out.push_str(&format!("  {line}\n"));
    }
    let show =
        |line: Option<&&str>| line.map_or("(the trace ends)".to_owned(), |l| (*l).to_owned());
    out.push_str(&format!("- {}\n", show(a_lines.get(at))));
    out.push_str(&format!("+ {}\n", show(b_lines.get(at))));
    debug_assert!(
        at <= a_lines.len().max(b_lines.len()),
        "the difference is within the traces"
    );
    Some(out)
}
