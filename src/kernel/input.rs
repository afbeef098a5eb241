//! The kernel's one input door: every input a driver gives the kernel is an [`Input`] passed
//! to [`Kernel::input`], and every answer comes back as an [`Output`].
//!
//! Time is an input like any other (`Input::Time`, a clock reading), and so is each step
//! (`Input::Step`). A driver that records the inputs it gives, in order, has recorded the run:
//! feeding the same inputs to a kernel booted from the same store image and seed gives the same
//! trace, event for event. The production node journals them (`crate::journal`); `sim replay
//! --journal` feeds them back.
//!
//! The calls behind the variants (`submit`, `send_as`, `command_as`, `respond_as`,
//! `receive_as`, `register_driven`, `step`) are crate-private; harnesses that drive a kernel
//! call by call reach them through `Kernel::harness` (feature `harness`).

use super::{Kernel, KernelError, Step};
use crate::env::Timestamp;
use crate::process::Received;
use crate::types::{
    Address, Capability, Context, KernelMessage, LazyLoadBlob, ProcessId, Request, Response,
};
use crate::wire::KernelCommand;
use serde::{Deserialize, Serialize};

/// One input to the kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// A clock reading: the kernel's time moves to it (never back). Under driven time this is
    /// the only way time moves.
    Time(Timestamp),
    /// One step of work chosen by the seeded scheduler.
    Step,
    /// A message from another node (checked by `remote.rs`: never one whose source is on our
    /// node).
    Submit(Box<KernelMessage>),
    /// Registers a driven process (a terminal, an HTTP door, a test client).
    Register {
        /// Its id.
        process: ProcessId,
        /// Its capabilities (messaging to itself is added).
        capabilities: Vec<Capability>,
        /// Whether any process may message it.
        public: bool,
        /// The node's own (its terminal, its door): commands from clients may not kill,
        /// replace or reconfigure it, as runtime modules (absent in older journals: false).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        protected: bool,
    },
    /// A request sent as a driven process.
    Send {
        /// The driven process.
        process: ProcessId,
        /// Where to.
        target: Address,
        /// The request.
        request: Request,
        /// The context its answer comes back with.
        context: Option<Context>,
        /// Its blob.
        blob: Option<LazyLoadBlob>,
    },
    /// A `KernelCommand` sent to the kernel as a driven process.
    Command {
        /// The driven process.
        process: ProcessId,
        /// The command.
        command: KernelCommand,
        /// Seconds to wait for the kernel's answer (`None`: no answer).
        expects_response: Option<u64>,
        /// Its blob (the code of `InitializeProcess`).
        blob: Option<LazyLoadBlob>,
    },
    /// An answer to the prompting request of a driven process.
    Respond {
        /// The driven process.
        process: ProcessId,
        /// The response.
        response: Response,
        /// Its blob.
        blob: Option<LazyLoadBlob>,
    },
    /// Takes the oldest deliverable message of a driven process out of its mailbox.
    Receive {
        /// The driven process.
        process: ProcessId,
    },
    /// Deletes a process's saved state (the operator's `clear-state`), committed at once.
    ClearState {
        /// The process.
        process: ProcessId,
    },
    /// The network could not carry this message of ours (its node is unknown, down or cut
    /// off): it is dropped as unreachable and its sender hears `Offline`.
    Unreachable(Box<KernelMessage>),
    /// The driver shuts the kernel down (the node's SIGTERM, Ctrl-C or `shutdown`), as the
    /// `Shutdown` command does, without any process having to be alive to send it.
    Shutdown,
    /// One step, unless nothing is due before this deadline: then a simulated clock moves to
    /// it and the answer is `Output::NothingDue` (the step of `run_until`, for drivers that
    /// check after every step).
    StepBefore(Timestamp),
    /// A message from a process of our own node, given by the driver: a harness's setup sends
    /// kernel commands as the kernel itself this way. Never a message from another node
    /// (that is `Submit`, which refuses sources on our node); no door of the node makes one.
    Local(Box<KernelMessage>),
    /// Installs a package already read (kit's layout): everything checked and loaded before
    /// anything changes, one commit (`Output::Installed` with its processes, in manifest
    /// order); with `run`, its processes start.
    Install {
        /// The package.
        package: Box<crate::package::Package>,
        /// Whether its processes run.
        run: bool,
    },
    /// Writes a file into the vfs table (what `spawn` reads), committed at once.
    VfsWrite {
        /// Its path, `/package:publisher/...`.
        path: String,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// Entries of the network's directory (the PKI: kit's fake chain, Hypermap), which
    /// `net:distro:sys` answers from; each replaces an entry of the same name.
    Identities(Vec<crate::types::net::Identity>),
}

