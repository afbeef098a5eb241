//! Hostile guests at the ABI boundary (issue 10): misaligned result pointers, host calls from
//! places where none may be made, and the resources a module may declare. Each ends the guest
//! (or refuses the module) with its reason; the kernel goes on.

use crate::harness::{World, pid};
use hyperkernel::{Event, ExitReason, KernelCommand, LazyLoadBlob, OnExit};
use serde_json::json;

const REALLOC: &str =
    r#"(func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)"#;

fn module(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (import "hyperware:process/standard@1.0.0" "our" (func $our (param i32)))
             (import "hyperware:process/standard@1.0.0" "receive" (func $receive (param i32)))
             {body})"#
    ))
    .unwrap()
}

fn initialize(world: &mut World, code: Vec<u8>) -> serde_json::Value {
    let command = KernelCommand::InitializeProcess {
        id: pid("app:test:our.os"),
        wasm_bytes_handle: "/test:our.os/pkg/app.wasm".into(),
        wit_version: Some(1),
        on_exit: OnExit::None,
        initial_capabilities: vec![],
        public: true,
    };
    let blob = LazyLoadBlob {
        mime: None,
        bytes: code,
    };
    world.command_with_blob(&command, Some(5), Some(blob));
    world.replies().remove(0)
}

/// Runs `code` as `app:test:our.os`, sends it one request, and returns why it failed.
fn failure(code: Vec<u8>) -> String {
    let mut world = World::new(1);
    let app = world.spawn_code("app", &code, "app", OnExit::None, vec![], true);
    world.tell(&app, "hello");
    world.kernel.run_until_idle();
    world.kernel.check_invariants().unwrap();
    assert!(!world.kernel.has_process(&app), "the guest ended");
    world
        .kernel
        .trace()
        .records()
        .iter()
        .find_map(|r| match &r.event {
            Event::Exited {
                reason: ExitReason::Failed(reason),
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .expect("the guest failed")
}

#[test]
fn misaligned_result_pointers_are_refused() {
    // `our` writes a record aligned to 4, `receive` a result aligned to 8; 1001 is odd.
    for (call, align) in [("$our", 4), ("$receive", 8)] {
        let code = module(&format!(
            r#"(memory (export "memory") 1)
               (func (export "init") (param i32 i32) (call {call} (i32.const 1001)))
               {REALLOC}"#
        ));
        let reason = failure(code);
        let expected = format!("pointer 0x3e9 is not aligned to {align}");
        assert!(reason.contains(&expected), "{call}: {reason}");
    }
}

#[test]
fn host_calls_from_a_start_function_or_cabi_realloc_say_so() {
    let start = module(&format!(
        r#"(memory (export "memory") 1)
           (func $start (call $our (i32.const 64)))
           (start $start)
           (func (export "init") (param i32 i32))
           {REALLOC}"#
    ));
    let mut world = World::new(1);
    let reply = initialize(&mut world, start);
    assert_eq!(reply["body"], json!("InitializeProcessError"));
    let reason = reply["metadata"].to_string();
    assert!(
        reason.contains("our called from the start function"),
        "{reason}"
    );

    // `cabi_realloc` runs while the host lowers `init`'s argument.
    let realloc = module(
        r#"(memory (export "memory") 1)
           (func (export "init") (param i32 i32))
           (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
             (call $our (i32.const 64)) i32.const 1024)"#,
    );
    let reason = failure(realloc);
    assert!(
        reason.contains("our called from inside cabi_realloc"),
        "{reason}"
    );
    assert!(!reason.contains("suspended in a syscall"), "{reason}");
}

#[test]
fn booted_with_expects_response_is_answered() {
    let mut world = World::new(1);
    world.command(&KernelCommand::Booted, Some(5));
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["body"], json!("Booted"));
    world.command(&KernelCommand::Booted, None);
    assert!(
        world.replies().is_empty(),
        "a reference client never sees it"
    );
}
