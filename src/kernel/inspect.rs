//! A read-only view of the whole kernel at one moment, for replay debugging (`sim replay
//! --until`) and liveness reports: the process table with each mailbox, capabilities and
//! outstanding requests, the inbox, messages held in transit, timers and pending restarts.
//! Everything is listed in a fixed order, so two views of the same moment are identical.

use super::Kernel;
use super::schedule::Timer;
use super::state::{Delivery, ProcessEntry};
use crate::env::Timestamp;
use crate::types::{Address, KernelMessage, OnExit, ProcessId};
use serde::Serialize;
use std::fmt;

/// A message as the view shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// Message id (or request id of a send error).
    pub id: u64,
    /// `request`, `response`, `send-error` or `alarm`.
    pub kind: &'static str,
    /// Where it came from (none for alarms).
    pub source: Option<Address>,
    /// Where it goes (none for mailbox entries: the owner).
    pub target: Option<Address>,
}

/// A request a process waits to have answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutstandingView {
    /// The request id.
    pub id: u64,
    /// Where it went.
    pub target: Address,
    /// When it times out (none once answered).
    pub deadline: Option<Timestamp>,
    /// An answer is queued.
    pub answered: bool,
}

/// One process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessView {
    /// Its id.
    pub id: ProcessId,
    /// Lifecycle state (`Receiving`, `Awaiting(id)`, …).
    pub state: String,
    /// Acted for by the harness.
    pub driven: bool,
    /// Any process may message it.
    pub public: bool,
    /// What happens when it ends.
    pub on_exit: OnExit,
    /// Its mailbox, oldest first.
    pub mailbox: Vec<MessageView>,
    /// Capabilities it holds, as `issuer params`.
    pub capabilities: Vec<String>,
    /// Requests it waits on.
    pub outstanding: Vec<OutstandingView>,
    /// What its runtime reports (memory, fuel, suspensions), if it reports.
    pub runtime: Option<crate::process::RuntimeStats>,
}

/// A pending timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimerView {
    /// When it fires.
    pub at: Timestamp,
    /// What it does.
    pub what: String,
}

/// One node's kernel at one moment (a world of several nodes shows one of these per node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// Kernel time.
    pub now: Timestamp,
    /// Trace events so far.
    pub events: u64,
    /// Messages waiting to be routed.
    pub inbox: Vec<MessageView>,
    /// The process table, by id.
    pub processes: Vec<ProcessView>,
    /// Processes waiting to restart.
    pub restarting: Vec<ProcessId>,
    /// Timers by deadline (held messages are `deliver` timers).
    pub timers: Vec<TimerView>,
}

fn message_view(message: &KernelMessage) -> MessageView {
    MessageView {
        id: message.id,
        kind: if message.message.is_request() {
            "request"
        } else {
            "response"
        },
        source: Some(message.source.clone()),
        target: Some(message.target.clone()),
    }
}

fn delivery_view(delivery: &Delivery) -> MessageView {
    match delivery {
        Delivery::Message(message) => MessageView {
            target: None,
            ..message_view(message)
        },
        Delivery::Error(error) => MessageView {
            id: error.id,
            kind: "send-error",
            source: Some(error.source.clone()),
            target: None,
        },
        Delivery::Alarm(tag) => MessageView {
            id: *tag,
            kind: "alarm",
            source: None,
            target: None,
        },
    }
}

fn timer_text(timer: &Timer) -> String {
    match timer {
        Timer::RequestTimeout { process, id } => format!("timeout of request {id} of {process}"),
        Timer::Restart { process } => format!("restart {process}"),
        Timer::Alarm { process, tag } => format!("alarm {tag} for {process}"),
        Timer::Wakeup { process } => format!("wake {process} from its sleep"),
        Timer::Deliver(message) => format!(
            "deliver held {} {} {} -> {}",
            message_view(message).kind,
            message.id,
            message.source,
            message.target
        ),
    }
}

impl Kernel {
    fn process_view(&self, id: &ProcessId, entry: &ProcessEntry) -> ProcessView {
        ProcessView {
            id: id.clone(),
            state: format!("{:?}", entry.state),
            driven: entry.driven,
            public: entry.public,
            on_exit: entry.on_exit.clone(),
            mailbox: entry.mailbox.iter().map(delivery_view).collect(),
            capabilities: self
                .caps
                .held_keys(id)
                .map(|key| format!("{} {}", key.issuer(), key.params()))
                .collect(),
            outstanding: entry
                .host
                .contexts
                .iter()
                .map(|(id, pending)| OutstandingView {
                    id: *id,
                    target: pending.target.clone(),
                    deadline: pending.deadline.map(|(at, _)| at),
                    answered: pending.answered,
                })
                .collect(),
            runtime: entry.runtime.as_ref().and_then(|runtime| runtime.stats()),
        }
    }

