//! The `sim` binary's commands beside `main.rs`: `sim test` and `sim build` (kit packages),
//! `run`, `explore` and `replay` of world scenarios and traces, and `export` of traces.

pub(crate) mod export;
pub(crate) mod test_command;
pub(crate) mod world_command;
pub(crate) mod world_replay;
