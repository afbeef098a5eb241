//! The counter's tests, in the reference's tester protocol: on `Run` from our node it checks
//! the counter through ordinary messages and answers `{"Run":{"Ok":null}}`, or the `Err` form
//! with the file, line and column of the first failed check (then it panics, as kit's tests do).
use hyperware_process_lib::{Address, Message, Request, Response, await_message, call_init, timer};
use serde_json::{Value, json};

wit_bindgen::generate!({
    path: "../../../../../../wit",
    world: "process-v1",
});

/// Where a check failed.
struct Failed {
    line: u32,
    column: u32,
    what: String,
}

macro_rules! check {
    ($condition:expr, $($what:tt)*) => {
        if !$condition {
            return Err(Failed { line: line!(), column: column!(), what: format!($($what)*) });
        }
    };
}

fn counter(our: &Address) -> Address {
    Address::new(our.node(), ("counter", "counter", "example.os"))
}

/// Sends `body` to the counter and returns its `Count`.
fn ask(our: &Address, body: Value) -> Result<u64, Failed> {
    let answer = Request::to(counter(our))
        .body(body.to_string())
        .send_and_await_response(5);
    let Ok(Ok(message)) = answer else {
        return Err(Failed {
            line: line!(),
            column: column!(),
            what: format!("no answer to {body}"),
        });
    };
    let value: Value = serde_json::from_slice(message.body()).unwrap_or(Value::Null);
    match value["Count"].as_u64() {
        Some(count) => Ok(count),
        None => Err(Failed {
            line: line!(),
            column: column!(),
            what: format!("{body} answered {value}"),
        }),
    }
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
    loop {
        let Ok(message) = await_message() else {
            continue;
        };
        let Message::Request { source, .. } = &message else {
            continue;
        };
        if source.node() != our.node() {
            continue;
        }
        match run(&our) {
            Ok(()) => {
                let _ = Response::new()
                    .body(json!({"Run": {"Ok": null}}).to_string())
                    .send();
            }
            Err(failed) => {
                let err = json!({"Run": {"Err": {
                    "test": "counter-test", "file": file!(), "line": failed.line, "column": failed.column,
                }}});
                let _ = Response::new().body(err.to_string()).send();
                panic!("counter-test: {}", failed.what);
            }
        }
    }
}
