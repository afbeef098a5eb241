//! Kit's test files on our kernel: `tests.toml` (kit's format) becomes one scenario per
//! `[[tests]]` group, with its setup packages installed and its test packages run by the
//! native tester (`apps.rs`), or, for a group of several nodes, one world (`world_of`); `sim
//! test` runs those over seeds. `sim build` builds a package's process crates for
//! `wasm32-wasip1` into its `pkg/`, as `kit build` does.
//!
//! Kit boots real nodes and waits for real timeouts; here `timeout_secs` is simulated time,
//! and each node's name is whatever tests.toml says (`fake_node_name`).

use crate::format::world::{DelaySpec, NodeSpec, WorldFaultSpec, WorldFile, WorldNetSpec};
use crate::node::apps::{PackageSpec, TestsSpec};
use crate::node::faults::FaultSpec;
use crate::node::scenario::{ScenarioFile, VERSION};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Largest tests.toml read, in bytes.
pub const FILE_LEN_MAX: u64 = 1 << 20;

/// kit's tests.toml.
#[derive(Debug, Deserialize)]
pub struct TestsFile {
    /// The test groups.
    pub tests: Vec<TestGroup>,
    /// Which node binary kit runs (ignored: we are the runtime).
    #[serde(default)]
    pub runtime: Option<toml::Value>,
    /// kit's build switch (ignored).
    #[serde(default)]
    pub runtime_build_release: Option<bool>,
    /// kit keeps node homes (ignored: a simulated node is made per seed).
    #[serde(default)]
    pub persist_home: Option<bool>,
    /// kit prints node output (ignored: `sim run` prints the summary and trace).
    #[serde(default)]
    pub always_print_node_output: Option<bool>,
}

/// One `[[tests]]` group.
#[derive(Debug, Deserialize)]
pub struct TestGroup {
    /// Packages kit builds first (we take built packages as they are).
    #[serde(default)]
    pub dependency_package_paths: Vec<PathBuf>,
    /// Packages installed before the tests.
    #[serde(default)]
    pub setup_packages: Vec<SetupPackage>,
    /// Scripts kit runs (not supported).
    #[serde(default)]
    pub setup_scripts: Vec<toml::Value>,
    /// Test package directories.
    pub test_package_paths: Vec<PathBuf>,
    /// Scripts kit runs (not supported).
    #[serde(default)]
    pub test_scripts: Vec<toml::Value>,
    /// Seconds each test has (simulated here).
    pub timeout_secs: u64,
    /// A local chain for the reference (not needed here).
    #[serde(default)]
    pub fakechain_router: Option<u64>,
    /// kit's hyperapp build switch (ignored).
    #[serde(default)]
    pub hyperapp: Option<bool>,
    /// Cargo features kit builds with (ignored: packages are taken as built).
    #[serde(default)]
    pub features: Vec<String>,
    /// The nodes; the first is the master, where the tests run.
    #[serde(default)]
    pub nodes: Vec<TestNode>,
}

/// A setup package.
#[derive(Debug, Deserialize)]
pub struct SetupPackage {
    /// Its directory, relative to tests.toml.
    pub path: PathBuf,
    /// Whether its processes run.
    pub run: bool,
}

/// A node of a test group.
#[derive(Debug, Deserialize)]
pub struct TestNode {
    /// The node's name (".os" is appended when it has no dot).
    pub fake_node_name: String,
    /// kit's port (ignored).
    #[serde(default)]
    pub port: Option<u16>,
    /// kit's home directory (ignored).
    #[serde(default)]
    pub home: Option<PathBuf>,
    /// kit's verbosity (ignored).
    #[serde(default)]
    pub runtime_verbosity: Option<u8>,
    /// kit's password (ignored).
    #[serde(default)]
    pub password: Option<String>,
    /// kit's RPC endpoint (ignored).
    #[serde(default)]
    pub rpc: Option<String>,
}

/// Reads tests.toml at `path`.
///
/// # Errors
/// The file cannot be read or is not kit's format (the message names the file, the line and
/// column, and the problem).
pub fn read_tests(path: &Path) -> Result<TestsFile, String> {
    let text = crate::files::read_text(path, FILE_LEN_MAX).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| {
        let place = e.span().map_or(String::new(), |span| {
            let line = text[..span.start].matches('\n').count() + 1;
            let column = span.start - text[..span.start].rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{line}:{column}: ")
        });
        format!("{}:{place}{}", path.display(), e.message())
    })
}

