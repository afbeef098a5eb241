//! A world: several kernels on one simulated clock, joined by a network with the reference's
//! guarantees and the best simulators' faults (`net.rs`). The world owns time and its nodes;
//! each node's kernel runs on driven time and is driven only through `Kernel::input` (clock
//! readings, steps, messages from the network, `Offline`s); its messages for other nodes are
//! carried after every step, and each node draws from its own seed, derived from the world's
//! and its name. A node's computation is charged to the world's clock: after a step that
//! burnt fuel, the node is busy for that long and what it sent leaves when it is done.
//!
//! One pass of [`World::step`]: nodes whose downtime is over come up; refusals and messages
//! due by now are delivered (a full inbox holds its link back); then one node with work steps,
//! picked by the world's seeded stream among those that have some; when none has, time moves
//! to the earliest due message, refusal, timer, busy node or boot. Scenario files of worlds,
//! their faults and the tools on them live beside this module (`spec`, `draw`, `drive`).
//!
//! World invariants, checked on every network event (`check.rs`): no spoofed delivery (W2); per
//! ordered pair and connection, arrivals are an in-order prefix of sends (W3, waived by a
//! beyond-reference fault); nothing is delivered to a down node (W4); `Offline` only for an
//! unknown node, or one down or cut off when a connection had to be made (W5). Each node's
//! own checks run after every one of its steps (its `NodeLife`).

mod alone;
pub mod check;
pub mod draw;
pub mod drive;
mod journal;
pub mod net;
pub mod shrink;
pub mod spec;
pub mod trace;

pub use crate::node::streams::node_seed;
use crate::node::streams::{fnv, mix};
use hyperkernel::{
    Input, Kernel, KernelBuilder, KernelConfig, KernelError, KernelMessage, Output, ProcessLoader,
    Step, Time, Timestamp,
};
use net::{LossReason, Net, NetConfig, OfflineReason, Sent};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::Serialize;

/// What the harness does around one node's life: its checks after each step, and a crash
/// followed by a boot from its store.
pub trait NodeLife {
    /// After each of the node's steps: its checks, and the faults it injects. `Some(ms)` asks
    /// the world to crash the node now, down for `ms` (a reboot fault, or a fail-stop that
    /// a supervisor restarts).
    ///
    /// # Errors
    /// What broke.
    fn after_step(&mut self, kernel: &mut Kernel) -> Result<Option<u64>, String>;

    /// The node crashes now and comes back `downtime_ms` later from its store: `kernel` is
    /// replaced by the booted one, whose clock starts then. `Ok(false)`: it stays down for
    /// good, as its faults explain (a disk whose flipped bits corrupted its store).
    ///
    /// # Errors
    /// It did not come back in a committed state, or did not boot.
    fn crash(&mut self, kernel: &mut Kernel, downtime_ms: u64) -> Result<bool, String>;

    /// Its faults stop (the liveness phase).
    fn stop_faults(&mut self, kernel: &mut Kernel) {
        let _ = kernel;
    }

    /// Its driven processes: the world hands them what arrives for them after each step (a
    /// prompt client), so their answers show in the trace as deliveries.
    fn driven(&self) -> Vec<hyperkernel::ProcessId> {
        Vec::new()
    }

    /// A kernel as this node's was when it booted, to run it again alone from its inputs
    /// (W9): with `hooked`, its fault hook answering again as in the world (faults through
    /// the hook are then allowed); without, only for a node with no faults inside. `None`
    /// when its inputs and hook are not all it got (a process crashed by the simulator, a
    /// disk fault, a reboot).
    fn fresh(&self, hooked: bool) -> Option<Kernel> {
        let _ = hooked;
        None
    }

    /// At quiescence, the node's final checks.
    ///
    /// # Errors
    /// What broke.
    fn finish(&mut self, kernel: &Kernel) -> Result<(), String>;

    /// The faults that fired inside the node so far.
    fn faults(&self) -> crate::node::inside::FaultCounters {
        crate::node::inside::FaultCounters::default()
    }
}

