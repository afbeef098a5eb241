//! Running a scenario: set up its processes through the kernel's own commands, feed the
//! workload at its simulated times, check the kernel's invariants after every step, and stop
//! at `run_for_ms` or when the node is idle after the last workload entry.

use crate::invariants::Checker;
use crate::scenario::{Code, Scenario};
use hyperkernel::{
    Address, Event, Flow, Kernel, KernelBuilder, KernelCommand, KernelConfig, KernelMessage,
    LazyLoadBlob, Message, NativeLoader, Process, ProcessContext, ProcessId, Request, Response,
    Step, Timestamp, Wake, WasmConfig, WasmLoader,
};
use std::fmt;

/// The built-in native processes a scenario may name.
pub const NATIVES: &[&str] = &["echo", "sink"];

fn echo() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            ctx.send_response(Response::new(request.body), None);
        }
        Flow::Receive
    })
}

fn sink() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, _: Wake| Flow::Receive)
}

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
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(why) => f.write_str(why),
            Self::Invariant { step, broken } => {
                write!(f, "kernel invariant broken after step {step}: {broken}")
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
    /// Set when the run stopped on an error; the kernel is as it was then.
    pub error: Option<RunError>,
}

fn code_bytes(scenario: &Scenario, code: &Code) -> Result<Vec<u8>, String> {
    match code {
        Code::Guest(name) => crate::guests::guest(name),
        Code::Wasm(path) => {
            let path = scenario.resolve(path);
            let bytes =
                std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if !bytes.starts_with(b"\0asm") {
                return Err(format!(
                    "{} is not a wasm module (invalid wasm)",
                    path.display()
                ));
            }
            Ok(bytes)
        }
        Code::Native(name) => Ok(name.as_bytes().to_vec()),
        Code::Driven => Ok(Vec::new()),
    }
}

/// Sends `command` to the kernel as the kernel itself (setup only).
fn kernel_command(
    kernel: &mut Kernel,
    command: &KernelCommand,
    blob: Option<LazyLoadBlob>,
) -> Result<(), String> {
    let us = Address::new(kernel.our(), ProcessId::kernel());
    let body = serde_json::to_vec(command).map_err(|e| e.to_string())?;
    let message = KernelMessage {
        id: 0,
        source: us.clone(),
        target: us,
        rsvp: None,
        message: Message::Request(Request::new(body)),
        lazy_load_blob: blob,
    };
    kernel.submit(message).map_err(|e| e.to_string())?;
    kernel.run_until(kernel.now());
    Ok(())
}

/// Why the last command failed, from the trace.
fn failure_of(kernel: &Kernel) -> String {
    kernel
        .trace()
        .records()
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::CommandFailed { error, .. } => Some(error.message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "it did not start".into())
}

fn start_processes(kernel: &mut Kernel, scenario: &Scenario) -> Result<(), String> {
    let node = &scenario.file.node;
    for (i, ((id, code), spec)) in scenario
        .processes
        .iter()
        .zip(&scenario.file.processes)
        .enumerate()
    {
        let place = format!("{}: processes[{i}] ({id})", scenario.path.display());
        let caps = spec
            .capabilities
            .iter()
            .map(|c| c.resolve(node))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{place}: {e}"))?;
        if *code == Code::Driven {
            kernel
                .register_driven(id, &caps, spec.public)
                .map_err(|e| format!("{place}: {e}"))?;
            continue;
        }
        let bytes = code_bytes(scenario, code).map_err(|e| format!("{place}: {e}"))?;
        let init = KernelCommand::InitializeProcess {
            id: id.clone(),
            wasm_bytes_handle: format!(
                "/{}:{}/pkg/{}.wasm",
                id.package(),
                id.publisher(),
                id.process()
            ),
            wit_version: Some(1),
            on_exit: spec.on_exit.clone(),
            initial_capabilities: caps,
            public: spec.public,
        };
        let blob = LazyLoadBlob { mime: None, bytes };
        kernel_command(kernel, &init, Some(blob)).map_err(|e| format!("{place}: {e}"))?;
        if !kernel.has_process(id) {
            return Err(format!("{place}: {}", failure_of(kernel)));
        }
        kernel_command(kernel, &KernelCommand::RunProcess(id.clone()), None)
            .map_err(|e| format!("{place}: {e}"))?;
    }
    Ok(())
}

