//! The scenario reader: any text parsed and validated as a scenario file. Nothing panics;
//! every refusal is a `ScenarioError` naming its place.
#![no_main]

use hyperkernel_sim::node::scenario::Scenario;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Scenario::parse(Path::new("/nonexistent/fuzz.json"), text) {
        assert!(!error.to_string().is_empty(), "an error says what is wrong");
    }
});