/// The node name kit gives `name`: `.os` appended when it has no dot.
pub fn node_name(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.os")
    }
}

/// The scenario of group `index` of the tests.toml at `path`, with `faults`; package paths
/// are made absolute, so the scenario can be written anywhere.
///
/// # Errors
/// A group with no node, a node named twice, scripts, or paths that do not exist.
pub fn scenario_of(
    path: &Path,
    file: &TestsFile,
    index: usize,
    faults: Option<FaultSpec>,
) -> Result<ScenarioFile, String> {
    let group = &file.tests[index];
    let place = |field: &str| format!("{}: tests[{index}].{field}", path.display());
    let names = check_group(group, &place)?;
    let run_names: Vec<String> = group.nodes.iter().map(run_name).collect();
    let node = names[0].clone();
    let base = path.parent().unwrap_or(Path::new("."));
    let absolute = |field: &str, dir: &Path| -> Result<PathBuf, String> {
        std::fs::canonicalize(base.join(dir))
            .map_err(|e| format!("{}: {}: {e}", place(field), dir.display()))
    };
    let packages = group
        .setup_packages
        .iter()
        .map(|p| {
            Ok(PackageSpec {
                path: absolute("setup_packages", &p.path)?,
                run: p.run,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let tests = group
        .test_package_paths
        .iter()
        .map(|dir| absolute("test_package_paths", dir))
        .collect::<Result<Vec<_>, String>>()?;
    let count = u64::try_from(tests.len()).unwrap_or(u64::MAX);
    // Every test may use its whole timeout; the run ends as soon as the tester is done.
    let run_for_ms = group
        .timeout_secs
        .saturating_add(1)
        .saturating_mul(count)
        .saturating_add(10)
        .saturating_mul(1000);
    Ok(ScenarioFile {
        version: VERSION,
        description: format!("tests[{index}] of {}", path.display()),
        node,
        processes: Vec::new(),
        workload: Vec::new(),
        run_for_ms,
        generators: Vec::new(),
        network: None,
        faults,
        quiesce_within_ms: None,
        storage: crate::node::scenario::StorageKind::Memory,
        sync_interval_ms: 0,
        package: None,
        packages,
        tests: Some(TestsSpec {
            packages: tests,
            timeout_secs: group.timeout_secs,
            nodes: if names.len() > 1 || run_names != names {
                run_names
            } else {
                Vec::new()
            },
        }),
        initialize_first: true,
        vfs: true,
        expect: None,
        trace_bodies: false,
    })
}

/// The name kit's `Run` gives a node: its home directory's name with `.os` (kit's
/// `run_tests`), or its `fake_node_name` when it has no home.
fn run_name(node: &TestNode) -> String {
    node.home.as_deref().and_then(Path::file_name).map_or_else(
        || node_name(&node.fake_node_name),
        |home| node_name(&home.to_string_lossy()),
    )
}

/// A warning for each node of `file` whose `fake_node_name` (the node's name) and home (the
/// name kit's `Run` gives it) differ: kit's tests would then be told of a node that is not
/// there (the simulation does as kit does); and for each group's dependency packages, which
/// the simulation does not use.
pub fn naming_warnings(path: &Path, file: &TestsFile) -> Vec<String> {
    let mut warnings = Vec::new();
    for (index, group) in file.tests.iter().enumerate() {
        if !group.dependency_package_paths.is_empty() {
            warnings.push(format!(
                "{}: tests[{index}].dependency_package_paths: kit builds these on a throwaway \
                 node for their APIs; sim test neither builds nor installs them",
                path.display()
            ));
        }
        for (i, node) in group.nodes.iter().enumerate() {
            let (name, told) = (node_name(&node.fake_node_name), run_name(node));
            if name != told {
                warnings.push(format!(
                    "{}: tests[{index}].nodes[{i}]: the node is {name} (fake_node_name) but \
                     kit's Run names it {told} (its home's name), as the tests will hear",
                    path.display()
                ));
            }
        }
    }
    warnings
}

/// The nodes of a group, named as kit names them, in tests.toml order: at least one, each
/// name once, and no scripts (a simulated node has no shell).
fn check_group(group: &TestGroup, place: &dyn Fn(&str) -> String) -> Result<Vec<String>, String> {
    if !group.setup_scripts.is_empty() || !group.test_scripts.is_empty() {
        return Err(format!(
            "{}: scripts are not supported: a simulated node has no shell",
            place("setup_scripts")
        ));
    }
    if group.test_package_paths.is_empty() {
        return Err(format!(
            "{}: name at least one test package",
            place("test_package_paths")
        ));
    }
    if group.nodes.is_empty() {
        return Err(format!(
            "{}: a group needs a [[tests.nodes]]",
            place("nodes")
        ));
    }
    if group.nodes.len() > crate::format::world::NODES_MAX {
        return Err(format!(
            "{}: {} nodes; a world holds at most {}",
            place("nodes"),
            group.nodes.len(),
            crate::format::world::NODES_MAX
        ));
    }
    let names: Vec<String> = group
        .nodes
        .iter()
        .map(|n| node_name(&n.fake_node_name))
        .collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!(
                "{}: node {name} is named twice (fake_node_name)",
                place(&format!("nodes[{i}]"))
            ));
        }
    }
    debug_assert!(!names.is_empty(), "a group of no nodes passed");
    Ok(names)
}

/// The world of group `index` of the tests.toml at `path` when it has several nodes, as kit
/// runs it: every node gets the setup packages (run where `run = true`), the first also the
/// tests and the tester, whose `Run` names every node in tests.toml order; the network is the
/// reference's (per-pair order, a 1 ms minimum and a 10 ms mean one way), with the world's
/// `network` faults if given; `faults` are faults inside each node. `None` for a group of one
/// node (`scenario_of`).
///
/// # Errors
/// As [`scenario_of`].
pub fn world_of(
    path: &Path,
    file: &TestsFile,
    index: usize,
    (faults, network): (Option<FaultSpec>, Option<WorldFaultSpec>),
) -> Result<Option<WorldFile>, String> {
    let one = scenario_of(path, file, index, faults)?;
    let Some(tests) = one.tests.clone() else {
        return Err(format!("{}: tests[{index}] has no tests", path.display()));
    };
    let place = |field: &str| format!("{}: tests[{index}].{field}", path.display());
    let names = check_group(&file.tests[index], &place)?;
    if names.len() < 2 {
        if network.is_some() {
            return Err(format!(
                "{}: the network's faults (partitions, clogs, resets, crashes) need a group of \
                 several nodes",
                place("nodes")
            ));
        }
        return Ok(None);
    }
    let node = |name: &String, first: bool| NodeSpec {
        name: name.clone(),
        processes: Vec::new(),
        packages: one.packages.clone(),
        storage: one.storage,
        vfs: true,
        initialize_first: true,
        trace_bodies: false,
        expect: None,
        tests: first.then(|| tests.clone()),
        faults: one.faults.clone(),
    };
    let nodes: Vec<NodeSpec> = names
        .iter()
        .enumerate()
        .map(|(i, name)| node(name, i == 0))
        .collect();
    assert_eq!(nodes.len(), tests.nodes.len(), "Run names each node");
    Ok(Some(WorldFile {
        version: VERSION,
        description: one.description,
        nodes,
        network: WorldNetSpec {
            delay_ms: DelaySpec { min: 1, mean: 10 },
            links: Vec::new(),
        },
        workload: Vec::new(),
        faults: network,
        run_for_ms: one.run_for_ms,
        quiesce_within_ms: None,
    }))
}

/// The process crates of the package in `dir`: its subdirectories with a `Cargo.toml`
/// (`test/`, `target/`, `pkg/` and `ui/` are not), in name order.
///
/// # Errors
/// The directory cannot be read.
pub fn package_crates(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let listing = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut crates = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = item.file_name();
        let skipped = ["test", "target", "pkg", "ui", "api"];
        if skipped.iter().any(|s| name == *s) {
            continue;
        }
        if item.path().join("Cargo.toml").is_file() {
            crates.push(item.path());
        }
    }
    crates.sort();
    Ok(crates)
}

