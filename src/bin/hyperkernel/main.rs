//! `hyperkernel node --home DIR [--name NODE] [--http-port P]`: the production node. It
//! creates or boots a node in a home directory (its redb store, a lock so two nodes never
//! share a home), feeds the kernel what the terminal types on a real clock, and sleeps until
//! the next timer or input (no polling). Ctrl-C, SIGTERM or `shutdown` shut it down gracefully
//! (commit, sync, exit 0); a second Ctrl-C exits at once, which a store that commits one
//! transaction per step survives. Without a terminal on stdin it reads lines until stdin ends
//! and then runs on as a daemon until SIGTERM.
//!
//! Every input reaches the kernel through its one door (`Kernel::input`), the clock reading a
//! step runs at included, and is appended to the boot's journal first (`hyperkernel::journal`),
//! so `sim replay --journal HOME` can run the session again. On a terminal the operator's
//! lines come through a line editor with history (`console`).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the node talks to its operator on stdout and stderr"
)]

mod bounded;
mod console;
mod home;
mod http;
mod httpd;

use clap::{Parser, Subcommand};
use home::Home;
use hyperkernel::journal::{Begin, JOURNAL_FORMAT, JournalWriter, Limits};
use hyperkernel::terminal::{self, Line};
use hyperkernel::trace::Event;
use hyperkernel::{
    Capability, Input, Kernel, KernelBuilder, KernelCommand, KernelConfig, KernelError,
    LazyLoadBlob, Message, OnExit, Output, ProcessId, Received, Request, Step, Time, Timestamp,
    TraceLevel, WasmConfig, WasmLoader,
};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "hyperkernel", about = "The hyperkernel node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or boot a node in a home directory and run it.
    Node {
        /// The home directory (created if missing).
        #[arg(long)]
        home: PathBuf,
        /// The node's name (a new node's; a booted node keeps its own).
        #[arg(long)]
        name: Option<String>,
        /// Serve the reference's HTTP message door (`POST /rpc:distro:sys/message`) on this
        /// port of 127.0.0.1 (0: any free port; the node prints which).
        #[arg(long)]
        http_port: Option<u16>,
        /// Serve the HTTP door on every interface, not only 127.0.0.1. Requests must then carry
        /// `Authorization: Bearer TOKEN`, the token in the home's `http-token` (made on first
        /// use, mode 0600): the door can send the kernel any command.
        #[arg(long)]
        http_expose: bool,
        /// Seconds the HTTP door waits for a client that stalls mid-request or idles on a
        /// kept-alive connection before dropping it.
        #[arg(long, default_value_t = http::READ_TIMEOUT_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
        http_timeout: u64,
        /// Keep no journal of this boot (it cannot then be replayed in simulation).
        #[arg(long)]
        no_journal: bool,
    },
}

/// The name of a new node when none is given.
const DEFAULT_NAME: &str = "node.os";
/// Trace records the node's sink keeps between drains.
const TRACE_RECORDS_MAX: usize = 1 << 16;
/// Seconds the terminal waits for an answer.
const ANSWER_SECONDS: u64 = 5;

/// What reaches the node's loop from outside the kernel.
enum Outside {
    /// A terminal line.
    Line(String),
    /// Stdin ended.
    Eof,
    /// Ctrl-C or SIGTERM: shut down.
    Stop,
    /// A message through the HTTP door, with where its reply goes.
    Rpc(http::Delivery),
}

/// Prints a line to the operator (`console::say`).
macro_rules! say {
    ($($arg:tt)*) => {
        console::say(&format!($($arg)*))
    };
}

/// `say!` for errors (`console::esay`).
macro_rules! esay {
    ($($arg:tt)*) => {
        console::esay(&format!($($arg)*))
    };
}

fn terminal_id() -> ProcessId {
    ProcessId::new("terminal", "terminal", "sys").unwrap_or_else(|_| ProcessId::kernel())
}

/// The reason a kernel's refusal carries in its metadata (the reference's answers, such as
/// `"InitializeProcessError"`, have no room for one), as ` (reason)`; empty if none.
fn reason_of(metadata: Option<&str>) -> String {
    let Some(metadata) = metadata else {
        return String::new();
    };
    match serde_json::from_str::<hyperkernel::CommandError>(metadata) {
        Ok(error) => format!(" ({})", error.message),
        Err(_) => String::new(),
    }
}

