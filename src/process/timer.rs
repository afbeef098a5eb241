//! `timer:distro:sys`: a native runtime module on the kernel clock (spec §4.15).
//!
//! `{"SetTimer": ms}` is answered with an empty response after `ms` milliseconds of kernel
//! time (exactly, not 1 ms early as the reference: W23), or at once for 0. Requests from other
//! nodes and non-requests are ignored, as in the reference.

use crate::process::{Flow, Process, ProcessContext, Wake};
use crate::types::{Address, Message, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
enum TimerAction {
    Debug,
    SetTimer(u64),
}

/// The timer module.
#[derive(Default)]
pub struct TimerProcess {
    // Invariant: one entry per alarm tag set and not yet fired.
    pending: BTreeMap<u64, (u64, Address)>,
    next_tag: u64,
}

impl TimerProcess {
    /// A timer with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    fn on_request(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        source: Address,
        id: u64,
        rsvp: Option<Address>,
        body: &[u8],
    ) {
        if *source.node != *ctx.our().node {
            return;
        }
        let reply_to = rsvp.unwrap_or(source);
        match serde_json::from_slice::<TimerAction>(body) {
            Ok(TimerAction::SetTimer(0)) => ctx.respond_to(id, reply_to, Response::new(Vec::new())),
            Ok(TimerAction::SetTimer(millis)) => {
                let tag = self.next_tag;
                self.next_tag += 1;
                self.pending.insert(tag, (id, reply_to));
                ctx.set_alarm_after_millis(millis, tag);
            }
            Ok(TimerAction::Debug) => {
                let text = format!("timer: {} pending", self.pending.len());
                ctx.print_to_terminal(2, &text);
            }
            Err(error) => ctx.print_to_terminal(1, &format!("timer: bad request: {error}")),
        }
    }
}

impl Process for TimerProcess {
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        match wake {
            Wake::Received(Ok((source, Message::Request(request)))) => {
                let (id, rsvp) = ctx.current_request_route().unwrap_or((0, None));
                self.on_request(ctx, source, id, rsvp, &request.body);
            }
            Wake::Alarm(tag) => {
                if let Some((id, target)) = self.pending.remove(&tag) {
                    ctx.respond_to(id, target, Response::new(Vec::new()));
                }
            }
            Wake::Init | Wake::Resume | Wake::Received(_) | Wake::Awaited(_) => {}
        }
        Flow::Receive
    }
}
