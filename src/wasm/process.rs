//! One wasm process: a wasmi store and instance, driven through resumable calls.
//!
//! `wake` starts `init`, or resumes the suspended call with what the process waited for; then
//! `drive` runs the guest, serving each syscall in place, until it blocks, runs out of fuel,
//! returns or traps (module docs of `wasm`).

use super::abi::{self, AbiError, FlatArgs, GuestMemory, Val};
use super::defer::Deferred;
use super::wasi::{self, WasiFunc};
use super::wit::{self, Func};
use super::{GuestError, HostData, Import, LoadError, Syscall, WasmConfig};
use crate::kernel::ProcessContext;
use crate::process::{Flow, Process, Wake};
use std::collections::VecDeque;
use std::sync::Arc;
use wasmi::{
    Engine, Instance, Linker, Memory, Module, ResumableCall, ResumableCallHostTrap,
    ResumableCallOutOfFuel, Store, TypedFunc,
};

/// Where the guest is.
enum Run {
    /// `init` has not been called.
    Fresh,
    /// Suspended in `receive` or `send-and-await-response`; the result goes to `retptr`.
    Blocked {
        call: ResumableCallHostTrap,
        func: Func,
        retptr: u32,
    },
    /// Out of fuel.
    Preempted(ResumableCallOutOfFuel),
    /// Handed control back in a WASI call (`sched_yield`, a sleeping `poll_oneoff`);
    /// resumed with these results on `Wake::Resume`.
    Paused {
        call: ResumableCallHostTrap,
        results: Vec<wasmi::Val>,
    },
    /// Returned or trapped.
    Done,
}

/// What a served syscall does next.
pub(crate) enum Next {
    /// Resume at once with these core results.
    Resume(Vec<wasmi::Val>),
    /// Hand control to the scheduler; resume when the result arrives.
    Block(Flow, Func, u32),
    /// Hand control to the scheduler (`Flow::Yield` or `Flow::Sleep`); resume with these
    /// core results on `Wake::Resume`.
    Pause(Flow, Vec<wasmi::Val>),
    /// The process ends (WASI `proc_exit`) with this flow.
    End(Flow),
}

/// Fuel every host call costs, whatever it does (a guest making millions of empty calls
/// pays for them).
pub(crate) const HOST_CALL_FUEL: u64 = 64;
/// Bytes of host work one unit of fuel pays for.
pub(crate) const HOST_BYTES_PER_FUEL: u64 = 4;

/// A wasm process (see the module docs).
pub struct WasmProcess {
    pub(super) store: Store<HostData>,
    init: wasmi::Func,
    /// The running module's memory and allocator (a composed process's part in `current`).
    pub(super) memory: Memory,
    pub(super) realloc: TypedFunc<(i32, i32, i32, i32), i32>,
    pub(super) config: Arc<WasmConfig>,
    /// A composed process's modules (`linked.rs`): the process first, then the exporters;
    /// empty for a process of one module.
    pub(super) parts: Vec<super::linked::Part>,
    /// The part running now.
    pub(super) current: usize,
    /// Linked calls in progress, innermost last.
    pub(super) frames: Vec<super::linked::Frame>,
    /// A composed process's links (`compose.rs`).
    pub(super) links: Arc<[super::compose::Link]>,
    /// The result buffer of the call running now (the innermost frame's function).
    pub(super) outputs: Vec<wasmi::Val>,
    run: Run,
    /// The last lines printed, to explain a trap.
    prints: VecDeque<String>,
    /// Fuel set at the last grant, and fuel burnt since the wake began (charged as time).
    granted: u64,
    burnt: u64,
    /// Fault injection: trap when this run has burnt this much fuel.
    trap_at: Option<u64>,
    /// Times the guest suspended in an import, over its life.
    suspensions: u64,
    /// Fuel burnt over its life.
    fuel_total: u64,
    /// Fuel the host's work cost beyond what the guest had left, paid from later grants
    /// (`charge_host`): a call that touches 60 MB is paid for in full, slice by slice.
    debt: u64,
    /// What the guest wrote to fds 1 and 2 and has not ended with a newline (`wasi.rs`).
    output: super::wasi::OutputLines,
}