/// The HTTP door's process: the reference's `http-server:distro:sys`, the source of what
/// comes through the door.
fn door_id() -> ProcessId {
    ProcessId::new("http-server", "distro", "sys").unwrap_or_else(|_| ProcessId::kernel())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Command::Node {
        home,
        name,
        http_port,
        http_expose,
        http_timeout,
        no_journal,
    } = cli.command;
    let door = http_port.map(|port| Door {
        port,
        expose: http_expose,
        timeout: Duration::from_secs(http_timeout),
    });
    let code = match run(&home, name.as_deref(), door, !no_journal) {
        Ok(code) => code,
        Err(error) => {
            esay!("error: {error}");
            ExitCode::from(2)
        }
    };
    console::restore();
    code
}

/// The HTTP door as the command line asks for it.
struct Door {
    port: u16,
    expose: bool,
    timeout: Duration,
}

/// Boots the node in `dir` and runs it until it shuts down.
fn run(
    dir: &std::path::Path,
    name: Option<&str>,
    door: Option<Door>,
    journaled: bool,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // The name and the door first: neither may fail after the home is touched.
    if let Some(name) = name {
        check_name(name)?;
    }
    let server = door
        .map(|door| {
            http::bind(door.port, door.expose).map(|listener| (listener, door.timeout, door.expose))
        })
        .transpose()?;
    let home = Home::open(dir)?;
    let storage = home.store()?;
    let stored = hyperkernel::kernel::stored_node(&storage)?;
    let our = match (&stored, name) {
        (Some(stored), Some(name)) if stored != name => {
            return Err(format!("the home holds node {stored:?}, not {name:?}").into());
        }
        (Some(stored), _) => stored.clone(),
        (None, name) => name.unwrap_or(DEFAULT_NAME).to_owned(),
    };
    debug_assert!(check_name(&our).is_ok(), "a stored or checked name");
    let (kernel, journal) = boot(&home, &our, stored.is_none(), Box::new(storage), journaled)?;
    // The operator's console: messaging to the kernel and to every process the node holds
    // (a process it loads later gives it messaging too, as `InitializeProcess` does for its
    // source). Public, as the reference's terminal: whatever it messages can answer it.
    let caps: Vec<Capability> = kernel
        .process_ids()
        .iter()
        .map(|id| Capability::messaging(kernel.address_of(id)))
        .collect();
    let restored = caps.len();
    let mut node = Node {
        kernel,
        journal,
        clock: NodeClock::new(),
        terminal: terminal_id(),
        door: door_id(),
        pending: std::collections::BTreeMap::new(),
        next_context: 0,
        verbosity: 0,
        stopping: false,
        interactive: std::io::stdin().is_terminal(),
    };
    for process in [terminal_id(), door_id()] {
        // The node's own processes: no client command may kill or reconfigure them.
        node.feed(Input::Register {
            process,
            capabilities: caps.clone(),
            public: true,
            protected: true,
        })?;
    }
    let what = if home.existed { "booted" } else { "created" };
    say!(
        "node {our} {what} in {} ({restored} processes)",
        home.dir.display()
    );
    let (tx, inputs) = inputs(home.dir.join(home::HISTORY))?;
    if let Some((listener, timeout, expose)) = server {
        open_door(&home, &our, listener, timeout, expose, tx)?;
    }
    node.run(&inputs)
}

/// The rule every address's node follows: a name the node could never boot with again
/// (`a@b`, an empty one) is refused before anything is created.
fn check_name(name: &str) -> Result<(), String> {
    hyperkernel::Address::new(name, ProcessId::kernel())
        .check()
        .map_err(|error| format!("--name {name:?}: {error} (a node name is [a-z0-9-.]+)"))
}

