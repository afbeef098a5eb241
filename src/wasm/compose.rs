//! Processes composed by kit (`wasm-tools compose PROCESS.wasm -d API.wasm`): a component that
//! nests the process's component and the components exporting the interfaces it imports (a
//! worker API, say), wired together.
//!
//! The loader runs the composition as one process: the process module and each exporter's
//! module instantiated in one store with one process context, the process's imports of an
//! exported interface linked to the exporter's functions through a host adapter that lifts the
//! arguments from one memory and lowers them into the other (and the result back), bounded
//! like every lift (`process.rs`). This module finds the parts and the links, with each linked
//! function's WIT type, and refuses other shapes with the reason:
//!
//! - the outer component imports `hyperware:process/standard@1.0.0` and `wasi:` interfaces and
//!   exports exactly `init`; beside its nested components it holds plumbing modules only;
//! - each nested component is of kit's one-process shape (`component.rs`), except that the
//!   process's may import interfaces the others export, and an exporter exports interfaces
//!   instead of `init`; nested components nest nothing;
//! - exactly one nested component exports `init` (the process); every interface it imports
//!   besides the standard one and WASI is exported by another nested component (an exporter
//!   itself imports only the standard interface and WASI);
//! - the linked functions' types are made of `bool`, `u8`, `u64`, `string`, lists, records,
//!   tuples, variants, enums, options and results (the canonical ABI the runtime carries).

use super::abi::Layout;
use super::component::{ComponentError, MODULES_MAX, STANDARD};
use std::ops::Range;
use wasmparser::component_types::{ComponentDefinedType, ComponentEntityType, ComponentValType};
use wasmparser::{Parser, Payload, PrimitiveValType};

/// Nested components a composition may hold.
pub(crate) const PARTS_MAX: usize = 8;

/// A composed process, as the loader runs it.
#[derive(Debug)]
pub(crate) struct Composition<'a> {
    /// The process module (it exports `init`).
    pub(crate) main: &'a [u8],
    /// The exporters' modules, in the composition's order.
    pub(crate) exporters: Vec<&'a [u8]>,
    /// Each function the process imports from an exporter.
    pub(crate) links: Vec<Link>,
}

/// One function the process imports from an exporter.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    /// The core import's module: the interface (`ns:pkg/iface@version`).
    pub(crate) interface: String,
    /// The function's name.
    pub(crate) name: String,
    /// Which exporter (an index into `Composition::exporters`).
    pub(crate) exporter: usize,
    /// The parameters, as a record.
    pub(crate) params: Layout,
    /// The result, if any.
    pub(crate) result: Option<Layout>,
}

impl Link {
    /// The exporter's core export of the function (`iface#name`).
    pub(crate) fn export(&self) -> String {
        format!("{}#{}", self.interface, self.name)
    }

    /// Its post-return function, which the exporter has when the result holds memory.
    pub(crate) fn post_return(&self) -> String {
        format!("cabi_post_{}", self.export())
    }
}

/// The nested components of a composition: each one's module ranges.
struct Nested {
    modules: Vec<Vec<Range<usize>>>,
    imports: Vec<String>,
    exports: Vec<String>,
}

