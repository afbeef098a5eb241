//! Deferred sends: `send-request` and `send-response` return nothing to the guest and change
//! nothing the guest can read before its next syscall, so their host functions lift the
//! arguments in place (validating them as always) and queue the send in the store's outbox
//! instead of suspending the guest. `WasmProcess::drive` applies the outbox, in order, every
//! time control comes back to the host: before it serves any other syscall, and when the run
//! blocks, yields, returns or fails. The kernel therefore sees the same calls in the same
//! order at the same simulated time as if each had suspended the guest (the traces are
//! identical), and a guest saves one suspend-and-resume per send.
//!
//! A send made from inside `cabi_realloc` while the host is lowering a result is refused: the
//! guest fails, as it did when every import suspended.

use super::abi::{self, FlatArgs, Val};
use super::syscalls::Call;
use super::wit::{self, Func};
use super::{GuestError, HostData};
use crate::types::{Address, Context, LazyLoadBlob, Request, Response};
use wasmi::Caller;

/// A send waiting in the outbox.
pub(crate) enum Deferred {
    /// `send-request(target, request, context, blob)`.
    Request(Address, Request, Option<Context>, Option<LazyLoadBlob>),
    /// `send-response(response, blob)`.
    Response(Response, Option<LazyLoadBlob>),
}

/// Whether `func` is served by deferral.
pub(crate) fn is_deferred(func: Func) -> bool {
    matches!(func, Func::SendRequest | Func::SendResponse)
}

/// The host function of a deferred import: lifts, converts and queues.
///
/// When the outbox has grown past `WasmConfig::deferred_len_max`, the guest is suspended
/// (with the send already queued) so the kernel takes the outbox before the guest goes on:
/// the host never holds more than that bound, plus one call's lift, of unsent sends.
pub(crate) fn defer(
    caller: &mut Caller<'_, HostData>,
    func: Func,
    args: &[wasmi::Val],
) -> Result<(), wasmi::Error> {
    let lifted =
        lift(caller, func, args).map_err(|reason| wasmi::Error::host(GuestError(reason)))?;
    let data = caller.data_mut();
    data.outbox_len = data.outbox_len.saturating_add(lifted);
    debug_assert!(!data.outbox.is_empty(), "a deferred send is in the outbox");
    if data.outbox_len > data.deferred_len_max {
        data.call = Some((super::Import::Standard(func), super::RawArgs::new(&[])));
        return Err(wasmi::Error::host(super::Syscall));
    }
    Ok(())
}

/// Lifts and queues one send; returns the bytes its lift took.
fn lift(caller: &mut Caller<'_, HostData>, func: Func, args: &[wasmi::Val]) -> Result<u64, String> {
    let import = wit::import_of(func);
    let name = import.name;
    if caller.data().lowering {
        return Err(format!("{name} called from inside cabi_realloc"));
    }
    let memory = caller.data().memory.ok_or("no memory")?;
    let (mem, data) = memory.data_and_store_mut(caller);
    let raw = super::RawArgs::new(args);
    let raw = raw.as_slice();
    let budget = &mut abi::Budget::new(data.lift_len_max);
    if func == Func::SendRequest && import.indirect() {
        // The hot path: typed, without a value tree, with the last target cached.
        let ptr = *raw.first().ok_or("missing parameter pointer")? as u32;
        let (target, request, context, blob) =
            super::fast::lift_send_request(mem, &import.params, ptr, &mut data.targets, budget)
                .map_err(|e| format!("{name}: {e}"))?;
        data.outbox
            .push(Deferred::Request(target, request, context, blob));
        return Ok(budget.used());
    }
    let lifted = if import.indirect() {
        let ptr = *raw.first().ok_or("missing parameter pointer")? as u32;
        abi::load(mem, &import.params, ptr, budget)
    } else {
        abi::lift_flat(mem, &import.params, &mut FlatArgs::new(raw), budget)
    };
    let Val::Record(params) = lifted.map_err(|e| format!("{name}: {e}"))? else {
        return Err("parameters are not a record".into());
    };
    let deferred = match super::syscalls::decode(func, params)? {
        Call::SendRequest((target, request, context, blob)) => {
            Deferred::Request(target, request, context, blob)
        }
        Call::SendResponse(response, blob) => Deferred::Response(response, blob),
        call => crate::kernel_bug!("{func:?} is deferred but decoded as {call:?}"),
    };
    data.outbox.push(deferred);
    Ok(budget.used())
}
