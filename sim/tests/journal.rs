//! A real session replayed in simulation: the built `hyperkernel` node runs on a temporary
//! home with wasm processes, messages from its terminal and timers; then `sim replay --journal`
//! runs its journal again and must reach the live run's trace hash. A killed node's journal
//! replays up to where it was cut; a damaged one is named at the entry and stopped there.
//!
//! The node binary is the workspace's own (`cargo test --workspace` builds it beside `sim`).

#![allow(clippy::unwrap_used, clippy::panic, reason = "test code")]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The node binary, next to the `sim` binary this test was built with.
fn node_binary() -> PathBuf {
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_sim"));
    let node = sim.with_file_name(format!("hyperkernel{}", std::env::consts::EXE_SUFFIX));
    assert!(
        node.is_file(),
        "{} is missing: build it with `cargo build --bin hyperkernel` (cargo test --workspace does)",
        node.display()
    );
    node
}

struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Node {
    fn start(home: &Path) -> Self {
        let mut child = Command::new(node_binary())
            .args([
                "node",
                "--home",
                home.to_str().unwrap(),
                "--name",
                "test.os",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
        node.expect(|l| l.starts_with("node test.os "));
        node
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

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

    fn shutdown(mut self) {
        self.send("shutdown");
        self.expect(|l| l == "shut down");
        drop(self.stdin.take());
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
    }
}

/// Loads the counter guest as `counter:app:test.os` and the echo guest, then sends messages:
/// answered requests (each with its timeout timer), one to a missing process, two timers.
fn session(node: &mut Node, dir: &Path) {
    for (guest, id) in [
        ("counter", "counter:app:test.os"),
        ("echo", "echo:app:test.os"),
    ] {
        let wasm = dir.join(format!("{guest}.wasm"));
        std::fs::write(&wasm, hyperkernel_sim::node::guests::guest(guest).unwrap()).unwrap();
        node.send(&format!("load {} {id}", wasm.display()));
        node.expect(|l| l.ends_with("\"StartedProcess\""));
    }
    for n in 1..=5 {
        node.send("m test.os@counter:app:test.os inc");
        node.expect(|l| l == format!("< test.os@counter:app:test.os: {n}"));
    }
    node.send("m test.os@echo:app:test.os hello");
    node.expect(|l| l.starts_with("< test.os@echo:app:test.os: "));
    node.send("m test.os@nobody:app:test.os hi");
    node.expect(|l| l.contains("error"));
    // Two timers fire on the node's real clock while it sleeps; the replay must fire them at
    // the same readings.
    node.send(r#"m test.os@timer:distro:sys {"SetTimer":60}"#);
    node.send(r#"m test.os@timer:distro:sys {"SetTimer":30}"#);
    node.expect(|l| l.starts_with("< test.os@timer:distro:sys"));
    node.expect(|l| l.starts_with("< test.os@timer:distro:sys"));
    node.send("top");
    node.expect(|l| l.starts_with("timer:distro:sys"));
}

/// Runs `sim` with `args`; its exit code and stdout.
fn sim(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
}

#[test]
fn a_real_session_replays_in_simulation_to_the_live_runs_trace_hash() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut node = Node::start(&home);
    session(&mut node, dir.path());
    node.shutdown();
    // A second boot is a second epoch, from the store the first one left.
    let mut node = Node::start(&home);
    node.send("m test.os@counter:app:test.os inc");
    node.expect(|l| l == "< test.os@counter:app:test.os: 6");
    // An operator's input of its own kind, journaled and replayed like the rest.
    node.send("clear-state counter:app:test.os");
    node.expect(|l| l.starts_with("cleared the saved state of counter:app:test.os"));
    node.shutdown();

    let home_arg = home.to_str().unwrap();
    for epoch in ["1", "2"] {
        let (code, out) = sim(&["replay", "--journal", home_arg, "--epoch", epoch]);
        assert_eq!(code, 0, "{out}");
        assert_eq!(field(&out, "matches"), "the live run's at its end", "{out}");
        assert_eq!(field(&out, "journal").rsplit(' ').next(), Some(epoch));
        assert!(field(&out, "inputs").contains("steps"), "{out}");
    }
    // Replays are the same run: two traces written, `sim diff` finds nothing between them.
    let first = dir.path().join("first.jsonl");
    let second = dir.path().join("second.jsonl");
    for trace in [&first, &second] {
        let (code, out) = sim(&[
            "replay",
            "--journal",
            home_arg,
            "--epoch",
            "1",
            "--trace",
            trace.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = sim(&["diff", first.to_str().unwrap(), second.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    // --until stops at an event and shows the world there.
    let (code, out) = sim(&[
        "replay",
        "--journal",
        home_arg,
        "--epoch",
        "1",
        "--until",
        "20",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("world after the step that recorded event 20"),
        "{out}"
    );
    assert!(out.contains("> #20 at "), "{out}");
}

#[test]
fn a_killed_nodes_journal_replays_up_to_its_cut_and_a_damaged_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut node = Node::start(&home);
    session(&mut node, dir.path());
    node.child.kill().unwrap();
    let _ = node.child.wait();
    let home_arg = home.to_str().unwrap();
    let (code, out) = sim(&["replay", "--journal", home_arg]);
    // Everything answered was journaled before it was let out: the replay reaches the counter
    // at 5 and the processes the session loaded.
    assert!(code == 0 || code == 1, "{out}");
    assert!(out.contains("counter:app:test.os"), "{out}");
    assert!(out.contains("echo:app:test.os"), "{out}");

    // A flipped byte in the middle of the segment: named by file, entry and offset, and the
    // replay stops there.
    let segment = home.join("journal").join("000001").join("0000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&segment, &bytes).unwrap();
    let (code, out) = sim(&["replay", "--journal", home_arg]);
    assert_eq!(code, 1, "{out}");
    let stopped = field(&out, "stopped");
    assert!(stopped.contains("0000.log: entry "), "{out}");
    assert!(stopped.contains(" at byte "), "{out}");

    // No journal: a clear error, exit 2.
    let (code, out) = sim(&["replay", "--journal", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no journal there"), "{out}");
}

/// SECURITY.md, journal replay: the scratch copy of the store once went to
/// `$TMPDIR/hyperkernel-replay-PID-EPOCH.redb`, following a link planted there and
/// overwriting its target. The replay runs in this process, so the name it once used is
/// known: a link planted at it must leave its target untouched.
#[test]
fn a_replay_never_writes_through_a_link_planted_at_a_predictable_name() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let mut node = Node::start(&home);
    node.send("top");
    node.expect(|l| l.starts_with("timer:distro:sys"));
    node.shutdown();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let planted = std::env::temp_dir().join(format!(
        "hyperkernel-replay-{}-{:06}.redb",
        std::process::id(),
        1
    ));
    let _ = std::fs::remove_file(&planted);
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let how = hyperkernel_sim::tools::replay::Replay {
        until: None,
        step: false,
        json: false,
    };
    let mut input = std::io::empty();
    let mut out = Vec::new();
    let replayed = hyperkernel_sim::tools::journal_replay::replay_journal(
        &home,
        Some(1),
        &how,
        &mut input,
        &mut out,
    );
    let _ = std::fs::remove_file(&planted);
    assert!(replayed.is_ok(), "{:?}", replayed.err());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}
