//! The production node attacked through its doors, as an attacker would: a driven HTTP client
//! on real sockets, the built binary, crafted homes and files. One test or more per class of
//! SECURITY.md's node rows; each failed on the code before its fix.

use crate::node::{Node, WAIT, agent, counter_wasm, load_counter, post, stall, with_door};
use base64::Engine;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The door's socket address (`127.0.0.1:PORT`) from its URL.
fn socket_of(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches("/rpc:distro:sys/message")
        .to_owned()
}

/// A door request to `process` with `body` (text) and optional blob, expecting an answer.
fn ask(url: &str, process: &str, body: &str, data: Option<&[u8]>) -> (u16, Value) {
    let mut message = json!({"process": process, "expects_response": 5, "body": body});
    if let Some(data) = data {
        message["data"] = json!(base64::engine::general_purpose::STANDARD.encode(data));
    }
    let (status, text) = post(url, &message.to_string());
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn vfs_body(path: &str, action: Value) -> String {
    json!({"path": path, "action": action}).to_string()
}

#[test]
fn one_clients_blob_never_rides_on_another_clients_answer() {
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    // The door is `http-server:distro:sys`: the drive `/distro:sys/d` is its package's own.
    let vfs = "vfs:distro:sys";
    let create = vfs_body("/distro:sys/d", json!("CreateDrive"));
    assert_eq!(ask(&url, vfs, &create, None).0, 200);
    let write = vfs_body("/distro:sys/d/secret", json!("Write"));
    assert_eq!(ask(&url, vfs, &write, Some(b"the secret")).0, 200);
    let read = vfs_body("/distro:sys/d/secret", json!("Read"));
    let (status, answer) = ask(&url, vfs, &read, None);
    assert_eq!(status, 200);
    let sent = answer["lazy_load_blob"]["bytes"].as_array().unwrap().len();
    assert!(sent > 0, "the reader gets its file: {answer}");
    // Another client's request, which fails, and another that answers without a blob.
    let missing = vfs_body("/distro:sys/d/missing", json!("Read"));
    let (_, failed) = ask(&url, vfs, &missing, None);
    assert_eq!(failed["lazy_load_blob"], Value::Null, "{failed}");
    let len = vfs_body("/distro:sys/d/secret", json!("Len"));
    let (_, other) = ask(&url, vfs, &len, None);
    assert_eq!(other["lazy_load_blob"], Value::Null, "{other}");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn the_door_cannot_kill_the_nodes_own_processes_and_sigterm_still_stops_it() {
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    for own in ["terminal:terminal:sys", "http-server:distro:sys"] {
        let kill = json!({"KillProcess": own}).to_string();
        let (status, answer) = ask(&url, "kernel:distro:sys", &kill, None);
        assert_eq!(status, 200, "{answer}");
        let body = String::from_utf8(
            answer["body"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_u64().unwrap() as u8)
                .collect(),
        )
        .unwrap();
        assert!(body.contains("KernelProcess"), "{own}: {body}");
    }
    node.send("top");
    node.expect(|l| l.starts_with("terminal:terminal:sys "));
    node.signal("-TERM");
    node.expect(|l| l == "shut down");
    assert_eq!(node.exit_code(), 0);
}

/// Everything the node wrote to stderr (read once it has shut down and closed it).
fn stderr_of(node: &mut Node) -> String {
    let mut stderr = String::new();
    node.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

/// Starts a node with an exposed door; the node, its URL on loopback, and its home.
fn exposed(home: &Path) -> (Node, String) {
    let mut node = Node::start_with(home, "test.os", &["--http-port", "0", "--http-expose"]);
    let line = node.expect(|l| l.starts_with("http door on 0.0.0.0:"));
    let url = format!(
        "http://127.0.0.1:{}",
        line.trim_start_matches("http door on 0.0.0.0:")
    );
    (node, url)
}

fn post_with(url: &str, body: &str, authorization: Option<&str>) -> u16 {
    let mut request = agent(WAIT).post(url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send(body).unwrap().status().as_u16()
}

#[test]
fn an_exposed_door_answers_only_with_its_token_and_warns_what_it_can_do() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let (mut node, url) = exposed(&home);
    let kill = r#"{"process":"kernel:distro:sys","expects_response":5,"body":"{\"KillProcess\":\"timer:distro:sys\"}"}"#;
    assert_eq!(post_with(&url, kill, None), 401);
    assert_eq!(post_with(&url, kill, Some("Bearer wrong")), 401);
    let token_file = home.join("http-token");
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is the owner's only");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.len(), 64);
    let fire = r#"{"process":"terminal:terminal:sys","body":"hi"}"#;
    assert_eq!(post_with(&url, fire, Some(&format!("Bearer {token}"))), 200);
    node.send("shutdown");
    node.expect(|l| l == "shut down");
    let stderr = stderr_of(&mut node);
    assert!(
        stderr.contains("warning: the HTTP door listens on every interface"),
        "{stderr}"
    );
    assert!(stderr.contains("install persistent code"), "{stderr}");
    assert_eq!(node.exit_code(), 0);
    // The same token next boot.
    let (mut node, url) = exposed(&home);
    assert_eq!(post_with(&url, fire, Some(&format!("Bearer {token}"))), 200);
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn a_timeout_of_u64_max_is_answered_and_leaks_no_connection_slot() {
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    // More than the door's 64 connections, one after another: each once panicked its thread
    // before its slot was given back.
    for _ in 0..70 {
        let (status, _) = post(
            &url,
            r#"{"process":"ghost:app:test.os","expects_response":18446744073709551615,"body":"x"}"#,
        );
        assert_eq!(status, 408, "a send error for a missing process");
    }
    let (status, _) = post(&url, r#"{"process":"terminal:terminal:sys","body":"hi"}"#);
    assert_eq!(status, 200, "the door still serves");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn clients_that_hang_up_or_trickle_their_heads_free_their_slots() {
    let home = tempfile::tempdir().unwrap();
    let mut node = Node::start_with(
        &home.path().join("home"),
        "test.os",
        &["--http-port", "0", "--http-timeout", "1"],
    );
    let line = node.expect(|l| l.starts_with("http door on 127.0.0.1:"));
    let url = format!("http://{}", line.trim_start_matches("http door on "));
    let socket = socket_of(&url);
    // 64 requests whose answers never come (the terminal answers nobody), each hung up at
    // once: every slot of the door, until each one's client-chosen 10 minutes.
    let waiting = r#"{"process":"terminal:terminal:sys","expects_response":600,"body":"?"}"#;
    for _ in 0..64 {
        let request = format!(
            "POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{waiting}",
            waiting.len()
        );
        drop(stall(&socket, &request));
    }
    // The hung-up clients' slots come back within moments.
    let fire = r#"{"process":"terminal:terminal:sys","body":"hi"}"#;
    let mut served = false;
    for _ in 0..50 {
        // While the door is still full it may close a connection before the request is
        // written (a broken pipe here): that is not yet being served, so try again.
        let sent = agent(WAIT)
            .post(&url)
            .header("Content-Type", "application/json")
            .send(fire);
        if sent.is_ok_and(|response| response.status().as_u16() == 200) {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "the door stayed full of clients that were gone");
    // A trickling client: a head byte every 300 ms, each read well within the timeout.
    let trickler = socket.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "the trickling client runs beside the test"
    )]
    let trickling = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&trickler).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        for byte in b"POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\n".iter() {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        reply
    });
    let reply = trickling.join().unwrap();
    assert!(reply.starts_with("HTTP/1.1 408 "), "{reply}");
    assert!(reply.contains("no whole head"), "{reply}");
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

/// `post` with no bound on the answer's size.
fn post_large(url: &str, body: &str) -> (u16, String) {
    let mut response = agent(Duration::from_secs(120))
        .post(url)
        .send(body)
        .unwrap();
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap();
    (status, text)
}

/// The node's peak resident memory, in bytes.
fn peak_memory(node: &Node) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", node.child.id())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib << 10
}

#[test]
fn a_large_answer_is_written_out_not_built_as_a_tree_and_a_large_body_is_journaled_compactly() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("home");
    let (mut node, url) = with_door(&dir);
    let vfs = "vfs:distro:sys";
    assert_eq!(
        ask(
            &url,
            vfs,
            &vfs_body("/distro:sys/d", json!("CreateDrive")),
            None
        )
        .0,
        200
    );
    let file = vec![b'z'; 40 << 20];
    let write = vfs_body("/distro:sys/d/big", json!("Write"));
    assert_eq!(ask(&url, vfs, &write, Some(&file)).0, 200);
    let read = json!({
        "process": vfs,
        "expects_response": 30,
        "body": vfs_body("/distro:sys/d/big", json!("Read")),
    });
    let (status, text) = post_large(&url, &read.to_string());
    assert_eq!(status, 200);
    // 40 MiB as base64, each character a JSON number: about 190 MB of answer.
    assert!(text.len() > 150 << 20, "{} bytes", text.len());
    assert!(text.ends_with("]}}"));
    drop(text);
    // A tree of values took 3.85 GB for this answer; written out, the node holds the file,
    // its base64 and what it read and journaled.
    let peak = peak_memory(&node);
    assert!(peak < 1 << 30, "the node peaked at {peak} bytes");
    // The journal holds the 40 MiB blob as bytes, and a body as bytes too.
    let body = "b".repeat(45 << 20);
    let fire = json!({"process": "terminal:terminal:sys", "body": body}).to_string();
    assert_eq!(post(&url, &fire).0, 200);
    let over = json!({"process": "terminal:terminal:sys", "body": "c".repeat(65 << 20)});
    let (status, reason) = post(&url, &over.to_string());
    assert_eq!(status, 413, "{reason}");
    assert!(reason.contains("a message is at most"), "{reason}");
    node.send("shutdown");
    node.expect(|l| l == "shut down");
    assert_eq!(
        node.exit_code(),
        0,
        "the node was not killed by its journal"
    );
    let journal_bytes = dir_bytes(&dir.join("journal"));
    assert!(
        journal_bytes < 100 << 20,
        "the journal holds {journal_bytes} bytes"
    );
    assert!(
        journal_bytes > 85 << 20,
        "the journal holds {journal_bytes} bytes"
    );
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn malformed_lengths_and_impossible_nodes_are_bad_requests() {
    let home = tempfile::tempdir().unwrap();
    let (mut node, url) = with_door(&home.path().join("home"));
    let socket = socket_of(&url);
    for lengths in [
        "Content-Length: 2\r\nContent-Length: 3",
        "Content-Length: +2",
    ] {
        let mut stream = stall(
            &socket,
            &format!("POST /rpc:distro:sys/message HTTP/1.1\r\nHost: x\r\n{lengths}\r\n\r\n{{}}"),
        );
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 400 "), "{lengths}: {reply}");
    }
    for node_name in ["", "a@b:c:d"] {
        let body = json!({"node": node_name, "process": "a:b:c", "expects_response": 1});
        let (status, reason) = post(&url, &body.to_string());
        assert_eq!(status, 400, "{node_name:?}: {reason}");
        assert!(
            reason.contains("hypermap-safe") || reason.contains("node"),
            "{reason}"
        );
    }
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

/// Runs the node on `home` with `args` and no stdin; its exit code and stderr.
fn run_node(home: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_hyperkernel"))
        .args(["node", "--home", home.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_empty_store_is_refused_as_damaged_not_booted_as_a_new_node() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("kernel.redb"), b"").unwrap();
    let (code, stderr) = run_node(&home, &["--name", "other.os"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("is empty: the store is damaged"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(home.join("kernel.redb")).unwrap().len(),
        0,
        "untouched"
    );
}

#[test]
fn a_name_no_node_could_boot_with_is_refused_before_the_home_is_made() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a@b", "", "Upper.os", "a b"] {
        let home = dir.path().join("home");
        let (code, stderr) = run_node(&home, &["--name", name]);
        assert_eq!(code, Some(2), "{name:?}: {stderr}");
        assert!(stderr.contains("a node name is [a-z0-9-.]+"), "{stderr}");
        assert!(!home.exists(), "{name:?}: the home was made");
    }
}

#[test]
fn load_reads_only_bounded_regular_files_and_prints_the_kernels_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("home"), "test.os");
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    node.send(&format!("load {} a:app:test.os", fifo.display()));
    node.expect(|l| l.contains("not a regular file"));
    node.send("load /dev/zero a:app:test.os");
    node.expect(|l| l.contains("/dev/zero: not a regular file"));
    let text = dir.path().join("not.wasm");
    std::fs::write(&text, b"hello, not wasm").unwrap();
    node.send(&format!("load {} a:app:test.os", text.display()));
    let line = node.expect(|l| l.contains("\"InitializeProcessError\""));
    assert!(
        line.contains("\"InitializeProcessError\" ("),
        "no reason: {line}"
    );
    // The loop was never held up: a guest still loads and answers.
    let wasm = counter_wasm(dir.path());
    load_counter(&mut node, &wasm);
    node.send("shutdown");
    assert_eq!(node.exit_code(), 0);
}

#[test]
fn an_endless_line_on_stdin_is_refused_and_the_node_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::start(&dir.path().join("home"), "test.os");
    let stdin = node.stdin.as_mut().unwrap();
    let long = vec![b'x'; 3 << 20];
    stdin.write_all(&long).unwrap();
    stdin.write_all(b"\ntop\n").unwrap();
    stdin.flush().unwrap();
    node.expect(|l| l.starts_with("kernel:distro:sys"));
    node.send("shutdown");
    node.expect(|l| l == "shut down");
    let stderr = stderr_of(&mut node);
    assert!(
        stderr.contains("a line of 3145728 bytes was refused"),
        "{stderr}"
    );
    assert_eq!(node.exit_code(), 0);
}