impl WasmProcess {
    pub(crate) fn instantiate(
        engine: &Engine,
        linker: &Linker<HostData>,
        module: &Module,
        config: Arc<WasmConfig>,
        budget: super::limits::Budget,
    ) -> Result<Self, LoadError> {
        let mut store = new_store(engine, &config, budget)?;
        let instance = instance_of(&mut store, linker, module)?;
        let init = instance
            .get_func(&store, "init")
            .ok_or_else(|| LoadError("module does not export `init`".into()))?;
        let part = part_of(&store, instance)?;
        Ok(Self::of(
            store,
            init,
            part,
            Vec::new(),
            Arc::from(Vec::new()),
            config,
        ))
    }

    /// A composed process (`linked.rs`): the process module instantiated with `linker` (which
    /// links its imports of the exporters), the exporters with `base`, all in one store.
    pub(crate) fn instantiate_composed(
        engine: &Engine,
        (linker, base): (&Linker<HostData>, &Linker<HostData>),
        (main, exporters): (&Module, &[Module]),
        links: Arc<[super::compose::Link]>,
        config: Arc<WasmConfig>,
        budget: super::limits::Budget,
    ) -> Result<Self, LoadError> {
        let mut store = new_store(engine, &config, budget)?;
        let instance = instance_of(&mut store, linker, main)?;
        let init = instance
            .get_func(&store, "init")
            .ok_or_else(|| LoadError("module does not export `init`".into()))?;
        let mut parts = vec![part_of(&store, instance)?];
        for exporter in exporters {
            let instance = instance_of(&mut store, base, exporter)?;
            parts.push(part_of(&store, instance)?);
        }
        super::linked::check_exports(&store, &parts, &links)?;
        let first = super::linked::Part {
            instance: parts[0].instance,
            memory: parts[0].memory,
            realloc: parts[0].realloc,
        };
        let process = Self::of(store, init, first, parts, links, config);
        debug_assert_eq!(process.parts.len(), 1 + exporters.len(), "a part a module");
        Ok(process)
    }

    fn of(
        mut store: Store<HostData>,
        init: wasmi::Func,
        part: super::linked::Part,
        parts: Vec<super::linked::Part>,
        links: Arc<[super::compose::Link]>,
        config: Arc<WasmConfig>,
    ) -> Self {
        store.data_mut().memory = Some(part.memory);
        let slice = config.fuel_slice;
        Self {
            store,
            init,
            memory: part.memory,
            realloc: part.realloc,
            config,
            parts,
            current: 0,
            frames: Vec::new(),
            links,
            outputs: Vec::new(),
            run: Run::Fresh,
            prints: VecDeque::new(),
            granted: slice,
            burnt: 0,
            trap_at: None,
            suspensions: 0,
            fuel_total: 0,
            debt: 0,
            output: super::wasi::OutputLines::default(),
        }
    }

    /// How many times the guest suspended in an import (a host round trip), over its life;
    /// sends and the blob queries the host can answer in place do not suspend.
    pub fn suspensions(&self) -> u64 {
        self.suspensions
    }

