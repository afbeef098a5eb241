//! Running a scenario: set up its processes through the kernel's own commands, feed the
//! workload at its simulated times, check the kernel's invariants after every step, and stop
//! at `run_for_ms` or when the node is idle after the last workload entry.

use crate::checks::invariants::Checker;
use crate::node::faults::{Injector, Plan};
use crate::node::inside::{FaultCounters, Inside};
use crate::node::network::Network;
use crate::node::reboot::{Node, RebootError, Store};
use crate::node::scenario::{Code, Scenario, StorageKind, WorkSpec};
use hyperkernel::{
    Address, Input, Kernel, KernelBuilder, KernelConfig, KernelMessage, Message, Output, ProcessId,
    Request, Step, Time, Timestamp, WasmConfig, WasmLoader,
};
use std::fmt;
use std::sync::Arc;

pub use crate::format::NATIVES;

/// Why a run stopped early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The scenario could not be set up; the text names the process or entry.
    Setup(String),
    /// A kernel invariant broke after this step (numbered from 1).
    Invariant {
        /// The step.
        step: u64,
        /// What broke.
        broken: String,
    },
    /// Something panicked during the run (a kernel bug): the message, and the step after
    /// which it happened (0: during setup). The kernel's trace is kept up to that point.
    Panic {
        /// The last step that completed.
        step: u64,
        /// The panic's message.
        message: String,
    },
    /// The kernel stopped (fail-stop) because its store failed after this step.
    Stopped {
        /// The step.
        step: u64,
        /// Why, as the kernel reports it.
        failure: hyperkernel::KernelFailure,
    },
    /// The node did not boot again after a reboot, though its disk held no injected
    /// corruption.
    Boot {
        /// The step after which it crashed.
        step: u64,
        /// Why it did not boot.
        error: hyperkernel::BootError,
    },
    /// The run ended without the app-level outcomes its scenario expects (`expect`, tests).
    Expect {
        /// What was not shown, one line each.
        unmet: Vec<String>,
    },
    /// The liveness phase ended with work still pending.
    Liveness {
        /// The budget, simulated milliseconds.
        budget_ms: u64,
        /// What was still pending, one line each.
        pending: Vec<String>,
    },
}

impl RunError {
    /// What kind of failure, for comparing two failures (`sim shrink` keeps a reduction only
    /// if it fails the same way): the invariant's text up to its first number or address, or
    /// `liveness`.
    pub fn kind(&self) -> String {
        match self {
            Self::Setup(_) => "setup".into(),
            Self::Stopped { failure, .. } => {
                format!("stopped: {:?}", failure.storage_error().operation())
            }
            Self::Invariant { broken, .. } => broken
                .split(|c: char| c.is_ascii_digit() || c == '@')
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            Self::Liveness { .. } => "liveness".into(),
            Self::Expect { .. } => "expect".into(),
            Self::Panic { .. } => "panic".into(),
            Self::Boot { .. } => "boot".into(),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(why) => f.write_str(why),
            Self::Invariant { step, broken } => {
                write!(f, "kernel invariant broken after step {step}: {broken}")
            }
            Self::Panic { step, message } => {
                write!(f, "panic after step {step}: {message}")
            }
            Self::Stopped { step, failure } => write!(f, "at step {step}: {failure}"),
            Self::Boot { step, error } => {
                write!(f, "the node did not boot again after step {step}: {error}")
            }
            Self::Expect { unmet } => {
                write!(f, "the app did not do as expected: {}", unmet.join("; "))
            }
            Self::Liveness { budget_ms, pending } => {
                write!(
                    f,
                    "not quiescent {budget_ms} ms after the run with faults stopped; pending: {}",
                    pending.join("; ")
                )
            }
        }
    }
}

/// A finished run: the kernel (with its full trace) and the steps it took.
pub struct Run {
    /// The kernel at the end.
    pub kernel: Kernel,
    /// Kernel steps taken.
    pub steps: u64,
    /// The faults this seed drew.
    pub plan: Plan,
    /// Set when the run stopped on an error; the kernel is as it was then.
    pub error: Option<RunError>,
    /// Set when the node stayed down (its disk's injected flips corrupted its store): an
    /// outcome the faults explain, not a failure.
    pub down: Option<String>,
    /// How many times the node rebooted.
    pub reboots: u64,
    /// The simulated disk's counts, if the node ran on one.
    pub disk: Option<crate::node::disk::DiskCounters>,
    /// The faults that fired.
    pub faults: FaultCounters,
}

