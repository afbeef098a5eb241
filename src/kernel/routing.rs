//! Routing: `our` substitution, the capability check, drops, send errors and delivery into
//! mailboxes (spec §3.2–§3.5).
//!
//! Architecture invariant: `check_route` is the one function that decides whether a message
//! may pass. Nothing reaches a mailbox or the command handler without it.
//!
//! Invariant: every message that leaves the inbox is either enqueued, handled as a command, or
//! dropped with a `Dropped` trace event; a dropped request that expects a response answers its
//! sender with exactly one send error (`throw_send_error`).

use super::Kernel;
use super::state::{Delivery, message_len};
use crate::trace::{DropReason, Event, MessageKind};
use crate::types::{KernelMessage, ProcessId, SendError, SendErrorKind, WrappedSendError};
use std::collections::VecDeque;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Where a message that passed the checks goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// To the kernel's command handler.
    Command,
    /// Into a local mailbox.
    Local,
    /// To another node.
    Remote,
}

/// The names whose messages pass the local checks unconditionally (spec §3.3 C), when the
/// process is the kernel's own: its entry or a runtime module it registered. A process a
/// client created under one of these names gets no privilege (the reference grants it by name
/// alone; a client holding the kernel capability could then message anyone).
fn has_unchecked_name(process: &ProcessId) -> bool {
    process.package() == "distro"
        && process.publisher() == "sys"
        && matches!(process.process(), "kernel" | "state" | "vfs")
}

/// Most bytes of a body `Event::Body` keeps.
pub(crate) const TRACE_BODY_MAX: usize = 1024;

/// A message body for the trace: its JSON, compact, when it parses; else its text (invalid
/// UTF-8 replaced); cut past [`TRACE_BODY_MAX`] bytes with a note of how much was cut.
fn body_text(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => value.to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let kept = crate::wire::bounded_text(text, TRACE_BODY_MAX);
    debug_assert!(kept.len() <= TRACE_BODY_MAX, "a traced body fits its bound");
    kept
}

impl Kernel {
    /// Puts a message in the inbox (or refuses it when full) and traces it.
    pub(crate) fn enqueue_inbox(&mut self, message: Box<KernelMessage>) {
        let body = message.message.body();
        self.trace.push(
            self.clock.now(),
            Event::Sent {
                id: message.id,
                source: message.source.clone(),
                target: message.target.clone(),
                kind: MessageKind::of(&message.message),
                expects_response: message.message.expects_response(),
                body_len: body.len() as u64,
                body_hash: xxh3_64(body),
            },
        );
        if self.config.trace_bodies {
            let event = Event::Body {
                id: message.id,
                body: body_text(body),
            };
            self.trace.push(self.clock.now(), event);
        }
        let len = message_len(&message);
        let over_bytes = self.inbox_bytes + len > self.config.inbox_bytes_max
            || self.held_bytes + len > self.config.held_bytes_max;
        if self.inbox.len() >= self.config.inbox_len_max || over_bytes {
            self.drop_message(message, DropReason::InboxFull);
            return;
        }
        self.inbox_bytes += len;
        self.held_bytes += len;
        self.inbox.push_back(message);
        debug_assert!(
            self.inbox_bytes <= self.config.inbox_bytes_max,
            "the inbox bound holds"
        );
    }

    /// Takes the oldest message out of the inbox, with its bytes off the counts.
    pub(crate) fn inbox_pop(&mut self) -> Option<Box<KernelMessage>> {
        let message = self.inbox.pop_front()?;
        let len = message_len(&message);
        if len > self.inbox_bytes || len > self.held_bytes {
            crate::kernel_bug!("the inbox held fewer bytes than its message of {len}");
        }
        self.inbox_bytes -= len;
        self.held_bytes -= len;
        Some(message)
    }