/// Reads the outer component's imports and exports and each nested component's modules.
fn nested(code: &[u8]) -> Result<Nested, ComponentError> {
    let mut out = Nested {
        modules: Vec::new(),
        imports: Vec::new(),
        exports: Vec::new(),
    };
    // The nested binaries being read (parse_all descends into each and ends it with `End`).
    let mut depth = 0usize;
    let mut modules = 0;
    for payload in Parser::new(0).parse_all(code) {
        match payload? {
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentSection { .. } => {
                if depth == 0 {
                    if out.modules.len() == PARTS_MAX {
                        return Err(ComponentError::Parts(PARTS_MAX + 1));
                    }
                    out.modules.push(Vec::new());
                }
                // Deeper, a component that only gives an exported interface its type
                // (wit-component makes one per exported interface); one with code is refused
                // at its first module.
                depth += 1;
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let at = depth;
                depth += 1;
                modules += 1;
                if modules > MODULES_MAX * (PARTS_MAX + 1) {
                    return Err(ComponentError::Modules(modules));
                }
                match at {
                    0 if super::component::defines_memory(&code[unchecked_range.clone()])? => {
                        return Err(ComponentError::Plumbing(modules - 1));
                    }
                    0 => {}
                    1 => {
                        if let Some(part) = out.modules.last_mut() {
                            part.push(unchecked_range);
                        }
                    }
                    _ => return Err(ComponentError::Nested),
                }
            }
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    out.imports.push(import?.name.0.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    out.exports.push(export?.name.0.to_string());
                }
            }
            _ => {}
        }
    }
    debug_assert_eq!(depth, 0, "every nested binary read to its end");
    Ok(out)
}

/// A composition's parts: the process module and the exporters', found in `code` (a valid
/// component holding nested components), with the links between them.
///
/// # Errors
/// The composition is not of a shape the loader runs (module docs).
pub(crate) fn composition<'a>(
    code: &'a [u8],
    types: &wasmparser::types::Types,
) -> Result<Composition<'a>, ComponentError> {
    let nested = nested(code)?;
    super::component::check_names(&nested.imports, &nested.exports)?;
    if types.component_count() != nested.modules.len() {
        return Err(ComponentError::Shape(
            "it imports or aliases components; only nested ones are supported".into(),
        ));
    }
    let mut main = None;
    let mut exporters: Vec<(usize, &[u8])> = Vec::new();
    for (index, ranges) in nested.modules.iter().enumerate() {
        let process = part_module(code, ranges, index)?;
        let ty = &types[types.component_at(index as u32)];
        if ty.exports.contains_key("init") {
            if main.replace((index, process)).is_some() {
                return Err(ComponentError::ProcessModules(2));
            }
        } else {
            exporters.push((index, process));
        }
    }
    let Some((main_index, main)) = main else {
        return Err(ComponentError::ProcessModules(0));
    };
    let links = links(types, main_index, &exporters)?;
    for (index, _) in &exporters {
        let ty = &types[types.component_at(*index as u32)];
        if let Some(name) = ty.imports.keys().find(|n| !is_system(n)) {
            return Err(ComponentError::Shape(format!(
                "exporter component {index} imports `{name}`; an exporter may import only \
                 `{STANDARD}` and `wasi:` interfaces"
            )));
        }
    }
    debug_assert!(
        links.iter().all(|l| l.exporter < exporters.len()),
        "every link names an exporter"
    );
    Ok(Composition {
        main,
        exporters: exporters.into_iter().map(|(_, m)| m).collect(),
        links,
    })
}

fn is_system(name: &str) -> bool {
    name == STANDARD || name.starts_with("wasi:")
}

/// The module of nested component `index` that defines a memory (its process, or its
/// exporter's code); the others must be plumbing.
fn part_module<'a>(
    code: &'a [u8],
    ranges: &[Range<usize>],
    index: usize,
) -> Result<&'a [u8], ComponentError> {
    let mut found = None;
    for range in ranges {
        let module = &code[range.clone()];
        if super::component::defines_memory(module)? && found.replace(module).is_some() {
            return Err(ComponentError::Shape(format!(
                "nested component {index} holds two modules that define a memory"
            )));
        }
    }
    found.ok_or_else(|| {
        ComponentError::Shape(format!(
            "nested component {index} holds no module that defines a memory"
        ))
    })
}