/// Serves the HTTP door on `listener`, its requests sent to the loop through `tx`; an
/// exposed door takes the home's token and the operator is warned what it can do.
fn open_door(
    home: &Home,
    our: &str,
    listener: std::net::TcpListener,
    timeout: Duration,
    expose: bool,
    tx: mpsc::Sender<Outside>,
) -> Result<(), Box<dyn std::error::Error>> {
    // An exposed door is reachable by anyone on the network: it takes a token.
    let token = expose.then(|| home.door_token()).transpose()?;
    assert!(
        token.is_some() == expose,
        "an exposed door has a token, loopback none"
    );
    let bound = http::serve(listener, our, timeout, token, move |delivery| {
        tx.send(Outside::Rpc(delivery)).is_ok()
    })?;
    say!("http door on {bound}{}", http::PATH);
    if expose {
        esay!(
            "warning: the HTTP door listens on every interface. Whoever sends it the token in \
             {} (as `Authorization: Bearer TOKEN`) can message every process and send the \
             kernel any command: install persistent code, kill processes, grant capabilities. \
             Keep the token secret; without it the door answers 401.",
            home.dir.join(home::DOOR_TOKEN).display()
        );
    }
    Ok(())
}

/// Builds the kernel of node `our` on `storage` with driven time (the node gives it its
/// clock's readings); a new node's signing key and every boot's scheduler seed come from the
/// OS. Begins the boot's journal epoch first, with the store image the kernel boots from.
fn boot(
    home: &Home,
    our: &str,
    new: bool,
    storage: Box<dyn hyperkernel::Storage>,
    journaled: bool,
) -> Result<(Kernel, Option<JournalWriter>), Box<dyn std::error::Error>> {
    let random = home::os_random()?;
    let mut seed_bytes = [0; 8];
    seed_bytes.copy_from_slice(&random[..8]);
    let mut config = KernelConfig::new(our, u64::from_le_bytes(seed_bytes));
    config.trace_level = TraceLevel::Full;
    // Drained after every step: a step's own events stay far below this.
    config.trace_records_max = TRACE_RECORDS_MAX;
    // A node serves files to its apps, as the reference's does.
    config.vfs = true;
    config.net = true;
    if new {
        config.signing_key = Some(home::os_random()?);
    }
    let begin = Begin {
        journal_format: JOURNAL_FORMAT,
        epoch: 0,
        node: our.to_owned(),
        seed: config.seed,
        signing_key: config.signing_key,
        sync_interval_nanos: config.sync_interval_nanos,
        time_start: Timestamp(0),
        vfs: config.vfs,
        network: config.network,
        net: config.net,
        trace_bodies: config.trace_bodies,
    };
    let journal = match journaled.then(|| {
        JournalWriter::begin(
            &home.dir.join(home::JOURNAL),
            &home.dir.join(home::STORE),
            begin,
            Limits::default(),
        )
    }) {
        None => None,
        Some(Ok(journal)) => Some(journal),
        // The node serves on; this boot just cannot be replayed.
        Some(Err(error @ hyperkernel::journal::JournalError::StoreTooLarge { .. })) => {
            esay!("warning: this boot is not journaled: {error}");
            None
        }
        Some(Err(error)) => return Err(error.into()),
    };
    let loader = WasmLoader::new(WasmConfig::default())?;
    let kernel = KernelBuilder::new(our, config.seed)
        .config(config)
        .time(Time::Driven(Timestamp(0)))
        .loader(Box::new(loader))
        .storage(storage)
        .build()?;
    Ok((kernel, journal))
}

/// The node's real clock: nanoseconds since the node started, read before every step and
/// given to the kernel as an input.
struct NodeClock {
    #[expect(
        clippy::disallowed_types,
        reason = "the node's clock is the one wall-clock door; the kernel gets its readings"
    )]
    start: std::time::Instant,
}

impl NodeClock {
    #[expect(
        clippy::disallowed_methods,
        clippy::disallowed_types,
        reason = "the node's clock is the one wall-clock door; the kernel gets its readings"
    )]
    fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

/// Starts the thread that turns the operator's lines into inputs (with the line editor and
/// the history file `history` on a terminal) and the signal handler; returns a sender for more
/// (the HTTP door) and the receiver.
fn inputs(
    history: PathBuf,
) -> Result<(mpsc::Sender<Outside>, mpsc::Receiver<Outside>), Box<dyn std::error::Error>> {
    let (tx, rx) = mpsc::channel();
    let lines = tx.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the node reads stdin on its own thread; the kernel stays on one"
    )]
    std::thread::spawn(move || console::read_lines(&lines, history));
    let door = tx.clone();
    ctrlc::set_handler(move || console::interrupt(|| drop(tx.send(Outside::Stop))))?;
    Ok((door, rx))
}

