//! Running a world scenario: every node set up as its one-node scenario would be (on driven
//! time, with its own seed), the workload and the drawn faults fed at their simulated times,
//! each node's kernel invariants and checks after every one of its steps, the world's on every
//! network event, a crashed node booted again from its store (its signatures verified, W7),
//! then the liveness phase: with faults stopped and cuts healed, every node must quiesce and
//! every link empty within `quiesce_within_ms`, and pass its checker's final checks: every
//! request that expects an answer got exactly one, from its own node or across the network
//! (W6), and every signature verifies (W7). Also `explore` over seeds of a world.

use super::spec::{WorldAction, WorldScenario};
use super::{NodeLife, World, WorldError, node_seed};
use crate::checks::invariants::Checker;
use crate::node::faults::Injector;
use crate::node::reboot::{Node as Life, RebootError};
use crate::node::scenario::Scenario;
use crate::run::{self, Options, RunError};
use crate::tools::explore::{Exploration, SeedResult};
use hyperkernel::{Input, Kernel, ProcessId, Request, Time, Timestamp};
use std::sync::Arc;

/// A node's life in a scenario's world: its store and reboots, its checker, its driven
/// processes (which take what arrives for them at once, as in one-node runs).
struct ScenarioLife {
    life: Life,
    checker: Checker,
    driven: Vec<ProcessId>,
    apps: Arc<crate::node::apps::Loaded>,
    /// The node's own faults (its scenario's `faults`), drawn from its seed.
    injector: Injector,
    /// Processes a crash fault may hit: its code-bearing ones.
    crashable: Vec<ProcessId>,
    /// How it booted: its one-node scenario and configuration (W9 boots it so again).
    boot: (Scenario, hyperkernel::KernelConfig),
}

impl ScenarioLife {
    /// Whether a stopped kernel is restarted (a reboot) rather than failing the run: the
    /// node's plan has reboots or disk faults.
    fn restarts(&self) -> bool {
        let plan = &self.injector.plan;
        plan.reboot_ppm > 0 || plan.disk != crate::node::disk::DiskFaults::default()
    }
}

impl NodeLife for ScenarioLife {
    fn after_step(&mut self, kernel: &mut Kernel) -> Result<Option<u64>, String> {
        if kernel.failure().is_none() {
            kernel.check_invariants()?;
            self.checker.check(kernel)?;
            if self
                .injector
                .after_step(kernel, &self.life.inside, &self.crashable)
                .is_some()
            {
                kernel.check_invariants()?;
                self.checker.check(kernel)?;
            }
        }
        self.life.after_step(kernel)?;
        if let Some(failure) = kernel.failure() {
            if !self.restarts() {
                return Err(format!("the kernel stopped: {failure}"));
            }
            return Ok(Some(self.injector.downtime()));
        }
        if let Some(downtime) = self.injector.reboot_due() {
            return Ok(Some(downtime));
        }
        if kernel.now().0 >= self.injector.plan.until_ms.saturating_mul(1_000_000)
            && !self.injector.stopped()
        {
            self.stop_faults(kernel);
        }
        Ok(None)
    }

    fn driven(&self) -> Vec<ProcessId> {
        self.driven.clone()
    }

    fn fresh(&self, hooked: bool) -> Option<Kernel> {
        // Only faults through the hook replay from the node's seed and schedule; the others
        // reach it beside its inputs.
        let through_hook = crate::node::faults::Plan {
            kernel: self.injector.plan.kernel,
            until_ms: self.injector.plan.until_ms,
            ..crate::node::faults::Plan::default()
        };
        if self.injector.plan != through_hook || (!hooked && self.injector.plan.kernel.any()) {
            return None;
        }
        let (one, config) = &self.boot;
        let storage = run::store(one, config.seed).open().ok()?;
        let inside =
            crate::node::inside::Inside::replaying(config.seed, &self.life.inside.changes());
        hyperkernel::KernelBuilder::new(&config.our, config.seed)
            .config(config.clone())
            .time(Time::Driven(Timestamp(0)))
            .loader(run::node_loader(&self.apps).ok()?)
            .storage(storage)
            .fault_hook(inside.hook())
            .build()
            .ok()
    }

