//! Core arguments from fuzz bytes, shared by the targets that call host functions: each 4-byte
//! word is reduced to the memory's span, so most arguments point into it, unless its top bit
//! is set, which keeps it as it is (far pointers, huge lengths).

/// The words of `raw` as core arguments for a memory of `memory_len` bytes.
pub fn core_args(raw: &[u8], memory_len: usize) -> Vec<u64> {
    let span = memory_len as u64 + 16;
    raw.chunks_exact(4)
        .map(|word| {
            let word = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
            if word >> 31 == 1 {
                u64::from(word)
            } else {
                u64::from(word) % span
            }
        })
        .collect()
}
