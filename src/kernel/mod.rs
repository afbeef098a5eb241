//! The kernel: a deterministic, single-threaded state machine.
//!
//! Inputs enter through one door, `Kernel::input` (`input.rs`): a message from another node
//! (checked by `remote`), a driven process's send, a clock reading, a step; randomness comes
//! from the seeded `Entropy`. A step does one piece of work chosen by the seeded scheduler:
//! route one message from the inbox, run one ready process until it blocks, or fire one due
//! timer. Everything observable goes to the trace. With the feature `harness`, `Kernel::harness`
//! opens the same calls one at a time to test harnesses, and fault injection (`harness.rs`).
//!
//! Submodules: `state` (process table entries and lifecycle states), `routing` (our
//! substitution, the one capability check, delivery into mailboxes), `command` (one handler
//! per `KernelCommand`), `remote` (the door for other nodes' messages), `host` (the syscalls behind `ProcessContext`), `lifecycle` (start,
//! exit, on-exit, restart backoff, kill), `schedule` (ready set, timers, `step`).

mod boot;
mod command;
#[cfg(feature = "harness")]
mod harness;
mod hook;
mod host;
mod input;
mod inspect;
mod install;
mod lifecycle;
mod persist;
mod remote;
mod routing;
mod schedule;
mod spawn;
mod state;

pub use boot::{BootError, Corruption, STORE_FORMAT_VERSION, stored_node};
pub use command::NO_REVOKE;
#[cfg(feature = "harness")]
pub use harness::Harness;
pub use hook::FaultHook;
pub use host::{AwaitToken, ProcessContext, SyscallError};
pub use input::{Input, Output};
#[expect(deprecated, reason = "the old name stays exported for existing users")]
pub use inspect::WorldView;
pub use inspect::{MessageView, NodeView, OutstandingView, ProcessView, TimerView};
pub use install::InstallError;
pub use lifecycle::{
    NewProcessError, RESTART_BACKOFF_BASE_NANOS, RESTART_BACKOFF_MAX_NANOS,
    RESTART_HEALTHY_MAX_NANOS, RESTART_HEALTHY_MULTIPLIER,
};
pub use persist::{CodeHash, KernelFailure, PersistedProcess};
pub use schedule::Step;
pub use spawn::{SpawnError, SpawnRequest};
pub use state::RunState;

use crate::caps::CapabilityStore;
use crate::env::{Entropy, KernelClock, Time, Timestamp};
use crate::process::{NativeLoader, Process, ProcessLoader, TimerProcess};
use crate::storage::{MemStorage, Storage};
use crate::trace::{Trace, TraceLevel};
use crate::types::{Address, Capability, KernelMessage, OnExit, ProcessId};
use schedule::{ReadySet, TimerQueue};
use state::ProcessEntry;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Most requests a process's mailbox holds; further requests are refused with a send error.
pub const MAILBOX_LEN_MAX: usize = 1024;
/// Most messages waiting in the kernel's inbox; `submit` refuses more.
pub const INBOX_LEN_MAX: usize = 100_000;
/// Most bytes (body, metadata and blob) waiting in the inbox.
pub const INBOX_BYTES_MAX: u64 = 256 << 20;
/// Most bytes waiting in one process's mailbox: requests and responses (its send errors carry
/// its own requests back and are bounded by `OUTSTANDING_BYTES_MAX`).
pub const MAILBOX_BYTES_MAX: u64 = 128 << 20;
/// Most requests expecting a response one process may have outstanding.
pub const OUTSTANDING_MAX: usize = 4096;
/// Most bytes of its outstanding requests one process may have the kernel keep (for the
/// timeout error that hands a request back).
pub const OUTSTANDING_BYTES_MAX: u64 = 128 << 20;
/// Most message bytes the kernel holds at once: the inbox, every mailbox and every kept
/// outstanding request together.
pub const HELD_BYTES_MAX: u64 = 1 << 30;
/// Most steps `run_until_idle` takes before it reports a budget overrun.
pub const STEPS_MAX: u64 = 10_000_000;