/// A module [`build_package`] wrote.
#[derive(Debug)]
pub struct Built {
    /// Where it went (`pkg/CRATE.wasm`).
    pub module: PathBuf,
    /// The crate's manifest.
    pub manifest: PathBuf,
    /// Features asked for that the crate does not declare (it was built without them).
    pub dropped: Vec<String>,
}

/// Builds every process crate of the package in `dir` for `wasm32-wasip1` as `kit build` does
/// (release, no default features, the `features` each crate declares: kit keeps only those) and
/// copies each module into `dir/pkg/`, composing them as kit does where a crate imports
/// another's interface (`compose.rs`); returns the modules `pkg/` keeps.
///
/// # Errors
/// No crate, cargo failing (its diagnostics were printed), or a module that cannot be copied.
pub fn build_package(dir: &Path, features: &[String]) -> Result<Vec<Built>, String> {
    crate::node::guests::ensure_target("wasm32-wasip1").map_err(|e| e.to_string())?;
    let crates = package_crates(dir)?;
    if crates.is_empty() {
        return Err(format!(
            "{}: no process crate (a subdirectory with a Cargo.toml)",
            dir.display()
        ));
    }
    let mut written = Vec::new();
    for krate in crates {
        let manifest = krate.join("Cargo.toml");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        // As kit's build: release, no default features, the asked ones a crate declares.
        cargo.args([
            "build",
            "--release",
            "--no-default-features",
            "--target",
            "wasm32-wasip1",
            "--message-format=json-render-diagnostics",
        ]);
        cargo.arg("--manifest-path").arg(&manifest);
        let declared = crate_features(&krate);
        let (kept, dropped): (Vec<String>, Vec<String>) =
            features.iter().cloned().partition(|f| declared.contains(f));
        if !kept.is_empty() {
            cargo.args(["--features", &kept.join(",")]);
        }
        let output = cargo
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!("{}: cargo build failed", manifest.display()));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let module = artifact(&stdout, &manifest).ok_or_else(|| {
            format!(
                "{}: cargo built no .wasm module (a cdylib?)",
                manifest.display()
            )
        })?;
        let name = krate
            .file_name()
            .map_or_else(|| "process".into(), |n| n.to_string_lossy().into_owned());
        let to = dir.join("pkg").join(format!("{name}.wasm"));
        std::fs::create_dir_all(dir.join("pkg")).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::copy(&module, &to)
            .map_err(|e| format!("{} -> {}: {e}", module.display(), to.display()))?;
        written.push(Built {
            module: to,
            manifest,
            dropped,
        });
    }
    debug_assert!(!written.is_empty(), "a module per crate");
    let modules: Vec<PathBuf> = written.iter().map(|b| b.module.clone()).collect();
    let kept = super::compose::compose_package(&modules)?;
    written.retain(|built| kept.contains(&built.module));
    Ok(written)
}

