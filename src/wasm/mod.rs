//! WASM processes on the wasmi interpreter (spec §4–§5).
//!
//! Guests are core modules built by stock `wit-bindgen` for `wasm32-unknown-unknown` against
//! `wit/process.wit`. Every import the guest calls suspends it (a resumable host trap that
//! carries only the raw core arguments); the process then lifts the arguments, runs the
//! syscall through [`ProcessContext`](crate::ProcessContext) with full access to the kernel,
//! lowers the result and resumes, all within one wake. `receive` and
//! `send-and-await-response` instead hand control back to the scheduler (`Flow::Receive`,
//! `Flow::Await`); running out of fuel is `Flow::Yield`. So a guest never holds the kernel, and
//! every syscall happens at a deterministic point.
//!
//! Determinism: Eager compilation (lazy translation charges fuel to whoever calls a function
//! first, and cannot resume out of fuel), wasmi's `deterministic` feature (canonical NaNs), and
//! fixed limits from [`WasmConfig`].

mod abi;
mod component;
mod compose;
mod defer;
mod fast;
#[doc(hidden)]
pub mod fuzzing;
mod inline;
mod limits;
mod linked;
mod process;
mod syscalls;
mod wasi;
mod wit;
#[cfg(test)]
mod wit_check;

pub use component::ComponentError;
pub use process::WasmProcess;

use crate::process::{NativeLoader, Process, ProcessLoader};
use crate::types::ProcessId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use wasmi::{CompilationMode, Config, Engine, ExternType, FuncType, Linker, Module, ValType};

/// Limits and scheduling of wasm processes; part of a run's determinism, like the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WasmConfig {
    /// Fuel a process may burn per wake before it is preempted (`Flow::Yield`).
    pub fuel_slice: u64,
    /// Fuel set aside for each host-initiated `cabi_realloc`, charged back afterwards.
    pub realloc_reserve: u64,
    /// Linear memory cap per process, in bytes; growing past it traps, and a module that
    /// declares more fails to load.
    pub memory_max: usize,
    /// Elements a table may have; a module that declares more fails to load, growing past
    /// it traps.
    pub table_elements_max: usize,
    /// Bytes of linear memory and tables (16 bytes an element) all processes of one loader
    /// (one kernel) may hold together; past it, loading fails and growth traps.
    pub total_memory_max: u64,
    /// Compiled modules the loader keeps, and their code bytes together; the least recently
    /// used go first.
    pub module_cache_len_max: usize,
    /// See `module_cache_len_max`.
    pub module_cache_bytes_max: u64,
    /// Call-stack depth cap (wasm frames).
    pub recursion_max: usize,
    /// Lines of `print-to-terminal` kept to explain a trap.
    pub last_prints: usize,
    /// Fuel that takes one simulated microsecond (wasmi runs about 1–2 G fuel/s).
    pub fuel_per_micro: u64,
    /// Host bytes the arguments of one call may take when lifted (strings, byte lists, list
    /// elements), checked before anything is copied; past it the guest fails with the reason.
    pub lift_len_max: u64,
    /// Bytes of sends a guest may have lifted and not yet handed to the kernel; past it the
    /// guest is suspended until the kernel has taken them (so a burst of large sends without
    /// a blocking call never piles up in the host).
    pub deferred_len_max: u64,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            fuel_slice: 1_000_000,
            realloc_reserve: 1_000_000,
            memory_max: 64 << 20,
            table_elements_max: 100_000,
            total_memory_max: 1 << 30,
            module_cache_len_max: 256,
            module_cache_bytes_max: 256 << 20,
            recursion_max: 1_000,
            last_prints: 4,
            fuel_per_micro: 1_000,
            lift_len_max: 80 << 20,
            deferred_len_max: 80 << 20,
        }
    }
}