/// Longest `print-to-terminal` text kept in the trace (and among a wasm process's last prints);
/// a longer one is cut with a note.
pub const PRINT_TEXT_MAX: usize = 16 << 10;

/// Default cap on a message's body, metadata and blob bytes together (64 MiB, a wasm
/// process's default memory cap: a guest cannot build a larger one anyway).
pub const MESSAGE_LEN_MAX: usize = 64 << 20;

/// Static configuration of a kernel.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    /// Our node name.
    pub our: String,
    /// The root seed of every random choice.
    pub seed: u64,
    /// The signing key; derived from the seed when `None`.
    pub signing_key: Option<[u8; 32]>,
    /// How much trace to keep.
    pub trace_level: TraceLevel,
    /// Most trace records kept undrained (`trace::TRACE_RECORDS_MAX`); more are counted as
    /// overflowed (`Trace::overflowed`), never an unbounded buffer.
    pub trace_records_max: usize,
    /// Requests a mailbox holds.
    pub mailbox_len_max: usize,
    /// Messages the inbox holds.
    pub inbox_len_max: usize,
    /// Largest message routed: body, metadata and blob bytes together.
    pub message_len_max: usize,
    /// Bytes the inbox holds ([`INBOX_BYTES_MAX`]).
    pub inbox_bytes_max: u64,
    /// Bytes of requests and responses a mailbox holds ([`MAILBOX_BYTES_MAX`]).
    pub mailbox_bytes_max: u64,
    /// Outstanding requests per process ([`OUTSTANDING_MAX`]).
    pub outstanding_max: usize,
    /// Bytes of outstanding requests kept per process ([`OUTSTANDING_BYTES_MAX`]).
    pub outstanding_bytes_max: u64,
    /// Message bytes the kernel holds in all ([`HELD_BYTES_MAX`]).
    pub held_bytes_max: u64,
    /// Whether to register `timer:distro:sys` at boot.
    pub timer: bool,
    /// Whether every message's body goes into the trace too (`Event::Body`), for reading a
    /// failing run; off by default (a body is otherwise only its length and hash).
    pub trace_bodies: bool,
    /// Whether to register `vfs:distro:sys` at boot (off by default, so traces recorded
    /// before it existed keep their hashes; apps, packages and the node turn it on).
    pub vfs: bool,
    /// Whether to register `net:distro:sys` at boot (off by default, so traces recorded
    /// before it existed keep their hashes; worlds and the node turn it on).
    pub net: bool,
    /// Whether messages for other nodes wait in an outbox for a network (`take_outbound`),
    /// as a simulated network or a transport takes them; off, they answer `Offline` at once.
    pub network: bool,
    /// Kernel time between syncs of the store (0: every commit is synced). Whatever the
    /// interval, everything committed is synced before a message or answer leaves the kernel.
    pub sync_interval_nanos: u64,
    /// Plants a bug that skips the messaging check for one message id in four, so the
    /// simulation harness can show it finds and shrinks a real capability bug. Only with the
    /// feature `planted-bug`, which the simulator enables: a production build has neither this
    /// field nor the branch.
    #[cfg(feature = "planted-bug")]
    #[doc(hidden)]
    pub planted_bug: bool,
}

impl KernelConfig {
    /// Defaults for node `our` and `seed`.
    pub fn new(our: &str, seed: u64) -> Self {
        Self {
            our: our.into(),
            seed,
            signing_key: None,
            trace_level: TraceLevel::Full,
            trace_records_max: crate::trace::TRACE_RECORDS_MAX,
            mailbox_len_max: MAILBOX_LEN_MAX,
            inbox_len_max: INBOX_LEN_MAX,
            message_len_max: MESSAGE_LEN_MAX,
            inbox_bytes_max: INBOX_BYTES_MAX,
            mailbox_bytes_max: MAILBOX_BYTES_MAX,
            outstanding_max: OUTSTANDING_MAX,
            outstanding_bytes_max: OUTSTANDING_BYTES_MAX,
            held_bytes_max: HELD_BYTES_MAX,
            timer: true,
            vfs: false,
            net: false,
            trace_bodies: false,
            network: false,
            sync_interval_nanos: 0,
            #[cfg(feature = "planted-bug")]
            planted_bug: false,
        }
    }
}

