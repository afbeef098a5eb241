//! The production node, driven as a user drives it: the built `hyperkernel` binary on a
//! temporary home, lines on its stdin, its stdout read back, real signals. A guest loaded from
//! the terminal keeps its state across a graceful shutdown and across SIGKILL in the middle of
//! a stream of acknowledged updates; bad homes and bad lines are refused with a reason.

use crate::wasm::guest;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(20);
const COUNTER: &str = "test.os@counter:app:test.os";

/// A running node with its stdin and its stdout as lines.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    pub(crate) seen: Vec<String>,
}

impl Node {
    pub(crate) fn start(home: &Path, name: &str) -> Self {
        Self::start_with(home, name, &[])
    }

    pub(crate) fn start_with(home: &Path, name: &str, more: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
            .args(["node", "--home", home.to_str().unwrap(), "--name", name])
            .args(more)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test reads the node's stdout on a thread of its own"
        )]
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut node = Self {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        };
        node.expect(|l| l.starts_with(&format!("node {name} ")));
        node
    }

    pub(crate) fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line that satisfies `wanted` (lines before it are kept in `seen`).
    pub(crate) fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line; the node printed {:#?}", self.seen),
            }
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; its code.
    pub(crate) fn exit_code(mut self) -> i32 {
        drop(self.stdin.take());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

pub(crate) fn counter_wasm(dir: &Path) -> PathBuf {
    let path = dir.join("counter.wasm");
    std::fs::write(&path, guest("counter")).unwrap();
    path
}

pub(crate) fn load_counter(node: &mut Node, wasm: &Path) {
    node.send(&format!("load {} counter:app:test.os", wasm.display()));
    node.expect(|l| l.ends_with("\"InitializedProcess\""));
    node.expect(|l| l.ends_with("\"StartedProcess\""));
}

/// Sends `inc` and waits for the count it answers.
pub(crate) fn inc(node: &mut Node) -> u64 {
    node.send(&format!("m {COUNTER} inc"));
    let line = node.expect(|l| l.starts_with(&format!("< {COUNTER}: ")));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_loaded_guest_keeps_its_state_across_a_graceful_shutdown_and_boot() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("home");
    let wasm = counter_wasm(home.path());
    let mut node = Node::start(&dir, "test.os");
    load_counter(&mut node, &wasm);
    assert_eq!(inc(&mut node), 1);
    assert_eq!(inc(&mut node), 2);
    node.signal("-TERM");
    node.expect(|l| l == "shut down");
    assert_eq!(node.exit_code(), 0, "SIGTERM is a graceful shutdown");

    let mut node = Node::start(&dir, "test.os");
    assert_eq!(inc(&mut node), 3, "its state survived");
    // Asked after it answered: a restored process is `PreBoot` until its first step.
    node.send("top");
    let line = node.expect(|l| l.starts_with("counter:app:test.os "));
    assert!(line.contains("Receiving"), "{line}");
    node.send("caps counter:app:test.os");
    node.expect(|l| l.contains("counter:app:test.os \"messaging\""));
    node.send("shutdown");
    node.expect(|l| l == "shut down");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn nothing_acknowledged_is_lost_when_the_node_is_killed() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("home");
    let wasm = counter_wasm(home.path());
    let mut node = Node::start(&dir, "test.os");
    load_counter(&mut node, &wasm);
    // A stream of updates, each acknowledged; SIGKILL lands with more in flight.
    let mut acknowledged = 0;
    for _ in 0..20 {
        acknowledged = inc(&mut node);
    }
    for _ in 0..20 {
        node.send(&format!("m {COUNTER} inc"));
    }
    node.child.kill().unwrap();
    let _ = node.child.wait();

    let mut node = Node::start(&dir, "test.os");
    node.send(&format!("m {COUNTER} get"));
    let line = node.expect(|l| l.starts_with(&format!("< {COUNTER}: ")));
    let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        count >= acknowledged,
        "{acknowledged} were acknowledged, {count} survived"
    );
    assert!(count <= acknowledged + 20, "no update counted twice");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn a_second_node_on_a_home_is_refused_while_the_first_runs() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("home");
    let mut first = Node::start(&dir, "test.os");
    let second = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
        .args(["node", "--home", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another node runs on this home"),
        "{stderr}"
    );
    first.send("top");
    first.expect(|l| l.starts_with("kernel:distro:sys"));
    first.send("shutdown");
    assert_eq!(first.exit_code(), 0, "the first node was not disturbed");
}

#[test]
fn a_foreign_home_a_file_and_another_name_are_refused_untouched() {
    let home = tempfile::tempdir().unwrap();
    let refused = |dir: &Path, name: &str, expected: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
            .args(["node", "--home", dir.to_str().unwrap(), "--name", name])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    };
    let foreign = home.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    refused(&foreign, "test.os", "is not a node's home");
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing added"
    );
    let file = home.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    refused(&file, "test.os", "is not a directory");
    let dir = home.path().join("home");
    let mut node = Node::start(&dir, "test.os");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
    refused(&dir, "other.os", "holds node \"test.os\"");
    let garbage = home.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("kernel.redb"), b"not a database at all").unwrap();
    refused(&garbage, "test.os", "kernel.redb");
}

