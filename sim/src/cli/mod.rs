//! The `sim` binary's commands beside `main.rs`: `sim test` and `sim build` (kit packages),
//! and `run`, `explore` and `replay` of world scenarios and traces.

pub(crate) mod test_command;
pub(crate) mod world_command;
pub(crate) mod world_replay;
