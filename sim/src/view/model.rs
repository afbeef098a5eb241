//! What a viewer needs from a trace, derived in one tested place: every event on a lane (a
//! process of a node, the node's kernel, its network door, or the world's network), and every
//! message's life as one key from its `Sent` through its queueing to its delivery, drop or
//! crossing to another node (kernel ids are reused on purpose, so the key is the `Sent`'s line).
//! Send errors are keyed from where they were queued to where they were delivered. Inbox and
//! mailbox depths are counted along the way. Reads one-node traces (format 1) and world traces
//! (format 2) alike; the trace's hash chain is not needed and not changed.

use hyperkernel::{Event, Fault, TraceRecord};
use std::collections::BTreeMap;

/// A lane: a process of a node (or its kernel, its network door, or the world's network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    /// The node's index in [`View::nodes`] (the world's network: `nodes.len()`).
    pub node: usize,
    /// What runs there (`counter:counter:sim.os`, `(network)`).
    pub name: String,
}

/// A message's key on an event, and whether the event starts, continues or ends its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// The key: the line index of the message's `Sent` (for send errors: of the
    /// `SendErrorQueued`).
    pub key: u64,
    /// The flow arrives here.
    pub arrives: bool,
    /// The flow leaves here.
    pub leaves: bool,
}

/// One event of the trace, placed.
#[derive(Clone, Debug)]
pub struct ViewEvent {
    /// Its line in the trace after the header (the order axis).
    pub index: u64,
    /// Its lane in [`View::lanes`].
    pub lane: usize,
    /// Simulated nanoseconds.
    pub at: u64,
    /// Its kind (`Sent`, `Dropped`, `FaultInjected`, `net:Crash` …).
    pub kind: String,
    /// A short name (`Dropped: NoMessagingCapability`).
    pub name: String,
    /// A message flow through it.
    pub flow: Option<Flow>,
    /// A drop or fault (drawn as such).
    pub mark: bool,
    /// The record as the trace has it.
    pub record: serde_json::Value,
}

/// A depth at an event: the node's inbox, or a process's mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Depth {
    /// The event's index.
    pub index: u64,
    /// The node.
    pub node: usize,
    /// `inbox`, or `mailbox PROCESS`.
    pub counter: String,
    /// Its value after the event.
    pub value: u64,
}

/// A trace as a viewer sees it.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The nodes' names, in order.
    pub nodes: Vec<String>,
    /// The lanes, in the order they first appear within each node.
    pub lanes: Vec<Lane>,
    /// The events, in trace order.
    pub events: Vec<ViewEvent>,
    /// Inbox and mailbox depths where they change.
    pub depths: Vec<Depth>,
}

/// The keys of messages in flight while the trace is read.
#[derive(Default)]
struct Keys {
    /// (node, id, is a response) → the latest `Sent` with them.
    sent: BTreeMap<(usize, u64, bool), u64>,
    /// (node, id) → the latest `Sent` with the id, either kind.
    any: BTreeMap<(usize, u64), u64>,
    /// (id, source) → the message that left its node with them, for its arrival elsewhere.
    crossing: BTreeMap<(u64, String), u64>,
    /// (node, process, id) → a send error queued and not yet delivered.
    errors: BTreeMap<(usize, String, u64), u64>,
    /// Each message's source, for its crossing to another node.
    sources: BTreeMap<u64, String>,
}

/// Builds the view of trace text `text` (format 1 or 2).
///
/// # Errors
/// No header, a format this sim does not read, or a line that is not a record; the message
/// names the line.
pub fn view_of(text: &str) -> Result<View, String> {
    let mut lines = text.lines();
    let header: serde_json::Value = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or("line 1: no trace header")?;
    let format = header["trace_format"].as_u64();
    let mut view = View::default();
    match format {
        Some(1) => view.nodes.push(UNKNOWN.into()),
        Some(2) => {
            let nodes = header["nodes"]
                .as_array()
                .ok_or("line 1: a world header without nodes")?;
            view.nodes = nodes
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect();
        }
        Some(other) => return Err(format!("line 1: trace format {other} is not supported")),
        None => return Err("line 1: no trace header (`trace_format`)".into()),
    }
    let mut builder = Builder {
        names: view.nodes.clone(),
        ..Builder::default()
    };
    for (index, line) in lines.enumerate() {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: not JSON: {e}", index + 2))?;
        builder
            .line(&mut view, index as u64, value)
            .map_err(|e| format!("line {}: {e}", index + 2))?;
    }
    builder.finish(&mut view);
    if format == Some(1) {
        view.nodes = builder.names.clone();
    }
    debug_assert!(
        view.events.iter().all(|e| e.lane < view.lanes.len()),
        "every event on a lane"
    );
    Ok(view)
}