#[test]
fn process_prints_show_with_their_source_and_verbosity_up_to_the_level_asked() {
    let home = tempfile::tempdir().unwrap();
    let wasm = home.path().join("echo.wasm");
    std::fs::write(&wasm, guest("echo")).unwrap();
    let mut node = Node::start(&home.path().join("home"), "test.os");
    // The echo guest prints "echo: ready" at verbosity 1 when it starts; each is asked
    // something once it started, so its `init` (and its print) is behind it before the level
    // changes.
    for (level, id) in [(0, "quiet"), (1, "loud")] {
        node.send(&format!("verbosity {level}"));
        node.send(&format!("load {} {id}:app:test.os", wasm.display()));
        node.expect(|l| l.ends_with("\"StartedProcess\""));
        node.send(&format!("m test.os@{id}:app:test.os hi"));
        node.expect(|l| l.starts_with(&format!("< test.os@{id}:app:test.os: ")));
    }
    node.send("shutdown");
    node.expect(|l| l == "shut down");
    assert!(
        node.seen
            .iter()
            .any(|l| l == "[v1 loud:app:test.os] echo: ready"),
        "a print at the level is shown: {:#?}",
        node.seen
    );
    assert!(
        !node
            .seen
            .iter()
            .any(|l| l.contains("quiet:app:test.os] echo")),
        "a print above the level is not shown: {:#?}",
        node.seen
    );
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn bad_lines_get_a_reason_and_the_node_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let mut node = Node::start(&home.path().join("home"), "test.os");
    for (line, reason) in [
        ("frobnicate", "unknown command"),
        ("m", "needs an address"),
        ("m not-an-address hi", "not an address"),
        ("{\"Nonsense\":1}", "not a KernelCommand"),
        ("verbosity 7", "not a level"),
        (
            "load /no/such/file.wasm app:app:test.os",
            "/no/such/file.wasm",
        ),
        ("top ghost:app:test.os", "no process ghost:app:test.os"),
    ] {
        node.send(line);
        let got = node.expect(|l| l.starts_with("error: "));
        assert!(got.contains(reason), "{line}: {got}");
    }
    node.send("{\"RunProcess\":\"ghost:app:test.os\"}");
    // The reference's answer, and the kernel's reason from its metadata.
    let line = node.expect(|l| l.contains("\"RunProcessError\""));
    assert!(line.contains("ghost:app:test.os"), "{line}");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

/// Starts a node with its HTTP door on a free port; returns it with the door's URL.
pub(crate) fn with_door(home: &Path) -> (Node, String) {
    let mut node = Node::start_with(home, "test.os", &["--http-port", "0"]);
    let line = node.expect(|l| l.starts_with("http door on 127.0.0.1:"));
    let url = format!("http://{}", line.trim_start_matches("http door on "));
    (node, url)
}

/// An HTTP client that reports every status and waits at most `timeout`.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// POSTs `body` to the door; the status and the body.
pub(crate) fn post(url: &str, body: &str) -> (u16, String) {
    let mut response = agent(WAIT)
        .post(url)
        .header("Content-Type", "application/json")
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn the_http_door_takes_the_references_messages_and_answers_in_its_shape() {
    let home = tempfile::tempdir().unwrap();
    let wasm = counter_wasm(home.path());
    let (mut node, url) = with_door(&home.path().join("home"));
    load_counter(&mut node, &wasm);
    let asked = r#"{"node":null,"process":"counter:app:test.os","inherit":false,"expects_response":5,"body":"inc","metadata":null,"context":null,"mime":null,"data":null}"#;
    let (status, body) = post(&url, asked);
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({ "body": b"1".to_vec(), "lazy_load_blob": null })
    );
    let (status, body) = post(&url, r#"{"process":"counter:app:test.os","body":"inc"}"#);
    assert_eq!(
        (status, body.as_str()),
        (200, ""),
        "fire and forget: accepted at once"
    );
    // Through the terminal too: the count is the node's, whichever door it came in by.
    assert_eq!(inc(&mut node), 3);
    let (status, body) = post(
        &url,
        r#"{"process":"counter:app:test.os","expects_response":5,"body":"get"}"#,
    );
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"body":[51]"#), "{body}");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn bad_http_requests_are_refused_with_a_reason() {
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    for (body, reason) in [
        ("{\"proc", "not an RPC message"),
        (r#"{"process":"not an id"}"#, "process"),
        (r#"{"process":"a:b:c.os","data":"***"}"#, "base64"),
    ] {
        let (status, text) = post(&url, body);
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    let (status, text) = post(
        &url,
        r#"{"process":"ghost:app:test.os","expects_response":1,"body":"x"}"#,
    );
    assert_eq!(status, 408, "{text}");
    let other = url.replace("/rpc:distro:sys/message", "/elsewhere");
    assert_eq!(post(&other, "{}").0, 404);
    node.send("top");
    node.expect(|l| l.starts_with("kernel:distro:sys"));
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0, "the node went on");
}

/// Connects to the door at `addr` and sends `text`, the start of a request.
pub(crate) fn stall(addr: &str, text: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    stream
}

#[test]
fn bodies_too_large_or_chunked_are_refused_before_they_are_read() {
    use std::io::Read;
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/rpc:distro:sys/message")
        .to_owned();
    let stall = |text: &str| stall(&addr, text);
    // Bodies too large or chunked are refused before they are read.
    for (head, status) in [
        ("Content-Length: 200000000\r\n", "413"),
        ("Transfer-Encoding: chunked\r\n", "411"),
    ] {
        let mut stream = stall(&format!(
            "POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\n{head}\r\n"
        ));
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with(&format!("HTTP/1.1 {status} ")), "{reply}");
    }
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn slow_and_stalled_clients_cannot_hold_up_the_door() {
    use std::io::Read;
    let home = tempfile::tempdir().unwrap();
    let wasm = counter_wasm(home.path());
    let mut node = Node::start_with(
        &home.path().join("home"),
        "test.os",
        &["--http-port", "0", "--http-timeout", "1"],
    );
    let line = node.expect(|l| l.starts_with("http door on 127.0.0.1:"));
    let door = line.trim_start_matches("http door on ").to_owned();
    let url = format!("http://{door}");
    load_counter(&mut node, &wasm);
    let addr = door.trim_end_matches("/rpc:distro:sys/message").to_owned();
    let stall = |text: &str| stall(&addr, text);
    // A body promised and never sent whole; a head never finished.
    let mut half_body = stall(
        "POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro",
    );
    let mut half_head = stall("POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\n");
    // A request whose answer never comes (the terminal answers nobody) waits its 30 s.
    let waiting = url.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the waiting client runs beside the test"
    )]
    std::thread::spawn(move || {
        let _ = post(
            &waiting,
            r#"{"process":"terminal:terminal:sys","expects_response":30,"body":"hello?"}"#,
        );
    });
    // Meanwhile others are served (a door serving one request at a time would not answer this
    // before the test's 20 s wait runs out).
    let inc = r#"{"process":"counter:app:test.os","expects_response":5,"body":"inc"}"#;
    let (status, body) = post(&url, inc);
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"body":[49],"lazy_load_blob":null}"#)
    );
    // The stalled clients are answered 408 with the reason after the timeout, and closed.
    for (stream, reason) in [
        (&mut half_body, "the body stalled"),
        (&mut half_head, "the request stalled"),
    ] {
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
        assert!(reply.contains(reason), "{reply}");
        assert!(reply.contains("Connection: close"), "{reply}");
    }
    let (status, _) = post(&url, inc);
    assert_eq!(status, 200, "the door goes on");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn a_port_in_use_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
        .args(["node", "--home", home.path().join("home").to_str().unwrap()])
        .args(["--http-port", &port])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot listen on 127.0.0.1"), "{stderr}");
    assert!(
        !home.path().join("home").exists(),
        "the home was not touched"
    );
}

#[test]
fn a_node_whose_stdout_reader_went_away_shuts_down_cleanly() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
        .args(["node", "--home", home.path().join("home").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "top\nhelp\nshutdown").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
