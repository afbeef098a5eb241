//! Scenarios that serve apps: packages installed at setup, kit test packages run by a native
//! tester in the reference's tester protocol, and `expect`ed app-level outcomes.
//!
//! Setup initializes each test package's module as `NAME:tester:sys` (its file in the vfs at
//! `/tester:sys/tests/NAME.wasm`, as kit writes it) with the capabilities its manifest requests
//! messaging to the tester and the network, and gives its grants, as the reference's tester does through
//! `spawn`. The tester (`tester:tester:sys`, a native process) then runs each in order and
//! sends it
//! `{"Run":{"input_node_names":[NODE, …],"test_names":[…],"test_timeout":T}}` (every node of
//! the test group, in order; the tester's own alone in a group of one) awaiting the answer
//! for `T` simulated seconds. `{"Run":{"Ok":null}}` passes; `{"Run":{"Err":{test, file, line,
//! column}}}`, a request, a timeout or any other answer fails. Each outcome is printed
//! (`tester: PASS NAME`, `tester: FAIL NAME: WHY`), so it is in the trace, and the tester
//! returns once all have run.

use crate::format::{Code, Invalid, ScenarioFile};
use hyperkernel::package::{CapabilitySpec as PackageCap, Package};
use hyperkernel::{
    Address, Capability, Event, Flow, Kernel, KernelCommand, KernelResponse, Message, Process,
    ProcessContext, ProcessId, Request, SendErrorKind, Wake,
};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The tester's id.
pub const TESTER: &str = "tester:tester:sys";
/// The tester's code blob for the native loader.
pub const TESTER_CODE: &str = "tester";

pub use crate::format::apps::{ExpectSpec, OutputSpec, PackageSpec, TestsSpec};

/// Checks the app sections of a scenario file.
pub(crate) fn validate(
    file: &ScenarioFile,
    processes: &[(ProcessId, Code)],
) -> Result<(), Invalid> {
    if let Some(tests) = &file.tests {
        if tests.packages.is_empty() {
            return Err((
                "tests.packages".into(),
                "name at least one test package".into(),
            ));
        }
        let most = crate::format::SECONDS_MAX;
        if tests.timeout_secs == 0 || tests.timeout_secs > most {
            return Err((
                "tests.timeout_secs".into(),
                format!("give 1 to {most} seconds"),
            ));
        }
        if processes.iter().any(|(id, _)| id.as_str() == TESTER) {
            return Err((
                "processes".into(),
                format!("`{TESTER}` is the tester's own"),
            ));
        }
    }
    let Some(expect) = &file.expect else {
        return Ok(());
    };
    for (i, output) in expect.output.iter().enumerate() {
        let place = format!("expect.output[{i}]");
        parse_id(&output.process).map_err(|e| (format!("{place}.process"), e))?;
        regex::Regex::new(&output.matches)
            .map_err(|e| (format!("{place}.matches"), e.to_string()))?;
    }
    for (field, ids) in [("running", &expect.running), ("exited", &expect.exited)] {
        for (i, id) in ids.iter().enumerate() {
            parse_id(id).map_err(|e| (format!("expect.{field}[{i}]"), e))?;
        }
    }
    Ok(())
}

fn parse_id(text: &str) -> Result<ProcessId, String> {
    text.parse().map_err(|e| format!("`{text}`: {e}"))
}

/// One test the tester runs.
#[derive(Debug)]
pub struct TestCase {
    /// The test's name (its manifest entry's process name).
    pub name: String,
    /// Its module.
    pub module: Arc<[u8]>,
    /// Capabilities it requests, and those it grants.
    pub request: Vec<PackageCap>,
    /// See `request`.
    pub grant: Vec<PackageCap>,
}

/// A scenario's packages and tests, read from disk once per scenario.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Each package with its `run`.
    pub packages: Vec<(Package, bool)>,
    /// The tests, in order.
    pub tests: Vec<TestCase>,
    /// The tests' timeout, seconds.
    pub timeout_secs: u64,
    /// The nodes `Run` names (none: the tester's own).
    pub nodes: Vec<String>,
}

