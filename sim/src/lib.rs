//! The simulation harness around the hyperkernel core: scenario files, seeded runs with
//! invariants checked after every step, run summaries and trace files. It depends on the
//! core, never the reverse: fault plans, explore across seeds, replay and diff of traces,
//! and shrinking of failing seeds.

pub mod apps;
pub mod demo;
pub mod disk;
pub mod explore;
pub mod faults;
pub mod feed;
pub mod files;
pub mod format;
pub mod fuzzing;
pub mod generate;
pub mod guests;
pub mod inside;
pub mod invariants;
pub mod journal_replay;
pub mod kit;
pub mod network;
pub mod provenance;
pub mod reboot;
pub mod replay;
pub mod run;
pub mod scenario;
pub mod setup;
pub mod shrink;
pub mod streams;
pub mod summary;
pub mod world;