/// The package directories of group `index`, setup packages then test packages, each once,
/// made absolute against the tests.toml at `path`.
///
/// # Errors
/// A directory does not exist.
pub fn group_packages(path: &Path, file: &TestsFile, index: usize) -> Result<Vec<PathBuf>, String> {
    let group = &file.tests[index];
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out: Vec<PathBuf> = Vec::new();
    let dirs = group
        .setup_packages
        .iter()
        .map(|p| ("setup_packages", &p.path))
        .chain(
            group
                .test_package_paths
                .iter()
                .map(|p| ("test_package_paths", p)),
        );
    for (field, dir) in dirs {
        let absolute = std::fs::canonicalize(base.join(dir)).map_err(|e| {
            format!(
                "{}: tests[{index}].{field}: {}: {e}",
                path.display(),
                dir.display()
            )
        })?;
        if !out.contains(&absolute) {
            out.push(absolute);
        }
    }
    Ok(out)
}

/// Builds the package in `dir` as `kit run-tests` does before it boots nodes: release, with
/// `features` (kit's default: `test`) where a crate declares them; a crate that declares none
/// of them is built without.
///
/// # Errors
/// As [`build_package`].
pub fn build_for_tests(dir: &Path, features: &[String]) -> Result<Vec<Built>, String> {
    if features.is_empty() {
        build_package(dir, &["test".to_owned()])
    } else {
        build_package(dir, features)
    }
}

/// The features the process crate in `krate` declares.
fn crate_features(krate: &Path) -> Vec<String> {
    let Ok(text) = crate::files::read_text(&krate.join("Cargo.toml"), 1 << 20) else {
        return Vec::new();
    };
    let Ok(manifest) = toml::from_str::<toml::Table>(&text) else {
        return Vec::new();
    };
    manifest
        .get("features")
        .and_then(toml::Value::as_table)
        .map(|features| features.keys().cloned().collect())
        .unwrap_or_default()
}

