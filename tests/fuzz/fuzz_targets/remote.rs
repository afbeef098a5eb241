//! Messages from other nodes with attached capabilities through the kernel's remote door; no forged capability is held (`hyperkernel_sim::tools::fuzzing::remote_messages`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel_sim::tools::fuzzing::remote_messages(data);
});
