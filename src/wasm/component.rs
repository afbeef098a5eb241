//! kit's build output: a process wrapped as a component.
//!
//! `kit build` runs `wasm-tools component new PROCESS.wasm --adapt
//! wasi_snapshot_preview1.reactor.wasm`: the process's core module goes inside a component
//! together with the WASI preview1 adapter (a core module that turns preview1 calls into
//! preview2 interfaces) and small shim modules that tie them together. The process module itself
//! imports only `hyperware:process/standard@1.0.0` and `wasi_snapshot_preview1`, as a module built
//! directly does, so the loader runs it directly and answers its preview1 calls itself where the
//! adapter would have translated them: the adapter and shims are plumbing a component runtime
//! needs and this one does not.
//!
//! Only that shape is accepted, and checked before anything runs: the component imports the
//! standard interface and WASI preview2 interfaces (for the adapter) and nothing else, exports
//! exactly `init`, holds no nested components, and exactly one of its core modules defines a
//! memory and exports `init` (the process); the others define no memory of their own. Anything
//! else is refused with the reason (`ComponentError`).

use std::fmt;
use std::ops::Range;
use wasmparser::{ComponentExternalKind, Parser, Payload};

/// Core modules a component may hold (kit's have four: the process, the adapter, two shims).
pub(crate) const MODULES_MAX: usize = 16;

/// The process interface a component must import (`wit/process.wit`).
pub(crate) const STANDARD: &str = "hyperware:process/standard@1.0.0";

/// Why a component cannot become a process.
#[derive(Debug)]
pub enum ComponentError {
    /// Not a valid component.
    Invalid(wasmparser::BinaryReaderError),
    /// It holds nested components (processes composed with `wasm-tools compose`).
    Nested,
    /// It imports something other than the standard interface and WASI.
    Import(String),
    /// It exports something other than `init`, or not `init`.
    Export(String),
    /// It holds more core modules than `MODULES_MAX`.
    Modules(usize),
    /// None or several of its modules define a memory and export `init`.
    ProcessModules(usize),
    /// A module that is not the process defines a memory (so it is more than plumbing).
    Plumbing(usize),
    /// A composition holds more nested components than `compose::PARTS_MAX`.
    Parts(usize),
    /// A composition's process imports an interface no nested component exports.
    NoExporter(String),
    /// Another shape the loader does not run, with the reason.
    Shape(String),
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "invalid component: {e}"),
            Self::Nested => f.write_str(
                "the component nests components inside nested components; a composition \
                 (`wasm-tools compose`) nests kit's process components one level deep",
            ),
            Self::Parts(n) => write!(
                f,
                "the composition holds {n} nested components, more than the {} allowed",
                super::compose::PARTS_MAX
            ),
            Self::NoExporter(name) => write!(
                f,
                "the process imports `{name}`, which no component of the composition exports \
                 (compose it with the crate that exports it: `wasm-tools compose PROCESS.wasm \
                 -d API.wasm`, as kit's build does)"
            ),
            Self::Shape(why) => write!(f, "the composition cannot run: {why}"),
            Self::Import(name) => write!(
                f,
                "the component imports `{name}`; a process component may import only \
                 `{STANDARD}` and `wasi:` interfaces, and others composed into it from the \
                 crate that exports them (`wasm-tools compose PROCESS.wasm -d API.wasm`, as \
                 kit's build does)"
            ),
            Self::Export(name) => write!(
                f,
                "the component exports {name}; a process component exports exactly `init`"
            ),
            Self::Modules(n) => write!(
                f,
                "the component holds {n} core modules, more than the {MODULES_MAX} allowed"
            ),
            Self::ProcessModules(n) => write!(
                f,
                "the component holds {n} core modules that define a memory and export `init`; \
                 exactly one (the process) is expected"
            ),
            Self::Plumbing(i) => write!(
                f,
                "core module {i} of the component defines a memory but is not the process; \
                 only the WASI adapter and shims may sit beside it"
            ),
        }
    }
}

impl std::error::Error for ComponentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            _ => None,
        }
    }
}

impl From<wasmparser::BinaryReaderError> for ComponentError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        Self::Invalid(e)
    }
}

/// Whether `code` is a component (a core module or anything else is not).
pub(crate) fn is_component(code: &[u8]) -> bool {
    code.len() >= 8 && code.starts_with(b"\0asm") && code[6..8] == [1, 0]
}

/// What a wasm binary holds, as the loader runs it.
#[derive(Debug)]
pub(crate) enum Shape<'a> {
    /// One process module: a core module, or the one inside kit's component.
    Module(&'a [u8]),
    /// Processes composed by `wasm-tools compose` (`compose.rs`).
    Composed(super::compose::Composition<'a>),
}

/// The shape of `code`: a core module as it is, a component of kit's shape unwrapped to its
/// process module, or a composition's parts.
///
/// # Errors
/// The component is invalid or of another shape (`ComponentError`).
pub(crate) fn shape(code: &[u8]) -> Result<Shape<'_>, ComponentError> {
    if !is_component(code) {
        return Ok(Shape::Module(code));
    }
    let types = wasmparser::Validator::new().validate_all(code)?;
    let outline = outline(code)?;
    if outline.nested {
        return super::compose::composition(code, &types).map(Shape::Composed);
    }
    the_process_module(code, &outline).map(Shape::Module)
}

