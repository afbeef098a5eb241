//! The run summary printed after a simulation: events, simulated time, messages sent,
//! delivered and dropped by reason, process exits, restarts, and the trace hash. Each line is
//! explained in `docs/sim-output.md`.

use crate::node::inside::FaultCounters;
use hyperkernel::{DropReason, Event, Kernel, Timestamp};
use std::collections::BTreeMap;
use std::fmt;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Trace events.
    pub events: u64,
    /// Simulated time at the end.
    pub simulated: Timestamp,
    /// Messages that entered the inbox.
    pub sent: u64,
    /// Messages and send errors handed to processes.
    pub delivered: u64,
    /// Drops, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// Process exits, by reason kind.
    pub exits: BTreeMap<String, u64>,
    /// Restarts scheduled.
    pub restarts: u64,
    /// Requests that timed out on the kernel clock.
    pub timeouts: u64,
    /// Faults that fired.
    pub faults: FaultCounters,
    /// The trace hash.
    pub hash: u64,
}

fn drop_name(reason: DropReason) -> String {
    format!("{reason:?}")
}

impl Summary {
    /// Summarizes a kernel that kept its full trace, in which `faults` fired.
    pub fn of(kernel: &Kernel, seed: u64, faults: FaultCounters) -> Self {
        let mut summary = Self {
            seed,
            events: kernel.trace().len(),
            simulated: kernel.now(),
            hash: kernel.trace().hash(),
            faults,
            ..Self::default()
        };
        for record in kernel.trace().records() {
            match &record.event {
                Event::Sent { .. } => summary.sent += 1,
                Event::Delivered { .. } => summary.delivered += 1,
                Event::Dropped { reason, .. } => {
                    *summary.dropped.entry(drop_name(*reason)).or_default() += 1
                }
                Event::Exited { reason, .. } => {
                    let kind = format!("{reason:?}");
                    let kind = kind.split('(').next().unwrap_or_default().to_string();
                    *summary.exits.entry(kind).or_default() += 1;
                }
                Event::RestartScheduled { .. } => summary.restarts += 1,
                Event::TimedOut { .. } => summary.timeouts += 1,
                _ => {}
            }
        }
        summary
    }
}

fn counts(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed        {}", self.seed)?;
        writeln!(f, "events      {}", self.events)?;
        writeln!(f, "simulated   {}", self.simulated)?;
        writeln!(f, "sent        {}", self.sent)?;
        writeln!(f, "delivered   {}", self.delivered)?;
        writeln!(f, "dropped     {}", counts(&self.dropped))?;
        writeln!(f, "timeouts    {}", self.timeouts)?;
        writeln!(f, "exits       {}", counts(&self.exits))?;
        writeln!(f, "restarts    {}", self.restarts)?;
        let c = &self.faults;
        if c == &FaultCounters::default() {
            writeln!(f, "faults      none fired")?;
        } else {
            writeln!(
                f,
                "faults      delayed={} trapped={}/{} crashed={} timers-skewed={} net-dropped={} net-duplicated={} reboots={} disk={}",
                c.delayed,
                c.trapped,
                c.traps_armed,
                c.crashed,
                c.timers_skewed,
                c.network_dropped,
                c.network_duplicated,
                c.reboots,
                c.disk_faults
            )?;
        }
        write!(f, "trace hash  {:016x}", self.hash)
    }
}
