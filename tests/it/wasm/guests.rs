//! The example guests in `guests/`, built once per test run by the same code `sim` uses
//! (`sim/src/guests.rs`). Without the `wasm32-unknown-unknown` target the tests fail with the
//! command that installs it (`.ci/run` runs that command).

#[path = "../../../sim/src/guests.rs"]
mod builder;

/// The bytes of guest `name` (`echo`, `counter`, `hostile`, …).
pub fn guest(name: &str) -> Vec<u8> {
    builder::guest(name).unwrap_or_else(|why| panic!("{why}"))
}