    fn crash(&mut self, kernel: &mut Kernel, downtime_ms: u64) -> Result<bool, String> {
        self.checker.skip_unread(kernel)?;
        let apps = Arc::clone(&self.apps);
        let loader = move || -> Box<dyn hyperkernel::ProcessLoader> {
            run::node_loader(&apps).unwrap_or_else(|_| Box::new(hyperkernel::NativeLoader::new()))
        };
        let faults = if self.injector.stopped() {
            crate::node::inside::Faults::default()
        } else {
            self.injector.plan.kernel
        };
        self.life
            .reboot(kernel, downtime_ms, &loader, faults)
            .map_err(|error| match error {
                RebootError::Lost(broken) => broken,
                RebootError::Boot(error) => format!("it did not boot again: {error}"),
            })?;
        self.checker.rebooted();
        if self.life.down.is_some() {
            return Ok(false);
        }
        kernel.check_invariants()?;
        self.checker.check(kernel)?;
        // W7 on what it came back with: every signature it holds is its own key's.
        kernel.capabilities().verify_signatures()?;
        Ok(true)
    }

    fn finish(&mut self, kernel: &Kernel) -> Result<(), String> {
        if self.life.down.is_some() {
            return Ok(());
        }
        self.checker.finish(kernel)
    }

    fn faults(&self) -> crate::node::inside::FaultCounters {
        self.life.inside.counters()
    }

    fn stop_faults(&mut self, _: &mut Kernel) {
        self.injector.stop(&self.life.inside);
        if let Some(disk) = self.life.store.disk() {
            disk.set_faults(crate::node::disk::DiskFaults::default());
        }
    }
}

/// A finished world run.
pub struct WorldRun {
    /// The scenario as this seed ran it (drawn faults as entries).
    pub scenario: WorldScenario,
    /// The world at the end.
    pub world: World,
    /// Set when the run failed; the world is as it was then.
    pub error: Option<RunError>,
    /// Whether a beyond-reference fault was on.
    pub beyond: bool,
}

/// Sets up node `index` of `scenario` for `seed` and adds it to `world`.
fn add_node(
    world: &mut World,
    scenario: &WorldScenario,
    index: usize,
    seed: u64,
) -> Result<(), RunError> {
    let one: &Scenario = &scenario.nodes[index];
    let name = &one.file.node;
    let node_seed = node_seed(seed, name);
    let mut config = run::config(one, node_seed, Options::default());
    // Every node of a world answers network questions (and keeps doing so after a reboot).
    config.net = true;
    let store = run::store(one, node_seed);
    let mut inputs = Vec::new();
    let inside = crate::node::inside::Inside::new(node_seed);
    let time = (Time::Driven(Timestamp(0)), &inside);
    let kernel = run::build_logged(one, config.clone(), &store, time, Some(&mut inputs)).map_err(
        |e| match e {
            RunError::Setup(why) => RunError::Setup(format!("node {name}: {why}")),
            other => other,
        },
    )?;
    let injector = Injector::draw(one.file.faults.as_ref(), node_seed, one.file.run_for_ms);
    let plan = injector.plan;
    let crashes = scenario
        .actions
        .iter()
        .any(|a| matches!(a, WorldAction::Crash { node, .. } if *node == index))
        || plan.reboot_ppm > 0
        || plan.disk != crate::node::disk::DiskFaults::default();
    let mut life = Life::new(store, config.clone(), crashes, inside).on_driven_time();
    let mut kernel = kernel;
    life.started(&mut kernel).map_err(RunError::Setup)?;
    // The node's own faults begin once its setup is done, as in one-node runs.
    life.inside.set(plan.kernel);
    if let Some(disk) = life.store.disk() {
        disk.set_faults(plan.disk);
    }
    let crashable = one
        .processes
        .iter()
        .filter(|(_, code)| *code != crate::node::scenario::Code::Driven)
        .map(|(id, _)| id.clone())
        .collect();
    let mut driven = Vec::new();
    for (id, caps, public) in run::driven_specs(one) {
        driven.push(id.clone());
        life.add_driven(id, caps, public);
    }
    let apps = one.apps().map_err(RunError::Setup)?;
    let life = ScenarioLife {
        life,
        checker: Checker::default(),
        driven,
        apps,
        injector,
        crashable,
        boot: (one.clone(), config),
    };
    world
        .add_kernel(name, kernel, Some(Box::new(life)), inputs)
        .map_err(RunError::Setup)?;
    Ok(())
}

