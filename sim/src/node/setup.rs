//! Setting up a simulated node's processes through the kernel's own door: packages
//! installed (`Input::Install`), driven processes registered, each process initialized and run
//! with the kernel's own commands sent as the kernel itself (`Input::Local`), the test modules
//! of kit test packages written into the tester's drive (`Input::VfsWrite`) and the tester
//! started. Every step taken is checked against the kernel's invariants.

use crate::node::feed::Feed;
use crate::node::scenario::{Code, Scenario};
use hyperkernel::{
    Address, Event, Input, Kernel, KernelCommand, KernelMessage, LazyLoadBlob, Message, Output,
    ProcessId, Request, Step,
};

fn code_bytes(scenario: &Scenario, code: &Code) -> Result<Vec<u8>, String> {
    match code {
        Code::Guest(name) => crate::node::guests::guest(name).map_err(|e| e.to_string()),
        Code::Wasm(path) => {
            let path = scenario.resolve(path);
            let max = u64::try_from(hyperkernel::kernel::MESSAGE_LEN_MAX).unwrap_or(u64::MAX);
            let bytes = crate::files::read_bytes(&path, max).map_err(|e| e.to_string())?;
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
    kernel: &mut dyn Feed,
    command: &KernelCommand,
    blob: Option<LazyLoadBlob>,
) -> Result<(), String> {
    let us = Address::new(kernel.state().our(), ProcessId::kernel());
    let body = serde_json::to_vec(command).map_err(|e| e.to_string())?;
    let message = KernelMessage {
        id: 0,
        source: us.clone(),
        target: us,
        rsvp: None,
        message: Message::Request(Request::new(body)),
        lazy_load_blob: blob,
    };
    kernel
        .input(Input::Local(Box::new(message)))
        .map_err(|e| e.to_string())?;
    // Until the command is handled: a process that spins in `init` gets slices meanwhile
    // (a step before now returns after each once it carries the clock on) but cannot stall
    // setup.
    let now = kernel.state().now();
    while let Ok(Output::Stepped(step)) = kernel.input(Input::StepBefore(now)) {
        if matches!(step, Step::Idle(_) | Step::ShutDown | Step::Failed) {
            break;
        }
    }
    kernel
        .state()
        .check_invariants()
        .map_err(|e| format!("kernel invariant broken during setup: {e}"))?;
    for _ in 0..SETUP_STEPS_MAX {
        if kernel.state().inbox_len() == 0 {
            return Ok(());
        }
        let _ = kernel.input(Input::Step);
        kernel
            .state()
            .check_invariants()
            .map_err(|e| format!("kernel invariant broken during setup: {e}"))?;
    }
    Err(format!(
        "the kernel did not take the setup command within {SETUP_STEPS_MAX} steps"
    ))
}

/// Most steps one setup command may take to be handled.
const SETUP_STEPS_MAX: u32 = 100_000;

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

/// Installs the scenario's packages in order (each run at once unless `initialize_first`);
/// returns the processes still to run, in order.
fn install_packages(
    kernel: &mut dyn Feed,
    scenario: &Scenario,
    apps: &crate::node::apps::Loaded,
) -> Result<Vec<ProcessId>, String> {
    let first = scenario.file.initialize_first;
    let mut waiting = Vec::new();
    for (package, run) in &apps.packages {
        let place = format!("{}: package {}", scenario.path.display(), package.id);
        let install = Input::Install {
            package: Box::new(package.clone()),
            run: *run && !first,
        };
        let ids = match kernel.input(install) {
            Ok(Output::Installed(ids)) => ids,
            Ok(other) => return Err(format!("{place}: the kernel answered {other:?}")),
            Err(e) => return Err(format!("{place}: {e}")),
        };
        kernel
            .state()
            .check_invariants()
            .map_err(|e| format!("{place}: kernel invariant broken by the install: {e}"))?;
        if *run && first {
            waiting.extend(ids);
        }
    }
    assert!(
        first || waiting.is_empty(),
        "only initialize_first defers a run"
    );
    Ok(waiting)
}

pub(crate) fn start_processes(
    kernel: &mut dyn Feed,
    scenario: &Scenario,
    apps: &crate::node::apps::Loaded,
) -> Result<(), String> {
    let node = &scenario.file.node;
    let first = scenario.file.initialize_first;
    // Initialized, not yet run (with `initialize_first`), in the order they run.
    let mut waiting = install_packages(kernel, scenario, apps)?;
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
            let register = Input::Register {
                process: id.clone(),
                capabilities: caps,
                public: spec.public,
                protected: false,
            };
            kernel
                .input(register)
                .map_err(|e| format!("{place}: {e}"))?;
            continue;
        }
        let bytes = code_bytes(scenario, code).map_err(|e| format!("{place}: {e}"))?;
        initialize(kernel, id, bytes, spec.on_exit.clone(), caps, spec.public)
            .map_err(|e| format!("{place}: {e}"))?;
        if first {
            waiting.push(id.clone());
        } else {
            kernel_command(kernel, &KernelCommand::RunProcess(id.clone()), None)
                .map_err(|e| format!("{place}: {e}"))?;
        }
    }
    for id in &waiting {
        kernel_command(kernel, &KernelCommand::RunProcess(id.clone()), None)
            .map_err(|e| format!("{}: running {id}: {e}", scenario.path.display()))?;
    }
    if scenario.file.tests.is_some() {
        start_tester(kernel, scenario, apps)?;
    }
    Ok(())
}