struct Node {
    /// Every input reaches it through `feed`.
    kernel: Kernel,
    /// This boot's journal epoch; `None` once writing it failed (the node runs on unjournaled).
    journal: Option<JournalWriter>,
    clock: NodeClock,
    terminal: ProcessId,
    door: ProcessId,
    /// Door requests waiting for their answer, by the context their request carries.
    pending: std::collections::BTreeMap<u64, mpsc::Sender<http::Reply>>,
    next_context: u64,
    verbosity: u8,
    stopping: bool,
    interactive: bool,
}

impl Node {
    /// Gives the kernel `input` through its one door, journaled first.
    fn feed(&mut self, input: Input) -> Result<Output, KernelError> {
        if let Some(journal) = &mut self.journal
            && let Err(error) = journal.append(&input, self.kernel.trace())
        {
            esay!("error: the journal stopped: {error}; the node runs on without it");
            self.journal = None;
        }
        let output = self.kernel.input(input);
        if let Some(journal) = &mut self.journal
            && let Err(error) = journal.taken(self.kernel.trace())
        {
            esay!("error: the journal stopped: {error}; the node runs on without it");
            self.journal = None;
        }
        output
    }

    /// Takes the next message for driven process `process`, with its blob.
    fn receive(&mut self, process: &ProcessId) -> Option<(Received, Option<LazyLoadBlob>)> {
        // An empty mailbox gives nothing and changes nothing: no input, nothing journaled.
        if self.kernel.mailbox_len(process) == Some(0) {
            return None;
        }
        let input = Input::Receive {
            process: process.clone(),
        };
        match self.feed(input) {
            Ok(Output::Received(received)) => received.map(|boxed| *boxed),
            _ => None,
        }
    }

    /// Writes out the journal's buffer: what the node lets out next is journaled first.
    fn flush_journal(&mut self) {
        if let Some(journal) = &mut self.journal
            && let Err(error) = journal.flush()
        {
            esay!("error: the journal stopped: {error}; the node runs on without it");
            self.journal = None;
        }
    }

    fn run(
        &mut self,
        inputs: &mpsc::Receiver<Outside>,
    ) -> Result<ExitCode, Box<dyn std::error::Error>> {
        let mut arrived = None;
        loop {
            // The clock is read before what arrived is taken: a timer an input sets counts
            // from the input's arrival, not from before the node last slept.
            self.feed(Input::Time(self.clock.now()))?;
            if let Some(input) = arrived.take() {
                self.take(input);
            }
            while let Ok(input) = inputs.try_recv() {
                self.take(input);
            }
            let Output::Stepped(step) = self.feed(Input::Step)? else {
                unreachable!("a step answers with what it did");
            };
            self.show();
            match step {
                Step::Failed => {
                    let failure = self.kernel.failure().map(ToString::to_string);
                    esay!("error: {}", failure.unwrap_or_default());
                    return Ok(ExitCode::from(1));
                }
                Step::ShutDown => {
                    self.kernel.sync()?;
                    if let Some(journal) = self.journal.take()
                        && let Err(error) = journal.end(self.kernel.trace())
                    {
                        esay!("error: the journal: {error}");
                    }
                    say!("shut down");
                    return Ok(ExitCode::SUCCESS);
                }
                Step::Idle(deadline) => arrived = Self::wait(&self.clock, inputs, deadline),
                _ => {}
            }
        }
    }

    /// Sleeps until the next timer's deadline or the next input, whichever comes first; the
    /// input, if one came.
    fn wait(
        clock: &NodeClock,
        inputs: &mpsc::Receiver<Outside>,
        deadline: Option<Timestamp>,
    ) -> Option<Outside> {
        match deadline {
            None => inputs.recv().ok(),
            Some(deadline) => {
                let nanos = deadline.0.saturating_sub(clock.now().0);
                inputs.recv_timeout(Duration::from_nanos(nanos)).ok()
            }
        }
    }

