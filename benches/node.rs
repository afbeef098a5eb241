//! The production node's figures (issue 12), measured on the built `hyperkernel` binary as a
//! user runs it, medians of wall time:
//!
//! - Boot of a home holding 1 000 processes (echo guests): from starting the binary to its
//!   first line, against starting it on an empty home (the baseline: process start, the wasm
//!   engine, a new store).
//! - Messages per second through the HTTP door from one loopback client, each a request to
//!   the echo guest expecting its answer (2 000 messages, or 20 s, whichever ends first),
//!   with and without the journal; then from 4 and 16 clients at once, each on its own
//!   kept-alive connection (the same bound per client), against one client in the same run.

#![allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![expect(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "benchmarks time with the wall clock and read the node on a thread"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const PROCESSES: usize = 1_000;
const MESSAGES: usize = 2_000;
const BUDGET: Duration = Duration::from_secs(20);

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Node {
    fn start(home: &Path, more: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
            .args([
                "node",
                "--home",
                home.to_str().unwrap(),
                "--name",
                "bench.os",
            ])
            .args(more)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn expect(&self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.lines.recv_timeout(Duration::from_secs(60)).unwrap();
            if wanted(&line) {
                return line;
            }
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn stop(mut self) {
        self.send("shutdown");
        self.expect(|l| l == "shut down");
        self.child.wait().unwrap();
    }
}

fn echo_wasm(dir: &Path) -> PathBuf {
    let path = dir.join("echo.wasm");
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/guests/wasm32-unknown-unknown/release/echo.wasm");
    std::fs::copy(&wasm, &path).expect("the echo guest is built (run `cargo test` once)");
    path
}

/// Milliseconds from starting the node on `home` to its first line.
fn boot_ms(home: &Path) -> f64 {
    let start = Instant::now();
    let node = Node::start(home, &[]);
    node.expect(|l| l.starts_with("node bench.os "));
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    node.stop();
    elapsed
}

fn boots(dir: &Path, wasm: &Path) {
    let home = dir.join("big");
    let mut node = Node::start(&home, &[]);
    node.expect(|l| l.starts_with("node bench.os "));
    for n in 0..PROCESSES {
        node.send(&format!("load {} e{n}:bench:bench.os", wasm.display()));
    }
    for _ in 0..PROCESSES {
        node.expect(|l| l.ends_with("\"StartedProcess\""));
    }
    node.stop();
    let (mut big, mut empty) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        big.push(boot_ms(&home));
        empty.push(boot_ms(&dir.join(format!("empty-{run}"))));
    }
    let (big, empty) = (median(big), median(empty));
    println!(
        "node boot with {PROCESSES} processes: {big:.0} ms median of {RUNS} from start to its \
         first line; a new node on an empty home {empty:.0} ms; the {PROCESSES} processes add \
         {:.0} ms",
        big - empty
    );
}

/// Messages per second through the door of a node started with `more`.
fn door_rate(home: &Path, wasm: &Path, more: &[&str]) -> f64 {
    let mut args = vec!["--http-port", "0"];
    args.extend_from_slice(more);
    let mut node = Node::start(home, &args);
    let line = node.expect(|l| l.starts_with("http door on "));
    let url = format!("http://{}", line.trim_start_matches("http door on "));
    node.send(&format!("load {} echo:bench:bench.os", wasm.display()));
    node.expect(|l| l.ends_with("\"StartedProcess\""));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut rates = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let sent = client(&agent, &url);
        rates.push(sent as f64 / start.elapsed().as_secs_f64());
    }
    node.stop();
    median(rates)
}

/// One client's stream of echo requests on its kept-alive connection; how many it sent.
fn client(agent: &ureq::Agent, url: &str) -> usize {
    let body = r#"{"process":"echo:bench:bench.os","expects_response":5,"body":"ping"}"#;
    let start = Instant::now();
    let mut sent = 0;
    while sent < MESSAGES && start.elapsed() < BUDGET {
        let mut response = agent.post(url).send(body).unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let _ = response.body_mut().read_to_string().unwrap();
        sent += 1;
    }
    sent
}

