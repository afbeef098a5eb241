//! Modules that cannot become processes: each is refused by `InitializeProcess` with the
//! reason, before anything is registered (W9); modules that fail only once running end with a
//! recorded reason.

use crate::harness::{World, pid};
use hyperkernel::{Event, ExitReason, KernelCommand, LazyLoadBlob, OnExit};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/guests/fixtures/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Initializes `app:test:our.os` with `code`; returns the reply.
fn initialize(world: &mut World, code: Vec<u8>) -> serde_json::Value {
    let command = KernelCommand::InitializeProcess {
        id: pid("app:test:our.os"),
        wasm_bytes_handle: "/test:our.os/pkg/app.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: vec![],
        public: false,
    };
    let blob = LazyLoadBlob {
        mime: None,
        bytes: code,
    };
    world.command_with_blob(&command, Some(5), Some(blob));
    let mut replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    replies.remove(0)
}

fn refused(code: Vec<u8>) -> String {
    let mut world = World::new(1);
    let reply = initialize(&mut world, code);
    assert_eq!(reply["body"], json!("InitializeProcessError"), "{reply:#?}");
    assert!(
        !world.kernel.has_process(&pid("app:test:our.os")),
        "nothing registered"
    );
    reply["metadata"].to_string()
}

#[test]
fn malformed_modules_are_refused_with_the_reason() {
    let cases = [
        (
            "not wasm",
            b"\0asm\x01\0\0\0garbage".to_vec(),
            "invalid wasm",
        ),
        ("no init", fixture("no-init"), "does not export `init`"),
        (
            "wrong init",
            fixture("wrong-init"),
            "export `init` has type",
        ),
        (
            "unknown WASI import",
            fixture("unknown-import"),
            "imports `wasi_snapshot_preview1::fd_read`, which the kernel's WASI shim does not \
             provide (it has environ_get, environ_sizes_get, fd_write, proc_exit, random_get, \
             clock_time_get, sched_yield, poll_oneoff)",
        ),
        (
            "unknown import module",
            fixture("unknown-module"),
            "imports `env::abort`, which the kernel does not provide",
        ),
        (
            "wrong import type",
            fixture("wrong-import-type"),
            "import `hyperware:process/standard@1.0.0::print-to-terminal` has type",
        ),
        (
            "wrong WASI import type",
            fixture("wrong-wasi-type"),
            "import `wasi_snapshot_preview1::clock_time_get` has type",
        ),
        (
            "no memory",
            fixture("no-memory"),
            "does not export `memory`",
        ),
        (
            "start traps",
            fixture("start-traps"),
            "instantiation failed",
        ),
    ];
    for (case, code, expected) in cases {
        let reason = refused(code);
        assert!(reason.contains(expected), "{case}: {reason}");
    }
}

fn first_run_failure(code: Vec<u8>) -> String {
    let mut world = World::new(1);
    let app = world.spawn_code("app", &code, "app", OnExit::None, vec![], false);
    assert!(!world.kernel.has_process(&app));
    let records = world.kernel.trace().records();
    let reason = records.iter().find_map(|r| match &r.event {
        Event::Exited {
            reason: ExitReason::Failed(reason),
            ..
        } => Some(reason.clone()),
        _ => None,
    });
    reason.expect("the process failed")
}

#[test]
fn a_realloc_that_returns_a_bad_block_fails_the_process_not_the_kernel() {
    let reason = first_run_failure(fixture("bad-realloc"));
    assert!(reason.contains("bad block"), "{reason}");
}

#[test]
fn a_realloc_that_never_returns_is_stopped_by_its_fuel_reserve() {
    let reason = first_run_failure(fixture("spin-in-realloc"));
    assert!(reason.contains("cabi_realloc failed"), "{reason}");
    assert!(reason.contains("fuel"), "{reason}");
}

#[test]
fn a_send_from_inside_cabi_realloc_fails_the_process() {
    let reason = first_run_failure(fixture("send-in-realloc"));
    assert!(reason.contains("cabi_realloc failed"), "{reason}");
    assert!(
        reason.contains("send-response called from inside cabi_realloc"),
        "{reason}"
    );
}

#[test]
fn shared_loaders_compile_each_module_once() {
    use hyperkernel::{WasmConfig, WasmLoader};
    let echo = super::guest("echo");
    let mut first = WasmLoader::new(WasmConfig::default()).unwrap();
    first.load_wasm(&echo).unwrap();
    let mut second = first.share();
    assert_eq!(
        second.compiled(),
        1,
        "the share sees what the first compiled"
    );
    second.load_wasm(&echo).unwrap();
    second.load_wasm(&super::guest("counter")).unwrap();
    assert_eq!(
        first.compiled(),
        2,
        "and the first sees what the share compiled"
    );
    // The same code under a different loader family compiles anew.
    let mut unrelated = WasmLoader::new(WasmConfig::default()).unwrap();
    unrelated.load_wasm(&echo).unwrap();
    assert_eq!((unrelated.compiled(), first.compiled()), (1, 2));
}
