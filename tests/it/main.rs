//! Integration tests: one binary, one module per area.
#![allow(missing_docs, unreachable_pub, reason = "test code")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod bad_input;
mod caps_model;
mod commands;
mod determinism;
mod durable;
mod faults;
mod fuzz;
mod harness;
mod hostile;
mod lifecycle;
mod net;
mod node;
mod node_hostile;
mod packages;
mod remote;
mod routing;
mod terminal;
mod tidy;
mod vfs;
mod vfs_model;
mod wasm;
mod weaknesses;
mod wire;
