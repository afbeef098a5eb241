//! A wasm binary through the loader: a component unwrapped to its process module or refused
//! with the reason, a module validated, compiled, checked and instantiated or refused; nothing
//! panics (`hyperkernel::wasm::fuzzing::load`, whose docs give the oracle).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hyperkernel::wasm::fuzzing::load(data);
});
