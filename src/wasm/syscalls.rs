//! The host functions of the `standard` interface, on lifted values (spec §4).
//!
//! Each one converts its parameters to kernel types, calls the same `ProcessContext` syscall a
//! native process calls, and converts the result back. A guest error (a malformed address, an
//! `await` without a timeout) is a trap of that process with the reason, never a kernel panic.

use super::abi::Val;
use super::process::{Served, WasmProcess};
use super::wit::{self, Func};
use crate::kernel::ProcessContext;
use crate::kernel::{SpawnError, SpawnRequest};
use crate::process::Flow;
use crate::types::{Address, Capability, Context, LazyLoadBlob, OnExit, Request, Response};

/// The parameters of one call, taken in order.
struct Params(std::vec::IntoIter<Val>);

impl Params {
    fn next(&mut self) -> Result<Val, String> {
        self.0.next().ok_or_else(|| "missing parameter".to_owned())
    }
}

fn done() -> Result<Served, String> {
    Ok(Served::Value(None))
}

fn value(value: Val) -> Result<Served, String> {
    Ok(Served::Value(Some(value)))
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The parameters of a `send-request`: target, request, context, blob.
pub(crate) type SendParams = (Address, Request, Option<Context>, Option<LazyLoadBlob>);

/// A host call with its parameters as kernel types. Decoding (`decode`) reads only the
/// lifted values, never the kernel, so the whole path from guest memory to a call can be
/// fuzzed (`super::fuzzing`); `serve` then acts on it.
#[derive(Debug)]
pub(crate) enum Call {
    Print(u8, String),
    Our,
    GetOnExit,
    SetOnExit(OnExit),
    GetState,
    SetState(Vec<u8>),
    ClearState,
    Spawn(SpawnRequest),
    SaveCapabilities(Vec<Capability>),
    DropCapabilities(Vec<Capability>),
    OurCapabilities,
    Receive,
    HasBlob,
    GetBlob,
    LastBlob,
    SendRequest(SendParams),
    SendRequests(Vec<SendParams>),
    SendResponse(Response, Option<LazyLoadBlob>),
    SendAndAwait(Address, Request, Option<LazyLoadBlob>),
}

/// The call `func` makes with the lifted `params`, or why they are not valid for it.
pub(crate) fn decode(func: Func, params: Vec<Val>) -> Result<Call, String> {
    let mut p = Params(params.into_iter());
    Ok(match func {
        Func::PrintToTerminal => {
            let verbosity = match p.next()? {
                Val::U8(v) => v,
                _ => return Err("print-to-terminal: verbosity".into()),
            };
            Call::Print(verbosity, wit::string(p.next()?).map_err(text)?)
        }
        Func::Our => Call::Our,
        Func::GetOnExit => Call::GetOnExit,
        Func::SetOnExit => Call::SetOnExit(wit::on_exit(p.next()?)?),
        Func::GetState => Call::GetState,
        Func::SetState => Call::SetState(wit::bytes(p.next()?).map_err(text)?),
        Func::ClearState => Call::ClearState,
        Func::Spawn => Call::Spawn(spawn_request(p)?),
        Func::SaveCapabilities => Call::SaveCapabilities(wit::capabilities(p.next()?)?),
        Func::DropCapabilities => Call::DropCapabilities(wit::capabilities(p.next()?)?),
        Func::OurCapabilities => Call::OurCapabilities,
        Func::Receive => Call::Receive,
        Func::HasBlob => Call::HasBlob,
        Func::GetBlob => Call::GetBlob,
        Func::LastBlob => Call::LastBlob,
        Func::SendRequest => Call::SendRequest(send_params(&mut p)?),
        Func::SendRequests => {
            let mut sends = Vec::new();
            for item in wit::list(p.next()?).map_err(text)? {
                let fields: [Val; 4] = wit::fields(item).map_err(text)?;
                sends.push(send_params(&mut Params(Vec::from(fields).into_iter()))?);
            }
            Call::SendRequests(sends)
        }
        Func::SendResponse => {
            let response = wit::response(p.next()?)?;
            Call::SendResponse(response, wit::optional(p.next()?, wit::blob)?)
        }
        Func::SendAndAwaitResponse => {
            let target = wit::address(p.next()?)?;
            let request = wit::request(p.next()?)?;
            Call::SendAndAwait(target, request, wit::optional(p.next()?, wit::blob)?)
        }
    })
}

/// Serves `call` for `process`. (`send-request` and `send-response` never come here: they
/// are deferred, `defer.rs`.)
pub(crate) fn serve(
    process: &mut WasmProcess,
    ctx: &mut ProcessContext<'_>,
    call: Call,
) -> Result<Served, String> {
    match call {
        Call::Print(verbosity, message) => {
            ctx.print_to_terminal(verbosity, &message);
            process.remember_print(&message);
            done()
        }
        Call::Our => value(wit::address_val(&ctx.our())),
        Call::GetOnExit => value(wit::on_exit_val(ctx.get_on_exit())),
        Call::SetOnExit(on_exit) => {
            ctx.set_on_exit(on_exit);
            done()
        }
        Call::GetState => {
            let state = ctx.get_state().map_err(|e| format!("get-state: {e}"))?;
            value(wit::option_of(state, Val::Bytes))
        }
        Call::SetState(bytes) => {
            ctx.set_state(&bytes)
                .map_err(|e| format!("set-state: {e}"))?;
            done()
        }
        Call::ClearState => {
            ctx.clear_state().map_err(|e| format!("clear-state: {e}"))?;
            done()
        }
        Call::Spawn(request) => spawn(ctx, request),
        Call::SaveCapabilities(caps) => {
            ctx.save_capabilities(&caps);
            done()
        }
        Call::DropCapabilities(caps) => {
            ctx.drop_capabilities(&caps);
            done()
        }
        Call::OurCapabilities => value(wit::capabilities_val(&ctx.our_capabilities())),
        Call::Receive => Ok(Served::Block(Flow::Receive)),
        Call::HasBlob => value(Val::Bool(ctx.has_blob())),
        Call::GetBlob => value(wit::option_of(ctx.get_blob(), wit::blob_val)),
        Call::LastBlob => value(wit::option_of(ctx.last_blob(), wit::blob_val)),
        Call::SendRequests(sends) => {
            for (target, request, context, blob) in sends {
                ctx.send_request(target, request, context, blob);
            }
            done()
        }
        Call::SendAndAwait(target, request, blob) => {
            ctx.send_and_await_response(target, request, blob)
                .map_err(|e| format!("send-and-await-response: {e}"))?;
            Ok(Served::Block(Flow::Await))
        }
        Call::SendRequest(..) | Call::SendResponse(..) => {
            Err("send-request and send-response are deferred, not served".into())
        }
    }
}

fn send_params(p: &mut Params) -> Result<SendParams, String> {
    let target = wit::address(p.next()?)?;
    let request = wit::request(p.next()?)?;
    let context = wit::optional(p.next()?, |v| wit::bytes(v).map_err(text))?;
    let blob = wit::optional(p.next()?, wit::blob)?;
    Ok((target, request, context, blob))
}

/// `spawn(name, wasm-path, on-exit, request-capabilities, grant-capabilities, public)`.
fn spawn_request(mut p: Params) -> Result<SpawnRequest, String> {
    let name = wit::optional(p.next()?, |v| wit::string(v).map_err(text))?;
    let wasm_path = wit::string(p.next()?).map_err(text)?;
    let on_exit = wit::on_exit(p.next()?)?;
    let request_capabilities = wit::capabilities(p.next()?)?;
    let mut grant_capabilities = Vec::new();
    for grant in wit::list(p.next()?).map_err(text)? {
        let [process, params] = wit::fields(grant).map_err(text)?;
        grant_capabilities.push((
            wit::process_id(process)?,
            wit::string(params).map_err(text)?,
        ));
    }
    let public = wit::boolean(p.next()?).map_err(text)?;
    Ok(SpawnRequest {
        name,
        wasm_path,
        on_exit,
        request_capabilities,
        grant_capabilities,
        public,
    })
}

fn spawn(ctx: &mut ProcessContext<'_>, request: SpawnRequest) -> Result<Served, String> {
    let result = ctx.spawn(request).map_err(text)?;
    value(wit::result_val(match result {
        Ok(child) => Ok(wit::process_id_val(&child)),
        Err(SpawnError::NameTaken) => Err(Val::Variant(0, None)),
        Err(SpawnError::NoFileAtPath) => Err(Val::Variant(1, None)),
    }))
}
