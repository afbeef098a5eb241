//! The client ABI: `KernelCommand`, `KernelResponse`, `KernelPrint` and their JSON (spec §2).
//!
//! Every reference variant keeps its exact shape. Our additions are additive and sent only to
//! requesters that set `expects_response` (a reference client never sees them):
//! `GrantedCapabilities`, `DroppedCapabilities`, `ChangedOnExit` and `Error`. Where the
//! reference already has an error variant (`InitializeProcessError`, `RunProcessError`) the body
//! stays the reference's and the reason travels in the response `metadata` as the JSON of a
//! [`CommandError`].

use crate::types::{Capability, OnExit, ProcessId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The seed's older name for [`OnExit`]; the JSON values are the same.
pub type OnPanic = OnExit;

/// A command to the kernel, sent as the JSON body of a request to `our@kernel:distro:sys`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelCommand {
    /// All persisted processes are initialized: run them.
    Booted,
    /// Register a process (its code is the request's blob); it does not run until `RunProcess`.
    InitializeProcess {
        /// The new process's id.
        id: ProcessId,
        /// Where the code came from (a VFS path).
        wasm_bytes_handle: String,
        /// The process ABI version; `None` means 1.
        wit_version: Option<u32>,
        /// What to do on exit; `on_panic` is accepted when reading.
        #[serde(alias = "on_panic")]
        on_exit: OnExit,
        /// Capabilities to start with (admitted only if the requester holds them).
        #[serde(deserialize_with = "crate::types::deserialize_capabilities")]
        initial_capabilities: Vec<Capability>,
        /// Whether any local process may message it without a capability.
        public: bool,
    },
    /// Insert capabilities into a process's store.
    GrantCapabilities {
        /// The receiving process.
        target: ProcessId,
        /// The capabilities.
        #[serde(deserialize_with = "crate::types::deserialize_capabilities")]
        capabilities: Vec<Capability>,
    },
    /// Remove capabilities from a process's store.
    DropCapabilities {
        /// The process.
        target: ProcessId,
        /// The capabilities.
        #[serde(deserialize_with = "crate::types::deserialize_capabilities")]
        capabilities: Vec<Capability>,
    },
    /// Change a process's exit behaviour.
    SetOnExit {
        /// The process.
        target: ProcessId,
        /// The new behaviour.
        on_exit: OnExit,
    },
    /// Start an initialized process (call its `init`).
    RunProcess(ProcessId),
    /// Remove a process; revokes the capabilities it issued unless metadata is `no-revoke`.
    KillProcess(ProcessId),
    /// Stop every process and the kernel.
    Shutdown,
    /// Inspect the kernel.
    Debug(KernelPrint),
}

impl KernelCommand {
    /// The variant's name, as in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Booted => "Booted",
            Self::InitializeProcess { .. } => "InitializeProcess",
            Self::GrantCapabilities { .. } => "GrantCapabilities",
            Self::DropCapabilities { .. } => "DropCapabilities",
            Self::SetOnExit { .. } => "SetOnExit",
            Self::RunProcess(_) => "RunProcess",
            Self::KillProcess(_) => "KillProcess",
            Self::Shutdown => "Shutdown",
            Self::Debug(_) => "Debug",
        }
    }
}

/// What `Debug` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelPrint {
    /// The whole process map.
    ProcessMap,
    /// One process.
    Process(ProcessId),
    /// Whether `on` holds `cap`.
    HasCap {
        /// The process.
        on: ProcessId,
        /// The capability.
        cap: Capability,
    },
}

/// A process as `Debug` shows it: the persisted record without signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserspacePersistedProcess {
    /// Where the code came from.
    pub wasm_bytes_handle: String,
    /// The process ABI version.
    pub wit_version: Option<u32>,
    /// What happens on exit.
    pub on_exit: OnExit,
    /// Held capabilities, in canonical order.
    pub capabilities: Vec<Capability>,
    /// Whether any local process may message it.
    pub public: bool,
}

/// The answer to `Debug`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelPrintResponse {
    /// Every process, in id order.
    ProcessMap(BTreeMap<ProcessId, UserspacePersistedProcess>),
    /// One process, or `null`.
    Process(Option<UserspacePersistedProcess>),
    /// `true`/`false`, or `null` for an unknown process.
    HasCap(Option<bool>),
}

/// The kernel's answer to a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelResponse {
    /// `InitializeProcess` succeeded.
    InitializedProcess,
    /// `InitializeProcess` failed; the reason is in the response metadata.
    InitializeProcessError,
    /// `RunProcess` succeeded.
    StartedProcess,
    /// `RunProcess` failed; the reason is in the response metadata.
    RunProcessError,
    /// `KillProcess` succeeded.
    KilledProcess(ProcessId),
    /// The answer to `Debug`.
    Debug(KernelPrintResponse),
    /// Ours: `GrantCapabilities` succeeded (only when a response was expected).
    GrantedCapabilities,
    /// Ours: `DropCapabilities` succeeded (only when a response was expected).
    DroppedCapabilities,
    /// Ours: `SetOnExit` succeeded (only when a response was expected).
    ChangedOnExit,
    /// Ours: `Booted` started the processes waiting for it (only when a response was
    /// expected).
    Booted,
    /// Ours: a command failed where the reference has no error variant.
    Error(CommandError),
}

/// Why a command failed: the body of `KernelResponse::Error` and the metadata of the
/// reference's error variants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// The command's name, or `"unknown"` if the body did not parse.
    pub command: String,
    /// The kind of failure.
    pub kind: CommandErrorKind,
    /// A lowercase, human-readable sentence.
    pub message: String,
}

impl CommandError {
    /// Builds an error for `command`.
    /// The message is cut to [`ERROR_TEXT_MAX`] bytes, so a reason that quotes its input (a
    /// loader error about a 60 MiB blob, say) never outgrows the reply that carries it.
    pub fn new(command: &str, kind: CommandErrorKind, message: impl Into<String>) -> Self {
        Self {
            command: bounded_text(command.into(), ERROR_TEXT_MAX),
            kind,
            message: bounded_text(message.into(), ERROR_TEXT_MAX),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({:?}): {}",
            self.command, self.kind, self.message
        )
    }
}

impl std::error::Error for CommandError {}

/// The kinds of command failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandErrorKind {
    /// The body is not a `KernelCommand` in JSON.
    Unparseable,
    /// No process with that id.
    NoSuchProcess,
    /// A process with that id already exists.
    ProcessExists,
    /// The id is not hypermap-safe.
    InvalidProcessId,
    /// `InitializeProcess` without the code blob.
    MissingBlob,
    /// The code could not be loaded.
    LoadFailed,
    /// A capability's params are not JSON.
    InvalidCapability,
    /// The target is the kernel itself or one of its runtime modules (or an id in their
    /// package, `distro:sys`), which this command cannot act on.
    KernelProcess,
}

/// Longest error text the kernel keeps or sends (a command's error message, an exit reason).
pub const ERROR_TEXT_MAX: usize = 4096;

/// `text` cut to at most `max` bytes at a character boundary, with a note of what was cut.
pub fn bounded_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    bounded_str(&text, max)
}

/// [`bounded_text`] of a borrowed text, copying only what is kept.
pub fn bounded_str(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    // Room for the note; `max` is never below it in practice (the bounds are kilobytes).
    let mut end = max.saturating_sub(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let kept = format!("{}… ({} bytes cut)", &text[..end], text.len() - end);
    debug_assert!(kept.len() <= max.max(40), "a bounded text fits its bound");
    kept
}