    /// Routes now, in the order they were sent, the messages in the inbox that `process` (on
    /// our node) sent: a process's last sends are routed while it is still in the table, as
    /// the reference's FIFO inbox routes them before the exit that follows them (a test that
    /// answers `Err` and then panics is heard).
    pub(crate) fn route_sent_by(&mut self, process: &ProcessId) {
        let our = self.our.clone();
        let ours = |m: &KernelMessage| {
            m.source.process == *process && (*m.source.node == *our || &*m.source.node == "our")
        };
        if !self.inbox.iter().any(|m| ours(m)) {
            return;
        }
        let (sent, kept): (VecDeque<Box<KernelMessage>>, VecDeque<Box<KernelMessage>>) =
            std::mem::take(&mut self.inbox)
                .into_iter()
                .partition(|m| ours(m));
        self.inbox = kept;
        for message in sent {
            let len = message_len(&message);
            if len > self.inbox_bytes || len > self.held_bytes {
                crate::kernel_bug!("the inbox held fewer bytes than its message of {len}");
            }
            self.inbox_bytes -= len;
            self.held_bytes -= len;
            self.route_message(message);
        }
        debug_assert!(
            !self.inbox.iter().any(|m| m.source.process == *process
                && self.is_ours(&m.source.node)
                && self.table.contains_key(process)),
            "routing its last sends queued no more of them"
        );
    }

    /// Routes the oldest message in the inbox.
    pub(crate) fn route_next(&mut self) {
        let Some(mut message) = self.inbox_pop() else {
            return;
        };
        if self.may_hold() {
            match self.hold_in_transit(message) {
                Some(back) => message = back,
                None => return,
            }
        }
        self.route_message(message);
    }

    /// Routes one message that has left the inbox.
    pub(crate) fn route_message(&mut self, mut message: Box<KernelMessage>) {
        if &*message.source.node == "our" {
            message.source.node = self.our.clone();
        }
        if &*message.target.node == "our" {
            message.target.node = self.our.clone();
        }
        if message_len(&message) > self.config.message_len_max as u64 {
            return self.drop_message(message, DropReason::TooLarge);
        }
        match self.check_route(&message) {
            Err(reason) => self.drop_message(message, reason),
            Ok(Route::Command) => self.handle_command(message),
            Ok(Route::Local) => self.enqueue_local(message),
            Ok(Route::Remote) => self.transmit(message),
        }
    }

    /// A message for another node: into the outbox when there is a network, else `Offline`.
    fn transmit(&mut self, message: Box<KernelMessage>) {
        let len = message_len(&message);
        let full = self.outbound.len() >= self.config.inbox_len_max
            || self.held_bytes + len > self.config.held_bytes_max;
        if !self.config.network || full {
            return self.drop_message(message, DropReason::NodeUnreachable);
        }
        self.held_bytes += len;
        let event = Event::Transmitted {
            id: message.id,
            target: message.target.clone(),
        };
        self.trace.push(self.clock.now(), event);
        self.outbound.push_back(message);
    }

    /// The oldest message for another node, for the network to carry
    /// (`KernelConfig::network`).
    pub fn take_outbound(&mut self) -> Option<KernelMessage> {
        if self.outbound.is_empty() || self.sync_before_output().is_err() {
            // Fail-stop: the failed step's messages must not leave; nothing leaves after it.
            return None;
        }
        let message = self.outbound.pop_front()?;
        let len = message_len(&message);
        if len > self.held_bytes {
            crate::kernel_bug!("an outbound message of {len} bytes was not counted as held");
        }
        self.held_bytes -= len;
        Some(*message)
    }

    /// The network cannot reach `message`'s node: drop it as unreachable, answering its sender
    /// `Offline` if it expects a response.
    pub(crate) fn unreachable(&mut self, message: KernelMessage) {
        self.net.lost(&message.target.node);
        self.drop_message(Box::new(message), DropReason::NodeUnreachable);
    }

    fn is_ours(&self, node: &Arc<str>) -> bool {
        **node == *self.our
    }