/// The main component's imports of exported interfaces, function by function.
fn links(
    types: &wasmparser::types::Types,
    main: usize,
    exporters: &[(usize, &[u8])],
) -> Result<Vec<Link>, ComponentError> {
    let main_type = &types[types.component_at(main as u32)];
    let mut links = Vec::new();
    for (interface, entity) in &main_type.imports {
        if is_system(interface) {
            continue;
        }
        let exporter = exporters.iter().position(|(index, _)| {
            types[types.component_at(*index as u32)]
                .exports
                .contains_key(interface.as_str())
        });
        let Some(exporter) = exporter else {
            return Err(ComponentError::NoExporter(interface.clone()));
        };
        let ComponentEntityType::Instance(instance) = entity else {
            return Err(ComponentError::Shape(format!(
                "`{interface}` is imported as something other than an interface"
            )));
        };
        for (name, item) in &types[*instance].exports {
            let ComponentEntityType::Func(func) = item else {
                continue;
            };
            let func = &types[*func];
            let place = |what: String| format!("`{interface}` function `{name}`: {what}");
            let params = func
                .params
                .iter()
                .map(|(_, ty)| layout(types, *ty))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| ComponentError::Shape(place(e)))?;
            let result = func
                .result
                .map(|ty| layout(types, ty))
                .transpose()
                .map_err(|e| ComponentError::Shape(place(e)))?;
            links.push(Link {
                interface: interface.clone(),
                name: name.clone(),
                exporter,
                params: Layout::record(params),
                result,
            });
        }
    }
    Ok(links)
}

/// Nesting a WIT type may have before it is refused (a recursive shape cannot occur, but a
/// hostile component can nest deeply).
const DEPTH_MAX: usize = 32;

/// The runtime's layout of a WIT type, or why it has none.
fn layout(types: &wasmparser::types::Types, ty: ComponentValType) -> Result<Layout, String> {
    layout_at(types, ty, 0)
}

fn layout_at(
    types: &wasmparser::types::Types,
    ty: ComponentValType,
    depth: usize,
) -> Result<Layout, String> {
    if depth > DEPTH_MAX {
        return Err(format!("a type nested deeper than {DEPTH_MAX}"));
    }
    let inner = |ty: ComponentValType| layout_at(types, ty, depth + 1);
    let id = match ty {
        ComponentValType::Primitive(primitive) => return primitive_layout(primitive),
        ComponentValType::Type(id) => id,
    };
    Ok(match &types[id] {
        ComponentDefinedType::Primitive(primitive) => primitive_layout(*primitive)?,
        ComponentDefinedType::Record(record) => Layout::record(
            record
                .fields
                .values()
                .map(|ty| inner(*ty))
                .collect::<Result<_, _>>()?,
        ),
        ComponentDefinedType::Tuple(tuple) => Layout::record(
            tuple
                .types
                .iter()
                .map(|ty| inner(*ty))
                .collect::<Result<_, _>>()?,
        ),
        ComponentDefinedType::Variant(variant) => Layout::variant(
            variant
                .cases
                .values()
                .map(|case| case.ty.map(inner).transpose())
                .collect::<Result<_, _>>()?,
        ),
        ComponentDefinedType::List(element) => Layout::list(inner(*element)?),
        ComponentDefinedType::Enum(cases) => Layout::enumeration(cases.len()),
        ComponentDefinedType::Option(some) => Layout::option(inner(*some)?),
        ComponentDefinedType::Result { ok, err } => {
            Layout::result(ok.map(inner).transpose()?, err.map(inner).transpose()?)
        }
        ComponentDefinedType::Flags(_) => return Err("flags are not carried yet".into()),
        ComponentDefinedType::Own(_) | ComponentDefinedType::Borrow(_) => {
            return Err("resources cannot cross between modules of a process".into());
        }
        ComponentDefinedType::Future(_) | ComponentDefinedType::Stream(_) => {
            return Err("futures and streams are not supported".into());
        }
    })
}