/// One node of a world.
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its kernel (driven time: the world gives it every clock reading).
    pub kernel: Kernel,
    /// Down until this time (crashed).
    down_until: Option<Timestamp>,
    /// Busy computing until this time (the fuel its last step burnt).
    busy_until: Timestamp,
    /// `Kernel::time_charged` as last read.
    charged: u64,
    /// Trace records already in the world's lines.
    seen: u64,
    life: Option<Box<dyn NodeLife>>,
    /// Every input it was given since it booted, in order (none once it crashed: it came
    /// back from its store, not from its inputs).
    inputs: Option<Vec<Input>>,
}

impl Node {
    /// The faults that fired inside the node so far (none for a node without a life).
    pub fn faults(&self) -> crate::node::inside::FaultCounters {
        self.life
            .as_ref()
            .map_or_else(Default::default, |life| life.faults())
    }

    /// Gives the node's kernel `input`, recording it.
    fn feed(&mut self, input: Input) -> Result<Output, KernelError> {
        if let Some(inputs) = self.inputs.as_mut() {
            inputs.push(input.clone());
        }
        self.kernel.input(input)
    }
}

/// Something that happened between nodes (node indices).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetEvent {
    /// A message left `from` for `to`, due at `due`.
    Sent {
        /// Sending node.
        from: usize,
        /// Receiving node.
        to: usize,
        /// Message id.
        id: u64,
        /// When it is due.
        due: Timestamp,
    },
    /// It reached its node.
    Delivered {
        /// Sending node.
        from: usize,
        /// Receiving node.
        to: usize,
        /// Message id.
        id: u64,
    },
    /// It could not reach its node (`to`: none in the world); its sender hears `Offline` at
    /// `at`.
    Offline {
        /// Sending node.
        from: usize,
        /// Its node, if in the world.
        to: Option<usize>,
        /// Message id.
        id: u64,
        /// Why.
        reason: OfflineReason,
    },
    /// A connection broke, losing `count` messages.
    Lost {
        /// Sending node.
        from: usize,
        /// Receiving node.
        to: usize,
        /// Why.
        reason: LossReason,
        /// How many.
        count: usize,
    },
    /// A partition began.
    Cut {
        /// One side.
        from: Vec<usize>,
        /// The other.
        to: Vec<usize>,
        /// Only from the first to the second.
        one_way: bool,
    },
    /// Every cut healed.
    Heal,
    /// Links of these nodes (a pair: their link; one: its interface) hold messages until
    /// `until`.
    Clog {
        /// The nodes.
        nodes: Vec<usize>,
        /// Until when.
        until: Timestamp,
    },
    /// The connection between two nodes was reset, losing `count` messages.
    Reset {
        /// One node.
        a: usize,
        /// The other.
        b: usize,
        /// Messages lost.
        count: usize,
    },
    /// A node crashed, losing `count` messages in flight on its connections.
    Crash {
        /// The node.
        node: usize,
        /// How long it stays down.
        downtime_ms: u64,
        /// Messages lost.
        count: usize,
    },
    /// A node came up again.
    Boot {
        /// The node.
        node: usize,
    },
    /// Faults stopped: cuts healed, clogs ended.
    FaultsStopped,
}

/// One line of the world's trace, in world order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Record `seq` of node `node`'s trace.
    Node {
        /// The node.
        node: usize,
        /// The record's position in its trace.
        seq: u64,
    },
    /// Network event `event` (an index into [`World::events`]) at world time `at`.
    Net {
        /// When.
        at: Timestamp,
        /// Which.
        event: usize,
    },
}

/// What one pass of the world did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldStep {
    /// Node `node` stepped.
    Stepped(usize, Step),
    /// Nothing was due: time moved here.
    Advanced(Timestamp),
    /// Nothing is left to do before the deadline: no work, no timer, nothing in flight.
    Idle,
    /// The world's trace reached the line it was to stop after (`World::stop_after`).
    Stopped,
}

/// A world invariant or a node's check broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorldError {
    /// The world's pass, from 1.
    pub pass: u64,
    /// The node whose check broke (none: a world invariant).
    pub node: Option<String>,
    /// What broke.
    pub broken: String,
}

impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.node {
            Some(node) => write!(f, "node {node}, after pass {}: {}", self.pass, self.broken),
            None => write!(
                f,
                "world invariant, after pass {}: {}",
                self.pass, self.broken
            ),
        }
    }
}

/// What a hostile node does to its outgoing messages (`World::tamper`).
type Tamper = Box<dyn FnMut(&mut KernelMessage)>;

/// Several kernels on one clock (module docs).
pub struct World {
    seed: u64,
    now: Timestamp,
    nodes: Vec<Node>,
    net: Net,
    rng: ChaCha8Rng,
    events: Vec<NetEvent>,
    lines: Vec<Line>,
    hash: u64,
    passes: u64,
    stop_after: Option<usize>,
    check: check::WorldCheck,
    /// Rewrites a node's outgoing messages before the network takes them: a node running
    /// modified software, for hostile worlds.
    tamper: Vec<Option<Tamper>>,
}

impl World {
    /// An empty world for `seed`.
    pub fn new(seed: u64, config: NetConfig) -> Self {
        let mut links = ChaCha8Rng::seed_from_u64(seed);
        links.set_stream(11);
        let mut picks = ChaCha8Rng::seed_from_u64(seed);
        picks.set_stream(10);
        Self {
            seed,
            now: Timestamp(0),
            nodes: Vec::new(),
            net: Net::new(config, links),
            rng: picks,
            events: Vec::new(),
            lines: Vec::new(),
            hash: seed,
            passes: 0,
            stop_after: None,
            check: check::WorldCheck::default(),
            tamper: Vec::new(),
        }
    }

    /// Adds node `name` with processes loaded by `loader`; `configure` may change its config
    /// (its seed, time and network are the world's). Returns its index.
    ///
    /// # Errors
    /// The name is taken, or the kernel does not build.
    pub fn add_node(
        &mut self,
        name: &str,
        loader: Box<dyn ProcessLoader>,
        configure: impl FnOnce(&mut KernelConfig),
    ) -> Result<usize, String> {
        let seed = node_seed(self.seed, name);
        let mut config = KernelConfig::new(name, seed);
        configure(&mut config);
        config.network = true;
        config.net = true;
        config.seed = seed;
        let kernel = KernelBuilder::new(name, seed)
            .config(config)
            .time(Time::Driven(self.now))
            .loader(loader)
            .build()
            .map_err(|e| format!("node {name}: {e}"))?;
        self.add_kernel(name, kernel, None, Vec::new())
    }

    /// Adds node `name` running `kernel` (built on driven time with the seed
    /// [`node_seed`] gives it, then given `inputs`), with the harness's `life` around it.
    /// Returns its index.
    ///
    /// # Errors
    /// The name is taken, or is not the kernel's.
    pub fn add_kernel(
        &mut self,
        name: &str,
        kernel: Kernel,
        life: Option<Box<dyn NodeLife>>,
        inputs: Vec<Input>,
    ) -> Result<usize, String> {
        if self.index_of(name).is_some() {
            return Err(format!("a second node named {name}"));
        }
        if kernel.our() != name {
            return Err(format!("node {name} runs a kernel of {}", kernel.our()));
        }
        self.nodes.push(Node {
            name: name.to_owned(),
            charged: kernel.time_charged(),
            kernel,
            down_until: None,
            busy_until: Timestamp(0),
            seen: 0,
            life,
            inputs: Some(inputs),
        });
        self.tamper.push(None);
        self.log_records(self.nodes.len() - 1);
        assert_eq!(
            self.nodes.len(),
            self.tamper.len(),
            "one tamper slot a node"
        );
        Ok(self.nodes.len() - 1)
    }

    /// Makes node `index` rewrite its outgoing messages with `tamper` (a hostile node).
    pub fn tamper(&mut self, index: usize, tamper: impl FnMut(&mut KernelMessage) + 'static) {
        if let Some(slot) = self.tamper.get_mut(index) {
            *slot = Some(Box::new(tamper));
        }
    }

