//! The bodies of the fuzz targets for the node's surfaces (`tests/fuzz`), here so that the
//! tests run them too (`sim/tests/surfaces.rs`, over the committed seeds and a seeded stream
//! of inputs). Each takes arbitrary bytes, must never panic, and checks its oracle:
//!
//! - [`door`]: a request's bytes through the door's head and RPC parsers into a kernel and its
//!   answer back out; the answer stays within [`answer_bytes_max`] of the kernel's message
//!   bound and is JSON;
//! - [`vfs_requests`]: requests to the vfs from processes of two packages, paths drawn with
//!   quotes, escapes, dots and long names; no process holds a capability it was not given
//!   ([`crate::checks::provenance`]);
//! - [`journal_segment`]: a journal segment after a valid header, through the reader and the
//!   replay;
//! - [`package_dir`]: a package directory through `Package::read`;
//! - [`terminal_line`]: a terminal line through its parser;
//! - [`remote_messages`]: messages from other nodes with attached capabilities through the
//!   kernel's remote door (to `net:distro:sys` too: a "hi" or a `NetAction` it ignores); no
//!   process holds a capability it was not given.

use crate::checks::provenance::Provenance;
use hyperkernel::door::{AnswerJson, MESSAGE_BYTES_MAX, answer_bytes_max, parse_head};
use hyperkernel::process::vfs::{DriveCap, root_params};
use hyperkernel::{
    Address, CapKey, Capability, Flow, Input, Kernel, KernelBuilder, KernelConfig, KernelMessage,
    LazyLoadBlob, Message, NativeLoader, Output, ProcessContext, ProcessId, Request, Response,
    TraceLevel, Wake,
};

const OUR: &str = "our.os";

fn pid(text: &str) -> ProcessId {
    text.parse().unwrap_or_else(|_| ProcessId::kernel())
}

fn on(process: &str) -> Address {
    Address::new(OUR, pid(process))
}

/// Answers every request with its body, and the body again as a blob.
fn echo() -> Box<dyn hyperkernel::Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            let blob = LazyLoadBlob {
                mime: Some("text/plain".into()),
                bytes: request.body.clone(),
            };
            ctx.send_response(Response::new(request.body), Some(blob));
        }
        Flow::Receive
    })
}

/// Saves every capability that comes attached to a request.
fn saver() -> Box<dyn hyperkernel::Process> {
    Box::new(|ctx: &mut ProcessContext<'_>, wake: Wake| {
        if let Wake::Received(Ok((_, Message::Request(request)))) = wake {
            let caps: Vec<Capability> = request
                .capabilities
                .iter()
                .map(|(cap, _)| cap.clone())
                .collect();
            let _ = ctx.save_capabilities(&caps);
        }
        Flow::Receive
    })
}

/// A node with the vfs and `net:distro:sys`, the door's process (holding messaging to every process, as the
/// node's does), `a` of package `app:our.os`, `b` of `other:our.os` with its drive
/// `/other:our.os/pkg` made, an echo `echo:echo:our.os` and a networked saver
/// `saver:saver:our.os` that saves whatever comes attached to a request.
pub fn node() -> Kernel {
    let mut config = KernelConfig::new(OUR, 7);
    config.vfs = true;
    config.net = true;
    config.trace_level = TraceLevel::Hash;
    config.inbox_bytes_max = 1 << 24;
    config.mailbox_bytes_max = 1 << 24;
    let built = KernelBuilder::new(OUR, 7)
        .config(config)
        .loader(Box::new(NativeLoader::new()))
        .build();
    let Ok(mut kernel) = built else {
        panic!("a kernel on memory builds");
    };
    let network = Capability::network(OUR);
    let registered = [
        kernel
            .harness()
            .register_native(&pid("echo:echo:our.os"), echo(), &[], true),
        kernel
            .harness()
            .register_native(&pid("saver:saver:our.os"), saver(), &[network], false),
    ];
    assert!(registered.iter().all(Result::is_ok), "fresh ids register");
    let vfs = Capability::messaging(on("vfs:distro:sys"));
    for id in ["a:app:our.os", "b:other:our.os"] {
        let _ = kernel
            .harness()
            .register_driven(&pid(id), std::slice::from_ref(&vfs), false);
    }
    let everyone: Vec<Capability> = kernel
        .process_ids()
        .iter()
        .map(|id| Capability::messaging(kernel.address_of(id)))
        .collect();
    let _ = kernel.input(Input::Register {
        process: pid("http-server:distro:sys"),
        capabilities: everyone,
        public: true,
        protected: true,
    });
    vfs_request(
        &mut kernel,
        "b:other:our.os",
        "/other:our.os/pkg",
        serde_json::json!("CreateDrive"),
    );
    kernel
}

