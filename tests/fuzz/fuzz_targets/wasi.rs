//! The WASI preview1 shim over arbitrary guest memory: the first byte picks the import, the
//! next 16 give four core arguments (reduced to the memory's size unless their top bit is set,
//! so most point into it), the rest is linear memory. Nothing panics, every bad pointer, fd or
//! argument is an errno, and output stays within its bounds
//! (`hyperkernel::wasm::fuzzing::wasi_call`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common/args.rs"]
mod args;

fuzz_target!(|data: &[u8]| {
    let Some((&import, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 16 {
        return;
    }
    let (raw, memory) = rest.split_at(16);
    let mut memory = memory.to_vec();
    let args = args::core_args(raw, memory.len());
    hyperkernel::wasm::fuzzing::wasi_call(import, &mut memory, &args);
});
