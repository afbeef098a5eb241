//! The chat's tests across two nodes, in the reference's tester protocol (`tester-protocol`):
//! a message sent through our chat reaches the other node's chat, and both histories show it.
use hyperware_process_lib::{Address, call_init};
use serde_json::{Value, json};
use tester_protocol::{Failed, check, fail};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

fn chat(node: &str) -> Address {
    Address::new(node, ("chat", "chat", "example.os"))
}

/// Sends `body` to the chat on `node` and returns its answer.
#[track_caller]
fn ask(node: &str, body: Value) -> Result<Value, Failed> {
    tester_protocol::ask(&chat(node), &body, 10)
}

/// Whether the history of the chat on `node` holds `text` from `from` to `to`.
fn holds(node: &str, from: &str, to: &str, text: &str) -> Result<bool, Failed> {
    let history = ask(node, json!("History"))?;
    let lines = history["History"]
        .as_array()
        .ok_or_else(|| fail!("{node} answered History with {history}"))?;
    Ok(lines
        .iter()
        .any(|l| l["from"] == from && l["to"] == to && l["text"] == text))
}

fn run(our: &Address, nodes: &[String]) -> Result<(), Failed> {
    let me = our.node();
    let Some(other) = nodes.iter().find(|n| n.as_str() != me) else {
        return Err(fail!("the test group names no other node: {nodes:?}"));
    };
    let sent = ask(
        me,
        json!({"Send": {"to": other, "text": "hello from the test"}}),
    )?;
    check!(sent == json!("Sent"), "sending to {other} answered {sent}");
    check!(
        holds(me, me, other, "hello from the test")?,
        "our history lacks the message"
    );
    check!(
        holds(other, me, other, "hello from the test")?,
        "{other}'s history lacks the message"
    );
    // A node that is not in the world: the chat says it failed, and keeps nothing.
    let failed = ask(me, json!({"Send": {"to": "nowhere.os", "text": "lost"}}))?;
    check!(
        failed.get("Failed").is_some(),
        "sending nowhere answered {failed}"
    );
    check!(
        !holds(me, me, "nowhere.os", "lost")?,
        "a failed send is in the history"
    );
    Ok(())
}

call_init!(init);
fn init(our: Address) {
    tester_protocol::serve_nodes(&our, "chat-test", run);
}