/// Why a module cannot become a process (`InitializeProcessError`, before registration).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError(String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// What every store carries: its limits, the syscall a guest is suspended in, and the sends
/// it made since control last came back to the host (`defer.rs`).
pub(crate) struct HostData {
    pub(crate) limits: limits::Limits,
    /// The import the guest just called and its raw core arguments.
    call: Option<(Import, RawArgs)>,
    /// The guest's memory, once instantiated.
    memory: Option<wasmi::Memory>,
    /// Deferred sends, in call order.
    outbox: Vec<defer::Deferred>,
    /// Bytes the deferred sends took when lifted.
    outbox_len: u64,
    /// `WasmConfig::lift_len_max` and `deferred_len_max`.
    lift_len_max: u64,
    deferred_len_max: u64,
    /// The last `send-request` target, reused when named again.
    targets: fast::AddressCache,
    /// The host is lowering a result through `cabi_realloc`.
    lowering: bool,
    /// The kernel's blob state for this process, while known (`inline.rs`).
    blobs: Option<inline::Blobs>,
    /// The guest has asked for blobs, so deliveries take a snapshot.
    asks_blobs: bool,
}

impl HostData {
    fn new(limits: limits::Limits, config: &WasmConfig) -> Self {
        Self {
            limits,
            call: None,
            memory: None,
            outbox: Vec::new(),
            outbox_len: 0,
            lift_len_max: config.lift_len_max,
            deferred_len_max: config.deferred_len_max,
            targets: fast::AddressCache::default(),
            lowering: false,
            blobs: None,
            asks_blobs: false,
        }
    }
}

/// An import of either table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Import {
    /// `hyperware:process/standard@1.0.0`.
    Standard(wit::Func),
    /// `wasi_snapshot_preview1`.
    Wasi(wasi::WasiFunc),
    /// A composed process's linked function (its index in the links, `linked.rs`).
    Linked(u16),
}

/// A guest's bad input found by a host function that does not suspend: the process fails
/// with this reason.
#[derive(Debug)]
pub(crate) struct GuestError(pub(crate) String);

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl wasmi::errors::HostError for GuestError {}

/// The host error that suspends a guest at an import; anything else is a crash.
#[derive(Debug)]
pub(crate) struct Syscall;

impl fmt::Display for Syscall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("suspended in a syscall")
    }
}

impl wasmi::errors::HostError for Syscall {}

fn val_type(flat: abi::Flat) -> ValType {
    match flat {
        abi::Flat::I32 => ValType::I32,
        abi::Flat::I64 => ValType::I64,
    }
}

fn core_type(import: &wit::Import) -> FuncType {
    FuncType::new(
        import.core_params().into_iter().map(val_type),
        import.core_results().into_iter().map(val_type),
    )
}

/// A statically typed host function of `i32` parameters and no results, for `host_call`.
macro_rules! wrap_i32 {
    ($linker:expr, $name:expr, $func:expr $(, $arg:ident)*) => {
        $linker.func_wrap(
            wit::MODULE,
            $name,
            move |mut caller: wasmi::Caller<'_, HostData> $(, $arg: i32)*| {
                host_call(&mut caller, $func, &[$(wasmi::Val::I32($arg)),*], &mut [])
            },
        )
    };
}

/// Registers every import of the `standard` interface. A second import module (a WASI
/// preview1 shim) registers beside it the same way.
///
/// The shapes the interface has (`i32` parameters and nothing or one `i32` out) are statically
/// typed host functions, which wasmi calls without a per-call allocation. An import of another
/// shape is refused when the loader is made, so a new one cannot slip by untyped.
fn link_standard(linker: &mut Linker<HostData>) -> Result<(), LoadError> {
    use abi::Flat::I32;
    for import in wit::imports() {
        let (func, name) = (import.func, import.name);
        let linked = match (
            import.core_params().as_slice(),
            import.core_results().as_slice(),
        ) {
            ([], []) => wrap_i32!(linker, name, func),
            ([I32], []) => wrap_i32!(linker, name, func, a),
            ([I32, I32], []) => wrap_i32!(linker, name, func, a, b),
            ([I32, I32, I32], []) => wrap_i32!(linker, name, func, a, b, c),
            (params, []) if params.len() == 14 && params.iter().all(|p| matches!(p, I32)) => {
                wrap_i32!(linker, name, func, a, b, c, d, e, f, g, h, i, j, k, l, m, n)
            }
            ([], [I32]) => linker.func_wrap(
                wit::MODULE,
                name,
                move |mut caller: wasmi::Caller<'_, HostData>| {
                    let mut result = [wasmi::Val::I32(0)];
                    host_call(&mut caller, func, &[], &mut result)?;
                    Ok(result[0].i32().unwrap_or(0))
                },
            ),
            (params, results) => {
                return Err(LoadError(format!(
                    "linking {name}: no host function shape for {params:?} -> {results:?}"
                )));
            }
        };
        linked.map_err(|e| LoadError(format!("linking {name}: {e}")))?;
    }
    Ok(())
}