/// The world of `scenario` for `seed`, set up.
fn build(scenario: &WorldScenario, seed: u64) -> Result<World, RunError> {
    let net = &scenario.file.network;
    let config = super::net::NetConfig {
        delay_min_nanos: net.delay_ms.min.saturating_mul(1_000_000),
        delay_mean_nanos: net.delay_ms.mean.saturating_mul(1_000_000),
    };
    let mut world = World::new(seed, config);
    for index in 0..scenario.nodes.len() {
        add_node(&mut world, scenario, index, seed)?;
    }
    for link in &net.links {
        let (Some(a), Some(b)) = (
            scenario.index_of(&link.between[0]),
            scenario.index_of(&link.between[1]),
        ) else {
            continue;
        };
        let ms = |v: u64| v.saturating_mul(1_000_000);
        world
            .net()
            .set_link_delay(a, b, ms(link.delay_ms.min), ms(link.delay_ms.mean));
    }
    if let Some(beyond) = scenario
        .file
        .faults
        .as_ref()
        .and_then(|f| f.beyond_reference)
    {
        let ppm = |p: f64| (p * 1_000_000.0) as u32;
        world.set_beyond(super::net::Beyond {
            reorder_ppm: ppm(beyond.reorder),
            duplicate_ppm: ppm(beyond.duplicate),
            drop_ppm: ppm(beyond.drop),
        });
    }
    world.publish_directory();
    world.carry_setups();
    Ok(world)
}

fn invariant(error: WorldError) -> RunError {
    let broken = match error.node {
        Some(node) => format!("node {node}: {}", error.broken),
        None => error.broken,
    };
    RunError::Invariant {
        step: error.pass,
        broken,
    }
}

/// Does workload entry `index`.
fn act(world: &mut World, scenario: &WorldScenario, index: usize) -> Result<(), RunError> {
    let work = &scenario.file.workload[index];
    match &scenario.actions[index] {
        WorldAction::Act(node) => {
            let place = format!("{}: workload[{index}]", scenario.path.display());
            let setup = |e: String| RunError::Setup(format!("{place}: {e}"));
            let from: ProcessId = work
                .from
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(|e| setup(format!("{e}")))?;
            let input = if let Some(send) = &work.send {
                let mut request = Request::new(send.body.clone());
                request.expects_response = send.expects_response;
                Input::Send {
                    process: from,
                    target: send.to.parse().map_err(|e| setup(format!("{e}")))?,
                    request,
                    context: None,
                    blob: None,
                }
            } else {
                let Some(command) = work.command.clone() else {
                    return Err(setup("no send and no command".into()));
                };
                Input::Command {
                    process: from,
                    command,
                    expects_response: work.expects_response,
                    blob: None,
                }
            };
            // A node that is down misses what its client would have done meanwhile.
            if !world.is_down(*node) {
                world
                    .input(*node, input)
                    .map_err(|e| setup(e.to_string()))?;
            }
        }
        WorldAction::Cut { from, to, one_way } => {
            world.cut(from.clone(), to.clone(), *one_way);
        }
        WorldAction::Heal => world.heal(),
        WorldAction::Clog { nodes, for_ms } => world.clog(nodes.clone(), *for_ms),
        WorldAction::Reset(a, b) => world.reset(*a, *b),
        WorldAction::Crash { node, downtime_ms } => {
            world.crash(*node, *downtime_ms).map_err(invariant)?;
        }
    }
    Ok(())
}

/// The workload, the run to `run_for_ms`, then the liveness phase.
fn drive(world: &mut World, scenario: &WorldScenario) -> Result<(), RunError> {
    let at = |ms: u64| Timestamp(0).plus_millis(ms);
    let mut order: Vec<usize> = (0..scenario.actions.len()).collect();
    order.sort_by_key(|i| scenario.file.workload[*i].at_ms);
    for index in order {
        world
            .run_until(at(scenario.file.workload[index].at_ms))
            .map_err(invariant)?;
        if world.stopped() {
            return Ok(());
        }
        act(world, scenario, index)?;
    }
    let end = at(scenario.file.run_for_ms);
    world.run_until(end).map_err(invariant)?;
    let Some(budget_ms) = scenario.file.quiesce_within_ms else {
        return Ok(());
    };
    if world.stopped() {
        return Ok(());
    }
    world.stop_faults();
    let budget = at(scenario.file.run_for_ms.saturating_add(budget_ms));
    while !world.is_quiescent() && world.now() < budget {
        match world.step_before(budget).map_err(invariant)? {
            super::WorldStep::Idle => break,
            super::WorldStep::Stopped => return Ok(()),
            _ => {}
        }
    }
    if !world.is_quiescent() {
        return Err(RunError::Liveness {
            budget_ms,
            pending: world.pending(),
        });
    }
    world.finish().map_err(invariant)
}