    /// Bytes of linear memory the process holds now.
    pub fn memory_size(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    pub(super) fn refuel(&mut self, at_least: u64) -> Result<(), String> {
        self.settle_fuel();
        self.granted = self.config.fuel_slice.max(at_least);
        if let Some(point) = self.trap_at {
            self.granted = self.granted.min(point.saturating_sub(self.burnt).max(1));
        }
        // Host work not yet paid for comes out of the grant (counted as burnt when settled),
        // never out of what the next instruction needs.
        let paid = self.debt.min(self.granted.saturating_sub(at_least));
        self.debt -= paid;
        debug_assert!(paid <= self.granted, "a debt is paid from the grant");
        self.store
            .set_fuel(self.granted - paid)
            .map_err(|e| format!("fuel: {e}"))
    }

    /// Charges the guest for host work: [`HOST_CALL_FUEL`] per call and one fuel per
    /// [`HOST_BYTES_PER_FUEL`] bytes the call touched (lifted, filled, printed), taken from
    /// its fuel now and, past what it has, from its next grants. So host work is bounded per
    /// step like guest work (a 60 MB `random_get` in a loop once made one step endless) and is
    /// charged as time.
    pub(super) fn charge_host(&mut self, bytes: u64) {
        let cost = HOST_CALL_FUEL.saturating_add(bytes / HOST_BYTES_PER_FUEL);
        let left = self.store.get_fuel().unwrap_or(0);
        let taken = cost.min(left);
        // Setting fuel on a store with fuel metering on cannot fail.
        let _ = self.store.set_fuel(left - taken);
        self.debt = self.debt.saturating_add(cost - taken);
        debug_assert!(
            self.store.get_fuel().unwrap_or(0) <= left,
            "a charge never adds fuel"
        );
    }

    /// Adds what the guest burnt of its last grant to `burnt`.
    fn settle_fuel(&mut self) {
        let left = self.store.get_fuel().unwrap_or(0);
        self.burnt = self.burnt.saturating_add(self.granted.saturating_sub(left));
        self.granted = left;
    }

    pub(super) fn guest(&mut self) -> Lowering<'_> {
        Lowering {
            store: &mut self.store,
            memory: self.memory,
            realloc: self.realloc,
            reserve: self.config.realloc_reserve,
        }
    }

    fn start(&mut self, ctx: &mut ProcessContext<'_>) -> Result<ResumableCall, String> {
        let our = ctx.our().to_string();
        let ptr = self
            .guest()
            .copy_in(our.as_bytes())
            .map_err(|e| e.to_string())?;
        self.refuel(0)?;
        let args = [
            wasmi::Val::I32(ptr as i32),
            wasmi::Val::I32(our.len() as i32),
        ];
        self.init
            .call_resumable(&mut self.store, &args, &mut self.outputs)
            .map_err(|e| self.describe(&e))
    }

    /// Lowers `ok((source, message))` for a blocked call by the typed fast path and resumes it.
    fn answer_ok(
        &mut self,
        call: ResumableCallHostTrap,
        func: Func,
        retptr: u32,
        source: &crate::types::Address,
        message: &crate::types::Message,
    ) -> Result<ResumableCall, String> {
        let layout = wit::import_of(func)
            .result
            .as_ref()
            .ok_or("a blocking call without a result")?;
        super::fast::store_ok_received(&mut self.guest(), layout, retptr, source, message)
            .map_err(|e| format!("lowering the result of {func:?}: {e}"))?;
        self.refuel(0)?;
        call.resume(&mut self.store, &[], &mut self.outputs)
            .map_err(|e| self.describe(&e))
    }

    /// Lowers `result` for a blocked call and resumes it.
    fn answer(
        &mut self,
        call: ResumableCallHostTrap,
        func: Func,
        retptr: u32,
        result: Val,
    ) -> Result<ResumableCall, String> {
        let layout = wit::import_of(func)
            .result
            .as_ref()
            .ok_or("a blocking call without a result")?;
        abi::store(&mut self.guest(), layout, &result, retptr)
            .map_err(|e| format!("lowering the result of {func:?}: {e}"))?;
        self.refuel(0)?;
        call.resume(&mut self.store, &[], &mut self.outputs)
            .map_err(|e| self.describe(&e))
    }

