//! The test adapter (feature `harness`, which only the simulator and the core's own tests
//! turn on): the kernel's doors beside [`Kernel::input`], for harnesses that drive a kernel
//! one call at a time or inject faults. A production build has none of them: its only input
//! door is `Kernel::input`, whose variants (`Input::Send`, `Input::Submit`, `Input::Step`, …)
//! do what most of these do, journaled.

use super::hook::FaultHook;
use super::install::InstallError;
use super::persist::KernelFailure;
use super::{Kernel, KernelError, Step};
use crate::env::Timestamp;
use crate::package::Package;
use crate::process::{Process, Received};
use crate::trace::{Fault, Trace};
use crate::types::{
    Address, Capability, Context, KernelMessage, LazyLoadBlob, ProcessId, Request, Response,
};
use crate::wire::KernelCommand;

/// A kernel seen through its harness doors ([`Kernel::harness`]).
pub struct Harness<'k> {
    kernel: &'k mut Kernel,
}

impl Kernel {
    /// The harness doors of this kernel.
    pub fn harness(&mut self) -> Harness<'_> {
        Harness { kernel: self }
    }
}

impl Harness<'_> {
    /// A message from another node (as `Input::Submit`): checked, its capabilities pruned,
    /// then queued; a refused one is traced as dropped, and `Ok`.
    ///
    /// # Errors
    /// `ShutDown`, `Stopped`, or `InboxFull` (backpressure: nothing was queued).
    pub fn submit(&mut self, message: KernelMessage) -> Result<(), KernelError> {
        self.kernel.submit(message)
    }

    /// A message as if a sender on our node sent it (as `Input::Local`).
    ///
    /// # Errors
    /// As [`Harness::submit`].
    pub fn submit_local(&mut self, message: KernelMessage) -> Result<(), KernelError> {
        self.kernel.submit_local(message)
    }

    /// Sends a request as driven process `process` (as `Input::Send`). Returns its id.
    ///
    /// # Errors
    /// `process` is not a driven process, or the kernel has shut down.
    pub fn send_as(
        &mut self,
        process: &ProcessId,
        target: Address,
        request: Request,
        context: Option<Context>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, KernelError> {
        self.kernel.send_as(process, target, request, context, blob)
    }

    /// Sends `command` to the kernel as driven process `process` (as `Input::Command`).
    ///
    /// # Errors
    /// As [`Harness::send_as`].
    pub fn command_as(
        &mut self,
        process: &ProcessId,
        command: &KernelCommand,
        expects_response: Option<u64>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, KernelError> {
        self.kernel
            .command_as(process, command, expects_response, blob)
    }

    /// Answers the prompting request of driven process `process` (as `Input::Respond`).
    ///
    /// # Errors
    /// As [`Harness::send_as`].
    pub fn respond_as(
        &mut self,
        process: &ProcessId,
        response: Response,
        blob: Option<LazyLoadBlob>,
    ) -> Result<(), KernelError> {
        self.kernel.respond_as(process, response, blob)
    }

    /// The oldest deliverable message of driven process `process` (as `Input::Receive`).
    ///
    /// # Errors
    /// `process` is not a driven process.
    pub fn receive_as(&mut self, process: &ProcessId) -> Result<Option<Received>, KernelError> {
        self.kernel.receive_as(process)
    }

    /// Registers a runtime module: a native process that runs at once, holding `caps`.
    ///
    /// # Errors
    /// `ProcessExists` if the id is taken.
    pub fn register_native(
        &mut self,
        process: &ProcessId,
        runtime: Box<dyn Process>,
        caps: &[Capability],
        public: bool,
    ) -> Result<(), KernelError> {
        self.kernel.register_native(process, runtime, caps, public)
    }

    /// Registers a driven process (as `Input::Register`).
    ///
    /// # Errors
    /// `ProcessExists` if the id is taken.
    pub fn register_driven(
        &mut self,
        process: &ProcessId,
        caps: &[Capability],
        public: bool,
    ) -> Result<(), KernelError> {
        self.kernel.register_driven(process, caps, public)
    }

    /// Deletes `process`'s saved state, committed at once (as `Input::ClearState`). Returns
    /// whether there was state to delete.
    ///
    /// # Errors
    /// No such process, or the store failed (the kernel has stopped).
    pub fn clear_state(&mut self, process: &ProcessId) -> Result<bool, KernelError> {
        self.kernel.clear_state(process)
    }

    /// Writes a file into the vfs table, committed at once (as `Input::VfsWrite`).
    ///
    /// # Errors
    /// The commit failed: the kernel has stopped.
    pub fn vfs_write(&mut self, path: &str, bytes: &[u8]) -> Result<(), KernelFailure> {
        self.kernel.vfs_write(path, bytes)
    }

    /// Installs `package` (as `Input::Install`). Returns its processes in manifest order.
    ///
    /// # Errors
    /// A process of the package exists, a module does not load, or the commit failed.
    pub fn install_package(
        &mut self,
        package: &Package,
        run: bool,
    ) -> Result<Vec<ProcessId>, InstallError> {
        self.kernel.install_package(package, run)
    }

    /// The network cannot reach `message`'s node (as `Input::Unreachable`).
    pub fn unreachable(&mut self, message: KernelMessage) {
        self.kernel.unreachable(message);
    }

    /// Does one piece of work (as `Input::Step`).
    pub fn step(&mut self) -> Step {
        self.kernel.step()
    }

    /// One step unless nothing is due before `deadline` (as `Input::StepBefore`).
    pub fn step_before(&mut self, deadline: Timestamp) -> Option<Step> {
        self.kernel.step_before(deadline)
    }

    /// Steps until nothing is ready and no timer is pending (under a simulated clock), or a
    /// real clock must wait. Returns the last step.
    pub fn run_until_idle(&mut self) -> Step {
        self.kernel.run_until_idle()
    }

    /// Like [`Harness::run_until_idle`] with a step budget.
    pub fn run_steps(&mut self, steps_max: u64) -> Step {
        self.kernel.run_steps(steps_max)
    }

    /// Steps until idle without letting the simulated clock pass `deadline`, then sets the
    /// clock to it (`Step::Overran` when it passed with work still ready).
    pub fn run_until(&mut self, deadline: Timestamp) -> Step {
        self.kernel.run_until(deadline)
    }

    /// Takes the trace out (the node is crashing; `KernelBuilder::trace` carries it on).
    pub fn take_trace(&mut self) -> Trace {
        self.kernel.take_trace()
    }

    /// Puts a fault `hook` in (or takes it out with `None`) from the next step on; messages
    /// held already are still released on time.
    pub fn set_fault_hook(&mut self, hook: Option<Box<dyn FaultHook>>) {
        self.kernel.set_fault_hook(hook);
    }

    /// Crashes `process` as if it trapped: it exits with a failure and its `OnExit` runs.
    /// Returns false for a process not in the table, the kernel's own, or a driven one.
    pub fn crash(&mut self, process: &ProcessId) -> bool {
        self.kernel.crash(process)
    }

    /// Records in the trace a fault injected outside the kernel (network, reboot, disk).
    /// Returns false, recording nothing, for kinds a fault hook injects.
    pub fn record_outside_fault(&mut self, fault: Fault) -> bool {
        self.kernel.record_outside_fault(fault)
    }
}
