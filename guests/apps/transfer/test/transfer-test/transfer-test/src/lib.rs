//! The transfer app's test across two nodes, in the reference's tester protocol: a file put on
//! the other node is downloaded through a worker of ours and arrives whole in our drive.
use hyperware_process_lib::timer::set_and_await_timer;
use hyperware_process_lib::{Address, call_init};
use serde_json::{Value, json};
use tester_protocol::{Failed, check, fail};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

fn transfer(node: &str) -> Address {
    Address::new(node, ("transfer", "transfer", "example.os"))
}

/// Sends `body` to the transfer app on `node` and returns its answer.
#[track_caller]
fn ask(node: &str, body: Value) -> Result<Value, Failed> {
    tester_protocol::ask(&transfer(node), &body, 10)
}

fn run(our: &Address, nodes: &[String]) -> Result<(), Failed> {
    let me = our.node();
    let Some(other) = nodes.iter().find(|n| n.as_str() != me) else {
        return Err(fail!("the test group names no other node: {nodes:?}"));
    };
    let text: String = (0..100)
        .map(|i| format!("line {i} of the file\n"))
        .collect();
    let put = ask(other, json!({"Put": {"name": "notes.txt", "text": text}}))?;
    check!(
        put == json!("Ok"),
        "putting the file on {other} answered {put}"
    );
    let started = ask(
        me,
        json!({"Download": {"name": "notes.txt", "from": other}}),
    )?;
    check!(
        started.get("Started").is_some(),
        "the download answered {started}"
    );
    for _ in 0..100 {
        let read = ask(me, json!({"Read": "notes.txt"}))?;
        if let Some(arrived) = read.get("Text").and_then(Value::as_str) {
            check!(
                arrived == text,
                "the file arrived changed: {} bytes",
                arrived.len()
            );
            return Ok(());
        }
        let _ = set_and_await_timer(50);
    }
    Err(fail!("notes.txt never arrived"))
}

call_init!(init);
fn init(our: Address) {
    tester_protocol::serve_nodes(&our, "transfer-test", run);
}