    fn take(&mut self, input: Outside) {
        match input {
            Outside::Line(line) => match terminal::parse(&line) {
                Ok(line) => self.obey(line),
                Err(error) => say!("error: {error}"),
            },
            Outside::Eof if self.interactive => self.stop(),
            Outside::Eof => {}
            Outside::Stop => self.stop(),
            Outside::Rpc((rpc, reply)) => self.rpc(rpc, &reply),
        }
    }

    /// A message through the door: sent as `http-server:distro:sys`, which is given messaging
    /// to a local target it lacks it for (the door is the operator's, on loopback).
    fn rpc(&mut self, rpc: http::Rpc, reply: &mpsc::Sender<http::Reply>) {
        if self.stopping {
            let _ = reply.send(http::Reply::Refused(
                503,
                "the node is shutting down".into(),
            ));
            return;
        }
        let local = *rpc.target.node == *self.kernel.our();
        let target = rpc.target.process.clone();
        if local
            && self.kernel.has_process(&target)
            && !self
                .kernel
                .capabilities()
                .has_messaging(&self.door, &target)
        {
            let grant = KernelCommand::GrantCapabilities {
                target: self.door.clone(),
                capabilities: vec![Capability::messaging(rpc.target.clone())],
            };
            self.command(&grant, None, None);
        }
        let expects = rpc.request.expects_response.is_some();
        self.next_context += 1;
        let context = self.next_context.to_le_bytes().to_vec();
        let send = Input::Send {
            process: self.door.clone(),
            target: rpc.target,
            request: rpc.request,
            context: Some(context),
            blob: rpc.blob,
        };
        match self.feed(send) {
            Err(error) => {
                let _ = reply.send(http::Reply::Refused(503, error.to_string()));
            }
            Ok(_) if expects => {
                self.pending.insert(self.next_context, reply.clone());
            }
            Ok(_) => {
                let _ = reply.send(http::Reply::Accepted);
            }
        }
    }

    /// Answers to the door go to their HTTP requests.
    fn answer_door(&mut self) {
        while let Some((received, blob)) = self.receive(&self.door.clone()) {
            let (context, reply) = match received {
                Ok((_, Message::Response((response, context)))) => {
                    (context, http::Reply::Answer(response.body, blob))
                }
                Ok((_, Message::Request(_))) => continue,
                Err((error, context)) => {
                    let status = if error.kind == hyperkernel::SendErrorKind::Timeout {
                        408
                    } else {
                        503
                    };
                    let text = format!("{:?} sending to {}", error.kind, error.target);
                    (context, http::Reply::Refused(status, text))
                }
            };
            let key = context
                .and_then(|c| <[u8; 8]>::try_from(c.as_slice()).ok())
                .map(u64::from_le_bytes);
            if let Some(sender) = key.and_then(|k| self.pending.remove(&k)) {
                let _ = sender.send(reply);
            }
        }
    }

