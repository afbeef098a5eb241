//! The counter's tests, in the reference's tester protocol (`tester-protocol`): the counter
//! checked through ordinary messages, a tick and an `Add` that lands while the tick waits
//! both counted.
use hyperware_process_lib::{Address, Request, call_init, timer};
use serde_json::{Value, json};
use tester_protocol::{Failed, check, fail};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

fn counter(our: &Address) -> Address {
    Address::new(our.node(), ("counter", "counter", "example.os"))
}

/// Sends `body` to the counter and returns its `Count`.
#[track_caller]
fn ask(our: &Address, body: Value) -> Result<u64, Failed> {
    let value = tester_protocol::ask(&counter(our), &body, 5)?;
    value["Count"]
        .as_u64()
        .ok_or_else(|| fail!("{body} answered {value}"))
}

fn run(our: &Address) -> Result<(), Failed> {
    let start = ask(our, json!("Get"))?;
    check!(ask(our, json!({"Add": 2}))? == start + 2, "Add 2");
    check!(ask(our, json!({"Add": 3}))? == start + 5, "Add 3");
    // A tick is set, then an Add lands while it waits: both must count.
    let tick = Request::to(counter(our))
        .body(json!({"Tick": 20}).to_string())
        .send();
    check!(tick.is_ok(), "sending the tick failed");
    check!(
        ask(our, json!({"Add": 1}))? == start + 6,
        "Add 1 during a tick"
    );
    let _ = timer::set_and_await_timer(100);
    let end = ask(our, json!("Get"))?;
    check!(
        end == start + 7,
        "after the tick the count is {end}, not {}",
        start + 7
    );
    Ok(())
}

call_init!(init);
fn init(our: Address) {
    tester_protocol::serve(&our, "counter-test", run);
}
