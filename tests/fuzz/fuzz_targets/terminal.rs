//! A terminal line through the node's parser (`hyperkernel_sim::tools::fuzzing::terminal_line`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::terminal_line(data);
});