/// Steps the kernel until `deadline`, checking invariants after every step. Driven processes take what
/// arrives for them at once (the harness is a prompt client), so their answers show in the
/// trace as deliveries.
fn advance_kernel(
    kernel: &mut Kernel,
    world: &mut World<'_>,
    deadline: Timestamp,
) -> Result<(), RunError> {
    while let Ok(Output::Stepped(step)) = kernel.input(Input::StepBefore(deadline)) {
        world.steps += 1;
        let at_step = world.steps;
        let broken = |broken| RunError::Invariant {
            step: at_step,
            broken,
        };
        if step == Step::Failed {
            recover(kernel, world)?;
            if world.stopped {
                return Ok(());
            }
            continue;
        }
        kernel.check_invariants().map_err(broken)?;
        world.checker.check(kernel).map_err(broken)?;
        // After the checks: the step's events are judged against the state they saw.
        if world
            .injector
            .after_step(kernel, &world.node.inside, &world.crashable)
            .is_some()
        {
            kernel.check_invariants().map_err(broken)?;
            world.checker.check(kernel).map_err(broken)?;
        }
        world.node.after_step(kernel).map_err(broken)?;
        if let Some(downtime) = world.injector.reboot_due() {
            reboot(kernel, world, downtime)?;
            if world.stopped {
                return Ok(());
            }
        }
        take_answers(kernel, world).map_err(broken)?;
        recover(kernel, world)?;
        if world.stopped {
            return Ok(());
        }
        if let Some(network) = world.network.as_mut() {
            carry_outbound(kernel, network).map_err(broken)?;
            // Something now arrives before `deadline`: hand control back so `advance` takes
            // the node to that time and delivers it then, not at `deadline`.
            if network.next_arrival().is_some_and(|at| at < deadline) {
                break;
            }
        }
        if world.planted_panic == Some(at_step) {
            panic!("planted panic after step {at_step}");
        }
        if !(world.hook)(kernel) {
            world.stopped = true;
        }
        if world
            .tester
            .as_ref()
            .is_some_and(|t| !kernel.has_process(t))
        {
            // Every test has run.
            world.stopped = true;
        }
        if matches!(step, Step::ShutDown) || world.stopped {
            break;
        }
    }
    Ok(())
}

/// The network takes what the node sends out; nothing may leave before it is synced.
fn carry_outbound(kernel: &mut Kernel, network: &mut Network) -> Result<(), String> {
    while let Some(message) = kernel.take_outbound() {
        let (commits, synced) = kernel.commits();
        if commits != synced {
            return Err(format!(
                "message {} left the node before its step was synced",
                message.id
            ));
        }
        network.carry(kernel, message);
    }
    Ok(())
}

/// The driven processes take what arrived for them; nothing may leave before it is synced.
fn take_answers(kernel: &mut Kernel, world: &World<'_>) -> Result<(), String> {
    for process in &world.driven {
        let receive = || Input::Receive {
            process: process.clone(),
        };
        while let Ok(Output::Received(Some(_))) = kernel.input(receive()) {
            let (commits, synced) = kernel.commits();
            if commits != synced {
                return Err(format!(
                    "{process} received an answer before its step was synced ({synced} of {commits} commits)"
                ));
            }
        }
    }
    Ok(())
}

impl World<'_> {
    /// Whether a fail-stop is followed by a reboot: the plan has reboots or disk faults.
    fn reboots_allowed(&self) -> bool {
        let plan = &self.injector.plan;
        plan.reboot_ppm > 0
            || plan.disk != crate::node::disk::DiskFaults::default()
            || self.crash_at
    }
}

/// A kernel that stopped (a failed commit, sync or read, in a step or before output left it)
/// is rebooted, as a supervisor restarts a fail-stopped node, when the plan has reboots or
/// disk faults; otherwise the run ends with the failure.
fn recover(kernel: &mut Kernel, world: &mut World<'_>) -> Result<(), RunError> {
    let Some(failure) = kernel.failure().cloned() else {
        return Ok(());
    };
    let step = world.steps;
    if !world.reboots_allowed() {
        return Err(RunError::Stopped { step, failure });
    }
    world
        .node
        .after_step(kernel)
        .map_err(|broken| RunError::Invariant { step, broken })?;
    let downtime = world.injector.downtime();
    reboot(kernel, world, downtime)
}

