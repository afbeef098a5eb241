//! Requests to the vfs from processes of two packages; no process holds a capability it was not given (`hyperkernel_sim::tools::fuzzing::vfs_requests`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::vfs_requests(data);
});