/// Whether import `name` may run now: not from the start function (before the memory is
/// known) and not from inside `cabi_realloc` while the host lowers a result.
#[inline]
pub(crate) fn callable(data: &HostData, name: &str) -> Result<(), wasmi::Error> {
    if data.memory.is_none() {
        let reason = format!("{name} called from the start function, before init");
        return Err(wasmi::Error::host(GuestError(reason)));
    }
    if data.lowering {
        let reason =
            format!("{name} called from inside cabi_realloc while the host lowers a result");
        return Err(wasmi::Error::host(GuestError(reason)));
    }
    Ok(())
}

/// The body of every import: a deferred send, a query answered in place, or a suspension
/// that `WasmProcess::drive` serves.
fn host_call(
    caller: &mut wasmi::Caller<'_, HostData>,
    func: wit::Func,
    args: &[wasmi::Val],
    results: &mut [wasmi::Val],
) -> Result<(), wasmi::Error> {
    callable(caller.data(), wit::import_of(func).name)?;
    if defer::is_deferred(func) {
        return defer::defer(caller, func, args);
    }
    if inline::serve(caller, func, args, results)? {
        return Ok(());
    }
    caller.data_mut().call = Some((Import::Standard(func), RawArgs::new(args)));
    Err(wasmi::Error::host(Syscall))
}

/// Registers the WASI preview1 shim (`wasi.rs`) beside `standard`. Its calls are rare (a
/// print, a clock reading, a sleep), so they take wasmi's untyped host functions.
fn link_wasi(linker: &mut Linker<HostData>) -> Result<(), LoadError> {
    for import in &wasi::IMPORTS {
        let (func, name) = (import.func, import.name);
        linker
            .func_new(
                wasi::MODULE,
                name,
                import.core_type(),
                move |mut caller: wasmi::Caller<'_, HostData>, args, _results| {
                    wasi_call(&mut caller, func, args)
                },
            )
            .map_err(|e| LoadError(format!("linking {name}: {e}")))?;
    }
    Ok(())
}

/// The body of every WASI import: a suspension that `WasmProcess::drive` serves.
fn wasi_call(
    caller: &mut wasmi::Caller<'_, HostData>,
    func: wasi::WasiFunc,
    args: &[wasmi::Val],
) -> Result<(), wasmi::Error> {
    callable(caller.data(), wasi::import_of(func).name)?;
    debug_assert!(caller.data().call.is_none(), "one suspension at a time");
    caller.data_mut().call = Some((Import::Wasi(func), RawArgs::new(args)));
    Err(wasmi::Error::host(Syscall))
}

/// Most core parameters an import has: the canonical ABI passes more through a pointer.
const FLAT_PARAMS_MAX: usize = 16;

/// An import's raw core arguments, without a heap allocation per call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawArgs {
    values: [u64; FLAT_PARAMS_MAX + 1],
    len: usize,
}

impl RawArgs {
    fn new(args: &[wasmi::Val]) -> Self {
        let mut values = [0; FLAT_PARAMS_MAX + 1];
        let len = args.len().min(values.len());
        for (slot, arg) in values.iter_mut().zip(args) {
            *slot = core_bits(arg);
        }
        Self { values, len }
    }

    pub(crate) fn as_slice(&self) -> &[u64] {
        &self.values[..self.len]
    }
}

pub(crate) fn core_bits(value: &wasmi::Val) -> u64 {
    match value {
        wasmi::Val::I32(v) => u64::from(*v as u32),
        wasmi::Val::I64(v) => *v as u64,
        _ => 0,
    }
}