/// Crashes the node and boots it again after `downtime` ms; the checker starts over.
fn reboot(kernel: &mut Kernel, world: &mut World<'_>, downtime: u64) -> Result<(), RunError> {
    let step = world.steps;
    world
        .checker
        .skip_unread(kernel)
        .map_err(|broken| RunError::Invariant { step, broken })?;
    let faults = if world.injector.stopped() {
        crate::node::inside::Faults::default()
    } else {
        world.injector.plan.kernel
    };
    let base = wasm_loader()?;
    let apps = Arc::clone(&world.apps);
    let loader = move || -> Box<dyn hyperkernel::ProcessLoader> {
        Box::new(
            base.share()
                .with_native(crate::node::natives::natives(&apps)),
        )
    };
    world
        .node
        .reboot(kernel, downtime, &loader, faults)
        .map_err(|error| match error {
            RebootError::Lost(broken) => RunError::Invariant { step, broken },
            RebootError::Boot(error) => RunError::Boot { step, error },
        })?;
    world.checker.rebooted();
    if world.node.down.is_some() {
        world.stopped = true;
        return Ok(());
    }
    let broken = |broken| RunError::Invariant { step, broken };
    kernel.check_invariants().map_err(broken)?;
    world.checker.check(kernel).map_err(broken)
}

/// Steps until `deadline`, handing the node what the network brings on the way.
fn advance(
    kernel: &mut Kernel,
    world: &mut World<'_>,
    deadline: Timestamp,
) -> Result<(), RunError> {
    loop {
        let arrival = world
            .network
            .as_ref()
            .and_then(Network::next_arrival)
            .filter(|at| *at <= deadline);
        advance_kernel(kernel, world, arrival.unwrap_or(deadline))?;
        let (Some(at), Some(network)) = (arrival, world.network.as_mut()) else {
            return Ok(());
        };
        if world.stopped || kernel.is_shut_down() || kernel.now() < at {
            return Ok(());
        }
        let step = world.steps;
        network
            .deliver_due(kernel)
            .map_err(|broken| RunError::Invariant { step, broken })?;
    }
}

/// Called after every step (and its checks) with the kernel; returns whether to go on.
pub type Hook<'h> = &'h mut dyn FnMut(&Kernel) -> bool;

/// The harness's side of a run.
struct World<'h> {
    driven: Vec<ProcessId>,
    /// Processes a crash fault may hit: the scenario's code-bearing ones.
    crashable: Vec<ProcessId>,
    steps: u64,
    /// The hook said stop.
    stopped: bool,
    hook: Hook<'h>,
    checker: Checker,
    injector: Injector,
    network: Option<Network>,
    /// `Options::planted_panic`.
    planted_panic: Option<u64>,
    /// The node's store and its life across reboots.
    node: Node,
    /// `Options::crash_at` was given.
    crash_at: bool,
    /// The scenario's packages and tests.
    apps: Arc<crate::node::apps::Loaded>,
    /// The tester, while tests run: the run ends when it has returned.
    tester: Option<ProcessId>,
}

/// A peer on another node sends a workload entry's message (its node's kernel sends it).
fn act_as_peer(
    kernel: &mut Kernel,
    world: &mut World<'_>,
    work: &WorkSpec,
) -> Result<(), RunError> {
    let (Some(send), Some(network)) = (&work.send, world.network.as_mut()) else {
        return Ok(());
    };
    let (Ok(source), Ok(target)) = (work.from.parse::<Address>(), send.to.parse::<Address>())
    else {
        return Ok(());
    };
    let mut request = Request::new(send.body.clone());
    request.expects_response = send.expects_response;
    let message = KernelMessage {
        id: network.fresh_id(),
        source,
        target,
        rsvp: None,
        message: Message::Request(request),
        lazy_load_blob: None,
    };
    let step = world.steps;
    network
        .send_in(kernel, message)
        .map_err(|broken| RunError::Invariant { step, broken })
}