/// For each process crate of the package in `dir` whose module in `pkg/` is missing or older
/// than a file of its sources (its `Cargo.toml` or a file under `src/`), a warning naming both.
pub fn stale(dir: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    for krate in package_crates(dir).unwrap_or_default() {
        let name = krate
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut module = dir.join("pkg").join(format!("{name}.wasm"));
        if !module.exists()
            && let Some(composed) = composed_module(dir)
        {
            // An exporter's code went into the components that import it.
            module = composed;
        }
        let Ok(built) = std::fs::metadata(&module).and_then(|m| m.modified()) else {
            warnings.push(format!(
                "{} is not built (sim build {})",
                module.display(),
                dir.display()
            ));
            continue;
        };
        let mut sources = vec![krate.join("Cargo.toml")];
        newest_under(&krate.join("src"), &mut sources);
        let newer = sources.iter().find(|source| {
            std::fs::metadata(source)
                .and_then(|m| m.modified())
                .is_ok_and(|changed| changed > built)
        });
        if let Some(source) = newer {
            warnings.push(format!(
                "{} is older than its source {} (sim build {}, or run without --no-build)",
                module.display(),
                source.display(),
                dir.display()
            ));
        }
    }
    warnings
}

/// The oldest module of the package in `dir` that is a component (kit's and `sim build`'s
/// compositions are), if any.
fn composed_module(dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir.join("pkg")).ok()?;
    // (its modification time, its path); file times only order the files.
    let mut found = None;
    for entry in entries.flatten().take(SOURCES_MAX) {
        let path = entry.path();
        // Regular files only, links not followed: a FIFO would never answer the read.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let mut head = [0u8; 8];
        let is_component = std::fs::File::open(&path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .is_ok_and(|()| head == *b"\0asm\x0d\0\x01\0");
        let modified = entry.metadata().and_then(|m| m.modified()).ok();
        if let (true, Some(modified)) = (is_component, modified)
            && found
                .as_ref()
                .is_none_or(|(oldest, _): &(_, PathBuf)| modified < *oldest)
        {
            found = Some((modified, path));
        }
    }
    found.map(|(_, path)| path)
}

