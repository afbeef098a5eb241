//! The canonical ABI lift of every host call's parameters over arbitrary guest memory: the
//! first byte picks the import, the next 32 give eight core arguments (pointers and lengths
//! reduced to the memory's size, so most point into it), the rest is linear memory. Nothing
//! panics, no lift copies more than it charged to its budget, and the typed `send-request`
//! lift agrees with the generic one (`hyperkernel::wasm::fuzzing::lift_call`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&import, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 32 {
        return;
    }
    let (raw, memory) = rest.split_at(32);
    let span = memory.len() as u64 + 16;
    let args: Vec<u64> = raw
        .chunks_exact(4)
        .map(|word| {
            let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            // The top bit keeps a value as it is (far pointers, huge lengths).
            if word >> 31 == 1 {
                u64::from(word)
            } else {
                u64::from(word) % span
            }
        })
        .collect();
    let budget = u64::from(import.rotate_left(4)) * 64;
    hyperkernel::wasm::fuzzing::lift_call(import, memory, &args, budget);
});
