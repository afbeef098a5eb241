//! A world: several kernels on one simulated clock, joined by a network with the reference's
//! guarantees (`net.rs`). The first slice of the worlds issue: the world owns time and its
//! nodes, each node's kernel runs on driven time and is driven only through `Kernel::input`
//! (clock readings, steps, messages from the network, `Offline`s), its messages for other
//! nodes are carried after every step, and each node draws from its own seed, derived from the
//! world's and its name.
//!
//! One pass of [`World::step`]: deliver every message due by now (a full inbox holds its link
//! back), then give one step to a node with work, picked by the world's seeded stream among
//! those that have some; when none has, time moves to the earliest due message or timer.
//!
//! Invariants: the world's clock never goes back and every kernel's clock is the world's after
//! each step; a message is delivered only to the node its target names, through the kernel's
//! remote door, which drops any source on the receiver's node (see SECURITY.md).

pub mod net;

use hyperkernel::{
    Input, Kernel, KernelBuilder, KernelConfig, KernelError, KernelMessage, Output, ProcessLoader,
    Step, Time, Timestamp,
};
use net::{LossReason, Net, NetConfig, Sent};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A node's own seed: the world's seed mixed with its name (splitmix64 of the seed xor the
/// name's FNV-1a hash), so two nodes never draw the same ids or keys, and a node's draws do
/// not depend on which other nodes are in the world.
pub fn node_seed(world_seed: u64, name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = (world_seed ^ hash).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One node of a world.
pub struct Node {
    /// Its name.
    pub name: String,
    /// Its kernel (driven time: the world gives it every clock reading).
    pub kernel: Kernel,
}

/// Something that happened between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A message left `from` for `to` (node indices), due at `due`.
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
        /// Receiving node.
        to: usize,
        /// Message id.
        id: u64,
    },
    /// Its node is not in the world: its sender heard `Offline`.
    Offline {
        /// Sending node.
        from: usize,
        /// Message id.
        id: u64,
    },
    /// A connection broke, losing `count` messages.
    Lost {
        /// Sending node.
        from: usize,
        /// Why.
        reason: LossReason,
        /// How many.
        count: usize,
    },
}