    fn resume_with(&mut self, wake: Wake) -> Result<ResumableCall, String> {
        let run = std::mem::replace(&mut self.run, Run::Done);
        match (run, wake) {
            (
                Run::Blocked {
                    call,
                    func: Func::Receive,
                    retptr,
                },
                Wake::Received(received),
            ) => {
                let value = match received {
                    Ok((source, message)) => {
                        return self.answer_ok(call, Func::Receive, retptr, &source, &message);
                    }
                    Err((error, context)) => Err(Val::Record(vec![
                        wit::send_error_val(error),
                        wit::option_of(context, Val::Bytes),
                    ])),
                };
                self.answer(call, Func::Receive, retptr, wit::result_val(value))
            }
            (
                Run::Blocked {
                    call,
                    func: Func::SendAndAwaitResponse,
                    retptr,
                },
                Wake::Awaited(awaited),
            ) => {
                let value = match awaited {
                    Ok((source, message)) => {
                        let func = Func::SendAndAwaitResponse;
                        return self.answer_ok(call, func, retptr, &source, &message);
                    }
                    Err(error) => Err(wit::send_error_val(error)),
                };
                self.answer(
                    call,
                    Func::SendAndAwaitResponse,
                    retptr,
                    wit::result_val(value),
                )
            }
            (Run::Paused { call, results }, Wake::Resume) => {
                self.refuel(0)?;
                call.resume(&mut self.store, &results, &mut self.outputs)
                    .map_err(|e| self.describe(&e))
            }
            (Run::Preempted(call), Wake::Resume) => {
                self.refuel(call.required_fuel())?;
                call.resume(&mut self.store, &mut self.outputs)
                    .map_err(|e| self.describe(&e))
            }
            (_, wake) => Err(format!(
                "woken with {wake:?} in a state that cannot take it"
            )),
        }
    }

    /// Applies the deferred sends, in the order the guest made them (`defer.rs`).
    ///
    /// # Errors
    /// The kernel refused a request (`SyscallError::Overloaded`): the process fails with the
    /// reason, and the sends after it are not made.
    fn flush(&mut self, ctx: &mut ProcessContext<'_>) -> Result<(), String> {
        let data = self.store.data_mut();
        data.outbox_len = 0;
        let mut outbox = std::mem::take(&mut data.outbox);
        let mut refused = None;
        for deferred in outbox.drain(..) {
            if refused.is_some() {
                continue;
            }
            match deferred {
                Deferred::Request(target, request, context, blob) => {
                    if let Err(error) = ctx.try_send_request(target, request, context, blob) {
                        refused = Some(format!("send-request: {error}"));
                    }
                }
                Deferred::Response(response, blob) => ctx.send_response(response, blob),
            }
        }
        self.store.data_mut().outbox = outbox;
        refused.map_or(Ok(()), Err)
    }

    /// Runs the guest until it blocks, yields, returns or fails. Control comes back here
    /// after every stretch of guest code; the deferred sends of that stretch go first.
    fn drive(&mut self, ctx: &mut ProcessContext<'_>, mut result: ResumableCall) -> Flow {
        loop {
            if let Err(reason) = self.flush(ctx) {
                return self.fail(reason);
            }
            let call = match result {
                ResumableCall::Finished if !self.frames.is_empty() => {
                    // A linked function returned to its caller.
                    result = match self.return_linked() {
                        Ok(result) => result,
                        Err(reason) => return self.fail(reason),
                    };
                    continue;
                }
                ResumableCall::Finished => {
                    self.run = Run::Done;
                    return Flow::Return;
                }
                ResumableCall::OutOfFuel(call) => {
                    self.run = Run::Preempted(call);
                    if let Some(fuel) = self.trap_reached() {
                        ctx.trapped_at(fuel);
                        return self.fail(format!("fault: trapped after {fuel} fuel"));
                    }
                    return Flow::Yield;
                }
                ResumableCall::HostTrap(call) => call,
            };
            result = match self.suspended(ctx, call) {
                Ok(result) => result,
                Err(flow) => return flow,
            };
        }
    }