/// Why a harness call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelError {
    /// No such process.
    NoSuchProcess(ProcessId),
    /// The process already exists.
    ProcessExists(ProcessId),
    /// The process is run by the kernel; only driven processes can be acted for.
    NotDriven(ProcessId),
    /// The inbox is full.
    InboxFull,
    /// The kernel has shut down.
    ShutDown,
    /// The kernel stopped on a store failure (`Kernel::failure`).
    Stopped,
    /// A syscall failed.
    Syscall(SyscallError),
    /// A package was not installed (`Input::Install`); nothing of it was.
    Install(install::InstallError),
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchProcess(id) => write!(f, "no such process {id}"),
            Self::ProcessExists(id) => write!(f, "process {id} already exists"),
            Self::NotDriven(id) => write!(f, "process {id} is not driven from outside"),
            Self::InboxFull => write!(f, "the kernel inbox is full"),
            Self::ShutDown => write!(f, "the kernel has shut down"),
            Self::Stopped => write!(f, "the kernel stopped on a store failure"),
            Self::Syscall(error) => write!(f, "{error}"),
            Self::Install(error) => write!(f, "the package was not installed: {error}"),
        }
    }
}

impl std::error::Error for KernelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Install(error) => Some(error),
            _ => None,
        }
    }
}

impl From<SyscallError> for KernelError {
    fn from(error: SyscallError) -> Self {
        Self::Syscall(error)
    }
}

/// The kernel.
pub struct Kernel {
    our: Arc<str>,
    our_kernel: Address,
    config: KernelConfig,
    clock: KernelClock,
    entropy: Entropy,
    caps: CapabilityStore,
    // Invariant: every entry's id has a `caps` entry too (lifecycle keeps both in step).
    table: BTreeMap<ProcessId, ProcessEntry>,
    // Boxed: a message is ~300 bytes and moves through several queues.
    // Invariant: at most `inbox_len_max` messages of `inbox_bytes` bytes together.
    inbox: VecDeque<Box<KernelMessage>>,
    inbox_bytes: u64,
    // Invariant: the inbox's bytes, plus every mailbox's, plus every process's kept
    // outstanding requests (`HostState::pending_bytes`); at most `held_bytes_max`
    // (`check_invariants` recomputes it).
    held_bytes: u64,
    /// Messages for other nodes, waiting for the network (`KernelConfig::network`).
    outbound: VecDeque<Box<KernelMessage>>,
    timers: TimerQueue,
    // Invariant: exactly the processes whose `ProcessEntry::is_ready` is true (schedule.rs).
    ready: ReadySet,
    trace: Trace,
    storage: Box<dyn Storage>,
    loader: Box<dyn ProcessLoader>,
    backoffs: BTreeMap<ProcessId, lifecycle::Backoff>,
    // Invariant: a process is in `pending_restarts` or in `table`, never both.
    pending_restarts: BTreeMap<ProcessId, lifecycle::PendingRestart>,
    shut_down: bool,
    /// Simulated nanoseconds the running process has used (`ProcessContext::charge_time`).
    run_cost: u64,
    /// Under driven time: the nanoseconds of computation charged so far, which the clock did
    /// not take (its driver's does).
    time_charged: u64,
    /// Processes started (`Wake::Init`) since this kernel was built: part of each run's
    /// random key, so two runs of one process never draw the same bytes.
    starts: u64,
    // Invariant: the processes whose persisted entry changed since it was last written.
    map_dirty: std::collections::BTreeSet<ProcessId>,
    /// The step's write set and what the store holds (persist.rs).
    durable: persist::Durable,
    /// A driver's fault hook (none by default) and the messages it holds in transit.
    hook: Option<Box<dyn FaultHook>>,
    transit: hook::Transit,
    /// The node's view of the network, which `net:distro:sys` answers from.
    net: crate::process::net::NetView,
}

/// Builds a [`Kernel`].
pub struct KernelBuilder {
    config: KernelConfig,
    time: Time,
    loader: Box<dyn ProcessLoader>,
    storage: Box<dyn Storage>,
    continued: Option<Trace>,
    hook: Option<Box<dyn FaultHook>>,
}