/// Runs `scenario` with `seed`.
///
/// # Errors
/// Setup failed. A failure mid-run is in [`WorldRun::error`].
pub fn run_world(scenario: &WorldScenario, seed: u64) -> Result<WorldRun, RunError> {
    run_world_until(scenario, seed, None)
}

/// [`run_world`], stopping once the world's trace holds line `until` (counted from 0): the
/// world as it was right after the pass that recorded it.
///
/// # Errors
/// As [`run_world`].
pub fn run_world_until(
    scenario: &WorldScenario,
    seed: u64,
    until: Option<usize>,
) -> Result<WorldRun, RunError> {
    let scenario = scenario
        .for_seed(seed)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let beyond = scenario
        .file
        .faults
        .as_ref()
        .and_then(|f| f.beyond_reference)
        .is_some_and(|b| b.any());
    let mut world = run::catch(|| build(&scenario, seed))
        .unwrap_or_else(|message| Err(RunError::Panic { step: 0, message }))?;
    if let Some(line) = until {
        world.stop_after(line);
    }
    let driven = run::catch(|| drive(&mut world, &scenario));
    let mut error = match driven {
        Err(message) => Some(RunError::Panic {
            step: world.passes(),
            message,
        }),
        Ok(Err(RunError::Setup(why))) => return Err(RunError::Setup(why)),
        Ok(result) => result.err(),
    };
    if error.is_none() && !world.stopped() {
        let unmet: Vec<String> = scenario
            .nodes
            .iter()
            .zip(world.nodes())
            .enumerate()
            .filter(|(index, _)| !world.is_down_for_good(*index))
            .flat_map(|(_, (one, node))| {
                crate::node::apps::unmet(&node.kernel, &one.file)
                    .into_iter()
                    .map(|u| format!("{}: {u}", node.name))
            })
            .collect();
        if !unmet.is_empty() {
            error = Some(RunError::Expect { unmet });
        }
    }
    Ok(WorldRun {
        scenario,
        world,
        error,
        beyond,
    })
}

/// The first node whose trace differs between two runs of one world, with the difference.
fn first_difference(a: &World, b: &World) -> Option<String> {
    for (x, y) in a.nodes().iter().zip(b.nodes()) {
        if let Some(report) = crate::tools::replay::diff_report(
            x.kernel.trace().records(),
            y.kernel.trace().records(),
            2,
        ) {
            return Some(format!("node {}: {report}", x.name));
        }
    }
    (a.hash() != b.hash()).then(|| {
        format!(
            "the network's events differ (world hashes {:016x} and {:016x})",
            a.hash(),
            b.hash()
        )
    })
}

/// One seed of a world: two runs here (and a third in a fresh process when sampled); their
/// world hashes must agree.
pub fn explore_seed(scenario: &WorldScenario, seed: u64, plan: &Exploration) -> SeedResult {
    let failed = |failure: String| SeedResult {
        seed,
        hash: 0,
        simulated: 0,
        failure: Some(failure),
        divergence: None,
        alone: 0,
    };
    let (first, second) = match (run_world(scenario, seed), run_world(scenario, seed)) {
        (Ok(first), Ok(second)) => (first, second),
        (Err(error), _) | (_, Err(error)) => return failed(error.to_string()),
    };
    let hash = first.world.hash();
    let mut divergence = first_difference(&first.world, &second.world);
    let mut alone = 0;
    if divergence.is_none() {
        // W9: each node run again alone from its inputs records the same trace.
        let judged: Vec<Result<(), String>> = (0..first.world.nodes().len())
            .filter_map(|index| first.world.replay_alone(index))
            .collect();
        alone = judged.iter().filter(|r| r.is_ok()).count() as u64;
        divergence = judged.into_iter().find_map(Result::err);
    }
    let sampled = plan.fresh_every > 0 && seed.is_multiple_of(plan.fresh_every);
    if divergence.is_none() && sampled {
        divergence =
            crate::tools::explore::fresh_divergence(&scenario.path, seed, plan.options, hash);
    }
    SeedResult {
        seed,
        hash,
        simulated: first.world.now().0,
        failure: first.error.map(|e| e.to_string()),
        divergence,
        alone,
    }
}