#[derive(Default)]
struct Builder {
    /// The nodes' names (a one-node trace's is learned from its first capability).
    names: Vec<String>,
    keys: Keys,
    lanes: BTreeMap<(usize, String), usize>,
    inbox: BTreeMap<usize, u64>,
    mailboxes: BTreeMap<(usize, String), u64>,
}

impl Builder {
    fn lane(&mut self, view: &mut View, node: usize, name: &str) -> usize {
        if let Some(lane) = self.lanes.get(&(node, name.to_owned())) {
            return *lane;
        }
        view.lanes.push(Lane {
            node,
            name: name.to_owned(),
        });
        let lane = view.lanes.len() - 1;
        self.lanes.insert((node, name.to_owned()), lane);
        lane
    }

    fn line(
        &mut self,
        view: &mut View,
        index: u64,
        value: serde_json::Value,
    ) -> Result<(), String> {
        if let Some(net) = value.get("net") {
            let at = value["at"].as_u64().unwrap_or(0);
            let kind = net
                .as_object()
                .and_then(|o| o.keys().next().cloned())
                .unwrap_or_default();
            let network = view.nodes.len();
            let lane = self.lane(view, network, "(network)");
            let mark = matches!(kind.as_str(), "Crash" | "Cut" | "Clog" | "Reset" | "Lost");
            view.events.push(ViewEvent {
                index,
                lane,
                at,
                kind: format!("net:{kind}"),
                name: kind,
                flow: None,
                mark,
                record: value,
            });
            return Ok(());
        }
        let node = match value.get("node").and_then(serde_json::Value::as_str) {
            Some(name) => view
                .nodes
                .iter()
                .position(|n| n == name)
                .ok_or(format!("node {name} is not in the header"))?,
            None => 0,
        };
        let record: TraceRecord =
            serde_json::from_value(value.clone()).map_err(|e| format!("not a record: {e}"))?;
        if let Event::Initialized { capabilities, .. } = &record.event
            && self.names.first().is_some_and(|n| n == UNKNOWN)
            && let Some(cap) = capabilities.first()
        {
            self.names[0] = cap.issuer.node.to_string();
        }
        let placed = self.place(node, index, &record.event);
        let lane = self.lane(view, node, &placed.lane);
        view.events.push(ViewEvent {
            index,
            lane,
            at: record.at.0,
            kind: placed.kind,
            name: placed.name,
            flow: placed.flow,
            mark: placed.mark,
            record: value,
        });
        self.count(view, node, index, &record.event);
        Ok(())
    }

    /// Keeps only flows that arrive somewhere: a message that never left its `Sent` in this
    /// trace (cut off by the run's end) has no arrow.
    fn finish(&mut self, view: &mut View) {
        let arriving: std::collections::BTreeSet<u64> = view
            .events
            .iter()
            .filter_map(|e| e.flow.filter(|f| f.arrives).map(|f| f.key))
            .collect();
        for event in &mut view.events {
            if let Some(flow) = event.flow
                && !arriving.contains(&flow.key)
            {
                event.flow = None;
            }
        }
    }

