//! A journal segment after a valid header, through the reader and the replay (`hyperkernel_sim::tools::fuzzing::journal_segment`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::journal_segment(data);
});