    /// Shuts the kernel down through the driver's own input: it needs no process alive.
    fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            if let Err(error) = self.feed(Input::Shutdown) {
                esay!("error: {error}");
            }
        }
        debug_assert!(self.stopping, "a stop is remembered");
    }

    fn command(
        &mut self,
        command: &KernelCommand,
        expects: Option<u64>,
        blob: Option<LazyLoadBlob>,
    ) {
        let input = Input::Command {
            process: self.terminal.clone(),
            command: command.clone(),
            expects_response: expects,
            blob,
        };
        if let Err(error) = self.feed(input) {
            say!("error: {error}");
        }
    }

    fn obey(&mut self, line: Line) {
        match line {
            Line::Empty => {}
            Line::Help => say!("{}", terminal::HELP),
            Line::Top(process) => self.top(process.as_ref()),
            Line::Caps(process) => {
                for cap in self.kernel.capabilities_of(&process) {
                    say!("{} {}", cap.issuer, cap.params);
                }
            }
            Line::Message { to, body } => {
                let request = Request::new(body).expecting(ANSWER_SECONDS);
                let send = Input::Send {
                    process: self.terminal.clone(),
                    target: to,
                    request,
                    context: None,
                    blob: None,
                };
                if let Err(error) = self.feed(send) {
                    say!("error: {error}");
                }
            }
            Line::Load { path, id } => self.load(&path, id),
            Line::Kill(process) => self.command(
                &KernelCommand::KillProcess(process),
                Some(ANSWER_SECONDS),
                None,
            ),
            Line::ClearState(process) => {
                match self.feed(Input::ClearState {
                    process: process.clone(),
                }) {
                    Ok(Output::Cleared(true)) => say!(
                        "cleared the saved state of {process} (it keeps what it holds in \
                         memory until it next starts)"
                    ),
                    Ok(_) => say!("{process} has no saved state"),
                    Err(error) => say!("error: {error}"),
                }
            }
            Line::Verbosity(level) => self.verbosity = level,
            Line::Shutdown => self.stop(),
            Line::Command(command) => self.command(&command, Some(ANSWER_SECONDS), None),
        }
    }

    fn top(&self, only: Option<&ProcessId>) {
        let ids = self.kernel.process_ids();
        if let Some(only) = only.filter(|o| !ids.contains(o)) {
            return say!("error: no process {only}");
        }
        let mut out = String::new();
        for id in ids.iter().filter(|id| only.is_none_or(|o| o == *id)) {
            let state = self
                .kernel
                .run_state(id)
                .map_or_else(|| "gone".to_owned(), |s| format!("{s:?}"));
            let public = if self.kernel.is_public(id) == Some(true) {
                " public"
            } else {
                ""
            };
            let _ = write!(out, "\n{id} {state}{public}");
        }
        say!("{}", out.trim_start_matches('\n'));
    }

    fn load(&mut self, path: &std::path::Path, id: ProcessId) {
        // A regular file within a message's bound, checked before a byte is read: a FIFO
        // once hung the loop, /dev/zero filled memory, 170 MB overflowed the journal's entry.
        let max = http::MESSAGE_BYTES_MAX;
        let bytes = match bounded::read_regular(path, max) {
            Ok(bytes) => bytes,
            Err(error) => return say!("error: {}: {error}", path.display()),
        };
        let handle = format!(
            "/{}:{}/pkg/{}.wasm",
            id.package(),
            id.publisher(),
            id.process()
        );
        let init = KernelCommand::InitializeProcess {
            id: id.clone(),
            wasm_bytes_handle: handle,
            wit_version: Some(1),
            on_exit: OnExit::Restart,
            initial_capabilities: vec![],
            public: false,
        };
        let blob = LazyLoadBlob { mime: None, bytes };
        self.command(&init, Some(ANSWER_SECONDS), Some(blob));
        self.command(&KernelCommand::RunProcess(id), Some(ANSWER_SECONDS), None);
    }

    /// Prints what the step produced: process prints up to the verbosity, and answers to
    /// the terminal. Trace records are drained, so memory stays bounded.
    fn show(&mut self) {
        let mut out = String::new();
        let overflowed = self.kernel.trace().overflowed();
        if overflowed > 0 && self.verbosity > 0 {
            let _ = writeln!(
                out,
                "[trace] {overflowed} events not shown: the sink was full"
            );
        }
        for record in self.kernel.trace_mut().drain() {
            match record.event {
                Event::Print {
                    process,
                    verbosity,
                    text,
                } if verbosity <= self.verbosity => {
                    let _ = writeln!(out, "[v{verbosity} {process}] {text}");
                }
                Event::Print { .. } => {}
                // At verbosity 3 the kernel's own events show too.
                event if self.verbosity >= 3 => {
                    let json = serde_json::to_string(&event).unwrap_or_default();
                    let _ = writeln!(out, "[trace] {json}");
                }
                _ => {}
            }
        }
        self.flush_journal();
        self.answer_door();
        while let Some((received, _)) = self.receive(&self.terminal.clone()) {
            let _ = match received {
                Ok((source, Message::Response((response, _)))) => writeln!(
                    out,
                    "< {source}: {}{}",
                    String::from_utf8_lossy(&response.body),
                    reason_of(response.metadata.as_deref())
                ),
                Ok((source, Message::Request(request))) => writeln!(
                    out,
                    "> {source}: {}",
                    String::from_utf8_lossy(&request.body)
                ),
                Err((error, _)) => {
                    writeln!(out, "< error: {:?} sending to {}", error.kind, error.target)
                }
            };
        }
        self.flush_journal();
        if let Some(text) = out.strip_suffix('\n') {
            console::say(text);
        }
    }
}