    /// Inbox and mailbox depths.
    fn count(&mut self, view: &mut View, node: usize, index: u64, event: &Event) {
        let mut change = |counter: String, up: bool, view: &mut View| {
            let slot = if counter == "inbox" {
                self.inbox.entry(node).or_insert(0)
            } else {
                self.mailboxes.entry((node, counter.clone())).or_insert(0)
            };
            *slot = if up {
                *slot + 1
            } else {
                slot.saturating_sub(1)
            };
            view.depths.push(Depth {
                index,
                node,
                counter,
                value: *slot,
            });
        };
        match event {
            Event::Sent { .. } => change("inbox".into(), true, view),
            Event::Enqueued { process, .. } => {
                change("inbox".into(), false, view);
                change(format!("mailbox {process}"), true, view);
            }
            Event::Delivered {
                process,
                kind: Some(_),
                ..
            } => {
                change(format!("mailbox {process}"), false, view);
            }
            Event::Dropped { .. } | Event::Command { .. } | Event::Transmitted { .. } => {
                change("inbox".into(), false, view);
            }
            _ => {}
        }
    }
}

/// Where an event goes and what it is called.
struct Placed {
    lane: String,
    kind: String,
    name: String,
    flow: Option<Flow>,
    mark: bool,
}

const KERNEL: &str = "kernel:distro:sys";
/// A one-node trace's node until its name is learned (its header does not say it).
const UNKNOWN: &str = "node";
const DOOR: &str = "(network)";

fn leaves(key: u64) -> Option<Flow> {
    Some(Flow {
        key,
        arrives: false,
        leaves: true,
    })
}

fn arrives(key: Option<u64>, leaves: bool) -> Option<Flow> {
    key.map(|key| Flow {
        key,
        arrives: true,
        leaves,
    })
}

impl Placed {
    fn new(event: &Event, lane: &str, name: String, flow: Option<Flow>, mark: bool) -> Self {
        Self {
            lane: lane.to_owned(),
            kind: event_kind(event).to_owned(),
            name,
            flow,
            mark,
        }
    }
}

impl Builder {
    fn place(&mut self, node: usize, index: u64, event: &Event) -> Placed {
        match event {
            Event::Sent { .. } | Event::Enqueued { .. } | Event::Delivered { .. } => {
                self.place_message(node, index, event)
            }
            Event::SendErrorQueued { id, process, kind } => {
                self.keys
                    .errors
                    .insert((node, process.to_string(), *id), index);
                let name = format!("SendErrorQueued {kind:?}");
                Placed::new(event, KERNEL, name, leaves(index), false)
            }
            Event::Dropped { id, reason, .. } => {
                let key = self.keys.any.get(&(node, *id)).copied();
                Placed::new(
                    event,
                    KERNEL,
                    format!("Dropped: {reason:?}"),
                    arrives(key, false),
                    true,
                )
            }
            Event::Transmitted { id, .. } => {
                let key = self.keys.any.get(&(node, *id)).copied();
                if let Some(key) = key
                    && let Some(source) = self.keys.sources.get(&key)
                {
                    self.keys.crossing.insert((*id, source.clone()), key);
                }
                Placed::new(event, DOOR, "Transmitted".into(), arrives(key, true), false)
            }
            Event::Command { id, command, .. } => {
                let key = self.keys.any.get(&(node, *id)).copied();
                Placed::new(
                    event,
                    KERNEL,
                    format!("Command {command}"),
                    arrives(key, false),
                    false,
                )
            }
            Event::TimedOut { id, process } => Placed::new(
                event,
                &process.to_string(),
                format!("TimedOut {id}"),
                None,
                true,
            ),
            Event::FaultInjected { fault } => {
                let (lane, name) = fault_place(fault);
                Placed::new(event, &lane, name, None, true)
            }
            other => {
                let lane = process_of(other).unwrap_or_else(|| KERNEL.to_owned());
                Placed::new(event, &lane, event_kind(other).to_owned(), None, false)
            }
        }
    }

