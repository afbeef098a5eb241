//! Packages as the reference lays them out (spec §6.1): a directory with `metadata.json` and
//! `pkg/`, which holds the built `.wasm` files and `pkg/manifest.json`, an array of
//! `{process_name, process_wasm_path, on_exit, request_networking, request_capabilities,
//! grant_capabilities, public}`.
//!
//! [`Package::read`] reads one from disk (the driver's job: the kernel reads no files) into
//! memory, checked and bounded; [`Input::Install`](crate::Input::Install) installs it. A malformed file is a [`PackageError`] naming the file, the place and the
//! problem.

use crate::types::{OnExit, PackageId, ProcessId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};

/// Most files a package may hold.
pub const PACKAGE_FILES_MAX: usize = 10_000;
/// Most bytes its files may hold together.
pub const PACKAGE_BYTES_MAX: u64 = 512 << 20;

/// A capability a manifest entry requests or grants: messaging to a process, or a capability
/// issued by a process with these params.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapabilitySpec {
    /// `"p:k:s"`: messaging to that process on our node.
    Messaging(ProcessId),
    /// `{"process": "p:k:s", "params": <json>}`.
    Params {
        /// The issuer on our node.
        process: ProcessId,
        /// Its params, as JSON text.
        params: String,
    },
}

/// One process of a package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Its name; its id is `process_name:package:publisher`.
    pub process_name: String,
    /// Its module, relative to `pkg/` (a leading `/` is allowed, as kit writes it).
    pub process_wasm_path: String,
    /// What happens when it exits.
    pub on_exit: OnExit,
    /// Whether it gets the network capability.
    pub request_networking: bool,
    /// Capabilities it is given.
    pub request_capabilities: Vec<CapabilitySpec>,
    /// Capabilities it issues to other processes (`Messaging(p)`: messaging to it, for `p`).
    pub grant_capabilities: Vec<CapabilitySpec>,
    /// Whether anyone may message it.
    pub public: bool,
}

/// A package read from disk (serializable: a driver's `Input::Install` carries it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// `package_name:publisher`.
    pub id: PackageId,
    /// `properties.wit_version` of its metadata.
    pub wit_version: Option<u32>,
    /// Its processes, in manifest order.
    pub entries: Vec<ManifestEntry>,
    /// Every file under `pkg/`, by its path relative to `pkg/` (with `/` separators), in
    /// path order.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Why a package cannot be read.