/// Steps until `deadline`, checking invariants after every step. Driven processes take what
/// arrives for them at once (the harness is a prompt client), so their answers show in the
/// trace as deliveries.
fn advance(kernel: &mut Kernel, world: &mut World, deadline: Timestamp) -> Result<(), RunError> {
    while let Some(step) = kernel.step_before(deadline) {
        world.steps += 1;
        let at_step = world.steps;
        let broken = |broken| RunError::Invariant {
            step: at_step,
            broken,
        };
        kernel.check_invariants().map_err(broken)?;
        world.checker.check(kernel).map_err(broken)?;
        for process in &world.driven {
            while let Ok(Some(_)) = kernel.receive_as(process) {}
        }
        if matches!(step, Step::ShutDown) {
            break;
        }
    }
    Ok(())
}

/// The harness's side of a run.
struct World {
    driven: Vec<ProcessId>,
    steps: u64,
    checker: Checker,
}

fn act(kernel: &mut Kernel, scenario: &Scenario, index: usize) -> Result<(), RunError> {
    let work = &scenario.file.workload[index];
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
        kernel
            .send_as(&from, to, request, None, None)
            .map_err(setup)?;
    } else if let Some(command) = &work.command {
        kernel
            .command_as(&from, command, work.expects_response, None)
            .map_err(setup)?;
    }
    Ok(())
}

/// How to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Plant the kernel's test-only capability bug (`KernelConfig::planted_bug`).
    pub planted_bug: bool,
}

/// Runs `scenario` with `seed`.
///
/// # Errors
/// Setup failed (a process that cannot start, a guest that cannot be built). An invariant
/// that breaks mid-run is reported in [`Run::error`], with the kernel as it was.
pub fn run(scenario: &Scenario, seed: u64, options: Options) -> Result<Run, RunError> {
    let loader = WasmLoader::new(WasmConfig::default())
        .map_err(|e| RunError::Setup(e.to_string()))?
        .with_native(NativeLoader::new().with("echo", echo).with("sink", sink));
    let mut config = KernelConfig::new(&scenario.file.node, seed);
    config.planted_bug = options.planted_bug;
    let mut kernel = KernelBuilder::new(&scenario.file.node, seed)
        .config(config)
        .loader(Box::new(loader))
        .build();
    start_processes(&mut kernel, scenario).map_err(RunError::Setup)?;
    let mut order: Vec<usize> = (0..scenario.file.workload.len()).collect();
    order.sort_by_key(|i| scenario.file.workload[*i].at_ms);
    let driven = scenario
        .processes
        .iter()
        .filter(|(_, code)| *code == Code::Driven)
        .map(|(id, _)| id.clone())
        .collect();
    let mut world = World {
        driven,
        steps: 0,
        checker: Checker::default(),
    };
    let start = kernel.now();
    let at = |ms: u64| Timestamp(start.0 + ms * 1_000_000);
    for index in order {
        let deadline = at(scenario.file.workload[index].at_ms);
        if let Err(error) = advance(&mut kernel, &mut world, deadline) {
            let steps = world.steps;
            return Ok(Run {
                kernel,
                steps,
                error: Some(error),
            });
        }
        act(&mut kernel, scenario, index)?;
    }
    let error = advance(&mut kernel, &mut world, at(scenario.file.run_for_ms)).err();
    let steps = world.steps;
    Ok(Run {
        kernel,
        steps,
        error,
    })
}