/// `from` (driven) asks the vfs `action` on `path`, with a small blob; runs until idle and
/// takes the answer.
pub fn vfs_request(kernel: &mut Kernel, from: &str, path: &str, action: serde_json::Value) {
    let body = serde_json::json!({"path": path, "action": action}).to_string();
    let blob = LazyLoadBlob {
        mime: None,
        bytes: b"data".to_vec(),
    };
    let from = pid(from);
    let request = Request::new(body).expecting(5);
    if kernel
        .harness()
        .send_as(&from, on("vfs:distro:sys"), request, None, Some(blob))
        .is_ok()
    {
        kernel.harness().run_until_idle();
    }
    while let Ok(Some(_)) = kernel.harness().receive_as(&from) {}
}

fn check(kernel: &Kernel, provenance: &Provenance, what: &dyn std::fmt::Debug) {
    if let Err(forged) = provenance.check(kernel) {
        panic!("after {what:?}: {forged}");
    }
    if let Err(broken) = kernel.check_invariants() {
        panic!("after {what:?}: {broken}");
    }
}

/// A request's bytes through the door into a kernel, and the answer out (module docs).
pub fn door(data: &[u8]) {
    let Ok(Some(head)) = parse_head(data) else {
        return;
    };
    assert!(head.taken <= data.len(), "a head within its bytes");
    let rest = &data[head.taken..];
    let length = usize::try_from(head.length)
        .unwrap_or(usize::MAX)
        .min(rest.len());
    let Ok(rpc) = hyperkernel::door::parse(OUR, &rest[..length]) else {
        return;
    };
    let message_bytes = rpc.request.body.len()
        + rpc.request.metadata.as_ref().map_or(0, String::len)
        + rpc.blob.as_ref().map_or(0, |b| b.bytes.len());
    assert!(
        message_bytes as u64 <= MESSAGE_BYTES_MAX,
        "parse bounds the message"
    );
    let mut kernel = node();
    let door = pid("http-server:distro:sys");
    let send = Input::Send {
        process: door.clone(),
        target: rpc.target,
        request: rpc.request,
        context: Some(vec![1]),
        blob: rpc.blob,
    };
    if kernel.input(send).is_err() {
        return;
    }
    kernel.harness().run_until_idle();
    let answer_max = answer_bytes_max(MESSAGE_BYTES_MAX);
    while let Ok(Output::Received(Some(received))) = kernel.input(Input::Receive {
        process: door.clone(),
    }) {
        let (received, blob) = *received;
        let Ok((_, Message::Response((response, _)))) = received else {
            continue;
        };
        let answer = AnswerJson {
            body: response.body,
            blob,
        };
        let mut written = Vec::new();
        if answer.write_to(&mut written).is_err() {
            panic!("an answer writes to memory");
        }
        assert!(
            written.len() as u64 <= answer_max,
            "an answer past its bound"
        );
        let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&written);
        assert!(parsed.is_ok(), "the answer is JSON");
    }
    if let Err(broken) = kernel.check_invariants() {
        panic!("{broken}");
    }
}

/// Path components an attacker would try, picked by a byte; past the list, raw bytes.
fn component(pick: u8, raw: &[u8]) -> String {
    const WORDS: [&str; 12] = [
        "app:our.os",
        "other:our.os",
        "distro:sys",
        "pkg",
        "data",
        ".",
        "..",
        r#"x","drive":"\/other:our.os\/pkg"#,
        r#"x\","kind":"write"#,
        "a b",
        "\\u0022",
        "",
    ];
    match WORDS.get(usize::from(pick)) {
        Some(word) => (*word).to_owned(),
        None if pick == 255 => "n".repeat(5000),
        None => String::from_utf8_lossy(raw).into_owned(),
    }
}

/// The vfs actions, picked by a byte; `to` is a second path.
fn vfs_action(pick: u8, to: &str) -> serde_json::Value {
    match pick % 9 {
        0 => serde_json::json!("CreateDrive"),
        1 => serde_json::json!("CreateDir"),
        2 => serde_json::json!("Write"),
        3 => serde_json::json!("Read"),
        4 => serde_json::json!("RemoveFile"),
        5 => serde_json::json!("ReadDir"),
        6 => serde_json::json!({"OpenFile": {"create": true}}),
        7 => serde_json::json!({"Rename": {"new_path": to}}),
        _ => serde_json::json!({"CopyFile": {"new_path": to}}),
    }
}