fn primitive_layout(primitive: PrimitiveValType) -> Result<Layout, String> {
    Ok(match primitive {
        PrimitiveValType::Bool => Layout::bool(),
        PrimitiveValType::U8 => Layout::u8(),
        PrimitiveValType::U64 => Layout::u64(),
        PrimitiveValType::String => Layout::string(),
        other => return Err(format!("{other:?} is not carried yet")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process module: a memory, `init`, `cabi_realloc`, importing `imports` (core text).
    fn process(imports: &str) -> String {
        format!(
            r#"(core module $p {imports}
                (memory (export "memory") 1)
                (func (export "init") (param i32 i32))
                (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))
            (core instance $pi (instantiate $p))
            (func (export "init") (param "our" string)
                (canon lift (core func $pi "init") (memory (core memory $pi "memory"))
                    (realloc (core func $pi "cabi_realloc"))))"#
        )
    }

    /// A composition: the process importing interface `wanted` (a function `f: func(s: string)
    /// -> u64`), and an exporter exporting `given`.
    fn composed(wanted: &str, given: &str, ty: &str) -> Vec<u8> {
        let main = format!(
            r#"(component
                (import "{wanted}" (instance (export "f" (func (param "s" string) (result {ty})))))
                {})"#,
            process("")
        );
        let exporter = format!(
            r#"(component
                (core module $e
                    (memory (export "memory") 1)
                    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
                    (func (export "{given}#f") (param i32 i32) (result i64) i64.const 7))
                (core instance $ei (instantiate $e))
                (func $f (param "s" string) (result u64)
                    (canon lift (core func $ei "{given}#f") (memory (core memory $ei "memory"))
                        (realloc (core func $ei "cabi_realloc"))))
                (instance $api (export "f" (func $f)))
                (export "{given}" (instance $api)))"#
        );
        wat::parse_str(format!(
            r#"(component
                (import "{STANDARD}" (instance))
                {main}
                {exporter}
                (core module $shim (func (export "f")))
                (core instance $s (instantiate $shim))
                (func (export "init") (canon lift (core func $s "f"))))"#
        ))
        .unwrap()
    }

    fn parts(code: &[u8]) -> Result<Composition<'_>, ComponentError> {
        let types = wasmparser::Validator::new().validate_all(code)?;
        composition(code, &types)
    }

    #[test]
    fn a_composition_links_the_process_to_the_exporter_with_the_functions_type() {
        let code = composed("a:b/c@1.0.0", "a:b/c@1.0.0", "u64");
        let found = parts(&code).unwrap();
        assert_eq!(found.exporters.len(), 1);
        let [link] = found.links.as_slice() else {
            panic!("{:?}", found.links);
        };
        assert_eq!(
            (link.interface.as_str(), link.name.as_str()),
            ("a:b/c@1.0.0", "f")
        );
        assert_eq!(link.export(), "a:b/c@1.0.0#f");
        assert_eq!(link.post_return(), "cabi_post_a:b/c@1.0.0#f");
        assert_eq!(
            link.params.flat.len(),
            2,
            "a string is a pointer and a length"
        );
        assert_eq!(link.result.as_ref().map(|r| r.flat.len()), Some(1));
        assert!(found.main.len() < code.len() && found.exporters[0].len() < code.len());
    }

    #[test]
    fn an_import_no_part_exports_and_types_not_carried_are_refused() {
        let missing = composed("a:b/c@1.0.0", "x:y/z@1.0.0", "u64");
        let error = parts(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "the process imports `a:b/c@1.0.0`, which no component of the \
                               composition exports"
            ),
            "{error}"
        );
        let float = composed("a:b/c@1.0.0", "a:b/c@1.0.0", "f32");
        let error = parts(&float).unwrap_err().to_string();
        assert!(
            error.contains("`a:b/c@1.0.0` function `f`: F32 is not carried yet"),
            "{error}"
        );
        // The loader says the same, and never panics.
        let mut loader =
            super::super::WasmLoader::new(super::super::WasmConfig::default()).unwrap();
        let error = loader.load_wasm(&missing).err().unwrap().to_string();
        assert!(
            error.contains("which no component of the composition exports"),
            "{error}"
        );
    }
}
