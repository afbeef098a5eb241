//! A composed process at run time (`compose.rs` finds its parts): the process module and the
//! exporters' modules are instances in one store, with one process context. A call of a linked
//! import suspends the caller like every import; the host lifts its arguments from the
//! caller's memory (bounded like every lift), lowers them into the exporter's memory through
//! its `cabi_realloc`, and runs the exporter's function as a resumable call of its own, which
//! may make syscalls, block and be preempted like any guest code. When it returns, the host
//! lifts the result from the exporter's memory, runs its post-return, lowers the result into
//! the caller's memory and resumes the caller. The calls in progress form a stack of frames;
//! whichever module runs is the one whose memory the host reads.

use super::abi::{self, Flat, FlatArgs, Layout, Val};
use super::compose::Link;
use super::process::WasmProcess;
use super::{HostData, Import, LoadError, RawArgs, Syscall};
use wasmi::{Func, Instance, Linker, Memory, ResumableCall, ResumableCallHostTrap, TypedFunc};

/// More flat parameters than this go through memory (canonical ABI `MAX_FLAT_PARAMS`).
const MAX_FLAT_PARAMS: usize = 16;

/// One module of a composed process.
pub(crate) struct Part {
    pub(crate) instance: Instance,
    pub(crate) memory: Memory,
    pub(crate) realloc: TypedFunc<(i32, i32, i32, i32), i32>,
}

/// A linked call in progress: the caller suspended in the import, waiting for the result.
pub(crate) struct Frame {
    call: ResumableCallHostTrap,
    /// The part that called.
    caller: usize,
    link: usize,
    /// Where the caller wants the result, when it goes through memory.
    retptr: Option<u32>,
    /// The caller's result buffer, given back when it resumes.
    outputs: Vec<wasmi::Val>,
}

fn indirect(link: &Link) -> bool {
    link.params.flat.len() > MAX_FLAT_PARAMS
}

fn result_in_memory(link: &Link) -> bool {
    link.result.as_ref().is_some_and(|r| r.flat.len() > 1)
}

fn val_type(flat: Flat) -> wasmi::ValType {
    match flat {
        Flat::I32 => wasmi::ValType::I32,
        Flat::I64 => wasmi::ValType::I64,
    }
}

/// The core type of `link` as the caller imports it (canonical ABI lowering).
pub(crate) fn import_type(link: &Link) -> wasmi::FuncType {
    let mut params: Vec<Flat> = if indirect(link) {
        vec![Flat::I32]
    } else {
        link.params.flat.clone()
    };
    if result_in_memory(link) {
        params.push(Flat::I32);
    }
    let results = match &link.result {
        Some(result) if result.flat.len() == 1 => result.flat.clone(),
        _ => Vec::new(),
    };
    wasmi::FuncType::new(
        params.into_iter().map(val_type),
        results.into_iter().map(val_type),
    )
}

/// The core type of `link` as the exporter exports it (canonical ABI lifting).
pub(crate) fn export_type(link: &Link) -> wasmi::FuncType {
    let params: Vec<Flat> = if indirect(link) {
        vec![Flat::I32]
    } else {
        link.params.flat.clone()
    };
    let results: Vec<Flat> = match &link.result {
        Some(result) if result.flat.len() > 1 => vec![Flat::I32],
        Some(result) => result.flat.clone(),
        None => Vec::new(),
    };
    wasmi::FuncType::new(
        params.into_iter().map(val_type),
        results.into_iter().map(val_type),
    )
}

/// Defines each linked import in `linker` as a host function that suspends the caller.
///
/// # Errors
/// A link's import cannot be defined (a name the linker has already).
pub(crate) fn link_imports(linker: &mut Linker<HostData>, links: &[Link]) -> Result<(), LoadError> {
    for (index, link) in links.iter().enumerate() {
        let index =
            u16::try_from(index).map_err(|_| LoadError("too many linked functions".into()))?;
        linker
            .func_new(
                &link.interface,
                &link.name,
                import_type(link),
                move |mut caller: wasmi::Caller<'_, HostData>, args, _results| {
                    super::callable(caller.data(), "a linked function")?;
                    caller.data_mut().call = Some((Import::Linked(index), RawArgs::new(args)));
                    Err(wasmi::Error::host(Syscall))
                },
            )
            .map_err(|e| LoadError(format!("linking {}: {e}", link.export())))?;
    }
    Ok(())
}

