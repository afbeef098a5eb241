//! The example guests in `guests/`, built once per test run by the same code `sim` uses
//! (`sim/src/node/guests.rs`), which installs a missing `wasm32-unknown-unknown` target itself
//! (`rustup target add`); without rustup the tests fail with that command.

#[path = "../../../sim/src/node/guests.rs"]
mod builder;

/// The bytes of guest `name` (`echo`, `counter`, `hostile`, …).
pub fn guest(name: &str) -> Vec<u8> {
    builder::guest(name).unwrap_or_else(|why| panic!("{why}"))
}

/// The bytes of WASI guest `name` (`wasi-probe`), built for `wasm32-wasip1`.
pub fn wasi_guest(name: &str) -> Vec<u8> {
    builder::wasi_guest(name).unwrap_or_else(|why| panic!("{why}"))
}