/// Where a scenario keeps what it loaded (shared by its clones, so explore reads the
/// packages once).
pub type Cache = Arc<OnceLock<Result<Arc<Loaded>, String>>>;

/// Reads the packages and tests of the scenario at `path`.
///
/// # Errors
/// A package that does not read (the file, the place, the problem), or a test package whose
/// manifest has other than one entry.
pub fn load(path: &Path, file: &ScenarioFile) -> Result<Loaded, String> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut loaded = Loaded::default();
    let shorthand = file.package.iter().map(|path| PackageSpec {
        path: path.clone(),
        run: true,
    });
    let specs: Vec<PackageSpec> = shorthand.chain(file.packages.iter().cloned()).collect();
    for spec in &specs {
        let package = Package::read(&base.join(&spec.path)).map_err(|e| e.to_string())?;
        loaded.packages.push((package, spec.run));
    }
    let Some(tests) = &file.tests else {
        return Ok(loaded);
    };
    loaded.timeout_secs = tests.timeout_secs;
    loaded.nodes.clone_from(&tests.nodes);
    for dir in &tests.packages {
        let dir = base.join(dir);
        let package = Package::read(&dir).map_err(|e| e.to_string())?;
        let [entry] = package.entries.as_slice() else {
            return Err(format!(
                "{}: pkg/manifest.json: a test package has exactly one process, not {}",
                dir.display(),
                package.entries.len()
            ));
        };
        let Some(module) = package.module(entry) else {
            return Err(format!(
                "{}: no module {}",
                dir.display(),
                entry.process_wasm_path
            ));
        };
        // Tests run as `NAME:tester:sys`: a test named like the tester (or twice the same)
        // would be the tester's own id, and report PASS then FAIL.
        let id = test_id(&entry.process_name)?;
        if id.as_str() == TESTER || loaded.tests.iter().any(|t| t.name == entry.process_name) {
            return Err(format!(
                "{}: pkg/manifest.json: a test may not be named {:?}: its id {id} is taken by \
                 the tester or another test",
                dir.display(),
                entry.process_name
            ));
        }
        loaded.tests.push(TestCase {
            name: entry.process_name.clone(),
            module: Arc::from(module),
            request: entry.request_capabilities.clone(),
            grant: entry.grant_capabilities.clone(),
        });
    }
    Ok(loaded)
}

/// The capabilities the tester holds: the kernel's commands, the vfs as root, the timer, and
/// messaging to each test.
pub fn tester_capabilities(node: &str, loaded: &Loaded) -> Vec<Capability> {
    let on = |name: &str| {
        Address::new(
            node,
            format!("{name}:distro:sys")
                .parse()
                .unwrap_or_else(|_| ProcessId::kernel()),
        )
    };
    let mut caps = vec![
        Capability::messaging(on("kernel")),
        Capability::messaging(on("vfs")),
        Capability::messaging(on("timer")),
        Capability::new(on("vfs"), r#"{"root":true}"#),
    ];
    for case in &loaded.tests {
        if let Ok(id) = test_id(&case.name) {
            caps.push(Capability::messaging(Address::new(node, id)));
        }
    }
    caps
}

/// The capability a manifest spec names on `node`, issued by `issuer` for grants.
fn capability(node: &str, spec: &PackageCap) -> Capability {
    match spec {
        PackageCap::Messaging(process) => {
            Capability::messaging(Address::new(node, process.clone()))
        }
        PackageCap::Params { process, params } => {
            Capability::new(Address::new(node, process.clone()), params.clone())
        }
    }
}

/// The id a test runs as: `NAME:tester:sys`.
///
/// # Errors
/// A test name that makes no process id.
pub fn test_id(name: &str) -> Result<ProcessId, String> {
    ProcessId::new(name, "tester", "sys").map_err(|e| format!("test name {name}: {e}"))
}

/// The capabilities test `case` is initialized with on `node`: what its manifest requests,
/// messaging to the tester, which it answers, and the network, as the reference's tester
/// gives its tests (they inherit its `request_networking`).
pub fn test_capabilities(node: &str, case: &TestCase) -> Vec<Capability> {
    let mut caps: Vec<Capability> = case
        .request
        .iter()
        .map(|spec| capability(node, spec))
        .collect();
    let tester = TESTER.parse().unwrap_or_else(|_| ProcessId::kernel());
    caps.push(Capability::messaging(Address::new(node, tester)));
    caps.push(Capability::network(node));
    caps
}

/// The grants of test `case` on `node`: `(grantee, capability issued by the test)`.
pub fn test_grants(node: &str, case: &TestCase) -> Result<Vec<(ProcessId, Capability)>, String> {
    let issuer = Address::new(node, test_id(&case.name)?);
    Ok(case
        .grant
        .iter()
        .map(|spec| match spec {
            PackageCap::Messaging(p) => (p.clone(), Capability::messaging(issuer.clone())),
            PackageCap::Params { process, params } => (
                process.clone(),
                Capability::new(issuer.clone(), params.clone()),
            ),
        })
        .collect())
}

/// Where the tester is in its current test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
}