    /// Serves the syscall the guest is suspended in (`call`): the call to continue with, or
    /// the flow that hands control back to the scheduler.
    fn suspended(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        call: ResumableCallHostTrap,
    ) -> Result<ResumableCall, Flow> {
        self.suspensions += 1;
        if let Some(GuestError(reason)) = call.host_error().downcast_ref::<GuestError>() {
            let reason = reason.clone();
            return Err(self.fail(reason));
        }
        if call.host_error().downcast_ref::<Syscall>().is_none() {
            let reason = format!("host error: {}", call.host_error());
            return Err(self.fail(reason));
        }
        let taken = self.store.data_mut().call.take();
        if let Some((Import::Linked(link), args)) = taken {
            return self
                .call_linked(usize::from(link), args.as_slice(), call)
                .map_err(|reason| self.fail(reason));
        }
        let next = match taken {
            Some((Import::Standard(func), args)) => self.serve(ctx, func, args.as_slice()),
            Some((Import::Wasi(func), args)) => Ok(self.serve_wasi(ctx, func, args.as_slice())),
            Some((Import::Linked(_), _)) | None => Err("suspended without a syscall".into()),
        };
        match next {
            Ok(Next::Resume(values)) => call
                .resume(&mut self.store, &values, &mut self.outputs)
                .map_err(|error| {
                    let reason = self.describe(&error);
                    self.fail(reason)
                }),
            Ok(Next::Block(flow, func, retptr)) => {
                self.run = Run::Blocked { call, func, retptr };
                Err(flow)
            }
            Ok(Next::Pause(flow, results)) => {
                debug_assert!(matches!(flow, Flow::Yield | Flow::Sleep(_)), "{flow:?}");
                self.run = Run::Paused { call, results };
                Err(flow)
            }
            Ok(Next::End(flow)) => {
                self.run = Run::Done;
                Err(flow)
            }
            Err(reason) => Err(self.fail(reason)),
        }
    }

    /// The fuel burnt in this run, if it reached the armed trap point.
    fn trap_reached(&mut self) -> Option<u64> {
        let point = self.trap_at?;
        self.settle_fuel();
        (self.burnt >= point).then_some(self.burnt)
    }

    fn fail(&mut self, reason: String) -> Flow {
        self.run = Run::Done;
        if self.prints.is_empty() {
            return Flow::Fail(reason);
        }
        let lines: Vec<&str> = self.prints.iter().map(String::as_str).collect();
        Flow::Fail(format!("{reason}; last printed: {}", lines.join(" | ")))
    }

    pub(super) fn describe(&self, error: &wasmi::Error) -> String {
        if let Some(reason) = &self.store.data().limits.denied {
            return format!("trap: {reason}");
        }
        match error.as_trap_code() {
            Some(code) => format!("trap: {code}"),
            None => format!("error: {error}"),
        }
    }

    pub(crate) fn remember_print(&mut self, text: &str) {
        if self.config.last_prints == 0 {
            return;
        }
        if self.prints.len() == self.config.last_prints {
            self.prints.pop_front();
        }
        self.prints.push_back(crate::wire::bounded_str(
            text,
            crate::kernel::PRINT_TEXT_MAX,
        ));
    }

    /// Serves WASI call `func` (`wasi.rs`): output is printed and remembered, `proc_exit`
    /// ends the run with its code.
    fn serve_wasi(&mut self, ctx: &mut ProcessContext<'_>, func: WasiFunc, args: &[u64]) -> Next {
        let touched = match func {
            WasiFunc::RandomGet => args.get(1).copied().unwrap_or(0),
            _ => 0,
        };
        let memory = self.memory.data_mut(&mut self.store);
        let served = wasi::serve(ctx, memory, &mut self.output, func, args);
        let printed = match &served {
            wasi::Served::Output(lines, _) => lines.iter().map(|l| l.len() as u64).sum(),
            _ => 0,
        };
        self.charge_host(touched.saturating_add(printed));
        let errno = |errno: i32| vec![wasmi::Val::I32(errno)];
        match served {
            wasi::Served::Errno(value) => Next::Resume(errno(value)),
            wasi::Served::Output(lines, value) => {
                self.print_lines(ctx, lines);
                Next::Resume(errno(value))
            }
            wasi::Served::Pause(flow, value) => Next::Pause(flow, errno(value)),
            wasi::Served::Exit(code) => {
                let lines = self.output.flush();
                self.print_lines(ctx, lines);
                if code == 0 {
                    Next::End(Flow::Return)
                } else {
                    Next::End(self.fail(format!("proc_exit({code})")))
                }
            }
        }
    }

    fn print_lines(&mut self, ctx: &mut ProcessContext<'_>, lines: Vec<String>) {
        for line in lines {
            ctx.print_to_terminal(0, &line);
            self.remember_print(&line);
        }
    }

