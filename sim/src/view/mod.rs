//! Seeing a run: a trace as a viewer needs it (`model.rs`: lanes, message keys, depths) and
//! its exports (`chrome.rs`: Chrome trace-event JSON for Perfetto).

pub mod chrome;
pub mod model;
