//! The reference's tester protocol, the part every kit test package repeats: wait for `Run`
//! from the local tester, run the checks, answer `{"Run":{"Ok":null}}` or
//! `{"Run":{"Err":{"test","file","line","column"}}}` with where the first check failed, and
//! then panic as kit's tests do.
use hyperware_process_lib::{Address, Message, Response, await_message};
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

/// Serves `Run` requests from our node forever: each runs `run` and answers with its outcome.
pub fn serve(our: &Address, test: &str, run: impl Fn(&Address) -> Result<(), Failed>) -> ! {
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
        match run(our) {
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