/// The native tester (module docs).
pub struct Tester {
    loaded: Arc<Loaded>,
    next: usize,
    phase: Phase,
}

impl Tester {
    /// A tester for `loaded`'s tests.
    pub fn new(loaded: Arc<Loaded>) -> Self {
        Self {
            loaded,
            next: 0,
            phase: Phase::Starting,
        }
    }

    fn kernel(ctx: &ProcessContext<'_>) -> Address {
        Address::new(&ctx.our().node, ProcessId::kernel())
    }

    /// Sends `command` to the kernel, awaiting its answer (`Flow::Await` follows).
    fn command(ctx: &mut ProcessContext<'_>, command: &KernelCommand) -> Result<(), String> {
        let body = serde_json::to_vec(command).map_err(|e| e.to_string())?;
        let request = Request::new(body).expecting(5);
        let target = Self::kernel(ctx);
        ctx.send_and_await_response(target, request, None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Starts the next test, or returns once all have run.
    fn begin(&mut self, ctx: &mut ProcessContext<'_>) -> Flow {
        let Some(case) = self.loaded.tests.get(self.next) else {
            ctx.print_to_terminal(0, "tester: done");
            return Flow::Return;
        };
        self.phase = Phase::Starting;
        let started =
            test_id(&case.name).and_then(|id| Self::command(ctx, &KernelCommand::RunProcess(id)));
        match started {
            Ok(()) => Flow::Await,
            Err(why) => self.finish(ctx, Err(why)),
        }
    }

    /// Records the current test's outcome and goes on with the next.
    fn finish(&mut self, ctx: &mut ProcessContext<'_>, outcome: Result<(), String>) -> Flow {
        let name = self
            .loaded
            .tests
            .get(self.next)
            .map_or("?", |case| case.name.as_str());
        let line = match outcome {
            Ok(()) => format!("tester: PASS {name}"),
            Err(why) => format!("tester: FAIL {name}: {why}"),
        };
        ctx.print_to_terminal(0, &line);
        self.next += 1;
        self.begin(ctx)
    }

    fn on_answer(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        answer: Result<(Address, Message), hyperkernel::SendError>,
    ) -> Flow {
        let Some(case) = self.loaded.tests.get(self.next) else {
            return Flow::Return;
        };
        let name = case.name.clone();
        let id = match test_id(&name) {
            Ok(id) => id,
            Err(why) => return self.finish(ctx, Err(why)),
        };
        let body = match answer {
            Ok((_, Message::Response((response, _)))) => response.body,
            Ok((_, Message::Request(_))) => {
                return self.finish(ctx, Err("answered Run with a request".into()));
            }
            Err(error) if error.kind == SendErrorKind::Timeout => {
                let why = match self.phase {
                    Phase::Running => format!(
                        "no answer to Run within {} s (simulated); see its exit in the trace",
                        self.loaded.timeout_secs
                    ),
                    _ => "the kernel did not answer".into(),
                };
                return self.finish(ctx, Err(why));
            }
            Err(error) => return self.finish(ctx, Err(format!("send error {:?}", error.kind))),
        };
        match self.phase {
            Phase::Starting => {
                if serde_json::from_slice::<KernelResponse>(&body).ok()
                    != Some(KernelResponse::StartedProcess)
                {
                    return self.finish(ctx, Err("it did not start".into()));
                }
                self.phase = Phase::Running;
                let names: Vec<&str> = self.loaded.tests.iter().map(|c| c.name.as_str()).collect();
                let nodes = if self.loaded.nodes.is_empty() {
                    vec![ctx.our().node.to_string()]
                } else {
                    self.loaded.nodes.clone()
                };
                let run = json!({"Run": {
                    "input_node_names": nodes,
                    "test_names": names,
                    "test_timeout": self.loaded.timeout_secs,
                }});
                let mut request = Request::new(run.to_string());
                request.expects_response = Some(self.loaded.timeout_secs);
                let target = Address::new(&ctx.our().node, id);
                match ctx.send_and_await_response(target, request, None) {
                    Ok(_) => Flow::Await,
                    Err(error) => self.finish(ctx, Err(error.to_string())),
                }
            }
            Phase::Running => {
                let outcome = run_outcome(&body);
                self.finish(ctx, outcome)
            }
        }
    }
}

/// What a test's answer to `Run` says.
fn run_outcome(body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        format!(
            "answered {:?}, not the tester protocol",
            String::from_utf8_lossy(body)
        )
    })?;
    match &value["Run"] {
        Value::Object(result) if result.contains_key("Ok") => Ok(()),
        Value::Object(result) => match result.get("Err") {
            Some(err) => Err(format!(
                "{} failed at {}:{}:{}",
                err["test"].as_str().unwrap_or("?"),
                err["file"].as_str().unwrap_or("?"),
                err["line"],
                err["column"]
            )),
            None => Err(format!("answered {value}, not the tester protocol")),
        },
        _ => Err(format!("answered {value}, not the tester protocol")),
    }
}