/// What one pass of the world did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldStep {
    /// Node `node` stepped.
    Stepped(usize, Step),
    /// Nothing was due: time moved here.
    Advanced(Timestamp),
    /// Nothing is left to do: no work, no timer, nothing in flight.
    Idle,
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
        if self.index_of(name).is_some() {
            return Err(format!("a second node named {name}"));
        }
        let seed = node_seed(self.seed, name);
        let mut config = KernelConfig::new(name, seed);
        configure(&mut config);
        config.network = true;
        config.seed = seed;
        let kernel = KernelBuilder::new(name, seed)
            .config(config)
            .time(Time::Driven(self.now))
            .loader(loader)
            .build()
            .map_err(|e| format!("node {name}: {e}"))?;
        self.nodes.push(Node {
            name: name.to_owned(),
            kernel,
        });
        self.tamper.push(None);
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

    /// Node `index`'s kernel.
    pub fn kernel(&mut self, index: usize) -> Option<&mut Kernel> {
        self.nodes.get_mut(index).map(|node| &mut node.kernel)
    }

    /// The world's time.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// What happened between nodes, in order.
    pub fn events(&self) -> &[NetEvent] {
        &self.events
    }

    /// Messages sent, delivered and lost between nodes.
    pub fn net_counts(&self) -> (u64, u64, u64) {
        self.net.counts()
    }

    /// Gives node `index` `input` at the world's time (a clock reading first).
    ///
    /// # Errors
    /// As `Kernel::input`; `NoSuchProcess`-like refusals of the input itself.
    pub fn input(&mut self, index: usize, input: Input) -> Result<Output, KernelError> {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(index) else {
            return Err(KernelError::ShutDown);
        };
        node.kernel.input(Input::Time(now))?;
        let output = node.kernel.input(input);
        self.carry(index);
        output
    }

    /// One pass (module docs).
    pub fn step(&mut self) -> WorldStep {
        self.deliver_due();
        let now = self.now;
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        // A seeded shuffle: which node steps first among those with work is the world's pick.
        for i in (1..order.len()).rev() {
            let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut next: Option<Timestamp> = self.net.next_due();
        for index in order {
            let kernel = &mut self.nodes[index].kernel;
            if kernel.input(Input::Time(now)).is_err() {
                continue;
            }
            match kernel.input(Input::Step) {
                Ok(Output::Stepped(Step::Idle(deadline))) => {
                    next = match (next, deadline) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                // A node that shut down or stopped has no more work.
                Ok(Output::Stepped(Step::ShutDown | Step::Failed)) => {}
                Ok(Output::Stepped(step)) => {
                    self.carry(index);
                    debug_assert!(
                        self.nodes[index].kernel.now() >= now,
                        "clocks never go back"
                    );
                    return WorldStep::Stepped(index, step);
                }
                _ => {}
            }
        }
        match next {
            Some(at) if at > now => {
                self.now = at;
                WorldStep::Advanced(at)
            }
            // Nothing later is due (something due now that moved nothing is a link held back
            // by a receiver that will not take it: a node that shut down).
            _ => WorldStep::Idle,
        }
    }

    /// Passes until nothing is left to do, or `passes_max` passes; the passes taken.
    pub fn run_until_idle(&mut self, passes_max: u64) -> u64 {
        for pass in 0..passes_max {
            if self.step() == WorldStep::Idle {
                return pass;
            }
        }
        passes_max
    }

    /// Hands every message node `index` has for other nodes to the network.
    fn carry(&mut self, index: usize) {
        let from_name = self.nodes[index].name.clone();
        loop {
            let Some(mut message) = self.nodes[index].kernel.take_outbound() else {
                return;
            };
            if let Some(Some(tamper)) = self.tamper.get_mut(index) {
                tamper(&mut message);
            }
            let to = self.index_of(&message.target.node);
            let id = message.id;
            match self.net.send(index, &from_name, to, message, self.now) {
                Sent::Queued(due) => {
                    let to = to.unwrap_or(index);
                    self.events.push(NetEvent::Sent {
                        from: index,
                        to,
                        id,
                        due,
                    });
                }
                Sent::Offline(message) => {
                    self.events.push(NetEvent::Offline { from: index, id });
                    let now = self.now;
                    let kernel = &mut self.nodes[index].kernel;
                    let _ = kernel.input(Input::Time(now));
                    let _ = kernel.input(Input::Unreachable(message));
                }
                Sent::Lost(reason, count) => {
                    self.events.push(NetEvent::Lost {
                        from: index,
                        reason,
                        count,
                    });
                }
            }
        }
    }

    /// Delivers every message due by now through its node's remote door; a full inbox holds
    /// its link back until a later pass.
    fn deliver_due(&mut self) {
        let now = self.now;
        for pair in self.net.due_links(now) {
            while let Some(message) = self.net.peek_due(pair, now) {
                let message = message.clone();
                let id = message.id;
                let kernel = &mut self.nodes[pair.1].kernel;
                let _ = kernel.input(Input::Time(now));
                match kernel.input(Input::Submit(Box::new(message))) {
                    Err(KernelError::InboxFull) => break,
                    _ => {
                        let popped = self.net.pop(pair);
                        assert!(popped.is_some(), "the head that was peeked is popped");
                        self.events.push(NetEvent::Delivered { to: pair.1, id });
                    }
                }
            }
        }
    }

    /// A hash of the world: every node's trace hash, in node order, chained.
    pub fn hash(&self) -> u64 {
        self.nodes.iter().fold(self.seed, |hash, node| {
            node_seed(hash ^ node.kernel.trace().hash(), &node.name)
        })
    }
}