/// Compiled modules by the xxh3 digest of their code, each with that code, bounded in
/// entries and code bytes; the least recently used is evicted first (300 distinct 1 MiB
/// modules once stayed resident, 635 MB).
#[derive(Default)]
struct ModuleCache {
    entries: BTreeMap<u64, Cached>,
    // Invariant: the sum of the entries' code lengths.
    bytes: u64,
    /// Ticks on every use, for recency.
    clock: u64,
}

struct Cached {
    code: Box<[u8]>,
    module: Compiled,
    used: u64,
}

/// What a binary compiles to.
#[derive(Clone)]
enum Compiled {
    /// One process module.
    One(Module),
    /// A composed process (`compose.rs`, `linked.rs`).
    Composed(Arc<Composed>),
}

/// A composed process's compiled modules, its links, and the linker that links the process
/// module's imports of the exporters.
struct Composed {
    main: Module,
    exporters: Vec<Module>,
    links: Arc<[compose::Link]>,
    linker: Linker<HostData>,
}

impl ModuleCache {
    fn get(&mut self, digest: u64, code: &[u8]) -> Option<Compiled> {
        self.clock += 1;
        let cached = self.entries.get_mut(&digest)?;
        if *cached.code != *code {
            return None;
        }
        cached.used = self.clock;
        Some(cached.module.clone())
    }

    fn insert(&mut self, digest: u64, code: &[u8], module: Compiled, config: &WasmConfig) {
        let len = code.len() as u64;
        if len > config.module_cache_bytes_max || config.module_cache_len_max == 0 {
            return;
        }
        if let Some(old) = self.entries.remove(&digest) {
            self.bytes -= old.code.len() as u64;
        }
        while self.entries.len() >= config.module_cache_len_max
            || self.bytes + len > config.module_cache_bytes_max
        {
            let Some((&oldest, _)) = self.entries.iter().min_by_key(|(_, c)| c.used) else {
                break;
            };
            if let Some(evicted) = self.entries.remove(&oldest) {
                self.bytes -= evicted.code.len() as u64;
            }
        }
        self.clock += 1;
        let cached = Cached {
            code: Box::from(code),
            module,
            used: self.clock,
        };
        self.entries.insert(digest, cached);
        self.bytes += len;
        debug_assert!(
            self.entries.len() <= config.module_cache_len_max,
            "entry bound"
        );
        debug_assert!(self.bytes <= config.module_cache_bytes_max, "byte bound");
    }
}

/// Loads wasm modules as processes; code that is not wasm goes to a native loader.
pub struct WasmLoader {
    engine: Engine,
    linker: Arc<Linker<HostData>>,
    config: Arc<WasmConfig>,
    /// Compiled modules by code digest, with their code (a hit must match it byte for byte,
    /// so a digest collision compiles instead of running the wrong module), shared with the
    /// loaders `share` made: Eager compilation is paid once per module.
    modules: Rc<RefCell<ModuleCache>>,
    /// The memory and tables this loader's processes hold (one kernel's budget).
    budget: limits::Budget,
    native: NativeLoader,
}