impl Input {
    /// The blob this input carries, if any.
    pub fn blob(&self) -> Option<&LazyLoadBlob> {
        match self {
            Self::Send { blob, .. } | Self::Command { blob, .. } | Self::Respond { blob, .. } => {
                blob.as_ref()
            }
            Self::Submit(message) | Self::Unreachable(message) | Self::Local(message) => {
                message.lazy_load_blob.as_ref()
            }
            Self::Time(_)
            | Self::Step
            | Self::StepBefore(_)
            | Self::Register { .. }
            | Self::Receive { .. }
            | Self::ClearState { .. }
            | Self::Install { .. }
            | Self::VfsWrite { .. }
            | Self::Identities(_)
            | Self::Shutdown => None,
        }
    }

    /// The body of the message this input carries, if it carries one.
    fn body_slot(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Self::Send { request, .. } => Some(&mut request.body),
            Self::Respond { response, .. } => Some(&mut response.body),
            Self::Submit(message) | Self::Unreachable(message) | Self::Local(message) => {
                match &mut message.message {
                    crate::types::Message::Request(request) => Some(&mut request.body),
                    crate::types::Message::Response((response, _)) => Some(&mut response.body),
                }
            }
            Self::VfsWrite { bytes, .. } => Some(bytes),
            Self::Time(_)
            | Self::Step
            | Self::StepBefore(_)
            | Self::Register { .. }
            | Self::Command { .. }
            | Self::Receive { .. }
            | Self::ClearState { .. }
            | Self::Install { .. }
            | Self::Identities(_)
            | Self::Shutdown => None,
        }
    }

    /// Takes the body of the message this input carries out (for encoders that store bytes
    /// as bytes, not as a JSON array of numbers at up to four bytes each); empty if none.
    pub fn take_body(&mut self) -> Vec<u8> {
        self.body_slot().map(std::mem::take).unwrap_or_default()
    }

    /// Puts a body back where `take_body` took it from; false if this input carries none
    /// (and `body` is not empty).
    pub fn put_body(&mut self, body: Vec<u8>) -> bool {
        match self.body_slot() {
            Some(slot) => {
                *slot = body;
                true
            }
            None => body.is_empty(),
        }
    }

    /// Takes the blob out (for encoders that store blob bytes apart from the rest).
    pub fn take_blob(&mut self) -> Option<LazyLoadBlob> {
        match self {
            Self::Send { blob, .. } | Self::Command { blob, .. } | Self::Respond { blob, .. } => {
                blob.take()
            }
            Self::Submit(message) | Self::Unreachable(message) | Self::Local(message) => {
                message.lazy_load_blob.take()
            }
            Self::Time(_)
            | Self::Step
            | Self::StepBefore(_)
            | Self::Register { .. }
            | Self::Receive { .. }
            | Self::ClearState { .. }
            | Self::Install { .. }
            | Self::VfsWrite { .. }
            | Self::Identities(_)
            | Self::Shutdown => None,
        }
    }

    /// Puts a blob back where `take_blob` took it from; false if this input carries none.
    pub fn put_blob(&mut self, new: LazyLoadBlob) -> bool {
        match self {
            Self::Send { blob, .. } | Self::Command { blob, .. } | Self::Respond { blob, .. } => {
                *blob = Some(new);
                true
            }
            Self::Submit(message) | Self::Unreachable(message) | Self::Local(message) => {
                message.lazy_load_blob = Some(new);
                true
            }
            Self::Time(_)
            | Self::Step
            | Self::StepBefore(_)
            | Self::Register { .. }
            | Self::Receive { .. }
            | Self::ClearState { .. }
            | Self::Install { .. }
            | Self::VfsWrite { .. }
            | Self::Identities(_)
            | Self::Shutdown => false,
        }
    }
}

