//! What every `sim` CLI test uses: the built binary, a scratch folder per test binary, the
//! example scenarios, and lines of the summary.

#![allow(dead_code, reason = "each test binary uses a part")]
#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the built `sim` with `args`.
pub(crate) fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .unwrap()
}

/// `name` in a scratch folder of this test process.
pub(crate) fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hyperkernel-sim-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The example scenario `name` (`sim/scenarios/NAME.json`).
pub(crate) fn example(name: &str) -> String {
    format!("{}/scenarios/{name}.json", env!("CARGO_MANIFEST_DIR"))
}

/// The summary line that starts with `key`.
pub(crate) fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

/// Text of an output stream.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes a scenario with `text` to `name` and runs it; checks that it is refused with
/// `expected` in the error.
pub(crate) fn refused(name: &str, scenario: &str, expected: &str) {
    let path = temp(name);
    std::fs::write(&path, scenario).unwrap();
    let output = sim(&["run", path.to_str().unwrap()]);
    assert!(!output.status.success(), "{name} should be refused");
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(expected),
        "{name}: expected `{expected}` in {stderr}"
    );
}
