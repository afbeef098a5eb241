//! The tools on runs: explore across seeds, replay and diff of traces, shrinking of failing
//! seeds, replay of node journals, kit's tests as scenarios, the bodies of the fuzz targets,
//! and the demo.

pub mod compose;
pub mod demo;
pub mod explore;
pub mod fuzzing;
pub mod journal_replay;
pub mod kit;
pub mod replay;
pub mod shrink;
