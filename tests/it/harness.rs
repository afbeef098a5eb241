//! The test DSL: a kernel with a driven client that holds the kernel messaging capability, a
//! loader of native test processes, and helpers that render replies for snapshots.

use hyperkernel::{
    Address, BootError, Capability, Flow, Kernel, KernelBuilder, KernelCommand, KernelConfig,
    LazyLoadBlob, MemStorage, Message, NativeLoader, OnExit, Process, ProcessContext, ProcessId,
    Received, Request, Response, Storage, Wake, WasmConfig, WasmLoader,
};
use serde_json::{Value, json};

/// Our node in every test.
pub const OUR: &str = "our.os";

/// Parses a process id.
pub fn pid(text: &str) -> ProcessId {
    text.parse().unwrap()
}

/// Parses an address.
pub fn addr(text: &str) -> Address {
    text.parse().unwrap()
}

/// `messaging(our@process)`.
pub fn messaging(process: &str) -> Capability {
    Capability::messaging(addr(&format!("{OUR}@{process}")))
}

/// Echoes every request's body back; prints what it got.
fn echo() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            ctx.send_response(Response::new(request.body), None);
        }
        Flow::Receive
    })
}

/// Fails as soon as it starts.
fn crash() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, _: Wake| Flow::Fail("boom".into()))
}

/// Returns from init at once.
fn returner() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, _: Wake| Flow::Return)
}

/// Fails on its first message.
fn crash_on_message() -> Box<dyn Process> {
    Box::new(|_: &mut ProcessContext<'_>, wake: Wake| match wake {
        Wake::Init => Flow::Receive,
        _ => Flow::Fail("crashed on a message".into()),
    })
}

/// The puppet of the capability model: on `{"send_to": addr}` from anyone it sends `ping` to
/// that address expecting a response, and reports the outcome to the sender of the order;
/// it answers every other request with `pong`.
fn puppet() -> Box<dyn Process> {
    let mut report_to: Option<Address> = None;
    Box::new(move |ctx: &mut ProcessContext<'_>, wake: Wake| {
        match wake {
            Wake::Received(Ok((source, Message::Request(request)))) => {
                let order: Option<Value> = serde_json::from_slice(&request.body).ok();
                match order
                    .as_ref()
                    .and_then(|o| o.get("send_to"))
                    .and_then(Value::as_str)
                {
                    Some(target) => {
                        report_to = Some(source);
                        let target = target.parse().unwrap();
                        ctx.send_request(target, Request::new("ping").expecting(5), None, None);
                    }
                    None => ctx.send_response(Response::new("pong"), None),
                }
            }
            Wake::Received(Ok((_, Message::Response(_)))) => report(ctx, &report_to, "delivered"),
            Wake::Received(Err(_)) => report(ctx, &report_to, "refused"),
            _ => {}
        }
        Flow::Receive
    })
}

fn report(ctx: &mut ProcessContext<'_>, to: &Option<Address>, outcome: &str) {
    if let Some(to) = to {
        let body = json!({ "outcome": outcome }).to_string();
        ctx.send_request(to.clone(), Request::new(body), None, None);
    }
}

/// On a request `go:<address>` it awaits a `ping` to that address and reports the result to
/// the client `tester:tester:sys` (public); other requests are answered with `pong`.
fn awaiter() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        let client: Address = format!("{OUR}@tester:tester:sys").parse().unwrap();
        match wake {
            Wake::Received(Ok((_, Message::Request(request)))) => {
                let body = String::from_utf8_lossy(&request.body).into_owned();
                if let Some(target) = body.strip_prefix("go:") {
                    let ping = Request::new("ping").expecting(5);
                    match ctx.send_and_await_response(target.parse().unwrap(), ping, None) {
                        Ok(_) => return Flow::Await,
                        Err(error) => return Flow::Fail(error.to_string()),
                    }
                }
                ctx.send_response(Response::new("pong"), None);
            }
            Wake::Awaited(result) => {
                let text = match result {
                    Ok((source, message)) => format!(
                        "awaited {} from {source}",
                        String::from_utf8_lossy(message.body())
                    ),
                    Err(error) => format!("await failed: {:?}", error.kind),
                };
                ctx.send_request(client, Request::new(text), None, None);
            }
            _ => {}
        }
        Flow::Receive
    })
}

/// Tries to save the network capability plus whatever came attached to each request, then
/// answers with what was refused and whether it now holds the network capability.
fn saver() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            let mut wanted = vec![Capability::network(OUR)];
            wanted.extend(request.capabilities.iter().map(|(cap, _)| cap.clone()));
            let refused = ctx.save_capabilities(&wanted);
            let holds = ctx.our_capabilities().contains(&Capability::network(OUR));
            let body = json!({ "refused": refused.len(), "holds_network": holds }).to_string();
            ctx.send_response(Response::new(body), None);
        }
        Flow::Receive
    })
}

