//! The reference's tester protocol, the part every kit test package repeats: wait for `Run`
//! from the local tester, run the checks, answer `{"Run":{"Ok":null}}` or
//! `{"Run":{"Err":{"test","file","line","column"}}}` with where the first check failed, and
//! then panic as kit's tests do.
use hyperware_process_lib::{Address, Message, Request, Response, await_message};
use serde_json::json;

/// Where a check failed, and why.
pub struct Failed {
    /// The test's source file.
    pub file: &'static str,
    /// The line of the check.
    pub line: u32,
    /// Its column.
    pub column: u32,
    /// What was wrong.
    pub what: String,
}

/// Fails the test here unless `condition` holds; the rest is a `format!` of why.
#[macro_export]
macro_rules! check {
    ($condition:expr, $($what:tt)*) => {
        if !$condition {
            return Err($crate::fail!($($what)*));
        }
    };
}

/// A `Failed` at this place, with a `format!` of why.
#[macro_export]
macro_rules! fail {
    ($($what:tt)*) => {
        $crate::Failed { file: file!(), line: line!(), column: column!(), what: format!($($what)*) }
    };
}

/// Sends `body` (JSON) to `target` and returns its answer as JSON (`null` if it is not JSON),
/// waiting at most `timeout` seconds; no answer fails the test where this was called.
#[track_caller]
pub fn ask(
    target: &Address,
    body: &serde_json::Value,
    timeout: u64,
) -> Result<serde_json::Value, Failed> {
    let place = std::panic::Location::caller();
    let answer = Request::to(target.clone())
        .body(body.to_string())
        .send_and_await_response(timeout);
    let Ok(Ok(message)) = answer else {
        return Err(Failed {
            file: place.file(),
            line: place.line(),
            column: place.column(),
            what: format!("no answer from {} to {body}", target.node()),
        });
    };
    Ok(serde_json::from_slice(message.body()).unwrap_or(serde_json::Value::Null))
}

/// Serves `Run` requests from our node forever: each runs `run` and answers with its outcome.
pub fn serve(our: &Address, test: &str, run: impl Fn(&Address) -> Result<(), Failed>) -> ! {
    serve_nodes(our, test, |our, _| run(our))
}

/// As `serve`, giving `run` the nodes the `Run` request names (`input_node_names`: every node
/// of the test group, in tests.toml order).
pub fn serve_nodes(
    our: &Address,
    test: &str,
    run: impl Fn(&Address, &[String]) -> Result<(), Failed>,
) -> ! {
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
        let body: serde_json::Value =
            serde_json::from_slice(message.body()).unwrap_or(serde_json::Value::Null);
        let nodes: Vec<String> = body["Run"]["input_node_names"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match run(our, &nodes) {
            Ok(()) => {
                let _ = Response::new()
                    .body(json!({"Run": {"Ok": null}}).to_string())
                    .send();
            }
            Err(failed) => {
                let err = json!({"Run": {"Err": {
                    "test": test, "file": failed.file, "line": failed.line, "column": failed.column,
                }}});
                let _ = Response::new().body(err.to_string()).send();
                panic!("{test}: {}", failed.what);
            }
        }
    }
}