/// Every file under `dir`, depth first, at most `SOURCES_MAX` of them; links are not
/// followed (a link to a parent would never end).
fn newest_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(PathBuf, bool)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let kind = e.file_type().ok()?;
            (!kind.is_symlink()).then(|| (e.path(), kind.is_dir()))
        })
        .collect();
    entries.sort();
    for (path, is_dir) in entries {
        if out.len() >= SOURCES_MAX {
            return;
        }
        if is_dir {
            newest_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Most source files a staleness check looks at in one crate.
const SOURCES_MAX: usize = 10_000;

/// The `.wasm` file cargo's JSON messages name for the package of `manifest`.
fn artifact(messages: &str, manifest: &Path) -> Option<PathBuf> {
    let wanted = std::fs::canonicalize(manifest).ok()?;
    messages.lines().rev().find_map(|line| {
        let message: serde_json::Value = serde_json::from_str(line).ok()?;
        if message["reason"] != "compiler-artifact" {
            return None;
        }
        let from = PathBuf::from(message["manifest_path"].as_str()?);
        if std::fs::canonicalize(from).ok()? != wanted {
            return None;
        }
        message["filenames"]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_str)
            .find(|f| f.ends_with(".wasm"))
            .map(PathBuf::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_get_os_appended_as_kit_does() {
        assert_eq!(node_name("first"), "first.os");
        assert_eq!(node_name("fake.dev"), "fake.dev");
    }

    #[test]
    fn a_group_of_two_nodes_is_a_world_with_the_tests_on_the_first() {
        let dir = tempfile::tempdir().unwrap();
        for package in ["app", "app-test"] {
            std::fs::create_dir_all(dir.path().join(package)).unwrap();
        }
        let path = dir.path().join("tests.toml");
        let node = |name: &str| format!("[[tests.nodes]]\nfake_node_name = \"{name}\"\n");
        let toml = format!(
            "[[tests]]\nsetup_packages = [{{ path = \"app\", run = true }}]\n\
             test_package_paths = [\"app-test\"]\ntimeout_secs = 5\n{}{}",
            node("first"),
            node("second")
        );
        std::fs::write(&path, toml).unwrap();
        let file = read_tests(&path).unwrap();
        let world = world_of(&path, &file, 0, (None, None)).unwrap().unwrap();
        let names: Vec<&str> = world.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["first.os", "second.os"]);
        assert!(
            world
                .nodes
                .iter()
                .all(|n| n.packages.len() == 1 && n.packages[0].run)
        );
        let tests = world.nodes[0].tests.as_ref().unwrap();
        assert_eq!(
            tests.nodes,
            ["first.os", "second.os"],
            "Run names every node"
        );
        assert!(
            world.nodes[1].tests.is_none(),
            "the tests run on the first node only"
        );
        // One node: no world, and the tests name only their own node.
        let one = format!(
            "[[tests]]\nsetup_packages = []\ntest_package_paths = [\"app-test\"]\n\
             timeout_secs = 5\n{}",
            node("first")
        );
        std::fs::write(&path, one).unwrap();
        let file = read_tests(&path).unwrap();
        assert!(world_of(&path, &file, 0, (None, None)).unwrap().is_none());
        let scenario = scenario_of(&path, &file, 0, None).unwrap();
        assert!(scenario.tests.unwrap().nodes.is_empty());
    }

    #[test]
    fn a_node_whose_home_and_name_differ_is_named_as_kit_does_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app-test")).unwrap();
        let path = dir.path().join("tests.toml");
        let toml = "[[tests]]\nsetup_packages = []\ntest_package_paths = [\"app-test\"]\n\
                    timeout_secs = 5\n[[tests.nodes]]\nhome = \"home/alpha\"\n\
                    fake_node_name = \"first\"\n";
        std::fs::write(&path, toml).unwrap();
        let file = read_tests(&path).unwrap();
        let warnings = naming_warnings(&path, &file);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Dependency packages are named as unused.
        let with_deps = std::fs::read_to_string(&path).unwrap().replace(
            "[[tests]]\n",
            "[[tests]]\ndependency_package_paths = [\"dep\"]\n",
        );
        std::fs::write(&path, with_deps).unwrap();
        let deps = naming_warnings(&path, &read_tests(&path).unwrap());
        assert!(
            deps.iter()
                .any(|w| w.contains("dependency_package_paths: kit builds these")),
            "{deps:?}"
        );
        std::fs::write(&path, toml).unwrap();
        assert!(
            warnings[0].contains("tests[0].nodes[0]: the node is first.os")
                && warnings[0].contains("names it alpha.os"),
            "{warnings:?}"
        );
        let scenario = scenario_of(&path, &file, 0, None).unwrap();
        assert_eq!(scenario.node, "first.os");
        assert_eq!(
            scenario.tests.unwrap().nodes,
            ["alpha.os"],
            "Run says what kit says"
        );
    }

    #[test]
    fn the_features_built_for_tests_are_those_a_crate_declares() {
        let dir = tempfile::tempdir().unwrap();
        let krate = dir.path().join("app");
        std::fs::create_dir_all(krate.join("src")).unwrap();
        std::fs::write(
            krate.join("Cargo.toml"),
            "[package]\nname = \"app\"\n[features]\ntest = []\nplanted = []\n",
        )
        .unwrap();
        let mut declared = crate_features(&krate);
        declared.sort();
        assert_eq!(declared, ["planted", "test"]);
        // A module built before its sources changed is stale; one built after is not.
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/app.wasm"), b"\0asm").unwrap();
        assert!(stale(dir.path()).is_empty(), "{:?}", stale(dir.path()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(krate.join("src/lib.rs"), "// changed").unwrap();
        // A link back to the crate is not followed.
        std::os::unix::fs::symlink(&krate, krate.join("src/again")).unwrap();
        let warnings = stale(dir.path());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("src/lib.rs"), "{warnings:?}");
    }

    #[test]
    fn a_malformed_tests_toml_names_its_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tests.toml");
        std::fs::write(&path, "[[tests]]\ntimeout_secs = \"five\"\n").unwrap();
        let error = read_tests(&path).unwrap_err();
        assert!(error.contains("tests.toml:2:"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }
}