impl KernelBuilder {
    /// A simulated kernel for node `our` with `seed`: simulated time from zero, `MemStorage`,
    /// native processes only.
    pub fn new(our: &str, seed: u64) -> Self {
        Self {
            config: KernelConfig::new(our, seed),
            time: Time::Simulated(Timestamp(0)),
            loader: Box::new(NativeLoader::new()),
            storage: Box::new(MemStorage::new()),
            continued: None,
            hook: None,
        }
    }

    /// Starts from `trace` instead of a new one: a node rebuilt in the same process (after a
    /// crash) keeps one hash chain across its life. The trace keeps its own level and bound.
    #[must_use]
    pub fn trace(mut self, trace: Trace) -> Self {
        self.continued = Some(trace);
        self
    }

    /// Puts `hook` into the kernel's routing, runs and timers (a simulator's faults).
    #[must_use]
    pub fn fault_hook(mut self, hook: Box<dyn FaultHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Replaces the configuration (keeps time, loader and storage).
    #[must_use]
    pub fn config(mut self, config: KernelConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets how the kernel's time moves and where it starts.
    #[must_use]
    pub fn time(mut self, time: Time) -> Self {
        self.time = time;
        self
    }

    /// Uses `loader` for `InitializeProcess` code.
    #[must_use]
    pub fn loader(mut self, loader: Box<dyn ProcessLoader>) -> Self {
        self.loader = loader;
        self
    }

    /// Uses `storage`: empty, the kernel bootstraps a new node into it; holding a node, the
    /// kernel boots from it.
    #[must_use]
    pub fn storage(mut self, storage: Box<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Sets the trace level.
    #[must_use]
    pub fn trace_level(mut self, level: TraceLevel) -> Self {
        self.config.trace_level = level;
        self
    }

    /// Builds the kernel with its own entry and, if configured, `timer:distro:sys`; on a store
    /// that holds a node, restores it (boot.rs) and queues `Booted`. The first commit (the
    /// meta table of a new node, or the kernel's own extended entry) is synced before this
    /// returns.
    ///
    /// # Errors
    /// The store cannot be read, holds another node or format, or is corrupt; or the first
    /// commit failed. Nothing was written over what could not be read.
    pub fn build(self) -> Result<Kernel, BootError> {
        let meta = boot::read_meta(self.storage.as_ref())?;
        if let Some(meta) = &meta {
            if meta.node != self.config.our {
                return Err(BootError::OtherNode {
                    stored: meta.node.clone(),
                    configured: self.config.our.clone(),
                });
            }
            if self.config.signing_key.is_some_and(|key| key != meta.key) {
                return Err(BootError::OtherKey);
            }
        }
        let key = match &meta {
            Some(meta) => meta.key,
            None => self
                .config
                .signing_key
                .unwrap_or_else(|| Entropy::key_bytes(self.config.seed)),
        };
        let mut kernel = self.into_kernel(&key);
        kernel.bootstrap();
        match meta {
            Some(_) => kernel.restore()?,
            None => kernel.write_meta(&key),
        }
        kernel
            .commit_step()
            .and_then(|()| kernel.sync_before_output())
            .map_err(|failure| BootError::Storage(failure.storage_error().clone()))?;
        assert!(
            kernel.durable.writes.is_empty() && kernel.map_dirty.is_empty(),
            "a built kernel has committed its boot"
        );
        Ok(kernel)
    }

    fn into_kernel(self, key: &[u8; 32]) -> Kernel {
        let our: Arc<str> = Arc::from(self.config.our.as_str());
        let trace = self.continued.unwrap_or_else(|| {
            Trace::new(self.config.trace_level).bounded(self.config.trace_records_max.max(1))
        });
        Kernel {
            our_kernel: Address {
                node: our.clone(),
                process: ProcessId::kernel(),
            },
            caps: CapabilityStore::new(&our, key),
            our,
            entropy: Entropy::new(self.config.seed),
            hook: self.hook,
            transit: hook::Transit::default(),
            net: crate::process::net::NetView::default(),
            trace,
            config: self.config,
            clock: KernelClock::new(self.time),
            table: BTreeMap::new(),
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            held_bytes: 0,
            outbound: VecDeque::new(),
            timers: TimerQueue::default(),
            ready: ReadySet::default(),
            storage: self.storage,
            loader: self.loader,
            backoffs: BTreeMap::new(),
            pending_restarts: BTreeMap::new(),
            shut_down: false,
            run_cost: 0,
            time_charged: 0,
            starts: 0,
            map_dirty: std::collections::BTreeSet::new(),
            durable: persist::Durable::default(),
        }
    }
}

impl Kernel {
    fn bootstrap(&mut self) {
        let kernel_id = ProcessId::kernel();
        let runtime_caps = vec![
            Capability::messaging(self.our_kernel.clone()),
            Capability::network(&self.our),
        ];
        let mut entry =
            ProcessEntry::new(String::new(), OnExit::Restart, false, Arc::from(&[][..]));
        // The kernel's entry is never scheduled: messages to it are commands.
        entry.driven = true;
        entry.runtime_module = true;
        self.insert_entry(&kernel_id, entry, None, &runtime_caps);
        self.start(&kernel_id);
        if self.config.timer {
            let mut caps = runtime_caps.clone();
            caps.push(Capability::messaging(self.address_of(&ProcessId::timer())));
            let timer = Box::new(TimerProcess::new());
            // The timer id is well-formed and not yet taken, so registration cannot fail.
            let _ = self.register_native(&ProcessId::timer(), timer, &caps, true);
        }
        if self.config.net {
            // Not public, as in the reference: a sender needs its messaging capability.
            let net_id = ProcessId::net();
            let mut caps = runtime_caps.clone();
            caps.push(Capability::messaging(self.address_of(&net_id)));
            let net = Box::new(crate::process::NetProcess::new());
            // Like the timer's: a well-formed id not yet taken.
            let _ = self.register_native(&net_id, net, &caps, false);
        }
        if self.config.vfs {
            let vfs_id = crate::process::vfs::vfs_id();
            let mut caps = runtime_caps.clone();
            caps.push(Capability::messaging(self.address_of(&vfs_id)));
            let vfs = Box::new(crate::process::VfsProcess::new());
            // Like the timer's: a well-formed id not yet taken.
            let _ = self.register_native(&vfs_id, vfs, &caps, true);
        }
    }

    /// Our node name.
    pub fn our(&self) -> &str {
        &self.our
    }

    /// Our identity as the network's directory gives it (`Input::Identities`), or made from
    /// our name and key: reached directly on the loopback address, with no ports (a simulated
    /// node listens on none).
    pub fn identity(&self) -> crate::types::net::Identity {
        if let Some(identity) = self.net.identity(&self.our) {
            return identity.clone();
        }
        let key = self.caps.verifying_key().to_bytes();
        let identity = crate::types::net::Identity {
            name: self.our.to_string(),
            networking_key: crate::process::net::key_string(&key),
            routing: crate::types::net::NodeRouting::Direct {
                ip: "127.0.0.1".into(),
                ports: BTreeMap::new(),
            },
        };
        debug_assert_eq!(identity.networking_key.len(), 66, "0x and 64 hex digits");
        identity
    }

    /// `our@process`.
    pub fn address_of(&self, process: &ProcessId) -> Address {
        Address {
            node: self.our.clone(),
            process: process.clone(),
        }
    }

    /// The kernel's current time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Its configuration, as built (a journal records what a replay needs of it).
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// Under driven time, the nanoseconds of computation its processes were charged so far
    /// (fuel burnt, host calls), which its clock did not take: a driver adds the growth after a
    /// step to its own clock, so time spent computing is not lost. Always 0 under simulated
    /// time, whose clock takes the charge itself.
    pub fn time_charged(&self) -> u64 {
        self.time_charged
    }

    /// The trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The trace, to drain it.
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Takes the trace out (the node is crashing; `KernelBuilder::trace` carries it on).
    #[cfg(feature = "harness")]
    pub(crate) fn take_trace(&mut self) -> Trace {
        let trace = std::mem::take(&mut self.trace);
        assert_eq!(self.trace.len(), 0, "the trace was left behind");
        trace
    }

    /// The capability store (read-only).
    pub fn capabilities(&self) -> &CapabilityStore {
        &self.caps
    }

    /// Whether `process` is in the process table.
    pub fn has_process(&self, process: &ProcessId) -> bool {
        self.table.contains_key(process)
    }

    /// The ids in the process table, in order.
    pub fn process_ids(&self) -> Vec<ProcessId> {
        self.table.keys().cloned().collect()
    }

    /// A process's lifecycle state.
    pub fn run_state(&self, process: &ProcessId) -> Option<RunState> {
        self.table.get(process).map(|entry| entry.state)
    }

    /// Whether any process may message `process` (`None`: not in the table).
    pub fn is_public(&self, process: &ProcessId) -> Option<bool> {
        self.table.get(process).map(|entry| entry.public)
    }

    /// How many messages wait in `process`'s mailbox.
    pub fn mailbox_len(&self, process: &ProcessId) -> Option<usize> {
        self.table.get(process).map(|entry| entry.mailbox.len())
    }

    /// How many messages wait in the kernel's inbox to be routed.
    pub fn inbox_len(&self) -> usize {
        self.inbox.len()
    }

    /// Whether `process` is the kernel itself or one of its runtime modules, which commands
    /// from clients may not kill, replace or reconfigure.
    pub fn is_runtime_process(&self, process: &ProcessId) -> bool {
        process.is_kernel()
            || self
                .table
                .get(process)
                .is_some_and(|e| e.runtime_module || e.protected)
    }

    /// Makes driven process `process` the node's own (`Input::Register`'s `protected`):
    /// commands from clients may no longer kill, replace or reconfigure it.
    pub(crate) fn protect(&mut self, process: &ProcessId) {
        let Some(entry) = self.table.get_mut(process) else {
            crate::kernel_bug!("{process} was protected before it was registered");
        };
        assert!(entry.driven, "only a driven process is protected");
        entry.protected = true;
        debug_assert!(
            self.is_runtime_process(process),
            "a protected process is the kernel's own"
        );
    }

    /// Whether the kernel has shut down.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    /// Registers a runtime module: a native process that runs at once (no `InitializeProcess`,
    /// like the reference's bootstrap), holding `caps` (plus messaging to itself).
    ///
    /// # Errors
    /// `ProcessExists` if the id is taken.
    pub(crate) fn register_native(
        &mut self,
        process: &ProcessId,
        runtime: Box<dyn Process>,
        caps: &[Capability],
        public: bool,
    ) -> Result<(), KernelError> {
        self.register(process, Some(runtime), caps, public)
    }

    /// Registers a driven process: one that the harness acts for through `send_as`,
    /// `respond_as` and `receive_as` (a test client, a terminal, a simulated app).
    ///
    /// # Errors
    /// `ProcessExists` if the id is taken.
    pub(crate) fn register_driven(
        &mut self,
        process: &ProcessId,
        caps: &[Capability],
        public: bool,
    ) -> Result<(), KernelError> {
        self.register(process, None, caps, public)
    }

    fn register(
        &mut self,
        process: &ProcessId,
        runtime: Option<Box<dyn Process>>,
        caps: &[Capability],
        public: bool,
    ) -> Result<(), KernelError> {
        if self.table.contains_key(process) || self.pending_restarts.contains_key(process) {
            return Err(KernelError::ProcessExists(process.clone()));
        }
        let mut caps = caps.to_vec();
        caps.push(Capability::messaging(self.address_of(process)));
        let entry = ProcessEntry::new(String::new(), OnExit::None, public, Arc::from(&[][..]));
        let driven = runtime.is_none();
        self.insert_entry(process, entry, runtime, &caps);
        let Some(entry) = self.table.get_mut(process) else {
            crate::kernel_bug!("{process} is missing right after its registration");
        };
        entry.driven = driven;
        entry.runtime_module = !driven;
        self.start(process);
        debug_assert!(
            self.caps.has_messaging(process, process),
            "{process} registered without messaging itself"
        );
        Ok(())
    }
}
