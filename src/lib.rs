//! hyperkernel: a single-threaded, deterministic simulation kernel implementing the
//! Kinode/Hyperware kernel API.
//!
//! The kernel is a pure state machine. Its ground state is the process table, the capability
//! store, the inbox and mailboxes, the timers, the clock and the seeded RNG; its inputs are
//! `KernelCommand`s and messages (JSON on the wire, exactly as the reference kernel's), the
//! seed, and time. `Input::Step` does one piece of work chosen by the seeded scheduler and
//! appends everything observable to a hash-chained trace, so one seed and one input give a
//! byte-identical trace on every machine. The same kernel runs under simulation (simulated time,
//! `MemStorage`) and in production (driven time from a real clock, the redb store).
//!
//! ```
//! use hyperkernel::{Capability, Input, KernelBuilder, KernelCommand, KernelPrint, Output, Step};
//!
//! let mut kernel = KernelBuilder::new("our.os", 7).build().unwrap();
//! let client: hyperkernel::ProcessId = "client:test:our.os".parse().unwrap();
//! let kernel_cap = Capability::messaging("our.os@kernel:distro:sys".parse().unwrap());
//! let register = Input::Register {
//!     process: client.clone(),
//!     capabilities: vec![kernel_cap],
//!     public: false,
//!     protected: false,
//! };
//! kernel.input(register).unwrap();
//! let command = KernelCommand::Debug(KernelPrint::Process(client.clone()));
//! let (process, blob) = (client.clone(), None);
//! let expects_response = Some(5);
//! kernel.input(Input::Command { process, command, expects_response, blob }).unwrap();
//! // Seeded steps until nothing is left to do.
//! while let Ok(Output::Stepped(step)) = kernel.input(Input::Step) {
//!     if matches!(step, Step::Idle(_) | Step::ShutDown | Step::Failed) {
//!         break;
//!     }
//! }
//! let Ok(Output::Received(Some(received))) = kernel.input(Input::Receive { process: client })
//! else {
//!     panic!("the kernel answered");
//! };
//! let (Ok((_source, reply)), _blob) = *received else { panic!("a send error") };
//! assert!(String::from_utf8_lossy(reply.body()).starts_with(r#"{"Debug":{"Process":{"#));
//! ```
//!
//! Every input goes through `Kernel::input`, the production node's one door too, so a run
//! is a list of inputs: journaled, it replays. Harnesses that drive a kernel call by call
//! (`send_as`, `run_until_idle`, fault injection) use `Kernel::harness`, with the feature
//! `harness`, which a production build does not have.

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
pub use wasm::{ComponentError, LoadError, WasmConfig, WasmLoader, WasmProcess};
pub use wire::{
    CommandError, CommandErrorKind, KernelCommand, KernelPrint, KernelPrintResponse,
    KernelResponse, OnPanic, UserspacePersistedProcess,
};