    /// A message's send, queueing and delivery (of a message or of a send error).
    fn place_message(&mut self, node: usize, index: u64, event: &Event) -> Placed {
        let response =
            |kind: &hyperkernel::MessageKind| matches!(kind, hyperkernel::MessageKind::Response);
        match event {
            Event::Sent {
                id, source, kind, ..
            } => {
                // A message from another node continues the flow it left its node with.
                let crossed = self.keys.crossing.remove(&(*id, source.to_string()));
                let key = crossed.unwrap_or(index);
                self.keys.sent.insert((node, *id, response(kind)), key);
                self.keys.any.insert((node, *id), key);
                self.keys.sources.insert(key, source.to_string());
                if self.names.get(node).is_some_and(|n| n == UNKNOWN) {
                    // A one-node trace with no capability yet: its first sender is local.
                    self.names[node] = source.node.to_string();
                }
                let from_here = self.names.get(node).is_some_and(|n| **n == *source.node);
                let lane = if from_here {
                    source.process.to_string()
                } else {
                    DOOR.to_owned()
                };
                let flow = if crossed.is_some() {
                    arrives(Some(key), true)
                } else {
                    leaves(key)
                };
                Placed::new(event, &lane, format!("Sent {kind:?}"), flow, false)
            }
            Event::Enqueued { id, process, kind } => {
                let key = self.keys.sent.get(&(node, *id, response(kind))).copied();
                let name = format!("Enqueued {kind:?}");
                Placed::new(event, &process.to_string(), name, arrives(key, true), false)
            }
            Event::Delivered {
                id,
                process,
                kind: Some(kind),
            } => {
                let key = self.keys.sent.get(&(node, *id, response(kind))).copied();
                let name = format!("Delivered {kind:?}");
                Placed::new(
                    event,
                    &process.to_string(),
                    name,
                    arrives(key, false),
                    false,
                )
            }
            Event::Delivered {
                id,
                process,
                kind: None,
            } => {
                let key = self.keys.errors.remove(&(node, process.to_string(), *id));
                let name = "Delivered send error".to_owned();
                Placed::new(
                    event,
                    &process.to_string(),
                    name,
                    arrives(key, false),
                    false,
                )
            }
            other => not_a_message(other),
        }
    }
}

/// `place_message` was given an event that is no message's.
fn not_a_message(event: &Event) -> Placed {
    debug_assert!(false, "not a message event: {event:?}");
    Placed::new(event, KERNEL, event_kind(event).to_owned(), None, false)
}

/// The variant's name.
fn event_kind(event: &Event) -> &'static str {
    match event {
        Event::Sent { .. } => "Sent",
        Event::Enqueued { .. } => "Enqueued",
        Event::Delivered { .. } => "Delivered",
        Event::Dropped { .. } => "Dropped",
        Event::SendErrorQueued { .. } => "SendErrorQueued",
        Event::Command { .. } => "Command",
        Event::CommandFailed { .. } => "CommandFailed",
        Event::Replied { .. } => "Replied",
        Event::Initialized { .. } => "Initialized",
        Event::Started { .. } => "Started",
        Event::Yielded { .. } => "Yielded",
        Event::Exited { .. } => "Exited",
        Event::CapabilitiesChanged { .. } => "CapabilitiesChanged",
        Event::RestartScheduled { .. } => "RestartScheduled",
        Event::TimedOut { .. } => "TimedOut",
        Event::Alarm { .. } => "Alarm",
        Event::Print { .. } => "Print",
        Event::ClockAdvanced { .. } => "ClockAdvanced",
        Event::Shutdown => "Shutdown",
        Event::StorageFailed { .. } => "StorageFailed",
        Event::Transmitted { .. } => "Transmitted",
        Event::FaultInjected { .. } => "FaultInjected",
        Event::Body { .. } => "Body",
        Event::Sleeping { .. } => "Sleeping",
        Event::CapabilitiesPruned { .. } => "CapabilitiesPruned",
    }
}

/// The process an event is about, if it names one.
fn process_of(event: &Event) -> Option<String> {
    match event {
        Event::Initialized { process, .. }
        | Event::Started { process }
        | Event::Yielded { process }
        | Event::Exited { process, .. }
        | Event::CapabilitiesChanged { process, .. }
        | Event::RestartScheduled { process, .. }
        | Event::Alarm { process, .. }
        | Event::Print { process, .. }
        | Event::Sleeping { process, .. } => Some(process.to_string()),
        _ => None,
    }
}