#[derive(Debug)]
pub enum PackageError {
    /// A file or directory could not be read.
    Io {
        /// Which.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A JSON file does not parse or has the wrong shape.
    Json {
        /// Which.
        path: PathBuf,
        /// Where and what.
        source: serde_json::Error,
    },
    /// A manifest entry or the metadata is not valid.
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in it (`entry 2 (counter)`, `properties.publisher`).
        place: String,
        /// What is wrong.
        problem: String,
    },
    /// Past a bound.
    TooLarge {
        /// The package directory.
        path: PathBuf,
        /// What.
        problem: String,
    },
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Json { path, source } => write!(
                f,
                "{}:{}:{}: {source}",
                path.display(),
                source.line(),
                source.column()
            ),
            Self::Invalid {
                path,
                place,
                problem,
            } => write!(f, "{}: {place}: {problem}", path.display()),
            Self::TooLarge { path, problem } => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for PackageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Json { source, .. } => Some(source),
            Self::Invalid { .. } | Self::TooLarge { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    properties: Properties,
}

#[derive(Deserialize)]
struct Properties {
    package_name: String,
    publisher: String,
    #[serde(default)]
    wit_version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    process_name: String,
    process_wasm_path: String,
    on_exit: OnExit,
    #[serde(default)]
    request_networking: bool,
    #[serde(default)]
    request_capabilities: Vec<Value>,
    #[serde(default)]
    grant_capabilities: Vec<Value>,
    #[serde(default)]
    public: bool,
}

/// Largest `metadata.json` or `manifest.json`.
pub const PACKAGE_JSON_BYTES_MAX: u64 = 16 << 20;

/// Reads `path` if it is a regular file of at most `max` bytes, checked on the opened file
/// before a byte is read: a FIFO is opened without waiting for a writer and refused, a device
/// (`/dev/zero`) is refused, a file larger than what is left of the bound is never read.
fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, PackageError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PackageError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(PackageError::Invalid {
            path: path.to_owned(),
            place: "the file".into(),
            problem: "not a regular file (a FIFO, a device or a directory)".into(),
        });
    }
    let too_large = |len: u64| PackageError::TooLarge {
        path: path.to_owned(),
        problem: format!("{len} bytes, over the {max} left of the bound"),
    };
    if metadata.len() > max {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    // A file that grew while it was read.
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    debug_assert!(bytes.len() as u64 <= max, "a bounded read");
    Ok(bytes)
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PackageError> {
    let bytes = read_bytes(path, PACKAGE_JSON_BYTES_MAX)?;
    serde_json::from_slice(&bytes).map_err(|source| PackageError::Json {
        path: path.to_owned(),
        source,
    })
}

impl Package {
    /// Reads the package in directory `dir`.
    ///
    /// # Errors
    /// A missing or unreadable file, malformed JSON (file, line, column), an invalid entry
    /// (file, entry, problem), a module the manifest names that `pkg/` does not hold, or more
    /// files or bytes than the bounds.
    pub fn read(dir: &Path) -> Result<Self, PackageError> {
        let metadata_path = dir.join("metadata.json");
        let metadata: Metadata = parse_json(&metadata_path)?;
        let invalid = |place: &str, problem: String| PackageError::Invalid {
            path: metadata_path.clone(),
            place: place.to_owned(),
            problem,
        };
        let id = PackageId {
            package_name: metadata.properties.package_name,
            publisher_node: metadata.properties.publisher,
        };
        id.check()
            .map_err(|e| invalid("properties", format!("{id} is not a valid package id: {e}")))?;
        let manifest_path = dir.join("pkg").join("manifest.json");
        let raw: Vec<RawEntry> = parse_json(&manifest_path)?;
        let files = read_files(dir, &dir.join("pkg"))?;
        let mut entries = Vec::with_capacity(raw.len());
        for (index, entry) in raw.into_iter().enumerate() {
            let place = format!("entry {index} ({})", entry.process_name);
            let entry =
                check_entry(&id, entry, &files).map_err(|problem| PackageError::Invalid {
                    path: manifest_path.clone(),
                    place,
                    problem,
                })?;
            if entries
                .iter()
                .any(|e: &ManifestEntry| e.process_name == entry.process_name)
            {
                return Err(PackageError::Invalid {
                    path: manifest_path.clone(),
                    place: format!("entry {index} ({})", entry.process_name),
                    problem: "a second process of that name".into(),
                });
            }
            entries.push(entry);
        }
        let package = Self {
            id,
            wit_version: metadata.properties.wit_version,
            entries,
            files,
        };
        debug_assert!(
            package.files.windows(2).all(|w| w[0].0 < w[1].0),
            "files in order"
        );
        Ok(package)
    }

    /// The id of the process of `entry`.
    ///
    /// # Errors
    /// Never for an entry [`Package::read`] checked.
    pub fn process_id(&self, entry: &ManifestEntry) -> Result<ProcessId, String> {
        ProcessId::new(
            &entry.process_name,
            &self.id.package_name,
            &self.id.publisher_node,
        )
        .map_err(|e| e.to_string())
    }

    /// The module of `entry`.
    pub fn module(&self, entry: &ManifestEntry) -> Option<&[u8]> {
        let path = entry.process_wasm_path.trim_start_matches('/');
        self.files
            .binary_search_by(|(p, _)| p.as_str().cmp(path))
            .ok()
            .map(|index| self.files[index].1.as_slice())
    }

    /// The vfs path of a file of the package: `/package:publisher/pkg/PATH`.
    pub fn vfs_path(&self, relative: &str) -> String {
        format!("/{}/pkg/{}", self.id, relative.trim_start_matches('/'))
    }
}

fn check_entry(
    id: &PackageId,
    entry: RawEntry,
    files: &[(String, Vec<u8>)],
) -> Result<ManifestEntry, String> {
    let process = ProcessId::new(&entry.process_name, &id.package_name, &id.publisher_node)
        .map_err(|e| format!("process_name: {e}"))?;
    process
        .check()
        .map_err(|e| format!("process_name: {process} is not a valid process id: {e}"))?;
    let wasm = entry.process_wasm_path.trim_start_matches('/');
    if !files.iter().any(|(path, _)| path == wasm) {
        return Err(format!(
            "process_wasm_path: pkg/{wasm} does not exist (build the package first)"
        ));
    }
    let specs = |field: &str, values: Vec<Value>| -> Result<Vec<CapabilitySpec>, String> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| capability_spec(value).map_err(|e| format!("{field}[{i}]: {e}")))
            .collect()
    };
    Ok(ManifestEntry {
        process_name: entry.process_name,
        process_wasm_path: entry.process_wasm_path,
        on_exit: entry.on_exit,
        request_networking: entry.request_networking,
        request_capabilities: specs("request_capabilities", entry.request_capabilities)?,
        grant_capabilities: specs("grant_capabilities", entry.grant_capabilities)?,
        public: entry.public,
    })
}

