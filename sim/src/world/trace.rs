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