fn act(
    kernel: &mut Kernel,
    world: &mut World<'_>,
    scenario: &Scenario,
    index: usize,
) -> Result<(), RunError> {
    recover(kernel, world)?;
    if world.stopped {
        return Ok(());
    }
    let work = &scenario.file.workload[index];
    if work.from.contains('@') {
        return act_as_peer(kernel, world, work);
    }
    let place = format!("{}: workload[{index}]", scenario.path.display());
    let setup = |e: hyperkernel::KernelError| RunError::Setup(format!("{place}: {e}"));
    let from: ProcessId = work
        .from
        .parse()
        .map_err(|e| RunError::Setup(format!("{place}: {e}")))?;
    if let Some(send) = &work.send {
        let to: Address = send
            .to
            .parse()
            .map_err(|e| RunError::Setup(format!("{place}: {e}")))?;
        let mut request = Request::new(send.body.clone());
        request.expects_response = send.expects_response;
        let send = Input::Send {
            process: from,
            target: to,
            request,
            context: None,
            blob: None,
        };
        kernel.input(send).map_err(setup)?;
    } else if let Some(command) = &work.command {
        let command = Input::Command {
            process: from,
            command: command.clone(),
            expects_response: work.expects_response,
            blob: None,
        };
        kernel.input(command).map_err(setup)?;
    }
    Ok(())
}

/// How to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Plant the kernel's test-only capability bug (`KernelConfig::planted_bug`).
    pub planted_bug: bool,
    /// Test only: the harness itself panics after this step, to test that a panic becomes a
    /// failure of its seed (the kernel carries no such switch).
    pub planted_panic: Option<u64>,
    /// Crash the node at this disk operation after setup (a write or sync of the simulated
    /// disk, counted from 0), keeping of the unsynced writes what the mode says; the node then
    /// reboots. Needs `"storage": "disk"`.
    pub crash_at: Option<(u64, crate::node::disk::CrashMode)>,
}

/// One thing the harness does at a simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Work(usize),
    StopFaults,
}

fn timeline(scenario: &Scenario, plan: &Plan) -> Vec<(u64, Action)> {
    let mut actions: Vec<(u64, Action)> = scenario
        .file
        .workload
        .iter()
        .enumerate()
        .map(|(i, work)| (work.at_ms, Action::Work(i)))
        .collect();
    if plan != &Plan::default() {
        actions.push((plan.until_ms, Action::StopFaults));
    }
    actions.sort_by_key(|(at, _)| *at);
    actions
}

thread_local! {
    /// This thread's wasm engine and compiled modules, shared by its runs (`WasmLoader::share`).
    static WASM: std::cell::OnceCell<WasmLoader> = const { std::cell::OnceCell::new() };
}

/// A wasm loader for one run, on this thread's shared engine and module cache.
fn wasm_loader() -> Result<WasmLoader, RunError> {
    WASM.with(|cell| {
        if let Some(loader) = cell.get() {
            return Ok(loader.share());
        }
        let loader =
            WasmLoader::new(WasmConfig::default()).map_err(|e| RunError::Setup(e.to_string()))?;
        Ok(cell.get_or_init(|| loader).share())
    })
}

/// The kernel configuration of `scenario`'s node.
pub(crate) fn config(scenario: &Scenario, seed: u64, options: Options) -> KernelConfig {
    let mut config = KernelConfig::new(&scenario.file.node, seed);
    config.planted_bug = options.planted_bug;
    config.network = scenario.file.network.is_some();
    config.sync_interval_nanos = scenario.file.sync_interval_ms.saturating_mul(1_000_000);
    config.vfs = scenario.vfs();
    config.trace_bodies = scenario.file.trace_bodies;
    config
}

/// The store of `scenario`'s node for `seed`: its disk's faults begin once setup is done
/// (`drive` sets them with the kernel's).
pub(crate) fn store(scenario: &Scenario, seed: u64) -> Store {
    let disk = scenario.file.storage == StorageKind::Disk
        || scenario
            .file
            .faults
            .as_ref()
            .is_some_and(|f| f.disk.is_some());
    Store::new(disk, seed, crate::node::disk::DiskFaults::default())
}

/// The loader of `scenario`'s node: wasm on this thread's shared engine, and the natives.
///
/// # Errors
/// The wasm engine could not be made.
pub(crate) fn node_loader(
    apps: &Arc<crate::node::apps::Loaded>,
) -> Result<Box<dyn hyperkernel::ProcessLoader>, RunError> {
    Ok(Box::new(
        wasm_loader()?.with_native(crate::node::natives::natives(apps)),
    ))
}