/// What the kernel answers an [`Input`].
#[derive(Debug)]
pub enum Output {
    /// The input was taken (`Time`, `Submit`, `Register`, `Respond`, `Shutdown`).
    Taken,
    /// What the step did.
    Stepped(Step),
    /// The id of the request sent (`Send`, `Command`).
    Sent(u64),
    /// The message received, if one was deliverable (`Receive`), with its blob.
    Received(Option<Box<(Received, Option<LazyLoadBlob>)>>),
    /// Whether there was saved state to delete (`ClearState`).
    Cleared(bool),
    /// Nothing was due before the deadline (`StepBefore`); a simulated clock moved to it.
    NothingDue,
    /// The processes of the package installed (`Install`), in manifest order.
    Installed(Vec<ProcessId>),
}

impl Kernel {
    /// The one input door: gives the kernel `input` and returns its answer.
    ///
    /// # Errors
    /// As the call the input stands for: the kernel shut down or stopped, the inbox is full,
    /// the process is not driven, the id is taken.
    pub fn input(&mut self, input: Input) -> Result<Output, KernelError> {
        match input {
            Input::Time(reading) => Ok(self.input_time(reading)),
            Input::Step => Ok(Output::Stepped(self.step())),
            Input::Submit(message) => self.submit(*message).map(|()| Output::Taken),
            Input::Register {
                process,
                capabilities,
                public,
                protected,
            } => self.input_register(&process, &capabilities, public, protected),
            Input::Send {
                process,
                target,
                request,
                context,
                blob,
            } => self
                .send_as(&process, target, request, context, blob)
                .map(Output::Sent),
            Input::Command {
                process,
                command,
                expects_response,
                blob,
            } => self
                .command_as(&process, &command, expects_response, blob)
                .map(Output::Sent),
            Input::Respond {
                process,
                response,
                blob,
            } => self
                .respond_as(&process, response, blob)
                .map(|()| Output::Taken),
            Input::Receive { process } => self.input_receive(&process),
            Input::ClearState { process } => self.clear_state(&process).map(Output::Cleared),
            Input::Unreachable(message) => {
                self.unreachable(*message);
                Ok(Output::Taken)
            }
            Input::Shutdown => {
                if !self.shut_down {
                    self.shutdown();
                }
                Ok(Output::Taken)
            }
            Input::StepBefore(deadline) => Ok(self
                .step_before(deadline)
                .map_or(Output::NothingDue, Output::Stepped)),
            Input::Local(message) => self.submit_local(*message).map(|()| Output::Taken),
            Input::Install { package, run } => self
                .install_package(&package, run)
                .map(Output::Installed)
                .map_err(KernelError::Install),
            Input::Identities(identities) => {
                self.net.learn(identities);
                Ok(Output::Taken)
            }
            Input::VfsWrite { path, bytes } => self
                .vfs_write(&path, &bytes)
                .map(|()| Output::Taken)
                .map_err(|_| KernelError::Stopped),
        }
    }

    fn input_register(
        &mut self,
        process: &ProcessId,
        capabilities: &[Capability],
        public: bool,
        protected: bool,
    ) -> Result<Output, KernelError> {
        self.register_driven(process, capabilities, public)?;
        if protected {
            self.protect(process);
        }
        debug_assert!(
            self.has_process(process),
            "a registered process is in the table"
        );
        Ok(Output::Taken)
    }

    fn input_time(&mut self, reading: Timestamp) -> Output {
        let before = self.clock.now();
        self.clock.read(reading);
        assert!(
            self.clock.now() >= before,
            "a clock reading moved time back"
        );
        debug_assert!(self.clock.now() >= reading, "a clock reading was not taken");
        Output::Taken
    }

    /// `Receive`: the message with its own blob, never an earlier one (`get_blob` semantics
    /// would hand one client's file to whoever the driven process hears from next).
    fn input_receive(&mut self, process: &ProcessId) -> Result<Output, KernelError> {
        let received = self.receive_as(process)?;
        let blob = received.as_ref().and_then(|_| self.own_blob_of(process));
        debug_assert!(
            received.is_some() || blob.is_none(),
            "a blob comes only with a message"
        );
        Ok(Output::Received(received.map(|r| Box::new((r, blob)))))
    }
}