    /// The index of node `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|node| node.name == name)
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The nodes' names, in order.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.name.clone()).collect()
    }

    /// Node `index`'s kernel.
    pub fn kernel(&mut self, index: usize) -> Option<&mut Kernel> {
        self.nodes.get_mut(index).map(|node| &mut node.kernel)
    }

    /// The network.
    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// Stops the world once its trace holds more than `line` lines (a replay to line `line`,
    /// counted from 0): no pass steps after that.
    pub fn stop_after(&mut self, line: usize) {
        self.stop_after = Some(line);
    }

    /// Whether the world reached the line it was to stop after.
    pub fn stopped(&self) -> bool {
        self.stop_after.is_some_and(|line| self.lines.len() > line)
    }

    /// The world's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Passes taken so far.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// What happened between nodes, in order.
    pub fn events(&self) -> &[NetEvent] {
        &self.events
    }

    /// The world's trace: node records and network events, in world order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Messages sent, delivered and lost between nodes.
    pub fn net_counts(&self) -> (u64, u64, u64) {
        self.net.counts()
    }

    /// Whether node `index` is down.
    pub fn is_down(&self, index: usize) -> bool {
        self.nodes
            .get(index)
            .is_some_and(|node| node.down_until.is_some())
    }

    /// Gives node `index` `input` at the world's time (a clock reading first).
    ///
    /// # Errors
    /// As `Kernel::input`; `ShutDown` for a node that is down or not in the world.
    pub fn input(&mut self, index: usize, input: Input) -> Result<Output, KernelError> {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(index) else {
            return Err(KernelError::ShutDown);
        };
        if node.down_until.is_some() {
            return Err(KernelError::ShutDown);
        }
        node.feed(Input::Time(now))?;
        let output = node.feed(input);
        self.log_records(index);
        self.carry(index);
        output
    }

    /// Appends a network event to the world's trace and checks the world's invariants on it.
    fn record(&mut self, event: NetEvent) {
        self.check.on_event(&event, &self.net, &self.nodes);
        let json = serde_json::to_vec(&event).unwrap_or_default();
        self.hash = mix(self.hash ^ fnv(&json) ^ self.now.0.rotate_left(17));
        self.lines.push(Line::Net {
            at: self.now,
            event: self.events.len(),
        });
        self.events.push(event);
    }

    /// Appends node `index`'s new trace records to the world's trace.
    fn log_records(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let records = node.kernel.trace().records();
        let start = records.partition_point(|r| r.seq < node.seen);
        for record in &records[start..] {
            self.hash = mix(self.hash ^ record.hash ^ (index as u64).rotate_left(48));
            self.lines.push(Line::Node {
                node: index,
                seq: record.seq,
            });
            node.seen = record.seq + 1;
        }
    }

    /// One pass (module docs).
    ///
    /// # Errors
    /// A world invariant or a node's check broke.
    pub fn step(&mut self) -> Result<WorldStep, WorldError> {
        self.step_before(Timestamp(u64::MAX))
    }

    /// One pass, moving time no further than `deadline`.
    ///
    /// # Errors
    /// As [`World::step`].
    pub fn step_before(&mut self, deadline: Timestamp) -> Result<WorldStep, WorldError> {
        if self.stopped() {
            return Ok(WorldStep::Stopped);
        }
        self.passes += 1;
        self.boot_due()?;
        self.expire_keepalives();
        self.deliver_due();
        self.broken()?;
        let now = self.now;
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        // A seeded shuffle: which node steps first among those with work is the world's pick.
        for i in (1..order.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut next: Option<Timestamp> = self.net.next_due();
        let mut earliest = |at: Option<Timestamp>| {
            next = match (next, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        for index in order {
            let node = &mut self.nodes[index];
            if let Some(up) = node.down_until {
                // A node down for good has no boot to wait for.
                earliest(Some(up).filter(|up| up.0 != u64::MAX));
                continue;
            }
            if node.busy_until > now {
                earliest(Some(node.busy_until));
                continue;
            }
            if node.feed(Input::Time(now)).is_err() {
                continue;
            }
            match node.feed(Input::Step) {
                Ok(Output::Stepped(Step::Idle(deadline))) => earliest(deadline),
                // A node that shut down has no more work.
                Ok(Output::Stepped(Step::ShutDown)) => {}
                // One that stopped (its store failed) is its life's to restart, or a failure.
                Ok(Output::Stepped(Step::Failed)) if node.life.is_some() => {
                    self.after_step(index)?;
                    return Ok(WorldStep::Stepped(index, Step::Failed));
                }
                Ok(Output::Stepped(Step::Failed)) => {}
                Ok(Output::Stepped(step)) => {
                    self.after_step(index)?;
                    return Ok(WorldStep::Stepped(index, step));
                }
                _ => {}
            }
        }
        match next {
            Some(at) if at > now && now < deadline => {
                self.now = at.min(deadline);
                Ok(WorldStep::Advanced(self.now))
            }
            // Nothing later is due (something due now that moved nothing is a link held back
            // by a receiver that will not take it: a node that shut down).
            _ => Ok(WorldStep::Idle),
        }
    }

    /// Live connections across cuts whose keepalive gave up break.
    fn expire_keepalives(&mut self) {
        for ((a, b), count) in self.net.expire_keepalives(self.now) {
            self.record(NetEvent::Lost {
                from: a,
                to: b,
                reason: LossReason::Keepalive,
                count,
            });
        }
    }

    fn broken(&mut self) -> Result<(), WorldError> {
        match self.check.take_broken() {
            None => Ok(()),
            Some(broken) => Err(WorldError {
                pass: self.passes,
                node: None,
                broken,
            }),
        }
    }

    /// After node `index` stepped: its checks, its time charged, its trace, its messages out.
    fn after_step(&mut self, index: usize) -> Result<(), WorldError> {
        let now = self.now;
        let node = &mut self.nodes[index];
        let crash = match node.life.as_mut() {
            Some(life) => life
                .after_step(&mut node.kernel)
                .map_err(|broken| WorldError {
                    pass: self.passes,
                    node: Some(node.name.clone()),
                    broken,
                })?,
            None => None,
        };
        if let Some(downtime_ms) = crash {
            // What the node had not let out yet goes down with it.
            self.log_records(index);
            return self.crash(index, downtime_ms).and_then(|()| self.broken());
        }
        self.take_answers(index)?;
        let node = &mut self.nodes[index];
        let charged = node.kernel.time_charged();
        debug_assert!(charged >= node.charged, "charged time only grows");
        node.busy_until = Timestamp(now.0.saturating_add(charged - node.charged));
        node.charged = charged;
        debug_assert!(node.kernel.now() >= now, "clocks never go back");
        self.log_records(index);
        self.carry(index);
        self.broken()
    }

    /// Passes until nothing is left to do, or `passes_max` passes; the passes taken.
    ///
    /// # Errors
    /// As [`World::step`].
    pub fn run_until_idle(&mut self, passes_max: u64) -> Result<u64, WorldError> {
        for pass in 0..passes_max {
            if matches!(self.step()?, WorldStep::Idle | WorldStep::Stopped) {
                return Ok(pass);
            }
        }
        Ok(passes_max)
    }

    /// Passes until the world's time reaches `deadline` with nothing due before it.
    ///
    /// # Errors
    /// As [`World::step`].
    pub fn run_until(&mut self, deadline: Timestamp) -> Result<(), WorldError> {
        loop {
            match self.step_before(deadline)? {
                WorldStep::Idle => {
                    self.now = self.now.max(deadline);
                    return Ok(());
                }
                WorldStep::Advanced(at) if at >= deadline => return Ok(()),
                WorldStep::Stopped => return Ok(()),
                _ => {}
            }
        }
    }

    /// Gives every node the network's directory (each node's identity), as kit's fake chain
    /// gives booted nodes theirs; `net:distro:sys` answers from it.
    pub fn publish_directory(&mut self) {
        assert_eq!(
            self.passes, 0,
            "the directory is published before the first pass"
        );
        let identities: Vec<_> = self.nodes.iter().map(|n| n.kernel.identity()).collect();
        for node in &mut self.nodes {
            // A world's node takes inputs until it shuts down, which setup never does.
            let _ = node.feed(Input::Identities(identities.clone()));
        }
        debug_assert!(
            self.nodes
                .iter()
                .all(|n| identities.contains(&n.kernel.identity())),
            "every node finds itself in the directory"
        );
    }

    /// Every node hands the network what it sent while it was set up (a kit test that runs
    /// during setup, say), before the world's first step; nothing waits for the node's next
    /// step to leave.
    pub fn carry_setups(&mut self) {
        assert_eq!(self.passes, 0, "setups are carried before the first pass");
        for index in 0..self.nodes.len() {
            self.carry(index);
        }
    }

    /// Hands every message node `index` has for other nodes to the network; they leave when
    /// the node is done computing.
    fn carry(&mut self, index: usize) {
        let from_name = self.nodes[index].name.clone();
        let leaves = self.now.max(self.nodes[index].busy_until);
        loop {
            let Some(mut message) = self.nodes[index].kernel.take_outbound() else {
                return;
            };
            if let Some(Some(tamper)) = self.tamper.get_mut(index) {
                tamper(&mut message);
            }
            let to = self.index_of(&message.target.node);
            let id = message.id;
            let event = match self.net.send(index, &from_name, to, message, leaves) {
                Sent::Queued(due) => NetEvent::Sent {
                    from: index,
                    to: to.unwrap_or(index),
                    id,
                    due,
                },
                Sent::Offline(_, reason) => NetEvent::Offline {
                    from: index,
                    to,
                    id,
                    reason,
                },
                Sent::Lost(reason, count) => NetEvent::Lost {
                    from: index,
                    to: to.unwrap_or(index),
                    reason,
                    count,
                },
            };
            self.record(event);
        }
    }

    /// Nodes whose downtime is over come up.
    fn boot_due(&mut self) -> Result<(), WorldError> {
        for index in 0..self.nodes.len() {
            if self.nodes[index]
                .down_until
                .is_some_and(|up| up <= self.now)
            {
                self.nodes[index].down_until = None;
                self.net.boot(index);
                self.record(NetEvent::Boot { node: index });
                let now = self.now;
                let _ = self.nodes[index].feed(Input::Time(now));
                self.log_records(index);
            }
        }
        self.broken()
    }

    /// Delivers every refusal and message due by now: refusals as `Offline` to their senders
    /// (if up), messages through their node's remote door; a full inbox holds its link back
    /// until a later pass.
    fn deliver_due(&mut self) {
        let now = self.now;
        while let Some((from, message, _)) = self.net.take_refusal(now) {
            if self.nodes[from].down_until.is_some() {
                continue;
            }
            let node = &mut self.nodes[from];
            let _ = node.feed(Input::Time(now));
            let _ = node.feed(Input::Unreachable(Box::new(message)));
            self.log_records(from);
        }
        for pair in self.net.due_links(now) {
            while let Some(message) = self.net.peek_due(pair, now) {
                let message = message.clone();
                let id = message.id;
                self.check.on_delivery(pair, &message, &self.nodes);
                let node = &mut self.nodes[pair.1];
                let _ = node.feed(Input::Time(now));
                match node.feed(Input::Submit(Box::new(message))) {
                    Err(KernelError::InboxFull) => break,
                    _ => {
                        let popped = self.net.pop(pair);
                        assert!(popped.is_some(), "the head that was peeked is popped");
                        self.record(NetEvent::Delivered {
                            from: pair.0,
                            to: pair.1,
                            id,
                        });
                        self.log_records(pair.1);
                    }
                }
            }
        }
    }

    /// Cuts `from` off from `to` (and back unless `one_way`).
    pub fn cut(&mut self, from: Vec<usize>, to: Vec<usize>, one_way: bool) {
        self.net.cut(&from, &to, one_way, self.now);
        self.record(NetEvent::Cut { from, to, one_way });
    }

    /// Every cut heals.
    pub fn heal(&mut self) {
        self.net.heal();
        self.record(NetEvent::Heal);
    }

    /// Clogs the link between two nodes, or one node's interface, for `for_ms`.
    pub fn clog(&mut self, nodes: Vec<usize>, for_ms: u64) {
        let until = self.now.plus_millis(for_ms);
        match nodes.as_slice() {
            [a, b] => self.net.clog_link(*a, *b, until),
            [node] => self.net.clog_node(*node, until),
            _ => return,
        }
        self.record(NetEvent::Clog { nodes, until });
    }

    /// Resets the connection between `a` and `b`.
    pub fn reset(&mut self, a: usize, b: usize) {
        let count = self.net.reset(a, b);
        self.record(NetEvent::Reset { a, b, count });
    }

    /// Node `index` crashes now and is down for `downtime_ms`; with a life, it then boots from
    /// its store; without one, its kernel is kept as it was (a pause). A node already down
    /// stays as it is.
    ///
    /// # Errors
    /// Its life could not bring it back in a committed state.
    pub fn crash(&mut self, index: usize, downtime_ms: u64) -> Result<(), WorldError> {
        if index >= self.nodes.len() || self.nodes[index].down_until.is_some() {
            return Ok(());
        }
        let count = self.net.crash(index);
        self.record(NetEvent::Crash {
            node: index,
            downtime_ms,
            count,
        });
        let up = self.now.plus_millis(downtime_ms);
        let node = &mut self.nodes[index];
        node.down_until = Some(up);
        node.busy_until = Timestamp(0);
        // It comes back from its store, not from its inputs.
        node.inputs = None;
        if let Some(life) = node.life.as_mut() {
            let back = life
                .crash(&mut node.kernel, downtime_ms)
                .map_err(|broken| WorldError {
                    pass: self.passes,
                    node: Some(node.name.clone()),
                    broken,
                })?;
            node.charged = node.kernel.time_charged();
            if !back {
                // Down for good: it never boots again.
                node.down_until = Some(Timestamp(u64::MAX));
            }
        }
        self.log_records(index);
        Ok(())
    }

    /// Whether node `index` went down for good (its faults explain it).
    pub fn is_down_for_good(&self, index: usize) -> bool {
        self.nodes
            .get(index)
            .is_some_and(|node| node.down_until == Some(Timestamp(u64::MAX)))
    }

    /// Faults stop: cuts heal, clogs end, beyond-reference faults turn off.
    pub fn stop_faults(&mut self) {
        // W3 stays waived if a beyond-reference fault was ever on: what it sent is still
        // out of order.
        self.net.stop_faults();
        for node in &mut self.nodes {
            if let Some(life) = node.life.as_mut() {
                life.stop_faults(&mut node.kernel);
            }
        }
        self.record(NetEvent::FaultsStopped);
    }

    /// Turns the beyond-reference faults on (their checks are waived while on).
    pub fn set_beyond(&mut self, beyond: net::Beyond) {
        self.check.beyond = beyond != net::Beyond::default();
        self.net.set_beyond(beyond);
    }

    /// Whether every node is quiescent (or down) and nothing is in flight.
    pub fn is_quiescent(&self) -> bool {
        self.net.in_flight() == 0
            && self
                .nodes
                .iter()
                .all(|node| node.down_until.is_some() || node.kernel.is_quiescent())
    }

    /// What keeps the world from quiescing, one line each.
    pub fn pending(&self) -> Vec<String> {
        let mut out = self.net.describe(&self.names(), self.now);
        for node in &self.nodes {
            if node.down_until.is_none() {
                let pending = node.kernel.view().pending();
                out.extend(pending.into_iter().map(|p| format!("{}: {p}", node.name)));
            }
        }
        out
    }

    /// Each link with something in flight, cut or clogged, and each node down: a line each.
    pub fn describe_links(&self) -> Vec<String> {
        self.net.describe(&self.names(), self.now)
    }

    /// Every node's final checks (at quiescence).
    ///
    /// # Errors
    /// The first that broke.
    pub fn finish(&mut self) -> Result<(), WorldError> {
        let passes = self.passes;
        for node in &mut self.nodes {
            if let Some(life) = node.life.as_mut() {
                life.finish(&node.kernel).map_err(|broken| WorldError {
                    pass: passes,
                    node: Some(node.name.clone()),
                    broken,
                })?;
            }
        }
        Ok(())
    }

    /// The world's hash: chained over its trace's lines (each node record's chain hash with
    /// its node, each network event with its time), from its seed.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}