/// Checks that each link's exporter exports the function with its core type.
///
/// # Errors
/// A function is missing or has another type.
pub(crate) fn check_exports(
    store: &wasmi::Store<HostData>,
    parts: &[Part],
    links: &[Link],
) -> Result<(), LoadError> {
    for link in links {
        let part = &parts[1 + link.exporter];
        let Some(func) = part.instance.get_func(store, &link.export()) else {
            return Err(LoadError(format!(
                "the exporter of `{}` does not export `{}`",
                link.interface,
                link.export()
            )));
        };
        if func.ty(store) != export_type(link) {
            return Err(LoadError(format!(
                "`{}` has core type {:?}, expected {:?}",
                link.export(),
                func.ty(store),
                export_type(link)
            )));
        }
    }
    Ok(())
}

fn to_core(layout: &Layout, values: &[u64]) -> Vec<wasmi::Val> {
    values
        .iter()
        .zip(&layout.flat)
        .map(|(value, flat)| match flat {
            Flat::I32 => wasmi::Val::I32(*value as u32 as i32),
            Flat::I64 => wasmi::Val::I64(*value as i64),
        })
        .collect()
}

impl WasmProcess {
    /// Makes part `part` the running one: its memory is the one the host reads and lowers into.
    fn enter(&mut self, part: usize) {
        let (memory, realloc) = (self.parts[part].memory, self.parts[part].realloc);
        self.current = part;
        self.memory = memory;
        self.realloc = realloc;
        self.store.data_mut().memory = Some(memory);
        debug_assert!(self.current < self.parts.len(), "a part of the process");
        debug_assert!(
            self.store.data().memory.is_some(),
            "the host reads a memory"
        );
    }

    /// The caller (the running part, suspended in `call`) called link `index` with core
    /// arguments `args`: carries the arguments into the exporter and starts its function.
    pub(super) fn call_linked(
        &mut self,
        index: usize,
        args: &[u64],
        call: ResumableCallHostTrap,
    ) -> Result<ResumableCall, String> {
        let links = std::sync::Arc::clone(&self.links);
        let link = links.get(index).ok_or("a linked call of no link")?;
        let mem = self.memory.data(&self.store);
        let budget = &mut abi::Budget::new(self.config.lift_len_max);
        let params = if indirect(link) {
            let ptr = *args.first().ok_or("missing parameter pointer")? as u32;
            abi::load(mem, &link.params, ptr, budget)
        } else {
            abi::lift_flat(mem, &link.params, &mut FlatArgs::new(args), budget)
        }
        .map_err(|e| format!("{}: {e}", link.export()))?;
        self.charge_host(budget.used().saturating_mul(2));
        let retptr = result_in_memory(link)
            .then(|| args.last().map(|p| *p as u32))
            .flatten();
        let caller = self.current;
        debug_assert_eq!(
            caller, 0,
            "only the process module imports linked functions"
        );
        self.enter(1 + link.exporter);
        debug_assert_ne!(self.current, caller, "a linked call changes modules");
        let core_args = self.lower_params(link, &params)?;
        let func: Func = self.parts[self.current]
            .instance
            .get_func(&self.store, &link.export())
            .ok_or("the exporter lost its function")?;
        let results = export_type(link).results().len();
        let outputs = std::mem::replace(&mut self.outputs, vec![wasmi::Val::I32(0); results]);
        self.frames.push(Frame {
            call,
            caller,
            link: index,
            retptr,
            outputs,
        });
        // Exporters import no linked functions (`compose.rs`), so calls never nest.
        assert_eq!(self.frames.len(), 1, "one linked call at a time");
        self.refuel(0)?;
        func.call_resumable(&mut self.store, &core_args, &mut self.outputs)
            .map_err(|e| self.describe(&e))
    }