impl WasmLoader {
    /// A loader with `config`.
    ///
    /// # Errors
    /// The engine cannot be configured (never for the defaults).
    pub fn new(config: WasmConfig) -> Result<Self, LoadError> {
        let mut engine_config = Config::default();
        engine_config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .set_max_recursion_depth(config.recursion_max)
            .ignore_custom_sections(true);
        let engine = Engine::new(&engine_config);
        let mut linker = Linker::new(&engine);
        link_standard(&mut linker)?;
        link_wasi(&mut linker)?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            config: Arc::new(config),
            modules: Rc::default(),
            budget: limits::Budget::default(),
            native: NativeLoader::new(),
        })
    }

    /// A loader on the same engine and configuration that shares this one's compiled
    /// modules, with an empty native loader. A simulation makes one per run, so each module
    /// is compiled once per thread instead of once per run; what a run compiles, the next
    /// one finds. Compilation is not observable by guests, so runs stay deterministic.
    #[must_use]
    pub fn share(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            linker: Arc::clone(&self.linker),
            config: Arc::clone(&self.config),
            modules: Rc::clone(&self.modules),
            budget: limits::Budget::default(),
            native: NativeLoader::new(),
        }
    }

    /// Sends code that is not wasm to `native` (runtime modules, test processes).
    #[must_use]
    pub fn with_native(mut self, native: NativeLoader) -> Self {
        self.native = native;
        self
    }

    /// How many modules are compiled and cached (shared by the loaders `share` made).
    pub fn compiled(&self) -> usize {
        self.modules.borrow().entries.len()
    }

    /// Code bytes of the cached modules.
    pub fn compiled_bytes(&self) -> u64 {
        self.modules.borrow().bytes
    }

    /// Bytes of linear memory and tables this loader's live processes hold
    /// (`WasmConfig::total_memory_max` bounds it).
    pub fn memory_in_use(&self) -> u64 {
        self.budget.used()
    }

    fn module(&mut self, code: &[u8]) -> Result<Compiled, LoadError> {
        let digest = xxhash_rust::xxh3::xxh3_64(code);
        if let Some(module) = self.modules.borrow_mut().get(digest, code) {
            return Ok(module);
        }
        // A component built by kit holds the process module (or a composition's modules); it
        // is cached under the component's bytes, so unwrapping is paid once like compiling.
        let shape = component::shape(code).map_err(|e| LoadError(e.to_string()))?;
        let compiled = match shape {
            component::Shape::Module(process) => {
                // Validated in full before wasmi translates it: wasmi 2.0 translates each
                // operator as it validates, and one past a function's final `end` trips an
                // assertion in its translator (found by the `command_json` fuzz target) before
                // validation can refuse. A component's validation covered its modules.
                if !component::is_component(code) {
                    wasmparser::Validator::new()
                        .validate_all(process)
                        .map_err(|e| LoadError(format!("invalid wasm: {e}")))?;
                }
                let module = self.compile(process)?;
                check_module(&module, &[])?;
                Compiled::One(module)
            }
            component::Shape::Composed(composition) => self.compose(&composition)?,
        };
        let config = Arc::clone(&self.config);
        self.modules
            .borrow_mut()
            .insert(digest, code, compiled.clone(), &config);
        Ok(compiled)
    }

    fn compile(&self, code: &[u8]) -> Result<Module, LoadError> {
        Module::new(&self.engine, code).map_err(|e| LoadError(format!("invalid wasm: {e}")))
    }

    /// Compiles a composition's modules and links the process module's imports of the
    /// exporters.
    fn compose(&self, composition: &compose::Composition<'_>) -> Result<Compiled, LoadError> {
        let links: Arc<[compose::Link]> = Arc::from(composition.links.clone());
        let main = self.compile(composition.main)?;
        check_module(&main, &links)?;
        let mut exporters = Vec::with_capacity(composition.exporters.len());
        for code in &composition.exporters {
            let module = self.compile(code)?;
            check_exporter(&module)?;
            exporters.push(module);
        }
        let mut linker = (*self.linker).clone();
        linked::link_imports(&mut linker, &links)?;
        debug_assert_eq!(
            exporters.len(),
            composition.exporters.len(),
            "each compiled"
        );
        Ok(Compiled::Composed(Arc::new(Composed {
            main,
            exporters,
            links,
            linker,
        })))
    }

    /// Builds a process from wasm `code`: a core module, kit's component of one, or kit's
    /// composition of several (`compose.rs`).
    ///
    /// # Errors
    /// Invalid wasm, a missing or mistyped `init`/`memory`/`cabi_realloc`, an import the
    /// kernel does not provide, a component of a shape the loader does not run, or a failing
    /// instantiation.
    pub fn load_wasm(&mut self, code: &[u8]) -> Result<WasmProcess, LoadError> {
        let config = Arc::clone(&self.config);
        match self.module(code)? {
            Compiled::One(module) => WasmProcess::instantiate(
                &self.engine,
                &self.linker,
                &module,
                config,
                self.budget.clone(),
            ),
            Compiled::Composed(composed) => WasmProcess::instantiate_composed(
                &self.engine,
                (&composed.linker, &self.linker),
                (&composed.main, &composed.exporters),
                Arc::clone(&composed.links),
                config,
                self.budget.clone(),
            ),
        }
    }
}

