//! Entry points for the cargo-fuzz targets in `tests/fuzz` (not a stable API): the lift and
//! decoding of a host call's parameters from arbitrary guest memory, the code a guest's call
//! runs, without an instance.

use super::abi::{self, Budget, FlatArgs, Val};
use super::fast::{AddressCache, lift_send_request};
use super::syscalls::{self, Call};
use super::wit::{self, Func};

/// Host bytes a lifted value holds in strings and byte lists.
fn held_bytes(value: &Val) -> u64 {
    match value {
        Val::String(text) => text.len() as u64,
        Val::Bytes(bytes) => bytes.len() as u64,
        Val::List(items) | Val::Record(items) => items.iter().map(held_bytes).sum(),
        Val::Variant(_, Some(payload)) => held_bytes(payload),
        Val::Bool(_) | Val::U8(_) | Val::U64(_) | Val::Variant(_, None) => 0,
    }
}

/// Lifts the parameters of import number `import` (taken modulo the number of imports) from
/// `memory` and the core arguments `args`, under a lift budget of `lift_len_max` bytes, and
/// decodes them, as a guest's call does. Returns whether they were valid.
///
/// # Panics
/// Only on a kernel bug: a lift that copied more bytes than it charged, or more than its
/// budget; or, for `send-request`, the typed lift and the generic one disagreeing.
pub fn lift_call(import: u8, memory: &[u8], args: &[u64], lift_len_max: u64) -> bool {
    let imports = wit::imports();
    let import = &imports[usize::from(import) % imports.len()];
    let mut budget = Budget::new(lift_len_max);
    let ptr = args.first().map(|&ptr| ptr as u32);
    let lifted = if import.indirect() {
        match ptr {
            Some(ptr) => abi::load(memory, &import.params, ptr, &mut budget),
            None => return false,
        }
    } else {
        abi::lift_flat(
            memory,
            &import.params,
            &mut FlatArgs::new(args),
            &mut budget,
        )
    };
    let used = budget.used();
    if used > lift_len_max {
        crate::kernel_bug!("a lift used {used} bytes of a budget of {lift_len_max}");
    }
    if let Ok(value) = &lifted
        && held_bytes(value) > used
    {
        crate::kernel_bug!(
            "a lift holds {} bytes but charged {used}",
            held_bytes(value)
        );
    }
    let decoded = match lifted {
        Ok(Val::Record(params)) => syscalls::decode(import.func, params).ok(),
        _ => None,
    };
    if import.func == Func::SendRequest
        && import.indirect()
        && let Some(ptr) = ptr
    {
        let mut budget = Budget::new(lift_len_max);
        let mut cache = AddressCache::default();
        let typed = lift_send_request(memory, &import.params, ptr, &mut cache, &mut budget).ok();
        let generic = match &decoded {
            Some(Call::SendRequest(params)) => Some(params),
            _ => None,
        };
        if typed.as_ref() != generic {
            crate::kernel_bug!("send-request lifts disagree: typed {typed:?}, generic {generic:?}");
        }
    }
    decoded.is_some()
}

/// The number of imports `lift_call` chooses among.
pub fn import_count() -> usize {
    wit::imports().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_lifts_from_zeroed_and_from_random_memory_without_panicking() {
        let mut memory = vec![0u8; 4096];
        let mut valid = 0;
        for import in 0..import_count() as u8 {
            // Zeroed memory at an aligned pointer: empty strings and lists, case 0 variants.
            valid += usize::from(lift_call(import, &memory, &[8; 16], 1 << 20));
        }
        // At least the nine imports without parameters decode (`our`, `get-on-exit`,
        // `get-state`, `clear-state`, `our-capabilities`, `receive` and the three blob
        // queries); a zeroed address does not, so not all of them do.
        assert!(valid >= 9, "{valid} of {} decoded", import_count());
        assert!(valid < import_count(), "a zeroed address decoded");
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000u32 {
            for byte in memory.iter_mut().step_by(7) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            let args = [
                u64::from(round % 64) * 8,
                state % 4096,
                state >> 52,
                3,
                0,
                9,
            ];
            lift_call(round as u8, &memory, &args, u64::from(round) * 16);
        }
    }
}