/// Boots `scenario`'s node on `store` with `time` and `inside`'s fault hook, and sets up its
/// packages and processes, recording every input of the setup in `log` when given.
///
/// # Errors
/// The store did not open, the kernel did not boot, or setup failed.
pub(crate) fn build_logged(
    scenario: &Scenario,
    config: KernelConfig,
    store: &Store,
    (time, inside): (Time, &Inside),
    log: Option<&mut Vec<Input>>,
) -> Result<Kernel, RunError> {
    let apps = scenario.apps().map_err(RunError::Setup)?;
    let loader = node_loader(&apps)?;
    let storage = store
        .open()
        .map_err(|e| RunError::Setup(format!("the store did not open: {e}")))?;
    let mut kernel = KernelBuilder::new(&scenario.file.node, config.seed)
        .config(config)
        .time(time)
        .loader(loader)
        .storage(storage)
        .fault_hook(inside.hook())
        .build()
        .map_err(|e| RunError::Setup(format!("the kernel did not boot: {e}")))?;
    let mut fed = crate::node::feed::Logged {
        kernel: &mut kernel,
        log,
    };
    crate::node::setup::start_processes(&mut fed, scenario, &apps).map_err(RunError::Setup)?;
    Ok(kernel)
}

/// The driven processes of `scenario` with their capabilities (resolved already by setup).
pub(crate) fn driven_specs(
    scenario: &Scenario,
) -> Vec<(ProcessId, Vec<hyperkernel::Capability>, bool)> {
    let node = &scenario.file.node;
    scenario
        .processes
        .iter()
        .zip(&scenario.file.processes)
        .filter(|((_, code), _)| *code == Code::Driven)
        .map(|((id, _), spec)| {
            let caps = spec
                .capabilities
                .iter()
                .filter_map(|c| c.resolve(node).ok())
                .collect();
            (id.clone(), caps, spec.public)
        })
        .collect()
}

fn world<'h>(
    scenario: &Scenario,
    seed: u64,
    hook: Hook<'h>,
    injector: Injector,
    mut node: Node,
) -> Result<World<'h>, RunError> {
    let of_code = |driven: bool| {
        scenario
            .processes
            .iter()
            .filter(move |(_, code)| (*code == Code::Driven) == driven)
            .map(|(id, _)| id.clone())
            .collect()
    };
    let plan = injector.plan;
    for (id, caps, public) in driven_specs(scenario) {
        node.add_driven(id, caps, public);
    }
    let inside = node.inside.clone();
    Ok(World {
        node,
        crash_at: false,
        apps: scenario.apps().unwrap_or_default(),
        tester: scenario
            .file
            .tests
            .as_ref()
            .and_then(|_| crate::node::apps::TESTER.parse().ok()),
        driven: of_code(true),
        crashable: of_code(false),
        steps: 0,
        stopped: false,
        hook,
        checker: Checker::default(),
        planted_panic: None,
        injector,
        network: scenario
            .file
            .network
            .as_ref()
            .map(|spec| Network::new(spec, seed, (plan.drop_ppm, plan.duplicate_ppm), inside))
            .transpose()
            .map_err(|e| RunError::Setup(format!("the network's peers: {e}")))?,
    })
}

fn stop_faults(world: &mut World<'_>) {
    world.injector.stop(&world.node.inside);
    if let Some(disk) = world.node.store.disk() {
        disk.set_faults(crate::node::disk::DiskFaults::default());
    }
    if let Some(network) = world.network.as_mut() {
        network.stop_faults();
    }
}

/// Nothing left to do in the node or on the network.
fn quiescent(kernel: &Kernel, world: &World<'_>) -> bool {
    kernel.is_quiescent() && world.network.as_ref().is_none_or(Network::is_empty)
}