/// Counts the requests it got in its process state (decimal text): on each request it reads
/// the count, writes count + 1, reads it back (a step sees its own writes) and answers with
/// it; on `clear` it clears its state and answers `cleared`.
fn counter() -> Box<dyn Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            if request.body == b"clear" {
                ctx.clear_state().unwrap();
                assert_eq!(ctx.get_state().unwrap(), None, "a clear is seen at once");
                ctx.send_response(Response::new("cleared"), None);
                return Flow::Receive;
            }
            let Ok(state) = ctx.get_state() else {
                return Flow::Fail("the state could not be read".into());
            };
            let count: u64 = state.map_or(0, |s| String::from_utf8(s).unwrap().parse().unwrap());
            let next = (count + 1).to_string();
            ctx.set_state(next.as_bytes()).unwrap();
            assert_eq!(ctx.get_state().unwrap().as_deref(), Some(next.as_bytes()));
            ctx.send_response(Response::new(next), None);
        }
        Flow::Receive
    })
}

/// The loader every test kernel uses.
pub fn loader() -> NativeLoader {
    NativeLoader::new()
        .with("echo", echo)
        .with("crash", crash)
        .with("returner", returner)
        .with("crash-on-message", crash_on_message)
        .with("puppet", puppet)
        .with("awaiter", awaiter)
        .with("saver", saver)
        .with("counter", counter)
        .with("chaos", crate::fuzz::chaos)
}

/// `InitializeProcess` of `id` (not public, on-exit None) with native `code` as its blob.
pub fn init_command(
    id: &str,
    code: &str,
    caps: Vec<Capability>,
) -> (KernelCommand, Option<LazyLoadBlob>) {
    let command = KernelCommand::InitializeProcess {
        id: pid(id),
        wasm_bytes_handle: "/test:our.os/pkg/app.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: caps,
        public: false,
    };
    (
        command,
        Some(LazyLoadBlob {
            mime: None,
            bytes: code.as_bytes().to_vec(),
        }),
    )
}

/// A kernel with a driven, public client `tester:tester:sys` holding the kernel capability.
pub struct World {
    pub kernel: Kernel,
    pub client: ProcessId,
    /// Replies `spawn` saw after its own two; `replies` returns them first.
    backlog: Vec<Value>,
}

impl World {
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, WasmConfig::default())
    }

    /// A world whose wasm processes run under `config`.
    pub fn with_config(seed: u64, config: WasmConfig) -> Self {
        Self::with_configs(KernelConfig::new(OUR, seed), config)
    }

    /// A world with kernel configuration `kernel` and wasm configuration `wasm`.
    pub fn with_configs(kernel: KernelConfig, wasm: WasmConfig) -> Self {
        Self::on_store(kernel, wasm, Box::new(MemStorage::new())).unwrap()
    }

    /// A world whose kernel boots on `storage` (bootstrapping it if it is empty); the driven
    /// client is registered afresh (it is never persisted).
    ///
    /// # Errors
    /// The kernel's boot error.
    pub fn on_store(
        kernel: KernelConfig,
        wasm: WasmConfig,
        storage: Box<dyn Storage>,
    ) -> Result<Self, BootError> {
        let loader = WasmLoader::new(wasm).unwrap().with_native(loader());
        let seed = kernel.seed;
        let mut kernel = KernelBuilder::new(OUR, seed)
            .config(kernel)
            .loader(Box::new(loader))
            .storage(storage)
            .build()?;
        let client = pid("tester:tester:sys");
        kernel
            .harness()
            .register_driven(&client, &[messaging("kernel:distro:sys")], true)
            .unwrap();
        Ok(Self {
            kernel,
            client,
            backlog: Vec::new(),
        })
    }

    /// Sends `command` from the client and runs until idle.
    pub fn command(&mut self, command: &KernelCommand, expects: Option<u64>) -> u64 {
        self.command_with_blob(command, expects, None)
    }

    pub fn command_with_blob(
        &mut self,
        command: &KernelCommand,
        expects: Option<u64>,
        blob: Option<LazyLoadBlob>,
    ) -> u64 {
        let id = self
            .kernel
            .harness()
            .command_as(&self.client, command, expects, blob)
            .unwrap();
        self.kernel.harness().run_until_idle();
        id
    }

    /// Sends raw `body` to the kernel from the client and runs until idle.
    pub fn command_raw(&mut self, body: &str, expects: Option<u64>) -> u64 {
        let mut request = Request::new(body);
        request.expects_response = expects;
        let kernel = addr(&format!("{OUR}@kernel:distro:sys"));
        let id = self
            .kernel
            .harness()
            .send_as(&self.client, kernel, request, None, None)
            .unwrap();
        self.kernel.harness().run_until_idle();
        id
    }

    /// Everything the client received, rendered as JSON.
    pub fn replies(&mut self) -> Vec<Value> {
        let mut out = std::mem::take(&mut self.backlog);
        while let Some(received) = self.kernel.harness().receive_as(&self.client).unwrap() {
            out.push(render(&received));
        }
        out
    }

    /// Initializes `name:test:our.os` with native `code` and runs it; returns the replies.
    pub fn spawn(
        &mut self,
        name: &str,
        code: &str,
        on_exit: OnExit,
        caps: Vec<Capability>,
        public: bool,
    ) -> ProcessId {
        self.spawn_code(name, code.as_bytes(), code, on_exit, caps, public)
    }

    /// `spawn` with code bytes (a wasm module, say); `label` names the wasm file.
    pub fn spawn_code(
        &mut self,
        name: &str,
        code: &[u8],
        label: &str,
        on_exit: OnExit,
        caps: Vec<Capability>,
        public: bool,
    ) -> ProcessId {
        let id = pid(&format!("{name}:test:our.os"));
        let blob = LazyLoadBlob {
            mime: None,
            bytes: code.to_vec(),
        };
        let init = KernelCommand::InitializeProcess {
            id: id.clone(),
            wasm_bytes_handle: format!("/test:our.os/pkg/{label}.wasm"),
            wit_version: Some(1),
            on_exit,
            initial_capabilities: caps,
            public,
        };
        self.command_with_blob(&init, Some(5), Some(blob));
        self.command(&KernelCommand::RunProcess(id.clone()), Some(5));
        let mut replies = self.replies();
        assert!(
            replies.len() >= 2,
            "initialize and run both answer: {replies:#?}"
        );
        assert_eq!(
            replies[0]["body"],
            json!("InitializedProcess"),
            "{replies:#?}"
        );
        assert_eq!(replies[1]["body"], json!("StartedProcess"), "{replies:#?}");
        self.backlog = replies.split_off(2);
        id
    }

    /// Registers a driven process `name:test:our.os` with `caps`.
    pub fn driven(&mut self, name: &str, caps: &[Capability], public: bool) -> ProcessId {
        let id = pid(&format!("{name}:test:our.os"));
        self.kernel
            .harness()
            .register_driven(&id, caps, public)
            .unwrap();
        id
    }
}

