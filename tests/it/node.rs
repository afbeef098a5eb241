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

const WAIT: Duration = Duration::from_secs(20);
const COUNTER: &str = "test.os@counter:app:test.os";

/// A running node with its stdin and its stdout as lines.
struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn start(home: &Path, name: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
            .args(["node", "--home", home.to_str().unwrap(), "--name", name])
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

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line that satisfies `wanted` (lines before it are kept in `seen`).
    fn expect(&mut self, wanted: impl Fn(&str) -> bool) -> String {
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

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; its code.
    fn exit_code(mut self) -> i32 {
        drop(self.stdin.take());
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

fn counter_wasm(dir: &Path) -> PathBuf {
    let path = dir.join("counter.wasm");
    std::fs::write(&path, guest("counter")).unwrap();
    path
}

fn load_counter(node: &mut Node, wasm: &Path) {
    node.send(&format!("load {} counter:app:test.os", wasm.display()));
    node.expect(|l| l.ends_with("\"InitializedProcess\""));
    node.expect(|l| l.ends_with("\"StartedProcess\""));
}

/// Sends `inc` and waits for the count it answers.
fn inc(node: &mut Node) -> u64 {
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
    node.send("top");
    let line = node.expect(|l| l.starts_with("counter:app:test.os "));
    assert!(line.contains("Receiving"), "{line}");
    assert_eq!(inc(&mut node), 3, "its state survived");
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
    node.expect(|l| l.ends_with("\"RunProcessError\""));
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}