/// A path of up to four components from `bytes` (each a pick byte and up to 8 raw bytes).
fn vfs_path(bytes: &mut &[u8]) -> String {
    let mut path = String::new();
    let count = take(bytes, 1).first().map_or(1, |n| n % 4 + 1);
    for _ in 0..count {
        let pick = take(bytes, 1).first().copied().unwrap_or(0) % 16;
        let raw = take(bytes, 8);
        path.push('/');
        path.push_str(&component(if pick == 15 { 255 } else { pick }, raw));
    }
    path
}

/// Takes up to `n` bytes off the front of `bytes`.
fn take<'a>(bytes: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (taken, rest) = bytes.split_at(n.min(bytes.len()));
    *bytes = rest;
    taken
}

/// Requests to the vfs from two packages' processes (module docs).
pub fn vfs_requests(data: &[u8]) {
    let mut kernel = node();
    let provenance = Provenance::of(&kernel);
    let mut bytes = data;
    for _ in 0..32 {
        let Some(&op) = take(&mut bytes, 1).first() else {
            break;
        };
        let from = if op & 0x80 == 0 {
            "a:app:our.os"
        } else {
            "b:other:our.os"
        };
        let path = vfs_path(&mut bytes);
        let to = vfs_path(&mut bytes);
        let action = vfs_action(op, &to);
        vfs_request(&mut kernel, from, &path, action.clone());
        check(&kernel, &provenance, &(from, &path, &action));
    }
}

/// A capability an attacker attaches, picked by a byte.
fn attached(pick: u8, raw: &[u8]) -> Capability {
    let vfs = on("vfs:distro:sys");
    match pick % 8 {
        0 => Capability::messaging(on("kernel:distro:sys")),
        1 => CapKey::from_params(vfs, &root_params()).to_capability(),
        2 => CapKey::from_params(vfs, &DriveCap::Write.params("/other:our.os/pkg")).to_capability(),
        3 => Capability::messaging(on("echo:echo:our.os")),
        4 => Capability::network(OUR),
        5 => Capability::new(
            on("vfs:distro:sys"),
            String::from_utf8_lossy(raw).into_owned(),
        ),
        6 => Capability::messaging(Address::new("our", ProcessId::kernel())),
        _ => Capability::messaging(
            "bob.os@chat:chat:bob.os"
                .parse()
                .unwrap_or_else(|_| on("x:y:z")),
        ),
    }
}

/// Messages from other nodes with attached capabilities (module docs). The echo's messaging
/// capability is the one a real signature may carry back: this run gave it away.
pub fn remote_messages(data: &[u8]) {
    let mut kernel = node();
    let mut provenance = Provenance::of(&kernel);
    let given = Capability::messaging(on("echo:echo:our.os"));
    provenance.allow(&given);
    let given_key = CapKey::try_from_capability(&given).ok();
    let mut bytes = data;
    for id in 0..16u64 {
        let Some(&head) = take(&mut bytes, 1).first() else {
            break;
        };
        const SOURCES: [&str; 5] = [
            "bob.os@chat:chat:bob.os",
            "our.os@kernel:distro:sys",
            "our@a:app:our.os",
            "our.os@saver:saver:our.os",
            "carol.os@x:y:carol.os",
        ];
        const TARGETS: [&str; 5] = [
            "our.os@saver:saver:our.os",
            "our.os@kernel:distro:sys",
            "dave.os@saver:saver:dave.os",
            "our@echo:echo:our.os",
            "our.os@net:distro:sys",
        ];
        let source = SOURCES[usize::from(head % 5)];
        let target = TARGETS[usize::from((head >> 3) % 5)];
        let mut request = Request::new(take(&mut bytes, 16).to_vec());
        let count = take(&mut bytes, 1).first().map_or(0, |n| n % 4);
        for _ in 0..count {
            let pick = take(&mut bytes, 1).first().copied().unwrap_or(0);
            let raw = take(&mut bytes, 8);
            let cap = attached(pick, raw);
            let signature = match (pick >> 4) % 3 {
                0 => raw.to_vec(),
                // The kernel's real signature: over this capability only if it is the one
                // given away, else over that one (a swapped signature).
                _ => given_key
                    .as_ref()
                    .map(|key| kernel.capabilities().sign(key))
                    .unwrap_or_default(),
            };
            request.capabilities.push((cap, signature));
        }
        let (Ok(source), Ok(target)) = (source.parse(), target.parse()) else {
            continue;
        };
        let message = KernelMessage {
            id,
            source,
            target,
            rsvp: None,
            message: Message::Request(request),
            lazy_load_blob: None,
        };
        if kernel.harness().submit(message).is_err() {
            break;
        }
        kernel.harness().run_until_idle();
        check(&kernel, &provenance, &id);
    }
}

