//! The trace reader: any text parsed as a trace file (`sim replay`, `sim diff`) and as a view
//! (`sim export`). Nothing panics; a trace read is its own match in `diff`, its hash chain
//! either verifies or names the first record that breaks it, and its view has an event a
//! record, each on a lane, exported as JSON.
#![no_main]

use hyperkernel::trace::verify_chain;
use hyperkernel_sim::tools::replay::{diff_report, event_line, parse_trace};
use hyperkernel_sim::view::{chrome, model};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(view) = model::view_of(text) {
        assert!(view.events.iter().all(|e| e.lane < view.lanes.len()));
        let mut json = Vec::new();
        chrome::write_chrome(&view, chrome::Axis::Simulated, &mut json).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(json["traceEvents"].is_array());
    }
    let Ok(trace) = parse_trace(Path::new("fuzz.jsonl"), text) else {
        return;
    };
    assert!(diff_report(&trace.records, &trace.records, 3).is_none());
    for record in &trace.records {
        assert!(!event_line(record).is_empty());
    }
    if let Err(at) = verify_chain(&trace.records) {
        assert!(
            (at as usize) < trace.records.len(),
            "the break is a record of the trace"
        );
    }
});
