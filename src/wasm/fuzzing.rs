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

/// A WASI host for the fuzz target: a fixed clock, a counting random stream.
struct FuzzHost {
    now: crate::env::Timestamp,
    drawn: u64,
}

impl super::wasi::WasiHost for FuzzHost {
    fn now(&self) -> crate::env::Timestamp {
        self.now
    }

    fn fill_random(&mut self, buf: &mut [u8]) {
        self.drawn += buf.len() as u64;
        buf.fill(0x5a);
    }
}

/// Serves WASI import number `import` (taken modulo the number of WASI imports) on `memory`
/// with the core arguments `args` (padded with zeros or cut to the import's count), as a
/// guest's call is served. Returns the errno it answers (`None` for `proc_exit` and for calls
/// that hand control back).
///
/// # Panics
/// Only on a kernel bug: an output line past its bound, more output than one call may take.
pub fn wasi_call(import: u8, memory: &mut [u8], args: &[u64]) -> Option<i32> {
    use super::wasi::{self, Served};
    let table = &wasi::IMPORTS;
    let import = &table[usize::from(import) % table.len()];
    let count = import.core_type().params().len();
    let mut args: Vec<u64> = args.iter().copied().take(count).collect();
    args.resize(count, 0);
    let mut host = FuzzHost {
        now: crate::env::Timestamp(1_000_000_007),
        drawn: 0,
    };
    let mut output = wasi::OutputLines::default();
    let served = wasi::serve(&mut host, memory, &mut output, import.func, &args);
    let mut lines = match &served {
        Served::Output(lines, _) => lines.clone(),
        _ => Vec::new(),
    };
    lines.extend(output.flush());
    let bytes: usize = lines.iter().map(String::len).sum();
    if lines
        .iter()
        .any(|l| l.len() > crate::kernel::PRINT_TEXT_MAX + 16)
    {
        crate::kernel_bug!("a WASI output line past its bound");
    }
    if bytes > 3 * (16 << 10) + lines.len() * 16 {
        crate::kernel_bug!("one fd_write made {bytes} bytes of output");
    }
    if host.drawn > memory.len() as u64 {
        crate::kernel_bug!("random_get filled more than the memory");
    }
    match served {
        Served::Errno(errno) | Served::Output(_, errno) => Some(errno),
        Served::Pause(..) | Served::Exit(_) => None,
    }
}

/// How many WASI imports `wasi_call` chooses among.
pub fn wasi_import_count() -> usize {
    super::wasi::IMPORTS.len()
}

/// The number of imports `lift_call` chooses among.
pub fn import_count() -> usize {
    wit::imports().len()
}

/// A wasm binary as the loader takes it (`WasmLoader::load_wasm`): a component is unwrapped to
/// its process module, or a composition to its parts and links, or refused with the reason;
/// then the modules are validated, compiled, checked and instantiated, or refused. Returns
/// whether it became a process.
///
/// # Panics
/// Only on a kernel bug: the unwrapped module lying outside the input, or being a component.
pub fn load(code: &[u8]) -> bool {
    if let Ok(module) = super::component::process_module(code) {
        let start = module.as_ptr() as usize;
        let base = code.as_ptr() as usize;
        assert!(
            start >= base && start + module.len() <= base + code.len(),
            "the process module is a part of the input"
        );
        assert!(
            !super::component::is_component(module),
            "a component's process module is a core module"
        );
    }
    let Ok(mut loader) = super::WasmLoader::new(super::WasmConfig::default()) else {
        return false;
    };
    loader.load_wasm(code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wasi_import_answers_an_errno_for_bad_pointers_and_never_panics() {
        let mut memory = vec![0u8; 4096];
        for import in 0..wasi_import_count() as u8 {
            // Pointers past the end of memory.
            let errno = wasi_call(import, &mut memory, &[1, u64::from(u32::MAX), 5000, 4095]);
            let name = super::super::wasi::IMPORTS[usize::from(import)].name;
            match name {
                "proc_exit" | "sched_yield" => assert_eq!(errno, None, "{name}"),
                "environ_get" => assert_eq!(errno, Some(0), "{name}"),
                _ => assert!(matches!(errno, Some(8 | 21 | 28)), "{name}: {errno:?}"),
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..4000u32 {
            for byte in memory.iter_mut().step_by(5) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            let args = [
                state % 3,
                state % 4096,
                (state >> 20) % 8,
                state >> 40 & 0xfff,
            ];
            wasi_call(round as u8, &mut memory, &args);
        }
    }

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