/// The process module inside `code` if it is a component of the supported one-process shape;
/// `code` itself if it is not a component.
///
/// # Errors
/// The component is invalid or of another shape (`ComponentError`).
pub(crate) fn process_module(code: &[u8]) -> Result<&[u8], ComponentError> {
    if !is_component(code) {
        return Ok(code);
    }
    wasmparser::Validator::new().validate_all(code)?;
    let outline = outline(code)?;
    if outline.nested {
        return Err(ComponentError::Shape(
            "a composition where one process module was expected".into(),
        ));
    }
    the_process_module(code, &outline)
}

/// The process module of a (validated) one-process component whose top level is `outline`.
fn the_process_module<'a>(code: &'a [u8], outline: &Outline) -> Result<&'a [u8], ComponentError> {
    debug_assert!(!outline.nested, "one process, no composition");
    check_names(&outline.imports, &outline.exports)?;
    let mut process = None;
    let mut found = 0;
    for (index, range) in outline.modules.iter().enumerate() {
        let module = &code[range.clone()];
        let kind = module_kind(module)?;
        match kind {
            ModuleKind::Process => {
                found += 1;
                process = Some(module);
            }
            ModuleKind::Memory => return Err(ComponentError::Plumbing(index)),
            ModuleKind::Plumbing => {}
        }
    }
    let Some(process) = process.filter(|_| found == 1) else {
        return Err(ComponentError::ProcessModules(found));
    };
    debug_assert!(process.starts_with(b"\0asm"), "a core module's bytes");
    debug_assert!(process.len() < code.len(), "a part of the component");
    Ok(process)
}

/// A component's top level: its imports, exports and core modules.
struct Outline {
    imports: Vec<String>,
    exports: Vec<String>,
    modules: Vec<Range<usize>>,
    /// It holds nested components (a composition).
    nested: bool,
}

