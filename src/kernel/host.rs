//! The syscalls of the WIT `standard` interface (spec §4), on the kernel side.
//!
//! `ProcessContext` is what a running process sees; the driven-process API (`send_as`,
//! `respond_as`, `receive_as`, `command_as`) runs the same `sys_*` functions for processes the
//! harness acts for. Fixes kept here: W2 (`save_capabilities` keeps only held, received or
//! self-issued capabilities), W16 (every delivered request becomes the prompting message),
//! W17 (`inherit` forwards the prompting request's blob; an explicit blob always wins), W18
//! (an inherited id that is already outstanding is replaced by a fresh one, so no context is
//! ever overwritten).

use super::hook::moved_deadline;
use super::schedule::Timer;
use super::state::{Delivery, HostState, PendingRequest, Prompting};
use super::{Kernel, KernelError};
use crate::caps::CapKey;
use crate::env::{Entropy, Timestamp};
use crate::process::{Received, Wake};
use crate::storage::Table;
use crate::trace::{DropReason, Event, MessageKind};
use crate::types::{
    Address, Capability, Context, KernelMessage, LazyLoadBlob, Message, OnExit, ProcessId, Request,
    Response,
};
use crate::wire::KernelCommand;
use std::fmt;
use std::sync::Arc;

/// A syscall that failed. For a wasm process most of these are traps.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyscallError {
    /// The calling process is gone.
    NoSuchProcess(ProcessId),
    /// `send-and-await-response` without `expects_response`.
    AwaitWithoutTimeout,
    /// `send-and-await-response` to ourselves would deadlock.
    AwaitSelf,
    /// The kernel's store failed (the kernel has stopped; `Kernel::failure` says why).
    StorageFailed,
    /// `spawn` with a name that makes no valid process id.
    InvalidName(String),
    /// A send the kernel refused because it would pass one of its bounds; nothing was sent.
    Overloaded {
        /// What would pass its bound.
        what: &'static str,
        /// The bound (`KernelConfig`).
        limit: u64,
    },
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchProcess(id) => write!(f, "no such process {id}"),
            Self::AwaitWithoutTimeout => {
                write!(f, "send-and-await-response needs expects_response")
            }
            Self::AwaitSelf => write!(f, "send-and-await-response to ourselves would deadlock"),
            Self::StorageFailed => write!(f, "the kernel's store failed; the kernel stopped"),
            Self::InvalidName(message) => write!(f, "spawn: invalid process name {message}"),
            Self::Overloaded { what, limit } => {
                write!(f, "send refused: over the kernel's limit of {limit} {what}")
            }
        }
    }
}

impl std::error::Error for SyscallError {}

/// Proof that a request to await was sent; return `Flow::Await` after getting one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AwaitToken(pub u64);

/// What a running process sees of the kernel.
pub struct ProcessContext<'k> {
    kernel: &'k mut Kernel,
    process: ProcessId,
    awaiting: Option<u64>,
    trap_at: Option<u64>,
}

impl<'k> ProcessContext<'k> {
    pub(crate) fn new(kernel: &'k mut Kernel, process: ProcessId) -> Self {
        Self {
            kernel,
            process,
            awaiting: None,
            trap_at: None,
        }
    }

    pub(crate) fn arm_trap(&mut self, fuel: Option<u64>) {
        self.trap_at = fuel;
    }

    /// Fault injection: the fuel point at which this run must trap, if the kernel armed one
    /// (`FaultHook::trap_at`). A runtime that meters fuel stops the guest there and reports it
    /// with [`ProcessContext::trapped_at`]; other runtimes ignore it.
    pub fn trap_point(&self) -> Option<u64> {
        self.trap_at
    }

    /// Fault injection: the run trapped at its armed fuel point; records the fault. The
    /// runtime then returns `Flow::Fail`.
    pub fn trapped_at(&mut self, fuel: u64) {
        self.trap_at = None;
        self.kernel.trap_fired(&self.process, fuel);
    }

    pub(crate) fn awaiting(&self) -> Option<u64> {
        self.awaiting
    }

    /// Our address.
    pub fn our(&self) -> Address {
        self.kernel.address_of(&self.process)
    }

    /// The kernel's time.
    pub fn now(&self) -> Timestamp {
        self.kernel.clock.now()
    }