    /// The capability check (spec §3.3), with the kernel-command match on the full id (W1).
    pub(crate) fn check_route(&self, message: &KernelMessage) -> Result<Route, DropReason> {
        let source = &message.source;
        let target = &message.target;
        if self.is_ours(&source.node) && !self.is_ours(&target.node) {
            if !self.table.contains_key(&source.process) {
                return Err(DropReason::SourceNotInProcessMap);
            }
            if !self.caps.has_network(&source.process) {
                return Err(DropReason::NoNetworkCapability);
            }
            return Ok(Route::Remote);
        }
        if !self.is_ours(&source.node) {
            let known = self.table.contains_key(&target.process);
            if !known || !self.caps.has_network(&target.process) {
                return Err(DropReason::RemoteTargetRefused);
            }
            // A node never relays: `submit` refuses such messages, and this holds for any
            // other way a remote-sourced message could reach the inbox.
            if !self.is_ours(&target.node) {
                return Err(DropReason::Relay);
            }
            return Ok(Route::Local);
        }
        let unchecked = has_unchecked_name(&source.process)
            && self
                .table
                .get(&source.process)
                .is_some_and(|entry| entry.runtime_module);
        if !unchecked {
            if !self.table.contains_key(&source.process) {
                return Err(DropReason::SourceNotInProcessMap);
            }
            let Some(entry) = self.table.get(&target.process) else {
                return Err(DropReason::NoSuchTarget);
            };
            if !entry.public
                && !self.caps.has_messaging(&source.process, &target.process)
                && !self.planted_bug_fires(message)
            {
                return Err(DropReason::NoMessagingCapability);
            }
        }
        Ok(if target.process.is_kernel() {
            Route::Command
        } else {
            Route::Local
        })
    }

    /// The planted bug (`KernelConfig::planted_bug`, for testing the harness): skips the
    /// messaging check for one message id in four.
    #[cfg(feature = "planted-bug")]
    fn planted_bug_fires(&self, message: &KernelMessage) -> bool {
        self.config.planted_bug && message.id.is_multiple_of(4)
    }

    /// Without the feature `planted-bug` there is no bug to plant.
    #[cfg(not(feature = "planted-bug"))]
    fn planted_bug_fires(&self, _message: &KernelMessage) -> bool {
        false
    }

    /// Drops `message` with `reason`, answering its sender if it expects a response.
    pub(crate) fn drop_message(&mut self, message: Box<KernelMessage>, reason: DropReason) {
        self.trace.push(
            self.clock.now(),
            Event::Dropped {
                id: message.id,
                source: message.source.clone(),
                target: message.target.clone(),
                reason,
            },
        );
        let kind = match reason {
            DropReason::NodeUnreachable => SendErrorKind::Offline,
            _ => SendErrorKind::Timeout,
        };
        self.throw_send_error(message, kind);
    }

    /// The reference's `throw_timeout`, delivered at once: only for a request that expects a
    /// response, whose local sender (full address, W14) still waits for it.
    fn throw_send_error(&mut self, message: Box<KernelMessage>, kind: SendErrorKind) {
        if message.message.expects_response().is_none() || !self.is_ours(&message.source.node) {
            return;
        }
        let process = message.source.process.clone();
        let error = WrappedSendError {
            id: message.id,
            source: self.our_kernel.clone(),
            error: SendError {
                kind,
                target: message.target,
                message: message.message,
                lazy_load_blob: message.lazy_load_blob,
            },
        };
        self.deliver_answer(&process, Delivery::Error(Box::new(error)));
    }

