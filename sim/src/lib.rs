//! The simulation harness around the hyperkernel core. It depends on the core, never the
//! reverse, and is laid out along the route of one step; each part imports only from the
//! parts listed before it (no import circles):
//!
//! - `format` (the file formats as written: scenarios, worlds, faults, apps), `files`
//!   (bounded reads) and `checks` (the harness's invariants after every step and the
//!   capability-provenance oracle): leaves;
//! - `node`: one simulated node: its scenario loaded, its setup, apps and guests, its store
//!   on a simulated disk and its reboots, the faults inside it (`inside`) and its fault plan,
//!   the one-node network of peers, the seeded streams and workload generators;
//! - `run`, the one-node driver, and `summary`;
//! - `tools`: explore across seeds, replay and diff, shrink, journal replay, kit tests, the
//!   fuzz targets' bodies and the demo;
//! - `world`: several nodes on one clock, their network, the world checks, driver and its
//!   tools (explore, replay, shrink and journals of worlds);
//! - the `sim` binary's `main.rs` and `cli`.

pub mod checks;
pub mod files;
pub mod format;
pub mod node;
pub mod run;
pub mod summary;
pub mod tools;
pub mod view;
pub mod world;