    /// Fills `buf` from this run's own random stream (WASI `random_get`). The stream is
    /// seeded from the kernel's seed, the process, the instant it started and the kernel's
    /// count of starts: reproducible for a seed, different for every run of a process, and
    /// independent of every other stream, so a process's draws shift nothing else.
    pub fn fill_random(&mut self, buf: &mut [u8]) {
        use rand_core::{Rng, SeedableRng};
        let Some(entry) = self.kernel.table.get_mut(&self.process) else {
            kernel_bug!("{} draws randomness outside the table", self.process);
        };
        let host = &mut entry.host;
        let Some(key) = host.random_key else {
            kernel_bug!("{} draws randomness before it started", self.process);
        };
        let random = host
            .random
            .get_or_insert_with(|| Box::new(rand_chacha::ChaCha8Rng::from_seed(key)));
        random.fill_bytes(buf);
    }

    /// Charges `nanos` of CPU time to this run. A simulated clock moves on by the total when
    /// the run ends, so a busy process takes simulated time and timers fire around it, as
    /// on one core; a real clock ignores it.
    pub fn charge_time(&mut self, nanos: u64) {
        self.kernel.run_cost = self.kernel.run_cost.saturating_add(nanos);
    }

    /// `send-request`. Returns the message id, or 0 if the kernel refused the send (see
    /// [`ProcessContext::try_send_request`]).
    pub fn send_request(
        &mut self,
        target: Address,
        request: Request,
        context: Option<Context>,
        blob: Option<LazyLoadBlob>,
    ) -> u64 {
        self.try_send_request(target, request, context, blob)
            .unwrap_or(0)
    }

