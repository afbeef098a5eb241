//! Bad input never panics the kernel. Goal: arbitrary bytes and near-miss JSON as command
//! bodies, and arbitrary raw messages between arbitrary addresses, leave the kernel's
//! invariants intact, and every request that expects a response gets exactly one answer
//! (a response or a send error). Method: proptest generates the inputs; the kernel runs until
//! idle after each; the client's mailbox is counted.

use crate::harness::{World, addr};
use hyperkernel::{KernelMessage, Message, Request, Response};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app:test:our.os".to_string()),
        Just("kernel:distro:sys".to_string()),
        Just("tester:tester:sys".to_string()),
        "[a-z:]{0,12}",
        "\\PC{0,12}",
    ]
}

/// Bodies: random bytes, random text, and commands with random ids and params.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let command = (0..8usize, id_text(), "\\PC{0,10}").prop_map(|(kind, id, params)| {
        let id = serde_json::to_string(&id).unwrap();
        let params = serde_json::to_string(&params).unwrap();
        let cap = format!(r#"{{"issuer":"our.os@{}","params":{params}}}"#, id.trim_matches('"'));
        let text = match kind {
            0 => format!(r#"{{"RunProcess":{id}}}"#),
            1 => format!(r#"{{"KillProcess":{id}}}"#),
            2 => format!(r#"{{"GrantCapabilities":{{"target":{id},"capabilities":[{cap}]}}}}"#),
            3 => format!(r#"{{"DropCapabilities":{{"target":{id},"capabilities":[{cap}]}}}}"#),
            4 => format!(r#"{{"SetOnExit":{{"target":{id},"on_exit":"Restart"}}}}"#),
            5 => format!(r#"{{"Debug":{{"HasCap":{{"on":{id},"cap":{cap}}}}}}}"#),
            6 => format!(r#"{{"InitializeProcess":{{"id":{id},"wasm_bytes_handle":"","on_exit":"None","initial_capabilities":[{cap}],"public":true}}}}"#),
            _ => format!(r#"{{"Debug":{{"Process":{id}}}}}"#),
        };
        text.into_bytes()
    });
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        "\\PC{0,40}".prop_map(String::into_bytes),
        command
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            concat!(env!("CARGO_MANIFEST_DIR"), "/proptest-regressions/bad_input.txt"),
        ))),
        .. ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_command_bodies_are_answered_once_and_never_panic(bodies in prop::collection::vec(body(), 1..8)) {
        let mut world = World::new(21);
        world.spawn("app", "echo", hyperkernel::OnExit::None, vec![], false);
        let kernel = addr("our.os@kernel:distro:sys");
        let client = world.client.clone();
        for body in bodies {
            let shutdown = serde_json::from_slice::<hyperkernel::KernelCommand>(&body)
                .is_ok_and(|c| matches!(c, hyperkernel::KernelCommand::Shutdown));
            if shutdown {
                break;
            }
            world.kernel.harness().send_as(&client, kernel.clone(), Request::new(body).expecting(5), None, None).unwrap();
            world.kernel.harness().run_until_idle();
            world.kernel.check_invariants().unwrap();
            if !world.kernel.has_process(&client) {
                break; // The command killed the client; its mailbox went with it.
            }
            prop_assert_eq!(world.replies().len(), 1, "one answer per command");
        }
    }

    #[test]
    fn arbitrary_raw_messages_never_panic(
        messages in prop::collection::vec((id_text(), id_text(), "[a-z.]{1,8}", any::<bool>(), any::<u64>(), body()), 1..12),
    ) {
        let mut world = World::new(22);
        world.spawn("app", "echo", hyperkernel::OnExit::Restart, vec![], true);
        for (source, target, node, is_request, id, body) in messages {
            let (Ok(source), Ok(target)) = (format!("{node}@{source}").parse(), format!("our.os@{target}").parse()) else {
                continue;
            };
            let message = if is_request {
                Message::Request(Request::new(body).expecting(1))
            } else {
                Message::Response((Response::new(body), None))
            };
            let message = KernelMessage { id, source, target, rsvp: None, message, lazy_load_blob: None };
            if world.kernel.harness().submit(message).is_err() {
                break;
            }
            world.kernel.harness().run_until_idle();
            world.kernel.check_invariants().unwrap();
        }
    }
}