/// Runs the timeline, then the liveness phase.
fn drive(kernel: &mut Kernel, world: &mut World<'_>, scenario: &Scenario) -> Result<(), RunError> {
    let start = kernel.now();
    let at = |ms: u64| start.plus_millis(ms);
    world.node.inside.set(world.injector.plan.kernel);
    if let Some(disk) = world.node.store.disk() {
        disk.set_faults(world.injector.plan.disk);
    }
    for (at_ms, action) in timeline(scenario, &world.injector.plan) {
        advance(kernel, world, at(at_ms))?;
        if world.stopped {
            return Ok(());
        }
        match action {
            Action::Work(index) => act(kernel, world, scenario, index)?,
            Action::StopFaults => stop_faults(world),
        }
    }
    advance(kernel, world, at(scenario.file.run_for_ms))?;
    if world.stopped {
        return Ok(());
    }
    let Some(budget_ms) = scenario.file.quiesce_within_ms else {
        return Ok(());
    };
    stop_faults(world);
    let budget = at(scenario.file.run_for_ms.saturating_add(budget_ms));
    // Timer by timer, so the clock stops where the node went quiet.
    while !quiescent(kernel, world) && kernel.now() < budget && !world.stopped {
        let arrival = world.network.as_ref().and_then(Network::next_arrival);
        let next = kernel.next_timer().into_iter().chain(arrival).min();
        advance(
            kernel,
            world,
            next.unwrap_or(budget).min(budget).max(kernel.now()),
        )?;
    }
    if world.stopped {
        return Ok(());
    }
    if quiescent(kernel, world) {
        let steps = world.steps;
        return world
            .checker
            .finish(kernel)
            .map_err(|broken| RunError::Invariant {
                step: steps,
                broken,
            });
    }
    Err(RunError::Liveness {
        budget_ms,
        pending: kernel.view().pending(),
    })
}

/// Runs `f`, turning a panic into its message. The kernel is single-threaded and a run owns
/// it, so whatever a panic left half-done is only read afterwards (its trace), never stepped.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Runs `scenario` with `seed`.
///
/// # Errors
/// Setup failed (a process that cannot start, a guest that cannot be built). An invariant
/// that breaks mid-run, or a liveness phase that does not quiesce, is reported in
/// [`Run::error`], with the kernel as it was.
pub fn run(scenario: &Scenario, seed: u64, options: Options) -> Result<Run, RunError> {
    run_with(scenario, seed, options, &mut |_| true)
}

/// [`run`], calling `hook` after every step; the run stops when it returns false.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    scenario: &Scenario,
    seed: u64,
    options: Options,
    hook: Hook<'_>,
) -> Result<Run, RunError> {
    let scenario = &scenario.for_seed(seed);
    let injector = Injector::draw(
        scenario.file.faults.as_ref(),
        seed,
        scenario.file.run_for_ms,
    );
    let plan = injector.plan;
    let config = config(scenario, seed, options);
    let store = store(scenario, seed);
    let inside = Inside::new(config.seed);
    let time = (Time::Simulated(Timestamp(0)), &inside);
    let mut kernel = catch(|| build_logged(scenario, config.clone(), &store, time, None))
        .unwrap_or_else(|message| Err(RunError::Panic { step: 0, message }))?;
    let watch = plan.reboot_ppm > 0
        || plan.disk != crate::node::disk::DiskFaults::default()
        || options.crash_at.is_some();
    let mut node = Node::new(store, config, watch, inside);
    node.started(&mut kernel).map_err(RunError::Setup)?;
    if let Some((at, mode)) = options.crash_at {
        let disk = node.store.disk().ok_or_else(|| {
            RunError::Setup("a crash at a disk operation needs \"storage\": \"disk\"".into())
        })?;
        disk.crash_at(at, mode);
    }
    let mut world = world(scenario, seed, hook, injector, node)?;
    world.crash_at = options.crash_at.is_some();
    world.planted_panic = options.planted_panic;
    let driven = catch(|| drive(&mut kernel, &mut world, scenario));
    let mut error = match driven {
        Err(message) => Some(RunError::Panic {
            step: world.steps,
            message,
        }),
        Ok(Err(RunError::Setup(why))) => return Err(RunError::Setup(why)),
        Ok(result) => result.err(),
    };
    if error.is_none() && world.node.down.is_none() {
        let unmet = crate::node::apps::unmet(&kernel, &scenario.file);
        if !unmet.is_empty() {
            error = Some(RunError::Expect { unmet });
        }
    }
    Ok(Run {
        kernel,
        steps: world.steps,
        plan: world.injector.plan,
        error,
        down: world.node.down.take(),
        disk: world
            .node
            .store
            .disk()
            .map(crate::node::disk::SimDisk::counters),
        reboots: world.node.reboots,
        faults: world.node.inside.counters(),
    })
}
