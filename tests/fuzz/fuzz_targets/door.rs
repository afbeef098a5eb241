//! A request's bytes through the door's head and RPC parsers into a kernel, and the answer out within its bound (`hyperkernel_sim::tools::fuzzing::door`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::door(data);
});