/// A terminal line through its parser: never a panic; a command it understands writes back
/// to JSON that parses to the same command.
pub fn terminal_line(data: &[u8]) {
    let line = String::from_utf8_lossy(data);
    if let Ok(hyperkernel::terminal::Line::Command(command)) = hyperkernel::terminal::parse(&line) {
        let written = serde_json::to_vec(&command).unwrap_or_default();
        let again: Result<hyperkernel::KernelCommand, _> = serde_json::from_slice(&written);
        assert!(
            again.is_ok_and(|again| again == *command),
            "a command changed on its way back"
        );
    }
}

/// A package directory made of `data` through `Package::read`: parts split at `0xFF` are the
/// metadata, the manifest, then file names and contents under `pkg/`.
pub fn package_dir(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let mut parts = data.split(|&b| b == 0xFF);
    let metadata = parts.next().unwrap_or_default();
    let manifest = parts.next().unwrap_or_default();
    let pkg = dir.path().join("pkg");
    if std::fs::create_dir_all(&pkg).is_err()
        || std::fs::write(dir.path().join("metadata.json"), metadata).is_err()
        || std::fs::write(pkg.join("manifest.json"), manifest).is_err()
    {
        return;
    }
    while let (Some(name), Some(content)) = (parts.next(), parts.next()) {
        let name: String = String::from_utf8_lossy(name)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(64)
            .collect();
        if name.is_empty() || name.starts_with('.') || name == "manifest.json" {
            continue;
        }
        let _ = std::fs::write(pkg.join(name), content);
    }
    if let Ok(package) = hyperkernel::package::Package::read(dir.path()) {
        let bytes: usize = package.files.iter().map(|(_, b)| b.len()).sum();
        assert!(
            bytes as u64 <= hyperkernel::package::PACKAGE_BYTES_MAX,
            "bounded"
        );
        assert!(
            package.files.windows(2).all(|w| w[0].0 < w[1].0),
            "files in order"
        );
        for entry in &package.entries {
            assert!(
                package.module(entry).is_some(),
                "a read package has its modules"
            );
        }
    }
}

/// A journal segment: a valid epoch header, then `data`, through the reader and the replay.
pub fn journal_segment(data: &[u8]) {
    use hyperkernel::journal::{Begin, JOURNAL_FORMAT, JournalWriter, Limits};
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let home = dir.path().join("home");
    let store = dir.path().join("store.redb");
    if std::fs::create_dir_all(&home).is_err() || hyperkernel::RedbStorage::open(&store).is_err() {
        return;
    }
    let begin = Begin {
        journal_format: JOURNAL_FORMAT,
        epoch: 0,
        node: OUR.into(),
        seed: 3,
        signing_key: Some([7; 32]),
        sync_interval_nanos: 0,
        time_start: hyperkernel::Timestamp(0),
        vfs: data.first().is_some_and(|b| b & 1 == 1),
        network: false,
        net: false,
        trace_bodies: false,
    };
    let root = home.join("journal");
    let Ok(writer) = JournalWriter::begin(&root, &store, begin, Limits::default()) else {
        return;
    };
    let segment = writer.dir().join("0000.log");
    drop(writer);
    let appended = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .and_then(|mut file| std::io::Write::write_all(&mut file, data));
    if appended.is_err() {
        return;
    }
    if let Ok((_, mut reader)) = hyperkernel::journal::open_epoch(&root, None) {
        for _ in 0..100_000 {
            if !matches!(reader.next_entry(), Ok(Some(_))) {
                break;
            }
        }
    }
    let how = crate::tools::replay::Replay::default();
    let mut input = std::io::empty();
    let mut out = Vec::new();
    let _ = crate::tools::journal_replay::replay_journal(&home, None, &how, &mut input, &mut out);
}
