//! The simulation harness around the hyperkernel core: scenarios, run summaries and trace
//! files. It depends on the core, never the reverse. Today it holds the built-in demo
//! scenario and the run summary; scenario files, faults, invariants, replay and shrinking
//! come with issue 4.

pub mod demo;
pub mod summary;
