//! The canonical ABI lift of every host call's parameters over arbitrary guest memory: the
//! first byte picks the import, the next 32 give eight core arguments (pointers and lengths
//! reduced to the memory's size, so most point into it), the rest is linear memory. Nothing
//! panics, no lift copies more than it charged to its budget, and the typed `send-request`
//! lift agrees with the generic one (`hyperkernel::wasm::fuzzing::lift_call`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/args.rs"]
mod args;

fuzz_target!(|data: &[u8]| {
    let Some((&import, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 32 {
        return;
    }
    let (raw, memory) = rest.split_at(32);
    let args = args::core_args(raw, memory.len());
    let budget = u64::from(import.rotate_left(4)) * 64;
    hyperkernel::wasm::fuzzing::lift_call(import, memory, &args, budget);
});