impl ProcessLoader for WasmLoader {
    fn load(&mut self, process: &ProcessId, code: &[u8]) -> Result<Box<dyn Process>, String> {
        if code.starts_with(b"\0asm") {
            return self
                .load_wasm(code)
                .map(|p| Box::new(p) as Box<dyn Process>)
                .map_err(|e| e.0);
        }
        self.native.load(process, code)
    }
}

/// Checks exports and imports against the world `process-v1`; imports named by `links` (a
/// composed process's) must have their link's core type.
fn check_module(module: &Module, links: &[compose::Link]) -> Result<(), LoadError> {
    let want = |name: &str, ty: FuncType| -> Result<(), LoadError> {
        match module
            .exports()
            .find(|e| e.name() == name)
            .map(|e| e.ty().clone())
        {
            Some(ExternType::Func(found)) if found == ty => Ok(()),
            Some(ExternType::Func(found)) => Err(LoadError(format!(
                "export `{name}` has type {found:?}, expected {ty:?}"
            ))),
            Some(_) => Err(LoadError(format!("export `{name}` is not a function"))),
            None => Err(LoadError(format!("module does not export `{name}`"))),
        }
    };
    want("init", FuncType::new([ValType::I32, ValType::I32], []))?;
    want(
        "cabi_realloc",
        FuncType::new([ValType::I32; 4], [ValType::I32]),
    )?;
    if !module
        .exports()
        .any(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_)))
    {
        return Err(LoadError("module does not export `memory`".into()));
    }
    for import in module.imports() {
        let linked = links
            .iter()
            .find(|l| l.interface == import.module() && l.name == import.name());
        match (linked, import.ty()) {
            (Some(link), ExternType::Func(found)) if *found == linked::import_type(link) => {}
            (Some(link), found) => {
                return Err(LoadError(format!(
                    "import `{}::{}` has type {found:?}, expected {:?}",
                    link.interface,
                    link.name,
                    linked::import_type(link)
                )));
            }
            (None, ty) => check_import(import.module(), import.name(), ty)?,
        }
    }
    Ok(())
}

/// An exporter of a composed process exports its memory and allocator and imports only what
/// a process may (its functions are checked against the links at instantiation).
fn check_exporter(module: &Module) -> Result<(), LoadError> {
    let exports = |name: &str| module.exports().any(|e| e.name() == name);
    if !exports("memory") || !exports("cabi_realloc") {
        return Err(LoadError(
            "an exporter of the composition does not export `memory` and `cabi_realloc`".into(),
        ));
    }
    for import in module.imports() {
        check_import(import.module(), import.name(), import.ty())?;
    }
    Ok(())
}

/// Looks an import up in the table of its module and checks its type.
fn check_import(module: &str, name: &str, ty: &ExternType) -> Result<(), LoadError> {
    let expected = match module {
        wit::MODULE => wit::imports()
            .iter()
            .find(|i| i.name == name)
            .map(core_type),
        wasi::MODULE => match wasi::import_named(name) {
            Some(import) => Some(import.core_type()),
            None => {
                return Err(LoadError(format!(
                    "imports `{module}::{name}`, which the kernel's WASI shim does not provide \
                     (it has {})",
                    wasi::names()
                )));
            }
        },
        _ => None,
    };
    match (expected, ty) {
        (Some(expected), ExternType::Func(found)) if *found == expected => Ok(()),
        (Some(expected), found) => Err(LoadError(format!(
            "import `{module}::{name}` has type {found:?}, expected {expected:?}"
        ))),
        (None, _) if module.contains(':') && module.contains('/') => Err(LoadError(format!(
            "imports `{module}::{name}`, an interface the kernel does not provide: a process \
             that imports another crate's interface runs composed with it (`wasm-tools compose \
             PROCESS.wasm -d API.wasm`, as kit's build and `sim build` do)"
        ))),
        (None, _) => Err(LoadError(format!(
            "imports `{module}::{name}`, which the kernel does not provide"
        ))),
    }
}