    fn lower_params(&mut self, link: &Link, params: &Val) -> Result<Vec<wasmi::Val>, String> {
        let place = |e: abi::AbiError| format!("{}: {e}", link.export());
        if indirect(link) {
            let mut guest = self.guest();
            let ptr = abi::GuestMemory::alloc(&mut guest, link.params.align, link.params.size)
                .map_err(place)?;
            debug_assert!(ptr.is_multiple_of(link.params.align), "an aligned block");
            abi::store(&mut guest, &link.params, params, ptr).map_err(place)?;
            return Ok(vec![wasmi::Val::I32(ptr as i32)]);
        }
        let mut flat = Vec::new();
        abi::lower_flat(&mut self.guest(), &link.params, params, &mut flat).map_err(place)?;
        debug_assert!(
            flat.len() <= MAX_FLAT_PARAMS,
            "flat parameters fit the core call"
        );
        Ok(to_core(&link.params, &flat))
    }

    /// The exporter's function returned (its results in `outputs`): carries the result back
    /// into the caller and resumes it.
    pub(super) fn return_linked(&mut self) -> Result<ResumableCall, String> {
        let frame = self.frames.pop().ok_or("a return with no linked call")?;
        let links = std::sync::Arc::clone(&self.links);
        let link = &links[frame.link];
        debug_assert_eq!(self.current, 1 + link.exporter, "the exporter returns");
        debug_assert_eq!(
            self.outputs.len(),
            export_type(link).results().len(),
            "the export's results"
        );
        let results: Vec<u64> = self.outputs.iter().map(super::core_bits).collect();
        let mem = self.memory.data(&self.store);
        let budget = &mut abi::Budget::new(self.config.lift_len_max);
        let value = match &link.result {
            None => None,
            Some(layout) if layout.flat.len() > 1 => {
                let ptr = *results.first().ok_or("a result pointer")? as u32;
                Some(abi::load(mem, layout, ptr, budget))
            }
            Some(layout) => Some(abi::lift_flat(
                mem,
                layout,
                &mut FlatArgs::new(&results),
                budget,
            )),
        }
        .transpose()
        .map_err(|e| format!("the result of {}: {e}", link.export()))?;
        self.charge_host(budget.used().saturating_mul(2));
        self.post_return(link)?;
        self.enter(frame.caller);
        self.outputs = frame.outputs;
        let resume = match (value, &link.result, frame.retptr) {
            (Some(value), Some(layout), Some(retptr)) => {
                abi::store(&mut self.guest(), layout, &value, retptr)
                    .map_err(|e| format!("{}: {e}", link.export()))?;
                Vec::new()
            }
            (Some(value), Some(layout), None) => {
                let mut flat = Vec::new();
                abi::lower_flat(&mut self.guest(), layout, &value, &mut flat)
                    .map_err(|e| format!("{}: {e}", link.export()))?;
                to_core(layout, &flat)
            }
            _ => Vec::new(),
        };
        self.refuel(0)?;
        frame
            .call
            .resume(&mut self.store, &resume, &mut self.outputs)
            .map_err(|e| self.describe(&e))
    }

    /// Runs the exporter's post-return, if it has one, on the fuel reserve host calls into a
    /// guest use (it is not resumable), charging what it used.
    fn post_return(&mut self, link: &Link) -> Result<(), String> {
        let instance = self.parts[self.current].instance;
        let Some(post) = instance.get_func(&self.store, &link.post_return()) else {
            return Ok(());
        };
        let saved = self.store.get_fuel().map_err(|e| e.to_string())?;
        let reserve = self.config.realloc_reserve;
        self.store.set_fuel(reserve).map_err(|e| e.to_string())?;
        self.store.data_mut().lowering = true;
        let outputs = std::mem::take(&mut self.outputs);
        let ran = post.call(&mut self.store, &outputs, &mut []);
        self.store.data_mut().lowering = false;
        let used = reserve - self.store.get_fuel().unwrap_or(0);
        self.store
            .set_fuel(saved.saturating_sub(used))
            .map_err(|e| e.to_string())?;
        ran.map_err(|e| format!("{}: {}", link.post_return(), self.describe(&e)))
    }
}