/// `InitializeProcess` of `id` with `bytes`, as the kernel itself; an error if it did not
/// take.
fn initialize(
    kernel: &mut dyn Feed,
    id: &ProcessId,
    bytes: Vec<u8>,
    on_exit: hyperkernel::OnExit,
    caps: Vec<hyperkernel::Capability>,
    public: bool,
) -> Result<(), String> {
    let init = KernelCommand::InitializeProcess {
        id: id.clone(),
        wasm_bytes_handle: format!(
            "/{}:{}/pkg/{}.wasm",
            id.package(),
            id.publisher(),
            id.process()
        ),
        wit_version: Some(1),
        on_exit,
        initial_capabilities: caps,
        public,
    };
    let blob = LazyLoadBlob { mime: None, bytes };
    kernel_command(kernel, &init, Some(blob))?;
    if !kernel.state().has_process(id) {
        return Err(failure_of(kernel.state()));
    }
    Ok(())
}

/// Writes the test modules into the tester's drive, as kit does, and starts the tester.
fn start_tester(
    kernel: &mut dyn Feed,
    scenario: &Scenario,
    apps: &crate::node::apps::Loaded,
) -> Result<(), String> {
    let place = format!("{}: tests", scenario.path.display());
    let node = &scenario.file.node;
    for case in &apps.tests {
        let place = format!("{place}: {}", case.name);
        let path = format!("/tester:sys/tests/{}.wasm", case.name);
        let write = Input::VfsWrite {
            path,
            bytes: case.module.to_vec(),
        };
        kernel.input(write).map_err(|e| format!("{place}: {e}"))?;
        let id = crate::node::apps::test_id(&case.name).map_err(|e| format!("{place}: {e}"))?;
        let caps = crate::node::apps::test_capabilities(node, case);
        initialize(
            kernel,
            &id,
            case.module.to_vec(),
            hyperkernel::OnExit::None,
            caps,
            false,
        )
        .map_err(|e| format!("{place}: {e}"))?;
        for (target, cap) in
            crate::node::apps::test_grants(node, case).map_err(|e| format!("{place}: {e}"))?
        {
            let grant = KernelCommand::GrantCapabilities {
                target,
                capabilities: vec![cap],
            };
            kernel_command(kernel, &grant, None).map_err(|e| format!("{place}: {e}"))?;
        }
    }
    let tester: ProcessId = crate::node::apps::TESTER
        .parse()
        .map_err(|e| format!("{place}: {e}"))?;
    let caps = crate::node::apps::tester_capabilities(&scenario.file.node, apps);
    let code = crate::node::apps::TESTER_CODE.as_bytes().to_vec();
    initialize(
        kernel,
        &tester,
        code,
        hyperkernel::OnExit::None,
        caps,
        false,
    )
    .map_err(|e| format!("{place}: the tester: {e}"))?;
    kernel_command(kernel, &KernelCommand::RunProcess(tester), None)
        .map_err(|e| format!("{place}: the tester: {e}"))
}