impl Process for Tester {
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        match wake {
            Wake::Init => self.begin(ctx),
            Wake::Awaited(answer) => self.on_answer(ctx, answer),
            Wake::Received(_) | Wake::Alarm(_) | Wake::Resume => Flow::Receive,
        }
    }
}

/// One test's outcome as the tester printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The test.
    pub name: String,
    /// `None` for a pass; else why it failed.
    pub failure: Option<String>,
}

/// The outcomes the tester printed in `kernel`'s trace, in order, and whether it finished.
pub fn outcomes(kernel: &Kernel) -> (Vec<Outcome>, bool) {
    let tester: ProcessId = TESTER.parse().unwrap_or_else(|_| ProcessId::kernel());
    let mut outcomes = Vec::new();
    let mut done = false;
    for record in kernel.trace().records() {
        let Event::Print { process, text, .. } = &record.event else {
            continue;
        };
        if *process != tester {
            continue;
        }
        if let Some(name) = text.strip_prefix("tester: PASS ") {
            outcomes.push(Outcome {
                name: name.to_owned(),
                failure: None,
            });
        } else if let Some(rest) = text.strip_prefix("tester: FAIL ") {
            let (name, why) = rest.split_once(": ").unwrap_or((rest, ""));
            outcomes.push(Outcome {
                name: name.to_owned(),
                failure: Some(why.to_owned()),
            });
        } else if text == "tester: done" {
            done = true;
        }
    }
    (outcomes, done)
}

/// How test `name`'s process ended, if it did, as ` (it trapped: …)` or ` (it returned
/// without answering)`: a test that never answered `Run` says why, not only that the answer
/// did not come.
fn exit_of(kernel: &Kernel, name: &str) -> String {
    let Ok(id) = test_id(name) else {
        return String::new();
    };
    let reason = kernel
        .trace()
        .records()
        .iter()
        .find_map(|record| match &record.event {
            Event::Exited { process, reason } if *process == id => Some(reason.clone()),
            _ => None,
        });
    match reason {
        // One clause: the summary line ends at the first "; ".
        Some(hyperkernel::ExitReason::Failed(why)) => {
            format!(" (it failed: {})", why.replace("; ", ", "))
        }
        Some(hyperkernel::ExitReason::Returned) => " (it returned without answering)".into(),
        Some(hyperkernel::ExitReason::Killed) => " (it was killed)".into(),
        Some(hyperkernel::ExitReason::Shutdown) | None => String::new(),
    }
}

