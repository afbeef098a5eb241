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

/// Serves `func` for `process`.
pub(crate) fn serve(
    process: &mut WasmProcess,
    ctx: &mut ProcessContext<'_>,
    func: Func,
    params: Vec<Val>,
) -> Result<Served, String> {
    let mut p = Params(params.into_iter());
    match func {
        Func::PrintToTerminal => {
            let verbosity = match p.next()? {
                Val::U8(v) => v,
                _ => return Err("print-to-terminal: verbosity".into()),
            };
            let message = wit::string(p.next()?).map_err(text)?;
            ctx.print_to_terminal(verbosity, &message);
            process.remember_print(&message);
            done()
        }
        Func::Our => value(wit::address_val(&ctx.our())),
        Func::GetOnExit => value(wit::on_exit_val(ctx.get_on_exit())),
        Func::SetOnExit => {
            ctx.set_on_exit(wit::on_exit(p.next()?)?);
            done()
        }
        Func::GetState => value(wit::option_of(ctx.get_state(), Val::Bytes)),
        Func::SetState => {
            let bytes = wit::bytes(p.next()?).map_err(text)?;
            ctx.set_state(&bytes)
                .map_err(|e| format!("set-state: {e}"))?;
            done()
        }
        Func::ClearState => {
            ctx.clear_state().map_err(|e| format!("clear-state: {e}"))?;
            done()
        }
        Func::Spawn => spawn(ctx, p),
        Func::SaveCapabilities => {
            ctx.save_capabilities(&wit::capabilities(p.next()?)?);
            done()
        }
        Func::DropCapabilities => {
            ctx.drop_capabilities(&wit::capabilities(p.next()?)?);
            done()
        }
        Func::OurCapabilities => value(wit::capabilities_val(&ctx.our_capabilities())),
        _ => serve_messages(ctx, func, p),
    }
}

/// The message and blob functions (`send-request` and `send-response` never suspend: they
/// are deferred, `defer.rs`).
fn serve_messages(
    ctx: &mut ProcessContext<'_>,
    func: Func,
    mut p: Params,
) -> Result<Served, String> {
    match func {
        Func::Receive => Ok(Served::Block(Flow::Receive)),
        Func::HasBlob => value(Val::Bool(ctx.has_blob())),
        Func::GetBlob => value(wit::option_of(ctx.get_blob(), wit::blob_val)),
        Func::LastBlob => value(wit::option_of(ctx.last_blob(), wit::blob_val)),
        Func::SendRequests => {
            for item in wit::list(p.next()?).map_err(text)? {
                let fields: [Val; 4] = wit::fields(item).map_err(text)?;
                let (target, request, context, blob) =
                    send_params(&mut Params(Vec::from(fields).into_iter()))?;
                ctx.send_request(target, request, context, blob);
            }
            done()
        }
        Func::SendAndAwaitResponse => {
            let target = wit::address(p.next()?)?;
            let request = wit::request(p.next()?)?;
            let blob = wit::optional(p.next()?, wit::blob)?;
            ctx.send_and_await_response(target, request, blob)
                .map_err(|e| format!("send-and-await-response: {e}"))?;
            Ok(Served::Block(Flow::Await))
        }
        _ => Err(format!("{func:?} is not a message function")),
    }
}

type SendParams = (
    crate::types::Address,
    crate::types::Request,
    Option<crate::types::Context>,
    Option<crate::types::LazyLoadBlob>,
);

fn send_params(p: &mut Params) -> Result<SendParams, String> {
    let target = wit::address(p.next()?)?;
    let request = wit::request(p.next()?)?;
    let context = wit::optional(p.next()?, |v| wit::bytes(v).map_err(text))?;
    let blob = wit::optional(p.next()?, wit::blob)?;
    Ok((target, request, context, blob))
}

/// `spawn(name, wasm-path, on-exit, request-capabilities, grant-capabilities, public)`.
fn spawn(ctx: &mut ProcessContext<'_>, mut p: Params) -> Result<Served, String> {
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
    let request = SpawnRequest {
        name,
        wasm_path,
        on_exit,
        request_capabilities,
        grant_capabilities,
        public,
    };
    let result = ctx.spawn(request).map_err(text)?;
    value(wit::result_val(match result {
        Ok(child) => Ok(wit::process_id_val(&child)),
        Err(SpawnError::NameTaken) => Err(Val::Variant(0, None)),
        Err(SpawnError::NoFileAtPath) => Err(Val::Variant(1, None)),
    }))
}