/// Messages per second through the door of one node from `clients` clients at once.
fn clients_rate(home: &Path, wasm: &Path, clients: usize) -> f64 {
    let mut node = Node::start(home, &["--http-port", "0"]);
    let line = node.expect(|l| l.starts_with("http door on "));
    let url = format!("http://{}", line.trim_start_matches("http door on "));
    node.send(&format!("load {} echo:bench:bench.os", wasm.display()));
    node.expect(|l| l.ends_with("\"StartedProcess\""));
    let start = Instant::now();
    let sent: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let url = url.clone();
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .into();
                    client(&agent, &url)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let rate = sent as f64 / start.elapsed().as_secs_f64();
    node.stop();
    rate
}

fn many_clients(dir: &Path, wasm: &Path) {
    for clients in [4, 16] {
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            one.push(clients_rate(
                &dir.join(format!("one-{clients}-{run}")),
                wasm,
                1,
            ));
            many.push(clients_rate(
                &dir.join(format!("many-{clients}-{run}")),
                wasm,
                clients,
            ));
        }
        let (one, many) = (median(one), median(many));
        println!(
            "HTTP door, {clients} clients at once: {many:.0} messages/s in all, median of \
             {RUNS}; one client in the same run {one:.0} ({:.2}x)",
            many / one
        );
    }
}

/// The bytes of every file under `dir`, store images apart.
fn journal_bytes(dir: &Path) -> (u64, u64) {
    let (mut logs, mut images) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            let (l, i) = journal_bytes(&entry.path());
            logs += l;
            images += i;
        } else if entry.path().extension().is_some_and(|e| e == "log") {
            logs += meta.len();
        } else {
            images += meta.len();
        }
    }
    (logs, images)
}

fn door(dir: &Path, wasm: &Path) {
    // Interleaved so drift of the machine falls on both alike.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for run in 0..RUNS {
        with.push(door_rate(&dir.join(format!("door-{run}")), wasm, &[]));
        without.push(door_rate(
            &dir.join(format!("bare-{run}")),
            wasm,
            &["--no-journal"],
        ));
    }
    let (with, without) = (median(with), median(without));
    println!(
        "HTTP door: {with:.0} messages/s median of {RUNS}, one loopback client, each a request \
         to the echo guest and its answer; without the journal {without:.0} (journaled/bare \
         {:.2}x)",
        with / without
    );
    let (logs, images) = journal_bytes(&dir.join("door-0").join("journal"));
    let inputs = replayed_inputs(&dir.join("door-0"));
    println!(
        "journal: {logs} bytes of entries for {inputs} inputs ({:.1} bytes per input), \
         store images {images} bytes",
        logs as f64 / inputs.max(1) as f64
    );
}

/// Replays `home`'s journal with the workspace's `sim` (beside this bench's node binary);
/// prints its speed line and returns how many inputs it fed.
fn replayed_inputs(home: &Path) -> u64 {
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_hyperkernel")).with_file_name("sim");
    let output = std::process::Command::new(&sim)
        .args(["replay", "--journal", home.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (cargo build --release -p hyperkernel-sim)",
                sim.display()
            )
        });
    let text = String::from_utf8_lossy(&output.stdout);
    for line in text
        .lines()
        .filter(|l| l.starts_with("speed") || l.starts_with("matches"))
    {
        println!("replay {line}");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("inputs"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = echo_wasm(dir.path());
    let only = std::env::var("NODE_PART").ok();
    let runs = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if runs("boot") {
        boots(dir.path(), &wasm);
    }
    if runs("door") {
        door(dir.path(), &wasm);
    }
    if runs("clients") {
        many_clients(dir.path(), &wasm);
    }
}