    /// Queues a response or send error for request `id` of `process` if it still waits for
    /// one. Returns false (and queues nothing) otherwise.
    ///
    /// An answer that would take the mailbox past `mailbox_bytes_max` (or the kernel past
    /// `held_bytes_max`) is dropped, traced as `MailboxFull`, and the requester gets a
    /// `Timeout` send error instead, made of the request the kernel kept for it (so it adds no
    /// bytes: they move from the kept request to the mailbox).
    pub(crate) fn deliver_answer(&mut self, process: &ProcessId, mut delivery: Delivery) -> bool {
        let Some(id) = delivery.id() else {
            return false;
        };
        let our = self.address_of(process);
        let now = self.clock.now();
        let Some(entry) = self.table.get_mut(process) else {
            return false;
        };
        let Some(pending) = entry.host.contexts.get_mut(&id) else {
            return false;
        };
        if pending.answered {
            return false;
        }
        pending.answered = true;
        if let Some(key) = pending.deadline.take() {
            self.timers.cancel(key);
        }
        let len = delivery.len();
        let fits = entry.mailbox_bytes + len <= self.config.mailbox_bytes_max
            && self.held_bytes + len <= self.config.held_bytes_max;
        if !fits {
            let kept = pending.len();
            let (source, target) = match &delivery {
                Delivery::Message(m) => (m.source.clone(), m.target.clone()),
                _ => (pending.target.clone(), our),
            };
            delivery = timeout_from_kept(id, pending);
            entry.host.pending_bytes -= kept;
            self.held_bytes -= kept;
            let reason = DropReason::MailboxFull;
            let dropped = Event::Dropped {
                id,
                source,
                target,
                reason,
            };
            self.trace.push(now, dropped);
        }
        let event = match &delivery {
            Delivery::Error(error) => Event::SendErrorQueued {
                id,
                process: process.clone(),
                kind: error.error.kind,
            },
            _ => Event::Enqueued {
                id,
                process: process.clone(),
                kind: MessageKind::Response,
            },
        };
        self.held_bytes += delivery.len();
        entry.push(delivery);
        self.trace.push(now, event);
        self.refresh_ready(process);
        true
    }

    /// Delivers a message that passed the checks into its target's mailbox.
    fn enqueue_local(&mut self, message: Box<KernelMessage>) {
        let target = message.target.process.clone();
        let is_request = message.message.is_request();
        if target.is_kernel() {
            let reason = if is_request {
                DropReason::NoSuchTarget
            } else {
                DropReason::ResponseToKernel
            };
            return self.drop_message(message, reason);
        }
        let Some(entry) = self.table.get_mut(&target) else {
            return self.drop_message(message, DropReason::NoSuchTarget);
        };
        if !is_request {
            if !self.awaits_answer(&target, message.id) {
                self.trace.push(
                    self.clock.now(),
                    Event::Dropped {
                        id: message.id,
                        source: message.source,
                        target: message.target,
                        reason: DropReason::NoContext,
                    },
                );
                return;
            }
            let delivered = self.deliver_answer(&target, Delivery::Message(message));
            assert!(delivered, "an awaited answer is always delivered");
            return;
        }
        let len = message_len(&message);
        let over_bytes = entry.mailbox_bytes + len > self.config.mailbox_bytes_max
            || self.held_bytes + len > self.config.held_bytes_max;
        if entry.requests_queued >= self.config.mailbox_len_max || over_bytes {
            return self.drop_message(message, DropReason::MailboxFull);
        }
        let id = message.id;
        self.held_bytes += len;
        entry.push(Delivery::Message(message));
        self.trace.push(
            self.clock.now(),
            Event::Enqueued {
                id,
                process: target.clone(),
                kind: MessageKind::Request,
            },
        );
        self.refresh_ready(&target);
    }

    /// Whether `process` has an unanswered request with `id`.
    fn awaits_answer(&self, process: &ProcessId, id: u64) -> bool {
        let pending = self
            .table
            .get(process)
            .and_then(|entry| entry.host.contexts.get(&id));
        pending.is_some_and(|pending| !pending.answered)
    }
}

/// The `Timeout` send error of request `id`, made of the request and blob the kernel kept
/// for it (moved out, so the answer takes no new bytes).
fn timeout_from_kept(id: u64, pending: &mut super::state::PendingRequest) -> Delivery {
    let empty = crate::types::Request::new(Vec::new());
    let request = std::mem::replace(&mut pending.request, empty);
    let error = WrappedSendError {
        id,
        source: pending.target.clone(),
        error: SendError {
            kind: SendErrorKind::Timeout,
            target: pending.target.clone(),
            message: crate::types::Message::Request(request),
            lazy_load_blob: pending.blob.take(),
        },
    };
    debug_assert_eq!(pending.len(), 0, "the kept request moved into the error");
    Delivery::Error(Box::new(error))
}