    /// `send-request`, with the kernel's refusal as an error.
    ///
    /// # Errors
    /// `Overloaded`: the request expects a response and the process already has
    /// `outstanding_max` requests or `outstanding_bytes_max` bytes of them outstanding, or the
    /// kernel holds `held_bytes_max`. Nothing was sent.
    pub fn try_send_request(
        &mut self,
        target: Address,
        request: Request,
        context: Option<Context>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, SyscallError> {
        self.kernel
            .sys_send_request(&self.process, target, request, context, blob)
    }

    /// `send-requests`: `send-request` for each, in order.
    pub fn send_requests(
        &mut self,
        requests: Vec<(Address, Request, Option<Context>, Option<LazyLoadBlob>)>,
    ) {
        for (target, request, context, blob) in requests {
            self.send_request(target, request, context, blob);
        }
    }

    /// `send-response` to the prompting request.
    pub fn send_response(&mut self, response: Response, blob: Option<LazyLoadBlob>) {
        self.kernel.sys_send_response(&self.process, response, blob);
    }

    /// `send-and-await-response`: sends, then return `Flow::Await`; the result arrives as
    /// `Wake::Awaited`.
    ///
    /// # Errors
    /// No `expects_response`, or the target is ourselves (a trap for wasm).
    pub fn send_and_await_response(
        &mut self,
        target: Address,
        request: Request,
        blob: Option<LazyLoadBlob>,
    ) -> Result<AwaitToken, SyscallError> {
        if request.expects_response.is_none() {
            return Err(SyscallError::AwaitWithoutTimeout);
        }
        if target == self.our() {
            return Err(SyscallError::AwaitSelf);
        }
        let id = self
            .kernel
            .sys_send_request(&self.process, target, request, None, blob)?;
        self.awaiting = Some(id);
        Ok(AwaitToken(id))
    }

    /// `spawn`: starts a child from a wasm file in our package's drive (`kernel/spawn.rs`).
    ///
    /// # Errors
    /// A name that makes no valid process id (a trap for wasm).
    pub fn spawn(
        &mut self,
        request: super::SpawnRequest,
    ) -> Result<Result<ProcessId, super::SpawnError>, SyscallError> {
        self.kernel.sys_spawn(&self.process, request)
    }

    /// `has-blob`: whether the last delivered message carried a blob.
    pub fn has_blob(&self) -> bool {
        self.kernel
            .table
            .get(&self.process)
            .is_some_and(|e| e.host.last_message_blobbed)
    }

    /// `get-blob`: the last delivered message's blob.
    pub fn get_blob(&self) -> Option<LazyLoadBlob> {
        let host = &self.kernel.table.get(&self.process)?.host;
        if host.last_message_blobbed {
            host.last_blob.clone()
        } else {
            None
        }
    }

    /// `has-blob`, and whether `last-blob` would return a blob, without cloning it.
    pub(crate) fn blob_presence(&self) -> (bool, bool) {
        self.kernel
            .table
            .get(&self.process)
            .map_or((false, false), |e| {
                (e.host.last_message_blobbed, e.host.last_blob.is_some())
            })
    }

    /// `last-blob`: the most recent blob received, from any message.
    pub fn last_blob(&self) -> Option<LazyLoadBlob> {
        self.kernel.table.get(&self.process)?.host.last_blob.clone()
    }

    /// `save-capabilities`. Returns the capabilities refused (not held, not received, not
    /// self-issued, or not JSON): the W2 fix.
    pub fn save_capabilities(&mut self, caps: &[Capability]) -> Vec<Capability> {
        self.kernel.sys_save_capabilities(&self.process, caps)
    }

    /// `drop-capabilities`.
    pub fn drop_capabilities(&mut self, caps: &[Capability]) {
        self.kernel.sys_drop_capabilities(&self.process, caps);
    }

    /// `our-capabilities`, in canonical order.
    pub fn our_capabilities(&self) -> Vec<Capability> {
        self.kernel.capabilities_of(&self.process)
    }

    /// `get-state`: this step's own write if it made one, else the committed state.
    ///
    /// # Errors
    /// The store could not be read: the kernel stops (a failed read never reads as "no
    /// state"), and the caller traps.
    pub fn get_state(&mut self) -> Result<Option<Vec<u8>>, SyscallError> {
        let key = super::persist::process_key(&self.process);
        self.kernel
            .read(Table::State, key)
            .map_err(|()| SyscallError::StorageFailed)
    }

    /// `set-state`: written when the step commits.
    ///
    /// # Errors
    /// The kernel has stopped on a store failure.
    pub fn set_state(&mut self, bytes: &[u8]) -> Result<(), SyscallError> {
        self.write_state(Some(bytes))
    }

    /// `clear-state`: removed when the step commits.
    ///
    /// # Errors
    /// The kernel has stopped on a store failure.
    pub fn clear_state(&mut self) -> Result<(), SyscallError> {
        self.write_state(None)
    }

    fn write_state(&mut self, bytes: Option<&[u8]>) -> Result<(), SyscallError> {
        if self.kernel.durable.failure.is_some() {
            return Err(SyscallError::StorageFailed);
        }
        let key = super::persist::process_key(&self.process);
        self.kernel.write(Table::State, key, bytes);
        Ok(())
    }

    /// `get-on-exit`.
    pub fn get_on_exit(&self) -> OnExit {
        self.kernel
            .table
            .get(&self.process)
            .map(|e| e.on_exit.clone())
            .unwrap_or_default()
    }

    /// `set-on-exit`: takes effect for this run and later ones (W10 fix).
    pub fn set_on_exit(&mut self, on_exit: OnExit) {
        if let Some(entry) = self.kernel.table.get_mut(&self.process) {
            entry.on_exit = on_exit;
            self.kernel.mark_dirty(&self.process);
        }
    }

    /// `print-to-terminal`: a trace event.
    ///
    /// The text kept is at most [`PRINT_TEXT_MAX`](crate::kernel::PRINT_TEXT_MAX) bytes; a longer
    /// print is cut with a note of how much was cut.
    pub fn print_to_terminal(&mut self, verbosity: u8, text: &str) {
        let text = crate::wire::bounded_str(text, super::PRINT_TEXT_MAX);
        let event = Event::Print {
            process: self.process.clone(),
            verbosity,
            text,
        };
        self.kernel.trace.push(self.kernel.clock.now(), event);
    }

    /// Native only: wake me with `Wake::Alarm(tag)` after `millis` of kernel time.
    pub fn set_alarm_after_millis(&mut self, millis: u64, tag: u64) {
        let now = self.kernel.clock.now();
        let deadline = self.kernel.timer_deadline(now.plus_millis(millis));
        self.kernel.timers.insert(
            deadline,
            Timer::Alarm {
                process: self.process.clone(),
                tag,
            },
        );
    }

    /// Native only: answer request `id` at `target` later than its delivery (runtime modules).
    pub fn respond_to(&mut self, id: u64, target: Address, response: Response) {
        let source = self.our();
        self.kernel
            .send_response_message(&self.process, id, source, target, response, None);
    }

    /// Runtime modules only (`net:distro:sys`): the node's view of the network.
    pub fn net_view(&self) -> &crate::process::net::NetView {
        &self.kernel.net
    }

    /// Runtime modules only (`net:distro:sys`): the identity of node `name`, ours included.
    pub fn net_identity(&self, name: &str) -> Option<crate::types::net::Identity> {
        if name == &*self.kernel.our {
            return Some(self.kernel.identity());
        }
        self.kernel.net.identity(name).cloned()
    }

    /// Runtime modules only (`net:distro:sys`): the node's signature over `bytes`.
    pub fn node_sign(&self, bytes: &[u8]) -> Vec<u8> {
        self.kernel.caps.sign_bytes(bytes)
    }

    /// Runtime modules only (`net:distro:sys`): whether `signature` is node `node`'s over
    /// `bytes`, by our key for our node and by the directory's for another; false for a node
    /// the directory does not hold.
    pub fn node_verify(&self, node: &str, bytes: &[u8], signature: &[u8]) -> bool {
        let key = if node == &*self.kernel.our {
            Some(self.kernel.caps.verifying_key().to_bytes())
        } else {
            self.kernel
                .net
                .identity(node)
                .and_then(|identity| crate::process::net::key_bytes(&identity.networking_key))
        };
        key.is_some_and(|key| crate::caps::CapabilityStore::verify_bytes(&key, bytes, signature))
    }

    /// Runtime modules only (`vfs:distro:sys`): the file at `path` in the store's vfs table,
    /// as this step sees it.
    ///
    /// # Errors
    /// `StorageFailed`: the read failed and the kernel stopped.
    pub fn vfs_read(&mut self, path: &str) -> Result<Option<Vec<u8>>, SyscallError> {
        self.assert_runtime_module("vfs_read");
        self.kernel
            .read(crate::storage::Table::Vfs, path.as_bytes())
            .map_err(|()| SyscallError::StorageFailed)
    }

    /// Runtime modules only: writes (`Some`) or removes (`None`) the file at `path`, in this
    /// step's commit.
    pub fn vfs_write(&mut self, path: &str, bytes: Option<&[u8]>) {
        self.assert_runtime_module("vfs_write");
        self.kernel
            .write(crate::storage::Table::Vfs, path.as_bytes(), bytes);
    }

    /// Runtime modules only: every vfs path that starts with `prefix`, in order, as this step
    /// sees them.
    ///
    /// # Errors
    /// `StorageFailed`: the scan failed and the kernel stopped.
    pub fn vfs_paths(&mut self, prefix: &str) -> Result<Vec<String>, SyscallError> {
        self.assert_runtime_module("vfs_paths");
        let keys = self
            .kernel
            .scan_keys(crate::storage::Table::Vfs, prefix.as_bytes())
            .map_err(|()| SyscallError::StorageFailed)?;
        Ok(keys
            .into_iter()
            .filter_map(|key| String::from_utf8(key).ok())
            .collect())
    }

    /// Runtime modules only: whether `process` holds the capability issued by us with
    /// `params`.
    pub fn holds_our_capability(&self, process: &ProcessId, params: &serde_json::Value) -> bool {
        let key = CapKey::from_params(self.our(), params);
        self.kernel.caps.has(process, &key)
    }

    /// Runtime modules only: gives `process` the capability issued by us with `params` (as
    /// the vfs gives a drive's read and write capabilities to the package that creates it).
    /// Returns whether it is held now.
    /// `params` is a JSON value, never text: capability params are not assembled from strings.
    pub fn issue_capability(&mut self, process: &ProcessId, params: &serde_json::Value) -> bool {
        self.assert_runtime_module("issue_capability");
        let key = CapKey::from_params(self.our(), params);
        assert_eq!(
            key.issuer().process,
            self.process,
            "a module issues its own capabilities"
        );
        if !self.kernel.table.contains_key(process) {
            return false;
        }
        if self.kernel.caps.insert(process, key.clone()) {
            self.kernel
                .trace_caps_changed(process, vec![key.to_capability()], Vec::new());
        }
        debug_assert!(
            self.kernel.caps.has(process, &key),
            "an issued capability is held"
        );
        true
    }

    fn assert_runtime_module(&self, what: &str) {
        let runtime_module = self
            .kernel
            .table
            .get(&self.process)
            .is_some_and(|entry| entry.runtime_module);
        assert!(
            runtime_module,
            "{what} is for runtime modules, not {}",
            self.process
        );
    }

    /// Native only: the id and rsvp of the prompting request.
    pub fn current_request_route(&self) -> Option<(u64, Option<Address>)> {
        let prompting = self
            .kernel
            .table
            .get(&self.process)?
            .host
            .prompting
            .as_ref()?;
        Some((prompting.id, prompting.rsvp.clone()))
    }
}

impl Kernel {
    pub(crate) fn sys_send_request(
        &mut self,
        process: &ProcessId,
        target: Address,
        mut request: Request,
        context: Option<Context>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, SyscallError> {
        if !request.capabilities.is_empty() {
            request.capabilities = self
                .caps
                .filter_attached(process, &request.capabilities)
                .kept;
        }
        // One lookup of the sender for the whole send: this is the hot path of every request.
        let Some(entry) = self.table.get_mut(process) else {
            return Err(SyscallError::NoSuchProcess(process.clone()));
        };
        let host = &mut entry.host;
        let prompting = host.prompting.as_ref().filter(|_| request.inherit);
        let blob = blob.or_else(|| host.prompting_blob.clone().filter(|_| request.inherit));
        let id = request_id(&mut self.entropy, host, prompting, &request);
        let our = Address {
            node: Arc::clone(&self.our),
            process: process.clone(),
        };
        let rsvp = match (request.expects_response, prompting) {
            (Some(_), _) => Some(our.clone()),
            (None, Some(prompting)) => prompting.rsvp.clone(),
            (None, None) => None,
        };
        if let Some(seconds) = request.expects_response {
            let kept = (request.body.len()
                + request.metadata.as_ref().map_or(0, String::len)
                + blob.as_ref().map_or(0, |b| b.bytes.len())) as u64;
            admit_outstanding(&self.config, self.held_bytes, host, kept)?;
            host.pending_bytes += kept;
            self.held_bytes += kept;
            let now = self.clock.now();
            let deadline = moved_deadline(&mut self.hook, now, now.plus_seconds(seconds));
            let timer = Timer::RequestTimeout {
                process: process.clone(),
                id,
            };
            let pending = Box::new(PendingRequest {
                prompting: host.prompting.clone(),
                prompting_blob: host.prompting_blob.clone(),
                context,
                target: target.clone(),
                request: request.clone(),
                blob: blob.clone(),
                deadline: Some(self.timers.insert(deadline, timer)),
                answered: false,
            });
            if host.contexts.insert(id, pending).is_some() {
                crate::kernel_bug!("request id {id} of {process} was outstanding already");
            }
            debug_assert!(host.contexts.get(&id).is_some_and(|p| !p.answered));
        }
        let message = KernelMessage {
            id,
            source: our,
            target,
            rsvp,
            message: Message::Request(request),
            lazy_load_blob: blob,
        };
        self.enqueue_inbox(Box::new(message));
        Ok(id)
    }

    pub(crate) fn sys_send_response(
        &mut self,
        process: &ProcessId,
        response: Response,
        blob: Option<LazyLoadBlob>,
    ) {
        let our = self.address_of(process);
        let Some(entry) = self.table.get(process) else {
            return;
        };
        let Some(prompting) = entry.host.prompting.clone() else {
            let event = Event::Dropped {
                id: 0,
                source: our.clone(),
                target: our,
                reason: DropReason::NoPromptingMessage,
            };
            self.trace.push(self.clock.now(), event);
            return;
        };
        let inherited = entry
            .host
            .prompting_blob
            .clone()
            .filter(|_| response.inherit);
        let target = prompting
            .rsvp
            .clone()
            .unwrap_or_else(|| prompting.source.clone());
        self.send_response_message(
            process,
            prompting.id,
            our,
            target,
            response,
            blob.or(inherited),
        );
    }

    pub(crate) fn send_response_message(
        &mut self,
        process: &ProcessId,
        id: u64,
        source: Address,
        target: Address,
        mut response: Response,
        blob: Option<LazyLoadBlob>,
    ) {
        if !response.capabilities.is_empty() {
            response.capabilities = self
                .caps
                .filter_attached(process, &response.capabilities)
                .kept;
        }
        let message = Message::Response((response, None));
        self.enqueue_inbox(Box::new(KernelMessage {
            id,
            source,
            target,
            rsvp: None,
            message,
            lazy_load_blob: blob,
        }));
    }

    fn sys_save_capabilities(
        &mut self,
        process: &ProcessId,
        caps: &[Capability],
    ) -> Vec<Capability> {
        let mut refused = Vec::new();
        let mut added = Vec::new();
        for cap in caps {
            let Ok(key) = CapKey::try_from_capability(cap) else {
                refused.push(cap.clone());
                continue;
            };
            let self_issued = *key.issuer().node == *self.our && key.issuer().process == *process;
            let received = self
                .table
                .get(process)
                .is_some_and(|e| e.host.received_caps.contains(&key));
            if !(self_issued || received || self.caps.has(process, &key)) {
                refused.push(cap.clone());
                continue;
            }
            if self.caps.insert(process, key.clone()) {
                added.push(key.to_capability());
            }
        }
        self.trace_caps_changed(process, added, Vec::new());
        refused
    }

    fn sys_drop_capabilities(&mut self, process: &ProcessId, caps: &[Capability]) {
        let mut removed = Vec::new();
        for cap in caps {
            let Ok(key) = CapKey::try_from_capability(cap) else {
                continue;
            };
            if self.caps.remove(process, &key) {
                removed.push(key.to_capability());
            }
        }
        self.trace_caps_changed(process, Vec::new(), removed);
    }

    pub(crate) fn trace_caps_changed(
        &mut self,
        process: &ProcessId,
        added: Vec<Capability>,
        removed: Vec<Capability>,
    ) {
        if added.is_empty() && removed.is_empty() {
            return;
        }
        self.mark_dirty(process);
        let event = Event::CapabilitiesChanged {
            process: process.clone(),
            added,
            removed,
        };
        self.trace.push(self.clock.now(), event);
    }

    /// The capabilities `process` holds, in canonical order.
    pub fn capabilities_of(&self, process: &ProcessId) -> Vec<Capability> {
        self.caps
            .held_keys(process)
            .map(CapKey::to_capability)
            .collect()
    }

    /// Converts a mailbox entry into what `receive` returns, updating the host state.
    pub(crate) fn convert_for_receive(&mut self, process: &ProcessId, delivery: Delivery) -> Wake {
        let now = self.clock.now();
        // It has left the mailbox (`pop_front` or `take_answer` took it off the mailbox's count).
        let len = delivery.len();
        if len > self.held_bytes {
            crate::kernel_bug!("a delivery of {len} bytes was not counted as held");
        }
        self.held_bytes -= len;
        let (id, kind) = match &delivery {
            Delivery::Alarm(tag) => return Wake::Alarm(*tag),
            Delivery::Message(message) => (message.id, Some(MessageKind::of(&message.message))),
            Delivery::Error(error) => (error.id, None),
        };
        let event = Event::Delivered {
            id,
            process: process.clone(),
            kind,
        };
        self.trace.push(now, event);
        // One lookup for all host-state updates: this is the hot path of every delivery.
        let Some(entry) = self.table.get_mut(process) else {
            return Wake::Resume;
        };
        let host = &mut entry.host;
        match delivery {
            Delivery::Alarm(tag) => Wake::Alarm(tag),
            Delivery::Message(mut message) => {
                let blob = message.lazy_load_blob.take();
                note_received_caps(host, message.message.capabilities());
                host.last_message_blobbed = blob.is_some();
                if message.message.is_request() {
                    let source = message.source.clone();
                    if blob.is_some() {
                        host.last_blob.clone_from(&blob);
                    }
                    host.prompting = Some(Prompting {
                        id: message.id,
                        source: message.source,
                        rsvp: message.rsvp,
                    });
                    host.prompting_blob = blob;
                    return Wake::Received(Ok((source, message.message)));
                }
                if blob.is_some() {
                    host.last_blob = blob;
                }
                let (context, freed) = restore_context(host, message.id);
                self.held_bytes -= freed;
                let KernelMessage {
                    source,
                    message: Message::Response((response, _)),
                    ..
                } = *message
                else {
                    return Wake::Resume;
                };
                Wake::Received(Ok((source, Message::Response((response, context)))))
            }
            Delivery::Error(error) => {
                let (context, freed) = restore_context(host, error.id);
                self.held_bytes -= freed;
                host.last_message_blobbed = false;
                Wake::Received(Err((error.error, context)))
            }
        }
    }

    /// Converts the awaited answer into what `send-and-await-response` returns.
    pub(crate) fn convert_for_await(&mut self, process: &ProcessId, delivery: Delivery) -> Wake {
        match self.convert_for_receive(process, delivery) {
            Wake::Received(Ok(received)) => Wake::Awaited(Ok(received)),
            Wake::Received(Err((error, _context))) => Wake::Awaited(Err(error)),
            other => other,
        }
    }

    fn driven(&self, process: &ProcessId) -> Result<(), KernelError> {
        match self.table.get(process) {
            None => Err(KernelError::NoSuchProcess(process.clone())),
            Some(entry) if !entry.driven => Err(KernelError::NotDriven(process.clone())),
            Some(_) if self.shut_down => Err(KernelError::ShutDown),
            // Fail-stop: nothing of the failed step (or any later one) is let out.
            Some(_) if self.durable.failure.is_some() => Err(KernelError::Stopped),
            Some(_) => Ok(()),
        }
    }

    /// Sends a request as driven process `process`. Returns the message id.
    ///
    /// # Errors
    /// `process` is not a driven process, or the kernel has shut down.
    pub(crate) fn send_as(
        &mut self,
        process: &ProcessId,
        target: Address,
        request: Request,
        context: Option<Context>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, KernelError> {
        self.driven(process)?;
        Ok(self.sys_send_request(process, target, request, context, blob)?)
    }

    /// Sends `command` to the kernel as driven process `process`.
    ///
    /// # Errors
    /// As `send_as`.
    pub(crate) fn command_as(
        &mut self,
        process: &ProcessId,
        command: &KernelCommand,
        expects_response: Option<u64>,
        blob: Option<LazyLoadBlob>,
    ) -> Result<u64, KernelError> {
        // Every command's fields are strings, numbers and string-keyed maps: writing one
        // cannot fail, and an empty body sent in its place would be a lie to the kernel.
        let body = match serde_json::to_vec(command) {
            Ok(body) => body,
            Err(error) => crate::kernel_bug!("a KernelCommand did not serialize: {error}"),
        };
        debug_assert!(!body.is_empty(), "a command is never empty JSON");
        let mut request = Request::new(body);
        request.expects_response = expects_response;
        self.send_as(process, self.our_kernel.clone(), request, None, blob)
    }

    /// Answers the prompting request of driven process `process`.
    ///
    /// # Errors
    /// As `send_as`.
    pub(crate) fn respond_as(
        &mut self,
        process: &ProcessId,
        response: Response,
        blob: Option<LazyLoadBlob>,
    ) -> Result<(), KernelError> {
        self.driven(process)?;
        self.sys_send_response(process, response, blob);
        Ok(())
    }

    /// `receive` for driven process `process`: the oldest deliverable message, if any.
    ///
    /// # Errors
    /// `process` is not a driven process.
    pub(crate) fn receive_as(
        &mut self,
        process: &ProcessId,
    ) -> Result<Option<Received>, KernelError> {
        self.driven(process).or_else(|e| {
            if matches!(e, KernelError::ShutDown) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        if self
            .table
            .get(process)
            .is_none_or(|entry| entry.mailbox.is_empty())
        {
            return Ok(None);
        }
        // Durable before visible: what this answer reports is synced before it is seen.
        self.sync_before_output()
            .map_err(|_| KernelError::Stopped)?;
        let Some(delivery) = self.table.get_mut(process).and_then(|e| e.pop_front()) else {
            crate::kernel_bug!("{process}'s mailbox emptied while it synced");
        };
        match self.convert_for_receive(process, delivery) {
            Wake::Received(received) => Ok(Some(received)),
            _ => Ok(None),
        }
    }

    /// The blob of the last message driven process `process` received with a blob (the
    /// reference's `get_blob`: it outlives messages that carry none).
    pub fn last_blob_of(&self, process: &ProcessId) -> Option<LazyLoadBlob> {
        self.table.get(process)?.host.last_blob.clone()
    }

    /// The blob the last message `process` received carried itself: `None` when it carried
    /// none, whatever came before. What a driven process's answer goes out with: one client's
    /// blob never rides on another's answer.
    pub fn own_blob_of(&self, process: &ProcessId) -> Option<LazyLoadBlob> {
        let host = &self.table.get(process)?.host;
        if !host.last_message_blobbed {
            return None;
        }
        debug_assert!(host.last_blob.is_some(), "a blobbed message left its blob");
        host.last_blob.clone()
    }
}

/// Remembers capabilities attached to a delivered message: `save-capabilities` may keep them
/// (W2). They were filtered and signed by this kernel when sent.
fn note_received_caps(host: &mut HostState, caps: &[(Capability, Vec<u8>)]) {
    for (cap, _signature) in caps {
        if let Ok(key) = CapKey::try_from_capability(cap) {
            host.received_caps
                .insert(key, super::state::RECEIVED_CAPS_MAX);
        }
    }
}

/// Removes the context of answered request `id`, restores its prompting message and returns
/// the requester's context and the bytes the kept request held.
fn restore_context(host: &mut HostState, id: u64) -> (Option<Context>, u64) {
    let Some(pending) = host.contexts.remove(&id) else {
        return (None, 0);
    };
    if !pending.answered {
        crate::kernel_bug!("an answer to request {id} was delivered before it was accepted");
    }
    debug_assert!(
        pending.deadline.is_none(),
        "an answered request has no timer"
    );
    let freed = pending.len();
    if freed > host.pending_bytes {
        crate::kernel_bug!("request {id} kept {freed} bytes, more than its process's count");
    }
    host.pending_bytes -= freed;
    host.prompting = pending.prompting;
    host.prompting_blob = pending.prompting_blob;
    (pending.context, freed)
}

/// Whether the kernel may keep one more outstanding request of `kept` bytes for `host`'s
/// process: at most `outstanding_max` of them and `outstanding_bytes_max` bytes per process,
/// and `held_bytes_max` message bytes in the whole kernel.
fn admit_outstanding(
    config: &super::KernelConfig,
    held_bytes: u64,
    host: &HostState,
    kept: u64,
) -> Result<(), SyscallError> {
    let refused = if host.contexts.len() >= config.outstanding_max {
        Some(("requests outstanding", config.outstanding_max as u64))
    } else if host.pending_bytes + kept > config.outstanding_bytes_max {
        Some((
            "bytes of outstanding requests",
            config.outstanding_bytes_max,
        ))
    } else if held_bytes + kept > config.held_bytes_max {
        Some(("message bytes the kernel holds", config.held_bytes_max))
    } else {
        None
    };
    match refused {
        Some((what, limit)) => Err(SyscallError::Overloaded { what, limit }),
        None => Ok(()),
    }
}

/// The id of a request `host`'s process sends. An inherited id is the prompting request's
/// (spec §4.3), unless the request expects a response and that id is already one of our
/// outstanding requests: then it gets a fresh id, so every outstanding request keeps its own
/// context, timer and answer (the reference overwrites the first, W18; when the first's
/// answer was already queued, its delivery then found the second's unanswered context).
fn request_id(
    entropy: &mut Entropy,
    host: &HostState,
    prompting: Option<&Prompting>,
    request: &Request,
) -> u64 {
    let id = match prompting {
        Some(prompting)
            if request.expects_response.is_none() || !host.contexts.contains_key(&prompting.id) =>
        {
            prompting.id
        }
        _ => fresh_id(entropy, host),
    };
    debug_assert!(
        request.expects_response.is_none() || !host.contexts.contains_key(&id),
        "a request that expects a response never reuses an outstanding id"
    );
    id
}

/// A message id that no outstanding request of this process uses.
fn fresh_id(entropy: &mut Entropy, host: &HostState) -> u64 {
    loop {
        let id = entropy.next_id();
        if !host.contexts.contains_key(&id) {
            return id;
        }
    }
}
