//! The process abstraction that native (Rust) processes implement now and wasm processes next.
//!
//! A process is woken with a [`Wake`] (start, a received message, the result it awaited, an
//! alarm, or a resume after preemption), makes syscalls through [`ProcessContext`] (the
//! vocabulary of the WIT `standard` interface), and returns a [`Flow`] saying how it stopped:
//! blocked in `receive`, blocked in `send-and-await-response`, preempted, or exited. A wasm
//! process maps these one to one onto wasmi resumable calls; a native process is a callback.

mod loader;
pub mod net;
mod timer;
pub mod vfs;

pub use loader::{NativeLoader, ProcessLoader};
pub use net::NetProcess;
pub use timer::TimerProcess;
pub use vfs::VfsProcess;

use crate::types::{Address, Context, Message, SendError};

pub use crate::kernel::ProcessContext;

/// What a process's runtime reports about itself, for the kernel's view (`Kernel::view`,
/// `sim replay --until`): a memory hog or a spinning guest shows here. Wasm processes report;
/// native ones do not.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeStats {
    /// Bytes of linear memory it holds.
    pub memory_bytes: u64,
    /// Fuel it has burnt over its life, host-initiated allocations included.
    pub fuel: u64,
    /// Times it suspended in an import.
    pub suspensions: u64,
}

/// What `receive` returns: a message with its source, or a send error with the context of the
/// request that failed.
pub type Received = Result<(Address, Message), (SendError, Option<Context>)>;

/// Why the kernel wakes a process.
#[derive(Debug)]
pub enum Wake {
    /// First run after `RunProcess`/`Booted` (the reference's `init`).
    Init,
    /// The result of `receive`.
    Received(Received),
    /// The result of `send-and-await-response`.
    Awaited(Result<(Address, Message), SendError>),
    /// A native alarm set with `ProcessContext::set_alarm` fired.
    Alarm(u64),
    /// Continue after `Flow::Yield`.
    Resume,
}

/// How a process stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Blocked in `receive`: wake me with the next message.
    Receive,
    /// Blocked in `send-and-await-response`: wake me with its result only.
    Await,
    /// Preempted: wake me again with `Wake::Resume`.
    Yield,
    /// Asleep: wake me with `Wake::Resume` once the kernel's clock reaches this instant
    /// (WASI `poll_oneoff` on a clock); messages wait in the mailbox meanwhile.
    Sleep(crate::env::Timestamp),
    /// `init` returned.
    Return,
    /// The process failed (a trap, a panic); the text says how.
    Fail(String),
}

/// A process runtime.
pub trait Process {
    /// Runs the process until it blocks, yields or exits.
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow;

    /// What the runtime reports about itself, if anything.
    fn stats(&self) -> Option<RuntimeStats> {
        None
    }
}

impl<F> Process for F
where
    F: FnMut(&mut ProcessContext<'_>, Wake) -> Flow,
{
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        self(ctx, wake)
    }
}