    /// The whole kernel now (O(state)).
    pub fn view(&self) -> NodeView {
        NodeView {
            now: self.clock.now(),
            events: self.trace.len(),
            inbox: self.inbox.iter().map(|m| message_view(m)).collect(),
            processes: self
                .table
                .iter()
                .map(|(id, entry)| self.process_view(id, entry))
                .collect(),
            restarting: self.pending_restarts.keys().cloned().collect(),
            timers: self
                .timers
                .iter()
                .map(|((at, _), timer)| TimerView {
                    at: *at,
                    what: timer_text(timer),
                })
                .collect(),
        }
    }

    /// Whether nothing is left to do: no message to route or to transmit, no process ready, no timer
    /// pending (so no message held, no request waiting on a timeout, no restart due).
    pub fn is_quiescent(&self) -> bool {
        self.inbox.is_empty()
            && self.outbound.is_empty()
            && self.ready.len() == 0
            && self.timers.len() == 0
    }
}

/// The old name of [`NodeView`], from before worlds of several nodes.
#[deprecated(note = "renamed NodeView: a world now has several nodes")]
pub type WorldView = NodeView;

impl NodeView {
    /// What keeps the node from quiescing, one line each (empty when quiescent).
    pub fn pending(&self) -> Vec<String> {
        let mut out = Vec::new();
        for message in &self.inbox {
            out.push(format!("inbox: {} {}", message.kind, message.id));
        }
        for process in &self.processes {
            let ready = matches!(process.state.as_str(), "Starting" | "Yielded");
            if ready {
                out.push(format!("{}: runnable ({})", process.id, process.state));
            }
            if !process.driven && !process.mailbox.is_empty() {
                out.push(format!(
                    "{}: {} waiting in its mailbox ({})",
                    process.id,
                    process.mailbox.len(),
                    process.state
                ));
            }
        }
        for timer in &self.timers {
            out.push(format!("timer at {}: {}", timer.at, timer.what));
        }
        out
    }
}

fn address_or_dash(address: Option<&Address>) -> String {
    address.map_or_else(|| "-".into(), ToString::to_string)
}

impl fmt::Display for NodeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "time        {}", self.now)?;
        writeln!(f, "events      {}", self.events)?;
        writeln!(f, "inbox       {}", self.inbox.len())?;
        for m in &self.inbox {
            let (from, to) = (
                address_or_dash(m.source.as_ref()),
                address_or_dash(m.target.as_ref()),
            );
            writeln!(f, "  {} {} {from} -> {to}", m.kind, m.id)?;
        }
        writeln!(f, "processes   {}", self.processes.len())?;
        for p in &self.processes {
            let flags = match (p.driven, p.public) {
                (true, true) => " driven public",
                (true, false) => " driven",
                (false, true) => " public",
                (false, false) => "",
            };
            writeln!(f, "  {} {}{flags} on-exit {:?}", p.id, p.state, p.on_exit)?;
            if let Some(stats) = &p.runtime {
                writeln!(
                    f,
                    "    runs wasm: {} KiB of memory, {} fuel burnt, {} suspensions",
                    stats.memory_bytes / 1024,
                    stats.fuel,
                    stats.suspensions
                )?;
            }
            for m in &p.mailbox {
                let from = address_or_dash(m.source.as_ref());
                writeln!(f, "    mailbox {} {} from {from}", m.kind, m.id)?;
            }
            for o in &p.outstanding {
                let when = o
                    .deadline
                    .map_or_else(|| "answered".into(), |d| format!("times out at {d}"));
                writeln!(f, "    awaits {} from {} ({when})", o.id, o.target)?;
            }
            for cap in &p.capabilities {
                writeln!(f, "    holds {cap}")?;
            }
        }
        for id in &self.restarting {
            writeln!(f, "restarting  {id}")?;
        }
        writeln!(f, "timers      {}", self.timers.len())?;
        for t in &self.timers {
            writeln!(f, "  at {} {}", t.at, t.what)?;
        }
        Ok(())
    }
}