/// Where a fault is drawn, and its name.
fn fault_place(fault: &Fault) -> (String, String) {
    match fault {
        Fault::Trapped { process, fuel } => (
            process.to_string(),
            format!("fault: trapped after {fuel} fuel"),
        ),
        Fault::Crashed { process } => (process.to_string(), "fault: crashed".into()),
        Fault::Delayed { id, .. } => (KERNEL.into(), format!("fault: message {id} delayed")),
        Fault::NetworkDropped { id, .. } => (DOOR.into(), format!("fault: message {id} lost")),
        Fault::NetworkDuplicated { id, .. } => {
            (DOOR.into(), format!("fault: message {id} duplicated"))
        }
        Fault::Rebooted { downtime_ms } => (
            KERNEL.into(),
            format!("fault: node rebooted after {downtime_ms} ms"),
        ),
        Fault::Disk { what } => (KERNEL.into(), format!("fault: disk: {what}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(seq: u64, event: &str) -> String {
        format!(r#"{{"seq":{seq},"at":{seq},"hash":"0000000000000000","event":{event}}}"#)
    }

    #[test]
    fn a_reused_id_is_two_messages_and_a_send_error_is_its_own_flow() {
        let sent = |source: &str| {
            format!(
                r#"{{"Sent":{{"id":7,"source":"a.os@{source}","target":"a.os@b:b:a.os","kind":"Request","expects_response":5,"body_len":1,"body_hash":1}}}}"#
            )
        };
        let text = [
            r#"{"trace_format":1,"scenario":"x","seed":1}"#.to_owned(),
            line(0, &sent("c:c:a.os")),
            line(1, r#"{"Enqueued":{"id":7,"process":"b:b:a.os","kind":"Request"}}"#),
            line(2, r#"{"Delivered":{"id":7,"process":"b:b:a.os","kind":"Request"}}"#),
            line(3, &sent("c:c:a.os")),
            line(4, r#"{"Dropped":{"id":7,"source":"a.os@c:c:a.os","target":"a.os@b:b:a.os","reason":"MailboxFull"}}"#),
            line(5, r#"{"SendErrorQueued":{"id":7,"process":"c:c:a.os","kind":"Offline"}}"#),
            line(6, r#"{"Delivered":{"id":7,"process":"c:c:a.os","kind":null}}"#),
        ]
        .join("\n");
        let view = view_of(&text).unwrap();
        let keys: Vec<Option<u64>> = view.events.iter().map(|e| e.flow.map(|f| f.key)).collect();
        assert_eq!(
            keys,
            [
                Some(0),
                Some(0),
                Some(0),
                Some(3),
                Some(3),
                Some(5),
                Some(5)
            ],
            "the second Sent of id 7 is another message"
        );
        assert!(view.events[4].mark && view.events[4].name == "Dropped: MailboxFull");
        // Lanes: the sender, the receiver, the kernel (the drop and the error's queueing).
        let names: Vec<&str> = view.lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["c:c:a.os", "b:b:a.os", KERNEL]);
        let inbox: Vec<u64> = view
            .depths
            .iter()
            .filter(|d| d.counter == "inbox")
            .map(|d| d.value)
            .collect();
        assert_eq!(inbox, [1, 0, 1, 0], "sent, routed, sent, dropped");
    }

    #[test]
    fn a_flow_that_never_arrives_is_no_arrow() {
        let text = [
            r#"{"trace_format":1,"scenario":"x","seed":1}"#.to_owned(),
            line(
                0,
                r#"{"Sent":{"id":1,"source":"a.os@c:c:a.os","target":"a.os@b:b:a.os","kind":"Request","expects_response":null,"body_len":0,"body_hash":0}}"#,
            ),
        ]
        .join("\n");
        let view = view_of(&text).unwrap();
        assert_eq!(view.events.len(), 1);
        assert!(view.events[0].flow.is_none(), "cut off by the run's end");
        assert!(view_of("").is_err() && view_of("{\"trace_format\":3}").is_err());
    }
}