/// A received message or send error as JSON: bodies that are JSON are shown parsed.
pub fn render(received: &Received) -> Value {
    match received {
        Ok((source, message)) => {
            let (kind, context) = match message {
                Message::Request(_) => ("Request", None),
                Message::Response((_, context)) => ("Response", context.clone()),
            };
            json!({
                "kind": kind,
                "source": source.to_string(),
                "body": body_value(message.body()),
                "metadata": message.metadata().map(|m| serde_json::from_str::<Value>(m).unwrap_or(json!(m))),
                "context": context.map(|c| String::from_utf8_lossy(&c).into_owned()),
            })
        }
        Err((error, context)) => json!({
            "kind": "SendError",
            "error": format!("{:?}", error.kind),
            "target": error.target.to_string(),
            "body": body_value(error.message.body()),
            "context": context.as_ref().map(|c| String::from_utf8_lossy(c).into_owned()),
        }),
    }
}

fn body_value(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| json!(String::from_utf8_lossy(body)))
}

/// insta with snapshots in the repo's top-level `snapshots/`.
#[macro_export]
macro_rules! check {
    ($name:expr, $value:expr) => {{
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_json_snapshot!($name, $value));
    }};
}

impl World {
    /// Sends `request` from driven `from` to `to` (an address string) and settles: runs what
    /// is ready without moving the clock.
    pub fn send(
        &mut self,
        from: &ProcessId,
        to: &str,
        request: Request,
        context: Option<&str>,
    ) -> u64 {
        let context = context.map(|c| c.as_bytes().to_vec());
        let id = self
            .kernel
            .harness()
            .send_as(from, addr(to), request, context, None)
            .unwrap();
        self.settle();
        id
    }

    /// Sends a fire-and-forget request from the client to `process`, without running.
    pub fn tell(&mut self, process: &ProcessId, body: &str) {
        let target = self.kernel.address_of(process);
        let client = self.client.clone();
        self.kernel
            .harness()
            .send_as(&client, target, Request::new(body), None, None)
            .unwrap();
    }

    /// Runs everything that is ready now, without waiting for a later timer (the time busy
    /// processes charge still moves the clock).
    pub fn settle(&mut self) {
        for _ in 0..100_000 {
            let now = self.kernel.now();
            if !matches!(
                self.kernel.harness().run_until(now),
                hyperkernel::Step::Overran(_)
            ) {
                return;
            }
        }
        panic!("settle: something is still ready after 100 000 slices");
    }

    /// Everything driven `process` received, rendered.
    pub fn received(&mut self, process: &ProcessId) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(received) = self.kernel.harness().receive_as(process).unwrap() {
            out.push(render(&received));
        }
        out
    }

    /// The drop reasons in the trace, in order.
    pub fn drops(&self) -> Vec<String> {
        self.kernel
            .trace()
            .records()
            .iter()
            .filter_map(|r| match &r.event {
                hyperkernel::Event::Dropped { reason, .. } => Some(format!("{reason:?}")),
                _ => None,
            })
            .collect()
    }
}

/// Every trace record of `world` as JSON, for snapshots.
pub fn trace_json(world: &World) -> Vec<Value> {
    let records = world.kernel.trace().records();
    records
        .iter()
        .map(|r| serde_json::to_value(r).unwrap())
        .collect()
}