/// The lines `process` printed, in order.
fn printed<'k>(kernel: &'k Kernel, process: &'k ProcessId) -> impl Iterator<Item = &'k str> {
    kernel
        .trace()
        .records()
        .iter()
        .filter_map(move |record| match &record.event {
            Event::Print {
                process: p, text, ..
            } if p == process => Some(text.as_str()),
            _ => None,
        })
}

/// What of `file`'s `expect` section and tests the run in `kernel` did not show, one line
/// each (empty: all of it).
pub fn unmet(kernel: &Kernel, file: &ScenarioFile) -> Vec<String> {
    let mut unmet = Vec::new();
    if file.tests.is_some() {
        let (outcomes, done) = outcomes(kernel);
        for outcome in &outcomes {
            if let Some(why) = &outcome.failure {
                let exit = exit_of(kernel, &outcome.name);
                unmet.push(format!("test {} failed: {why}{exit}", outcome.name));
            }
        }
        if !done {
            unmet.push(format!(
                "the tests did not finish within the run ({} of them ran)",
                outcomes.len()
            ));
        }
    }
    let Some(expect) = &file.expect else {
        return unmet;
    };
    for output in &expect.output {
        let (Ok(process), Ok(pattern)) = (
            parse_id(&output.process),
            regex::Regex::new(&output.matches),
        ) else {
            continue;
        };
        let seen = printed(kernel, &process).any(|line| pattern.is_match(line));
        match (seen, output.absent) {
            (false, false) => unmet.push(format!(
                "{} printed no line matching /{}/",
                output.process, output.matches
            )),
            (true, true) => unmet.push(format!(
                "{} printed a line matching /{}/",
                output.process, output.matches
            )),
            _ => {}
        }
    }
    for id in &expect.running {
        if parse_id(id).is_ok_and(|p| !kernel.has_process(&p)) {
            unmet.push(format!("{id} is not running at the end"));
        }
    }
    for id in &expect.exited {
        if parse_id(id).is_ok_and(|p| kernel.has_process(&p)) {
            unmet.push(format!("{id} has not exited by the end"));
        }
    }
    unmet
}

/// The last `count` lines each process printed, for a failing run's summary: `(process,
/// lines)` for every process that printed, in id order.
pub fn last_output(kernel: &Kernel, count: usize) -> Vec<(ProcessId, Vec<String>)> {
    let mut lines: std::collections::BTreeMap<ProcessId, std::collections::VecDeque<String>> =
        std::collections::BTreeMap::new();
    for record in kernel.trace().records() {
        if let Event::Print { process, text, .. } = &record.event {
            let kept = lines.entry(process.clone()).or_default();
            if kept.len() == count {
                kept.pop_front();
            }
            kept.push_back(text.clone());
        }
    }
    lines
        .into_iter()
        .map(|(process, kept)| (process, kept.into_iter().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyperkernel::{Flow, KernelBuilder, NativeLoader, Wake};

    /// SECURITY.md, sim test: a test that trapped or returned after `Run` was reported only as
    /// "no answer within 5 s"; its exit is named now.
    #[test]
    fn a_test_that_ended_without_answering_says_how() {
        let mut kernel = KernelBuilder::new("our.os", 1)
            .loader(Box::new(NativeLoader::new()))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let failing = Box::new(|_: &mut hyperkernel::ProcessContext<'_>, _: Wake| {
            Flow::Fail("trap: unreachable; last printed: a | b".into())
        });
        let returning = Box::new(|_: &mut hyperkernel::ProcessContext<'_>, _: Wake| Flow::Return);
        for (name, runtime) in [
            ("trapper", failing as Box<dyn hyperkernel::Process>),
            ("quitter", returning),
        ] {
            let id = test_id(name).unwrap_or_else(|e| panic!("{e}"));
            kernel
                .harness()
                .register_native(&id, runtime, &[], false)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        kernel.harness().run_until_idle();
        assert_eq!(
            exit_of(&kernel, "trapper"),
            " (it failed: trap: unreachable, last printed: a | b)"
        );
        assert_eq!(
            exit_of(&kernel, "quitter"),
            " (it returned without answering)"
        );
        assert_eq!(exit_of(&kernel, "never-ran"), "");
    }
}
