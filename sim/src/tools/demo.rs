//! The built-in demo scenario: native processes exchanging traffic under the simulated clock,
//! with a process that crashes and restarts with backoff and timer requests. It exercises
//! routing, capability checks, timeouts, restarts and the timer module in one seeded run.

use hyperkernel::{
    Address, Capability, Flow, Kernel, KernelBuilder, KernelCommand, LazyLoadBlob, Message,
    NativeLoader, OnExit, Process, ProcessContext, ProcessId, Request, Response, Wake,
};

/// Our node in the demo.
pub const OUR: &str = "demo.os";

/// Answers every request with its body.
fn echo() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            ctx.send_response(Response::new(request.body), None);
        }
        Flow::Receive
    })
}

/// Sends a request with a 2 s timeout to the address in each request body it gets.
fn relay() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake
            && let Ok(target) = String::from_utf8_lossy(&request.body).parse::<Address>()
        {
            ctx.send_request(target, Request::new("relayed").expecting(2), None, None);
        }
        Flow::Receive
    })
}

/// Crashes on every message (its on-exit is `Restart`).
fn fragile() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, wake: Wake| match wake {
        Wake::Init => Flow::Receive,
        _ => Flow::Fail("fragile process crashed".into()),
    })
}

fn process_id(name: &str) -> ProcessId {
    ProcessId::new(name, "demo", OUR).unwrap_or_else(|_| unreachable!("demo names are valid"))
}

fn address(name: &str) -> Address {
    Address::new(OUR, process_id(name))
}

/// Builds the demo kernel with `seed` and queues its whole workload.
///
/// # Errors
/// A kernel refusal while setting up (a bug in the demo).
pub fn build(seed: u64) -> Result<Kernel, hyperkernel::KernelError> {
    let loader = NativeLoader::new()
        .with("echo", echo)
        .with("relay", relay)
        .with("fragile", fragile);
    let mut kernel = KernelBuilder::new(OUR, seed)
        .loader(Box::new(loader))
        .build()
        .unwrap_or_else(|e| panic!("a fresh in-memory kernel boots: {e}"));
    let client = process_id("client");
    let kernel_cap = Capability::messaging(Address::new(OUR, ProcessId::kernel()));
    kernel
        .harness()
        .register_driven(&client, &[kernel_cap], true)?;
    let apps = [
        ("echo", OnExit::None, true),
        ("relay", OnExit::None, true),
        ("fragile", OnExit::Restart, true),
        ("private", OnExit::None, false),
    ];
    for (name, on_exit, public) in apps {
        let code = if name == "private" { "echo" } else { name };
        let init = KernelCommand::InitializeProcess {
            id: process_id(name),
            wasm_bytes_handle: format!("/demo:{OUR}/pkg/{code}.wasm"),
            wit_version: Some(1),
            on_exit,
            initial_capabilities: Vec::new(),
            public,
        };
        let blob = LazyLoadBlob {
            mime: None,
            bytes: code.as_bytes().to_vec(),
        };
        kernel
            .harness()
            .command_as(&client, &init, Some(5), Some(blob))?;
    }
    kernel
        .harness()
        .command_as(&client, &KernelCommand::Booted, None, None)?;
    queue_workload(&mut kernel, &client)?;
    Ok(kernel)
}

fn queue_workload(kernel: &mut Kernel, client: &ProcessId) -> Result<(), hyperkernel::KernelError> {
    let timer = Address::new(OUR, ProcessId::timer());
    for round in 0..20u64 {
        kernel.harness().send_as(
            client,
            address("echo"),
            Request::new(format!("hello {round}")).expecting(5),
            None,
            None,
        )?;
        // The relay may not message `private` (not public, no capability): refused at once.
        let peer = if round % 2 == 0 { "echo" } else { "private" };
        kernel.harness().send_as(
            client,
            address("relay"),
            Request::new(address(peer).to_string()),
            None,
            None,
        )?;
        let millis = 250 * (round % 5);
        kernel.harness().send_as(
            client,
            timer.clone(),
            Request::new(format!("{{\"SetTimer\":{millis}}}")).expecting(5),
            None,
            None,
        )?;
        if round % 5 == 0 {
            kernel.harness().send_as(
                client,
                address("fragile"),
                Request::new("crash").expecting(1),
                None,
                None,
            )?;
        }
    }
    Ok(())
}
