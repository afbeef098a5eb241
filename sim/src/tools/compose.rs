//! Composition as `kit build` does it, for a package whose processes import an interface
//! another crate of the package exports (kit's file-transfer template: a worker API).
//!
//! After the crates are built, a module that imports something besides the process interface
//! and WASI preview1 is an importer, and one that exports interface functions (`iface#func`)
//! and no `init` is an exporter. If the package has importers, every module is wrapped as kit
//! wraps it (`wasm-tools component new MODULE --adapt wasi_snapshot_preview1.wasm`, the adapter
//! of wasmtime 33.0.0 as kit pins it), each importer is composed with the exporters of what it
//! imports (`wasm-tools compose IMPORTER -d EXPORTER`), and the exporters leave `pkg/`, as kit
//! ships only what runs. A package without importers keeps its core modules.

use std::path::{Path, PathBuf};
use std::process::Command;
use wasmparser::{Parser, Payload};

/// The process interface and WASI preview1: imports every process may have.
const SYSTEM: [&str; 2] = ["hyperware:process/standard@1.0.0", "wasi_snapshot_preview1"];

/// What a built module imports besides the system, and which interfaces it exports.
#[derive(Debug, Default)]
struct Roles {
    imports: Vec<String>,
    exports: Vec<String>,
    init: bool,
}

fn roles(module: &Path) -> Result<Roles, String> {
    let bytes = crate::files::read_bytes(module, 256 << 20)
        .map_err(|e| format!("{}: {e}", module.display()))?;
    let mut roles = Roles::default();
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.map_err(|e| format!("{}: {e}", module.display()))? {
            Payload::ImportSection(reader) => {
                for import in reader {
                    let import = import.map_err(|e| e.to_string())?;
                    let name = import.module.to_string();
                    if !SYSTEM.contains(&import.module) && !roles.imports.contains(&name) {
                        roles.imports.push(name);
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    roles.init |= export.name == "init";
                    if let Some((interface, _)) = export.name.split_once('#')
                        && !export.name.starts_with("cabi_post_")
                        && !roles.exports.iter().any(|e| e == interface)
                    {
                        roles.exports.push(interface.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(roles)
}

fn wasm_tools(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let output = Command::new("wasm-tools")
        .args(args)
        .output()
        .map_err(|e| {
            format!(
                "wasm-tools is needed to compose processes as kit does ({e}): cargo install \
             wasm-tools --locked --version 1.225.0"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "wasm-tools {}: {}",
            args.first()
                .map_or(String::new(), |a| a.to_string_lossy().into_owned()),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Each importer with the exporters of what it imports (each once), all found before anything
/// is changed.
fn plan<'a>(
    modules: &'a [PathBuf],
    roles: &[Roles],
) -> Result<Vec<(&'a PathBuf, Vec<&'a PathBuf>)>, String> {
    let mut plan = Vec::new();
    for (module, role) in modules.iter().zip(roles) {
        let mut needs: Vec<&PathBuf> = Vec::new();
        for interface in &role.imports {
            let exporter = modules
                .iter()
                .zip(roles)
                .find(|(_, r)| !r.init && r.exports.contains(interface));
            let Some((exporter, _)) = exporter else {
                return Err(format!(
                    "{} imports `{interface}`, which no crate of its package exports",
                    module.display()
                ));
            };
            if !needs.contains(&exporter) {
                needs.push(exporter);
            }
        }
        if !needs.is_empty() {
            plan.push((module, needs));
        }
    }
    debug_assert!(!plan.is_empty(), "a package with imports has importers");
    Ok(plan)
}

/// Composes the package's `modules` (its `pkg/*.wasm` just built) as kit does, if any of them
/// imports another's interface; returns the modules `pkg/` keeps.
///
/// # Errors
/// A module imports an interface no module of the package exports, or `wasm-tools` is missing
/// or fails.
pub fn compose_package(modules: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let roles: Vec<Roles> = modules.iter().map(|m| roles(m)).collect::<Result<_, _>>()?;
    if roles.iter().all(|r| r.imports.is_empty()) {
        return Ok(modules.to_vec());
    }
    let plan = plan(modules, &roles)?;
    let scratch = tempfile::tempdir().map_err(|e| format!("a scratch directory: {e}"))?;
    let adapter = scratch.path().join("wasi_snapshot_preview1.wasm");
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    std::fs::write(&adapter, bytes).map_err(|e| format!("{}: {e}", adapter.display()))?;
    for module in modules {
        let m = module.as_os_str();
        let adapt = adapter.as_os_str();
        wasm_tools(&[
            "component".as_ref(),
            "new".as_ref(),
            m,
            "-o".as_ref(),
            m,
            "--adapt".as_ref(),
            adapt,
        ])?;
    }
    let mut exporters: Vec<&PathBuf> = Vec::new();
    for (module, needs) in plan {
        let m = module.as_os_str();
        let mut args: Vec<&std::ffi::OsStr> = vec!["compose".as_ref(), m];
        for exporter in &needs {
            args.extend(["-d".as_ref(), exporter.as_os_str()]);
        }
        args.extend(["-o".as_ref(), m]);
        wasm_tools(&args)?;
        for exporter in needs {
            if !exporters.contains(&exporter) {
                exporters.push(exporter);
            }
        }
    }
    for exporter in &exporters {
        std::fs::remove_file(exporter).map_err(|e| format!("{}: {e}", exporter.display()))?;
    }
    let kept: Vec<PathBuf> = modules
        .iter()
        .filter(|m| !exporters.contains(m))
        .cloned()
        .collect();
    debug_assert!(
        kept.len() + exporters.len() == modules.len(),
        "every module kept or composed"
    );
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, wat::parse_str(text).unwrap()).unwrap();
        path
    }

    #[test]
    fn roles_are_read_and_an_import_nobody_exports_is_named_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let main = module(
            dir.path(),
            "main.wasm",
            r#"(module (import "a:b/c@1.0.0" "f" (func)) (func (export "init")))"#,
        );
        let api = module(
            dir.path(),
            "api.wasm",
            r#"(module (func (export "x:y/z@1.0.0#g")) (func (export "cabi_post_x:y/z@1.0.0#g")))"#,
        );
        let plain = module(
            dir.path(),
            "plain.wasm",
            r#"(module (import "wasi_snapshot_preview1" "sched_yield" (func (result i32))))"#,
        );
        let roles_of = |p: &Path| roles(p).unwrap();
        assert_eq!(roles_of(&main).imports, ["a:b/c@1.0.0"]);
        assert!(roles_of(&main).init);
        assert_eq!(roles_of(&api).exports, ["x:y/z@1.0.0"]);
        assert!(
            roles_of(&plain).imports.is_empty(),
            "system imports are not composed"
        );
        let before = std::fs::read(&main).unwrap();
        let error = compose_package(&[main.clone(), api]).unwrap_err();
        assert!(
            error.ends_with("imports `a:b/c@1.0.0`, which no crate of its package exports"),
            "{error}"
        );
        assert_eq!(std::fs::read(&main).unwrap(), before, "nothing changed");
        // A package that imports nothing keeps its modules as they are.
        assert_eq!(
            compose_package(std::slice::from_ref(&plain)).unwrap(),
            [plain]
        );
    }
}
