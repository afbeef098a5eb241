//! hyperkernel: a single-threaded, deterministic simulation kernel implementing the
//! Kinode/Hyperware kernel API.
//!
//! The kernel is a pure state machine. Its ground state is the process table, the capability
//! store, the inbox and mailboxes, the timers, the clock and the seeded RNG; its inputs are
//! `KernelCommand`s and messages (JSON on the wire, exactly as the reference kernel's), the
//! seed, and time. `Kernel::step` does one piece of work chosen by the seeded scheduler and
//! appends everything observable to a hash-chained trace, so one seed and one input give a
//! byte-identical trace on every machine. The same kernel runs under simulation (simulated time,
//! `MemStorage`) and in production (driven time from a real clock, the redb store).
//!
//! ```
//! use hyperkernel::{KernelBuilder, KernelCommand, KernelPrint, ProcessId, Capability};
//!
//! let mut kernel = KernelBuilder::new("our.os", 7).build().unwrap();
//! let client: ProcessId = "client:test:our.os".parse().unwrap();
//! let kernel_cap = Capability::messaging("our.os@kernel:distro:sys".parse().unwrap());
//! kernel.register_driven(&client, &[kernel_cap], false).unwrap();
//! kernel.command_as(&client, &KernelCommand::Debug(KernelPrint::Process(client.clone())), Some(5), None).unwrap();
//! kernel.run_until_idle();
//! let (_source, reply) = kernel.receive_as(&client).unwrap().unwrap().unwrap();
//! assert!(String::from_utf8_lossy(reply.body()).starts_with(r#"{"Debug":{"Process":{"#));
//! ```

/// An impossible state: a bug in the kernel, never a reaction to input. Guest and client input
/// must never reach one (the fuzz loop and the per-step invariants look for them).
///
/// It panics: loud in tests and simulation (`sim` turns it into a failure of the seed with
/// its trace), and fail-stop in production, where the node dies before the step commits, so
/// its store holds the state after the last committed step and the next boot starts there.
macro_rules! kernel_bug {
    ($($arg:tt)*) => {
        panic!("kernel bug: {}", format_args!($($arg)*))
    };
}
pub(crate) use kernel_bug;

pub mod caps;
pub mod door;
pub mod env;
pub mod journal;
pub mod kernel;
pub mod package;
pub mod process;
pub mod storage;
pub mod terminal;
pub mod trace;
pub mod types;
pub mod wasm;
pub mod wire;

pub use caps::{CapKey, CapabilityStore};
pub use env::{Entropy, Stream, Time, Timestamp};
pub use kernel::{
    AwaitToken, BootError, CodeHash, Corruption, FaultHook, Input, Kernel, KernelBuilder,
    KernelConfig, KernelError, KernelFailure, Output, ProcessContext, RunState, SpawnError,
    SpawnRequest, Step, SyscallError,
};
pub use process::{Flow, NativeLoader, Process, ProcessLoader, Received, RuntimeStats, Wake};
pub use storage::{Batch, MemStorage, RedbStorage, SharedStorage, Storage, StorageError, Table};
pub use trace::{
    DropReason, Event, ExitReason, Fault, MessageKind, Trace, TraceLevel, TraceRecord,
};
pub use types::*;
pub use wasm::{LoadError, WasmConfig, WasmLoader, WasmProcess};
pub use wire::{
    CommandError, CommandErrorKind, KernelCommand, KernelPrint, KernelPrintResponse,
    KernelResponse, OnPanic, UserspacePersistedProcess,
};