    /// Lifts the arguments of `func`, serves it, and lowers its result.
    fn serve(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        func: Func,
        args: &[u64],
    ) -> Result<Next, String> {
        if super::defer::is_deferred(func) {
            // The outbox outgrew `deferred_len_max`: the top of `drive` has just handed it to
            // the kernel; the send itself is in it.
            return Ok(Next::Resume(Vec::new()));
        }
        let import = wit::import_of(func);
        let mem = self.memory.data(&self.store);
        let budget = &mut abi::Budget::new(self.config.lift_len_max);
        let lifted = if import.indirect() {
            let ptr = *args.first().ok_or("missing parameter pointer")? as u32;
            abi::load(mem, &import.params, ptr, budget)
        } else {
            abi::lift_flat(mem, &import.params, &mut FlatArgs::new(args), budget)
        };
        let used = budget.used();
        self.charge_host(used);
        let params = match lifted.map_err(|e| format!("{}: {e}", import.name))? {
            Val::Record(params) => params,
            _ => return Err("parameters are not a record".into()),
        };
        let retptr = if import.retptr() {
            args.last().map(|p| *p as u32)
        } else {
            None
        };
        if matches!(func, Func::HasBlob | Func::GetBlob | Func::LastBlob) {
            // From now on the host answers blob queries it knows in place (`inline.rs`).
            let data = self.store.data_mut();
            data.asks_blobs = true;
            data.blobs = Some(super::inline::Blobs::of(ctx));
        }
        let call = super::syscalls::decode(func, params)?;
        let value = match super::syscalls::serve(self, ctx, call)? {
            Served::Value(value) => value,
            Served::Block(flow) => {
                let retptr = retptr.ok_or("a blocking call without a result pointer")?;
                return Ok(Next::Block(flow, func, retptr));
            }
        };
        match (value, retptr) {
            (None, _) => Ok(Next::Resume(Vec::new())),
            (Some(Val::Bool(b)), None) => Ok(Next::Resume(vec![wasmi::Val::I32(i32::from(b))])),
            (Some(value), Some(retptr)) => {
                let layout = import
                    .result
                    .as_ref()
                    .ok_or("a result for a function without one")?;
                abi::store(&mut self.guest(), layout, &value, retptr)
                    .map_err(|e| format!("{}: {e}", import.name))?;
                Ok(Next::Resume(Vec::new()))
            }
            (Some(_), None) => Err(format!(
                "{}: a result without a result pointer",
                import.name
            )),
        }
    }
}

/// A store with the process's limits and its first fuel slice.
fn new_store(
    engine: &Engine,
    config: &WasmConfig,
    budget: super::limits::Budget,
) -> Result<Store<HostData>, LoadError> {
    let limits = super::limits::Limits::new(config, budget);
    let mut store = Store::new(engine, HostData::new(limits, config));
    store.limiter(|data| &mut data.limits);
    store
        .set_fuel(config.fuel_slice)
        .map_err(|e| LoadError(format!("fuel: {e}")))?;
    Ok(store)
}

fn instance_of(
    store: &mut Store<HostData>,
    linker: &Linker<HostData>,
    module: &Module,
) -> Result<Instance, LoadError> {
    match linker.instantiate_and_start(&mut *store, module) {
        Ok(instance) => Ok(instance),
        Err(error) => {
            let reason = store.data_mut().limits.denied.take();
            let why = reason.unwrap_or_else(|| error.to_string());
            Err(LoadError(format!("instantiation failed: {why}")))
        }
    }
}

/// An instance's memory and allocator.
fn part_of(store: &Store<HostData>, instance: Instance) -> Result<super::linked::Part, LoadError> {
    let missing = |what: &str| LoadError(format!("module does not export `{what}`"));
    let memory = instance
        .get_memory(store, "memory")
        .ok_or_else(|| missing("memory"))?;
    let realloc = instance
        .get_typed_func::<(i32, i32, i32, i32), i32>(store, "cabi_realloc")
        .map_err(|_| missing("cabi_realloc"))?;
    Ok(super::linked::Part {
        instance,
        memory,
        realloc,
    })
}

/// What a syscall produced.
pub(crate) enum Served {
    /// Its result (`None` for functions without one).
    Value(Option<Val>),
    /// It blocks the process.
    Block(Flow),
}