/// Reads the top level of a (validated) component.
fn outline(code: &[u8]) -> Result<Outline, ComponentError> {
    let mut outline = Outline {
        imports: Vec::new(),
        exports: Vec::new(),
        modules: Vec::new(),
        nested: false,
    };
    // The nested binaries being read (parse_all descends into each and ends it with `End`).
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(code) {
        match payload? {
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentSection { .. } => {
                outline.nested = true;
                depth += 1;
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                depth += 1;
                if outline.nested {
                    // A composition's modules are read by `compose.rs`.
                    continue;
                }
                if outline.modules.len() == MODULES_MAX {
                    return Err(ComponentError::Modules(MODULES_MAX + 1));
                }
                outline.modules.push(unchecked_range);
            }
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    outline.imports.push(import?.name.0.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export?;
                    if export.kind != ComponentExternalKind::Func {
                        return Err(ComponentError::Export(format!(
                            "`{}` as something other than a function",
                            export.name.0
                        )));
                    }
                    outline.exports.push(export.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    debug_assert_eq!(depth, 0, "every nested binary read to its end");
    Ok(outline)
}

/// A component imports the standard interface and WASI only, and exports `init` only.
pub(crate) fn check_names(imports: &[String], exports: &[String]) -> Result<(), ComponentError> {
    for name in imports {
        if name != STANDARD && !name.starts_with("wasi:") {
            return Err(ComponentError::Import(name.clone()));
        }
    }
    match exports {
        [name] if name == "init" => Ok(()),
        [] => Err(ComponentError::Export("nothing".into())),
        exports => {
            let names: Vec<String> = exports
                .iter()
                .filter(|name| *name != "init")
                .map(|name| format!("`{name}`"))
                .collect();
            Err(ComponentError::Export(names.join(", ")))
        }
    }
}

/// Whether a core module defines a memory of its own.
pub(crate) fn defines_memory(module: &[u8]) -> Result<bool, ComponentError> {
    Ok(module_kind(module)? != ModuleKind::Plumbing)
}

/// What one core module of a component is.
#[derive(Debug, PartialEq, Eq)]
enum ModuleKind {
    /// Defines a memory and exports `init`.
    Process,
    /// Defines a memory and does not export `init`.
    Memory,
    /// Defines no memory (the WASI adapter, which imports the process's, and the shims).
    Plumbing,
}

fn module_kind(module: &[u8]) -> Result<ModuleKind, ComponentError> {
    let mut memory = false;
    let mut init = false;
    for payload in Parser::new(0).parse_all(module) {
        match payload? {
            Payload::MemorySection(reader) => memory |= reader.count() > 0,
            Payload::ExportSection(reader) => {
                for export in reader {
                    init |= export?.name == "init";
                }
            }
            _ => {}
        }
    }
    Ok(match (memory, init) {
        (true, true) => ModuleKind::Process,
        (true, false) => ModuleKind::Memory,
        (false, _) => ModuleKind::Plumbing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_modules_pass_through() {
        let module = wat::parse_str("(module)").unwrap();
        assert!(!is_component(&module));
        assert_eq!(process_module(&module).unwrap(), &module[..]);
        assert!(!is_component(b"\0asm"));
    }

    /// A process module's text: a memory, `init` and `cabi_realloc`.
    const PROCESS: &str = r#"(core module $p
        (memory (export "memory") 1)
        (func (export "init") (param i32 i32))
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#;

    /// A component around `modules` (text), importing `imports` (interface names) and
    /// exporting `init` lifted from module `$p`'s instance.
    fn component(imports: &[&str], modules: &str) -> Vec<u8> {
        let imports: String = imports
            .iter()
            .map(|name| format!("(import \"{name}\" (instance))\n"))
            .collect();
        wat::parse_str(format!(
            r#"(component {imports} {modules}
                (core instance $i (instantiate $p))
                (func (export "init") (param "our" string)
                    (canon lift (core func $i "init") (memory (core memory $i "memory"))
                        (realloc (core func $i "cabi_realloc")))))"#
        ))
        .unwrap()
    }

    #[test]
    fn kits_shape_gives_its_process_module() {
        let code = component(&[STANDARD, "wasi:cli/environment@0.2.3"], PROCESS);
        assert!(is_component(&code));
        let module = process_module(&code).unwrap();
        assert!(!is_component(module));
        let exports = wasmparser::Parser::new(0)
            .parse_all(module)
            .filter_map(Result::ok)
            .any(|p| matches!(p, Payload::ExportSection(_)));
        assert!(exports, "the process module itself");
        // Plumbing beside it: a module with no memory of its own.
        let plumbing = format!("{PROCESS} (core module (func (export \"f\")))");
        assert_eq!(
            process_module(&component(&[STANDARD], &plumbing)).unwrap(),
            module
        );
    }

    #[test]
    fn the_loader_runs_a_components_process_module_compiled_once() {
        let code = component(&[STANDARD], PROCESS);
        let mut loader =
            super::super::WasmLoader::new(super::super::WasmConfig::default()).unwrap();
        assert!(loader.load_wasm(&code).is_ok());
        assert!(loader.load_wasm(&code).is_ok());
        assert_eq!(loader.compiled(), 1, "cached under the component's bytes");
        let refused = component(&["foo:bar/baz"], PROCESS);
        let error = loader.load_wasm(&refused).err().unwrap().to_string();
        assert!(
            error.starts_with("the component imports `foo:bar/baz`"),
            "{error}"
        );
        assert!(super::super::fuzzing::load(&code));
        assert!(!super::super::fuzzing::load(&refused));
    }

    #[test]
    fn other_shapes_are_refused_with_the_reason() {
        let error = |code: Vec<u8>| process_module(&code).unwrap_err().to_string();
        assert!(
            error(component(&["foo:bar/baz@1.0.0"], PROCESS))
                .contains("imports `foo:bar/baz@1.0.0`; a process component may import only")
        );
        let second = PROCESS.replace("$p", "$q");
        assert!(
            error(component(&[STANDARD], &format!("{PROCESS} {second}")))
                .contains("2 core modules that define a memory and export `init`")
        );
        let memory = format!("{PROCESS} (core module (memory 1))");
        assert!(error(component(&[STANDARD], &memory)).contains("core module 1 of the component"));
        let nested = format!("{PROCESS} (component)");
        assert!(error(component(&[STANDARD], &nested)).contains("a composition where one"));
        let many: String = (0..MODULES_MAX).map(|_| "(core module)").collect();
        let many = format!("{PROCESS} {many}");
        assert!(error(component(&[STANDARD], &many)).contains("17 core modules"));
        let mut broken = component(&[STANDARD], PROCESS);
        broken.truncate(broken.len() - 3);
        assert!(error(broken).starts_with("invalid component: "));
    }

    #[test]
    fn the_fuzz_targets_seeds_load_or_are_refused_as_they_should() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds/component");
        for (seed, loads) in [
            ("module.wasm", true),
            ("kit-shape.wasm", true),
            ("composition.wasm", true),
            ("nested.wasm", false),
        ] {
            let code = std::fs::read(dir.join(seed)).unwrap();
            assert_eq!(super::super::fuzzing::load(&code), loads, "{seed}");
        }
    }

    #[test]
    fn an_empty_component_has_no_init() {
        let component = wat::parse_str("(component)").unwrap();
        assert!(is_component(&component));
        let error = process_module(&component).unwrap_err();
        assert!(matches!(error, ComponentError::Export(ref what) if what == "nothing"));
    }
}