/// `"p:k:s"` or `{"process": "p:k:s", "params": <json>}` (params may be JSON or a JSON string
/// holding JSON, as kit's tester writes them).
pub fn capability_spec(value: Value) -> Result<CapabilitySpec, String> {
    let process = |text: &str| -> Result<ProcessId, String> {
        let id: ProcessId = text.parse().map_err(|e| format!("{text}: {e}"))?;
        id.check().map_err(|e| format!("{text}: {e}"))?;
        Ok(id)
    };
    match value {
        Value::String(text) => Ok(CapabilitySpec::Messaging(process(&text)?)),
        Value::Object(mut object) => {
            let issuer = match object.remove("process") {
                Some(Value::String(text)) => process(&text)?,
                _ => return Err("an object capability needs \"process\": \"p:k:s\"".into()),
            };
            let params = match object.remove("params") {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => return Err("an object capability needs \"params\"".into()),
            };
            Ok(CapabilitySpec::Params {
                process: issuer,
                params,
            })
        }
        other => Err(format!(
            "a capability is \"p:k:s\" or {{\"process\", \"params\"}}, not {other}"
        )),
    }
}

/// Every file under `pkg`, bounded, sorted by relative path.
fn read_files(package: &Path, pkg: &Path) -> Result<Vec<(String, Vec<u8>)>, PackageError> {
    let mut files = Vec::new();
    let mut bytes = 0u64;
    let mut dirs = vec![pkg.to_owned()];
    while let Some(dir) = dirs.pop() {
        let listing = std::fs::read_dir(&dir).map_err(|source| PackageError::Io {
            path: dir.clone(),
            source,
        })?;
        for item in listing {
            let item = item.map_err(|source| PackageError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = item.path();
            let kind = item.file_type().map_err(|source| PackageError::Io {
                path: path.clone(),
                source,
            })?;
            if kind.is_dir() {
                dirs.push(path);
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let relative = path
                .strip_prefix(pkg)
                .ok()
                .and_then(Path::to_str)
                .map(|p| p.replace('\\', "/"))
                .ok_or_else(|| PackageError::Invalid {
                    path: path.clone(),
                    place: "pkg/".into(),
                    problem: "a file name that is not UTF-8".into(),
                })?;
            if files.len() >= PACKAGE_FILES_MAX {
                return Err(PackageError::TooLarge {
                    path: package.to_owned(),
                    problem: format!("more than {PACKAGE_FILES_MAX} files in pkg/"),
                });
            }
            // Checked before it is read, against what is left of the bound.
            let content = read_bytes(&path, PACKAGE_BYTES_MAX - bytes)?;
            bytes += content.len() as u64;
            files.push((relative, content));
            assert!(
                bytes <= PACKAGE_BYTES_MAX,
                "the bound is checked before each read"
            );
            if files.len() > PACKAGE_FILES_MAX || bytes > PACKAGE_BYTES_MAX {
                return Err(PackageError::TooLarge {
                    path: package.to_owned(),
                    problem: format!(
                        "more than {PACKAGE_FILES_MAX} files or {PACKAGE_BYTES_MAX} bytes in pkg/"
                    ),
                });
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capability_specs_are_strings_or_objects() {
        assert_eq!(
            capability_spec(json!("timer:distro:sys")),
            Ok(CapabilitySpec::Messaging(
                "timer:distro:sys".parse().unwrap()
            ))
        );
        assert_eq!(
            capability_spec(json!({"process": "vfs:distro:sys", "params": {"root": true}})),
            Ok(CapabilitySpec::Params {
                process: "vfs:distro:sys".parse().unwrap(),
                params: r#"{"root":true}"#.into()
            })
        );
        assert_eq!(
            capability_spec(json!({"process": "a:b:c", "params": "{\"x\":1}"})),
            Ok(CapabilitySpec::Params {
                process: "a:b:c".parse().unwrap(),
                params: r#"{"x":1}"#.into()
            })
        );
        assert!(capability_spec(json!(3)).is_err());
        assert!(capability_spec(json!("no-colons")).is_err());
        assert!(capability_spec(json!({"params": 1})).is_err());
    }
}