impl Process for WasmProcess {
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        self.trap_at = ctx.trap_point();
        if matches!(wake, Wake::Received(_) | Wake::Awaited(_)) {
            // A delivery changed the blob state (`inline.rs`).
            let data = self.store.data_mut();
            data.blobs = data.asks_blobs.then(|| super::inline::Blobs::of(ctx));
        }
        let result = match (&self.run, wake) {
            (Run::Fresh, Wake::Init) => self.start(ctx),
            (Run::Done, _) => Err("woken after it ended".into()),
            (_, wake) => self.resume_with(wake),
        };
        let flow = match result {
            Ok(result) => self.drive(ctx, result),
            Err(reason) => self.fail(reason),
        };
        // Sends made just before a trap that ended the run.
        let flow = match (self.flush(ctx), flow) {
            (Err(reason), Flow::Fail(first)) => Flow::Fail(format!("{first}; then {reason}")),
            (Err(reason), _) => self.fail(reason),
            (Ok(()), flow) => flow,
        };
        if matches!(self.run, Run::Done) {
            // Output the guest wrote and never ended with a newline.
            let lines = self.output.flush();
            self.print_lines(ctx, lines);
        }
        self.settle_fuel();
        self.trap_at = None;
        let burnt = std::mem::take(&mut self.burnt);
        self.fuel_total = self.fuel_total.saturating_add(burnt);
        ctx.charge_time(burnt.saturating_mul(1_000) / self.config.fuel_per_micro.max(1));
        flow
    }

    fn stats(&self) -> Option<crate::process::RuntimeStats> {
        Some(crate::process::RuntimeStats {
            memory_bytes: self.memory_size() as u64,
            fuel: self.fuel_total,
            suspensions: self.suspensions,
        })
    }
}

/// Lowering into a suspended guest: `cabi_realloc` runs on a fuel reserve that is charged
/// back afterwards, so a host-initiated allocation never runs out of fuel (it is not a
/// resumable call) and still costs the guest what it used.
pub(crate) struct Lowering<'a> {
    store: &'a mut Store<HostData>,
    memory: Memory,
    realloc: TypedFunc<(i32, i32, i32, i32), i32>,
    reserve: u64,
}

impl Lowering<'_> {
    fn copy_in(&mut self, bytes: &[u8]) -> Result<u32, AbiError> {
        let len = u32::try_from(bytes.len()).map_err(|_| AbiError::Shape("a string over 4 GiB"))?;
        let ptr = if bytes.is_empty() {
            1
        } else {
            self.alloc(1, len)?
        };
        self.write(ptr, bytes)?;
        Ok(ptr)
    }
}

impl GuestMemory for Lowering<'_> {
    fn alloc(&mut self, align: u32, size: u32) -> Result<u32, AbiError> {
        let fail = |e: &dyn std::fmt::Display| AbiError::Realloc(e.to_string());
        let saved = self.store.get_fuel().map_err(|e| fail(&e))?;
        self.store.set_fuel(self.reserve).map_err(|e| fail(&e))?;
        self.store.data_mut().lowering = true;
        let result = self
            .realloc
            .call(&mut *self.store, (0, 0, align as i32, size as i32));
        self.store.data_mut().lowering = false;
        let left = self.store.get_fuel().map_err(|e| fail(&e))?;
        let used = self.reserve - left;
        self.store
            .set_fuel(saved.saturating_sub(used))
            .map_err(|e| fail(&e))?;
        let ptr = result.map_err(|e| fail(&e))? as u32;
        let end = u64::from(ptr) + u64::from(size);
        if ptr == 0
            || !ptr.is_multiple_of(align)
            || end > self.memory.data_size(&*self.store) as u64
        {
            return Err(AbiError::Realloc(format!(
                "returned a bad block {ptr:#x} for {size} bytes"
            )));
        }
        Ok(ptr)
    }

    fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), AbiError> {
        self.memory
            .write(&mut *self.store, ptr as usize, bytes)
            .map_err(|_| AbiError::OutOfBounds {
                ptr,
                len: bytes.len() as u64,
            })
    }
}
