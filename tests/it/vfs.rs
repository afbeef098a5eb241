//! `vfs:distro:sys` as its clients see it: the reference's request and response JSON, files
//! in the kernel's store, drives and their capabilities, bad paths and bodies.

use crate::harness::{World, messaging, pid};
use hyperkernel::{KernelConfig, LazyLoadBlob, ProcessId, Request, Table, WasmConfig};
use serde_json::{Value, json};

const VFS: &str = "our.os@vfs:distro:sys";

fn world() -> World {
    let mut config = KernelConfig::new(crate::harness::OUR, 1);
    config.vfs = true;
    World::with_configs(config, WasmConfig::default())
}

fn register(world: &mut World, id: &ProcessId) {
    world
        .kernel
        .harness()
        .register_driven(id, &[messaging("vfs:distro:sys")], false)
        .unwrap();
}

/// Sends `{path, action}` (with `blob`) from `from` to the vfs; returns the response body and
/// the blob it came with.
fn vfs(
    world: &mut World,
    from: &ProcessId,
    path: &str,
    action: Value,
    blob: Option<&[u8]>,
) -> (Value, Option<Vec<u8>>) {
    let body = json!({"path": path, "action": action}).to_string();
    send_raw(world, from, &body, blob)
}

fn send_raw(
    world: &mut World,
    from: &ProcessId,
    body: &str,
    blob: Option<&[u8]>,
) -> (Value, Option<Vec<u8>>) {
    let blob = blob.map(|bytes| LazyLoadBlob {
        mime: None,
        bytes: bytes.to_vec(),
    });
    let request = Request::new(body).expecting(5);
    world
        .kernel
        .harness()
        .send_as(from, VFS.parse().unwrap(), request, None, blob)
        .unwrap();
    world.kernel.harness().run_until_idle();
    let received = world.received(from);
    assert_eq!(received.len(), 1, "{body}: {received:#?}");
    let blob = world.kernel.last_blob_of(from).map(|b| b.bytes);
    (received[0]["body"].clone(), blob)
}

fn setup() -> (World, ProcessId, ProcessId) {
    let mut world = world();
    let (a, b) = (pid("a:app:our.os"), pid("b:other:our.os"));
    register(&mut world, &a);
    register(&mut world, &b);
    (world, a, b)
}

/// The package `app:our.os` with its drive `/app:our.os/data` made; requests from its
/// process `a` (or from `b` of package `other:our.os`), paths under the drive.
struct Drive {
    world: World,
    a: ProcessId,
    b: ProcessId,
}

const DRIVE: &str = "/app:our.os/data";

impl Drive {
    fn new() -> Self {
        let (world, a, b) = setup();
        let mut drive = Self { world, a, b };
        assert_eq!(drive.ask("", json!("CreateDrive")), json!("Ok"));
        drive
    }

    /// `a` asks `action` on `DRIVE/path`; the response body.
    fn ask(&mut self, path: &str, action: Value) -> Value {
        self.send(false, path, action, None).0
    }

    /// `a` writes `bytes` with `action` to `DRIVE/path`.
    fn put(&mut self, path: &str, action: Value, bytes: &[u8]) -> Value {
        self.send(false, path, action, Some(bytes)).0
    }

    /// `a` reads `DRIVE/path` with `action`; the blob that came back.
    fn blob(&mut self, path: &str, action: Value) -> Option<Vec<u8>> {
        self.send(false, path, action, None).1
    }

    /// `b` (another package) asks.
    fn other(
        &mut self,
        path: &str,
        action: Value,
        bytes: Option<&[u8]>,
    ) -> (Value, Option<Vec<u8>>) {
        self.send(true, path, action, bytes)
    }

    fn send(
        &mut self,
        other: bool,
        path: &str,
        action: Value,
        bytes: Option<&[u8]>,
    ) -> (Value, Option<Vec<u8>>) {
        let from = if other {
            self.b.clone()
        } else {
            self.a.clone()
        };
        let full = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("{DRIVE}{}{path}", if path.is_empty() { "" } else { "/" })
        };
        vfs(&mut self.world, &from, &full, action, bytes)
    }
}

fn io_error(body: &Value) -> &str {
    body["Err"]["IOError"]
        .as_str()
        .unwrap_or_else(|| panic!("not an IOError: {body}"))
}

#[test]
fn a_package_creates_its_drive_writes_and_reads_its_files() {
    let mut d = Drive::new();
    let caps: Vec<String> = d
        .world
        .kernel
        .capabilities_of(&d.a)
        .iter()
        .map(|c| c.params.clone())
        .collect();
    assert!(
        caps.contains(&r#"{"drive":"/app:our.os/data","kind":"read"}"#.to_owned()),
        "{caps:?}"
    );
    assert!(
        caps.contains(&r#"{"drive":"/app:our.os/data","kind":"write"}"#.to_owned()),
        "{caps:?}"
    );
    assert_eq!(d.put("notes.txt", json!("Write"), b"hello"), json!("Ok"));
    assert_eq!(d.ask("notes.txt", json!("Read")), json!("Read"));
    assert_eq!(
        d.blob("notes.txt", json!("Read")).as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        d.ask("notes.txt", json!("Metadata")),
        json!({"Metadata": {"file_type": "File", "len": 5}})
    );
    assert_eq!(d.ask("notes.txt", json!("Len")), json!({"Len": 5}));
    // The file is in the store, committed with the step that wrote it.
    let key = format!("{DRIVE}/notes.txt");
    let stored = d
        .world
        .kernel
        .storage()
        .get(Table::Vfs, key.as_bytes())
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"hello"[..]));
}

#[test]
fn open_files_keep_a_cursor_for_appends_seeks_and_partial_reads() {
    let mut d = Drive::new();
    let missing = d.ask("log", json!({"OpenFile": {"create": false}}));
    assert!(io_error(&missing).contains("No such file"), "{missing}");
    assert_eq!(
        d.ask("log", json!({"OpenFile": {"create": true}})),
        json!("Ok")
    );
    d.put("log", json!("Append"), b"one ");
    d.put("log", json!("Append"), b"two");
    assert_eq!(
        d.ask("log", json!({"Seek": {"Start": 4}})),
        json!({"SeekFrom": {"new_offset": 4}})
    );
    assert_eq!(
        d.ask("log", json!("ReadToString")),
        json!({"ReadToString": "two"})
    );
    d.ask("log", json!({"Seek": {"End": -7}}));
    assert_eq!(
        d.blob("log", json!({"ReadExact": {"length": 3}}))
            .as_deref(),
        Some(&b"one"[..])
    );
    let short = d.ask("log", json!({"ReadExact": {"length": 99}}));
    assert_eq!(io_error(&short), "failed to fill whole buffer");
    let negative = d.ask("log", json!({"Seek": {"Current": -100}}));
    assert!(io_error(&negative).contains("negative"), "{negative}");
    assert_eq!(d.ask("log", json!("CloseFile")), json!("Ok"));
}

#[test]
fn write_all_writes_at_the_cursor_and_set_len_cuts() {
    let mut d = Drive::new();
    d.put("log", json!("Write"), b"one two");
    d.ask("log", json!({"OpenFile": {"create": false}}));
    d.put("log", json!("WriteAll"), b"ONE");
    assert_eq!(
        d.blob("log", json!("Read")).as_deref(),
        Some(&b"ONE two"[..])
    );
    assert_eq!(d.ask("log", json!("ReadToEnd")), json!("Read"));
    assert_eq!(d.ask("log", json!({"SetLen": 3})), json!("Ok"));
    assert_eq!(d.ask("log", json!("Len")), json!({"Len": 3}));
    let no_blob = d.ask("log", json!("Append"));
    assert_eq!(no_blob, json!({"Err": "NoBlob"}));
}

#[test]
fn directories_are_made_listed_and_kept_while_full() {
    let mut d = Drive::new();
    assert_eq!(d.ask("d", json!("CreateDir")), json!("Ok"));
    assert_eq!(io_error(&d.ask("d", json!("CreateDir"))), "File exists");
    assert!(
        io_error(&d.ask("x/y", json!("CreateDir"))).contains("No such file"),
        "no parent"
    );
    assert_eq!(d.ask("x/y/z", json!("CreateDirAll")), json!("Ok"));
    d.put("d/f", json!("Write"), b"1");
    d.put("top", json!("Write"), b"22");
    assert_eq!(
        d.ask("", json!("ReadDir")),
        json!({"ReadDir": [
            {"path": "app:our.os/data/d", "file_type": "Directory"},
            {"path": "app:our.os/data/top", "file_type": "File"},
            {"path": "app:our.os/data/x", "file_type": "Directory"},
        ]})
    );
    assert_eq!(
        d.ask("x/y", json!("Metadata")),
        json!({"Metadata": {"file_type": "Directory", "len": 0}})
    );
    assert_eq!(
        io_error(&d.ask("d", json!("RemoveDir"))),
        "Directory not empty"
    );
    assert_eq!(io_error(&d.ask("d", json!("Read"))), "Is a directory");
    assert_eq!(
        io_error(&d.put("top/under", json!("Write"), b"x")),
        "Not a directory"
    );
}

#[test]
fn files_and_directories_copy_rename_and_remove() {
    let mut d = Drive::new();
    d.ask("d", json!("CreateDir"));
    d.put("d/f", json!("Write"), b"1");
    d.put("top", json!("Write"), b"22");
    let copy = json!({"CopyFile": {"new_path": format!("{DRIVE}/d/g")}});
    assert_eq!(d.ask("top", copy), json!("Ok"));
    let rename = json!({"Rename": {"new_path": format!("{DRIVE}/e")}});
    assert_eq!(d.ask("d", rename), json!("Ok"));
    assert_eq!(d.blob("e/g", json!("Read")).as_deref(), Some(&b"22"[..]));
    assert!(
        io_error(&d.ask("d/f", json!("Read"))).contains("No such file"),
        "moved away"
    );
    assert_eq!(d.ask("e/f", json!("RemoveFile")), json!("Ok"));
    assert_eq!(d.ask("e", json!("RemoveDirAll")), json!("Ok"));
    assert!(io_error(&d.ask("e", json!("Metadata"))).starts_with("No such file"));
    let hash = d.ask("top", json!("Hash"));
    assert_eq!(hash["Hash"].as_array().map(Vec::len), Some(32));
    let into_itself = json!({"Rename": {"new_path": format!("{DRIVE}/x/inside")}});
    d.ask("x", json!("CreateDir"));
    assert!(io_error(&d.ask("x", into_itself)).contains("into itself"));
}

#[test]
fn another_packages_drive_needs_the_drives_capabilities() {
    let mut d = Drive::new();
    d.put("secret", json!("Write"), b"s");
    assert_eq!(
        d.other("secret", json!("Read"), None).0,
        json!({"Err": "NoReadCap"})
    );
    assert_eq!(
        d.other("secret", json!("Write"), Some(b"x")).0,
        json!({"Err": "NoWriteCap"})
    );
    assert_eq!(
        d.other("/app:our.os/more", json!("CreateDrive"), None).0,
        json!({"Err": "NoWriteCap"})
    );
    let climb = "/other:our.os/pkg/../../app:our.os/data/secret";
    assert_eq!(
        d.other(climb, json!("Read"), None).0,
        json!({"Err": "NoReadCap"})
    );
    assert_eq!(
        d.other("/", json!("ReadDir"), None).0,
        json!({"Err": "NoReadCap"}),
        "root only"
    );
    // The owner's read capability, given by the kernel, lets it read and not write.
    let read = hyperkernel::Capability::new(
        VFS.parse().unwrap(),
        r#"{"kind":"read","drive":"/app:our.os/data"}"#,
    );
    let grant = hyperkernel::KernelCommand::GrantCapabilities {
        target: d.b.clone(),
        capabilities: vec![read],
    };
    d.world.command(&grant, None);
    let (body, blob) = d.other("secret", json!("Read"), None);
    assert_eq!((body, blob.as_deref()), (json!("Read"), Some(&b"s"[..])));
    assert_eq!(
        d.other("secret", json!("Write"), Some(b"x")).0,
        json!({"Err": "NoWriteCap"})
    );
    // Opening a file is a write, as in the reference.
    let open = json!({"OpenFile": {"create": false}});
    assert_eq!(
        d.other("secret", open, None).0,
        json!({"Err": "NoWriteCap"})
    );
}

#[test]
fn malformed_bodies_and_paths_are_the_references_errors_and_the_vfs_goes_on() {
    let (mut world, a, _) = setup();
    assert_eq!(
        send_raw(&mut world, &a, "not json", None).0,
        json!({"Err": "MalformedRequest"})
    );
    let unknown = r#"{"path":"/app:our.os/d","action":"Explode"}"#;
    assert_eq!(
        send_raw(&mut world, &a, unknown, None).0,
        json!({"Err": "MalformedRequest"})
    );
    for path in [
        "/../../etc/passwd",
        "/app:our.os",
        "/no-colon/drive/file",
        "",
    ] {
        let body = vfs(&mut world, &a, path, json!("Read"), None).0;
        assert_eq!(body, json!({"Err": "MalformedRequest"}), "{path}");
    }
    let zip = vfs(
        &mut world,
        &a,
        "/app:our.os/d",
        json!("AddZip"),
        Some(b"PK"),
    );
    assert!(
        zip.0["Err"]["ParseError"]["error"].is_string(),
        "not a zip: {}",
        zip.0
    );
    assert_eq!(
        vfs(&mut world, &a, "/app:our.os/d", json!("CreateDrive"), None).0,
        json!("Ok")
    );
    world.kernel.check_invariants().unwrap();
}

#[test]
fn a_file_past_the_size_bound_is_refused() {
    let mut d = Drive::new();
    d.put("big", json!("Write"), b"x");
    let huge = hyperkernel::process::vfs::FILE_LEN_MAX + 1;
    assert!(io_error(&d.ask("big", json!({"SetLen": huge}))).contains("File too large"));
    assert_eq!(d.ask("big", json!("Len")), json!({"Len": 1}));
}

#[test]
fn the_vfs_is_registered_only_when_asked_for() {
    let plain = World::new(1);
    assert!(!plain.kernel.has_process(&pid("vfs:distro:sys")));
    let (world, _, _) = setup();
    assert!(world.kernel.has_process(&pid("vfs:distro:sys")));
    world.kernel.check_invariants().unwrap();
}

/// A zip archive of `entries` (a name ending in `/` is a directory), deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        if let Some(dir) = name.strip_suffix('/') {
            writer.add_directory(dir, options).unwrap();
        } else {
            writer.start_file(*name, options).unwrap();
            writer.write_all(bytes).unwrap();
        }
    }
    writer.finish().unwrap().into_inner()
}

#[test]
fn add_zip_unpacks_an_archive_into_the_drive_all_or_nothing() {
    let mut d = Drive::new();
    let archive = zip_of(&[
        ("site/", b""),
        ("site/index.html", b"<p>hi</p>"),
        ("top.txt", b"t"),
    ]);
    let body = d.send(false, "web", json!("AddZip"), Some(&archive)).0;
    assert_eq!(body, json!("Ok"));
    assert_eq!(
        d.blob("web/site/index.html", json!("Read")).as_deref(),
        Some(&b"<p>hi</p>"[..])
    );
    assert_eq!(
        d.ask("web", json!("ReadDir")),
        json!({"ReadDir": [
            {"path": "app:our.os/data/web/site", "file_type": "Directory"},
            {"path": "app:our.os/data/web/top.txt", "file_type": "File"},
        ]})
    );
    // An entry that climbs out of the drive: refused, and nothing of the archive is written.
    let escape = zip_of(&[
        ("ok.txt", b"fine"),
        ("../../../other:our.os/data/owned", b"x"),
    ]);
    let body = d.send(false, "web2", json!("AddZip"), Some(&escape)).0;
    let error = body["Err"]["ParseError"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("outside the drive"), "{body}");
    assert!(io_error(&d.ask("web2/ok.txt", json!("Read"))).contains("No such file"));
    // Another package needs the drive's write capability to unpack into it.
    let other = d.other("web3", json!("AddZip"), Some(&archive)).0;
    assert_eq!(other, json!({"Err": "NoWriteCap"}));
}

#[test]
fn add_zip_bounds_what_an_archive_unpacks_to() {
    let mut d = Drive::new();
    // 65 MiB of zeros deflate to a few kilobytes: the unpacked bytes are what count.
    let zeros = vec![0u8; (hyperkernel::process::vfs::ZIP_BYTES_MAX + (1 << 20)) as usize];
    let bomb = zip_of(&[("zeros", &zeros)]);
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    let body = d.send(false, "bomb", json!("AddZip"), Some(&bomb)).0;
    assert!(io_error(&body).contains("File too large"), "{body}");
    assert!(io_error(&d.ask("bomb/zeros", json!("Len"))).contains("No such file"));
    d.world.kernel.check_invariants().unwrap();
}

/// SECURITY.md, vfs class 1: a drive name that closes the params' JSON string and adds a
/// second `"drive"` key once earned read and write capabilities for another package's drive.
#[test]
fn a_drive_name_cannot_forge_capabilities_for_another_drive() {
    let (mut world, a, b) = setup();
    let other = "/other:our.os/pkg";
    assert_eq!(
        vfs(&mut world, &b, other, json!("CreateDrive"), None).0,
        json!("Ok")
    );
    let code = format!("{other}/code.wasm");
    assert_eq!(
        vfs(&mut world, &b, &code, json!("Write"), Some(b"\0asm")).0,
        json!("Ok")
    );
    // `x","drive":"\/other:our.os\/pkg`: no `/`, so one path component.
    let forged = r#"/app:our.os/x","drive":"\/other:our.os\/pkg"#;
    let answer = vfs(&mut world, &a, forged, json!("CreateDrive"), None).0;
    assert!(answer["Err"]["ParseError"].is_object(), "{answer}");
    for name in ["a b", "x\"y", "...", "a\\b", &"d".repeat(129)] {
        let path = format!("/app:our.os/{name}/f");
        let answer = vfs(&mut world, &a, &path, json!("CreateDrive"), None).0;
        assert!(
            answer["Err"]["ParseError"].is_object(),
            "{name:?}: {answer}"
        );
    }
    for cap in world.kernel.capabilities_of(&a) {
        assert!(!cap.params.contains("other:our.os"), "forged: {cap:?}");
    }
    assert_eq!(
        vfs(&mut world, &a, &code, json!("Read"), None).0,
        json!({"Err": "NoReadCap"})
    );
    assert_eq!(
        vfs(&mut world, &a, &code, json!("RemoveFile"), None).0,
        json!({"Err": "NoWriteCap"})
    );
    // Valid names still make drives, with exactly their own capabilities.
    for name in ["data", "Chat_History-2", "v1.0"] {
        let path = format!("/app:our.os/{name}");
        assert_eq!(
            vfs(&mut world, &a, &path, json!("CreateDrive"), None).0,
            json!("Ok")
        );
    }
    world.kernel.check_invariants().unwrap();
}

/// SECURITY.md, vfs class 14: paths are bounded in bytes before anything keeps them (60
/// `OpenFile`s with 10 MB names once held 1.7 GB of cursors).
#[test]
fn an_over_long_path_is_refused_before_it_is_kept() {
    let mut d = Drive::new();
    let long = format!(
        "{DRIVE}/{}",
        "n".repeat(hyperkernel::process::vfs::PATH_LEN_MAX)
    );
    let answer = d.ask(&long, json!({"OpenFile": {"create": true}}));
    assert!(
        answer["Err"]["ParseError"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("past 4096")),
        "{answer}"
    );
    let fits = format!("{DRIVE}/{}", "n".repeat(200));
    assert_eq!(
        d.ask(&fits, json!({"OpenFile": {"create": true}})),
        json!("Ok")
    );
}

/// SECURITY.md, vfs class 19: `Rename` of a directory onto itself once answered Ok and
/// deleted every file in it; onto a file it left a path that was both.
#[test]
fn renaming_a_directory_behaves_as_rename_2() {
    let mut d = Drive::new();
    assert_eq!(d.ask("dir", json!("CreateDir")), json!("Ok"));
    d.put("dir/a", json!("Write"), b"a");
    d.put("dir/b", json!("Write"), b"b");
    for onto in [
        format!("{DRIVE}/dir"),
        format!("{DRIVE}/./dir"),
        "/app:our.os/data/x/../dir".to_owned(),
    ] {
        assert_eq!(
            d.ask("dir", json!({"Rename": {"new_path": onto}})),
            json!("Ok"),
            "{onto}"
        );
        assert_eq!(
            d.blob("dir/a", json!("Read")).as_deref(),
            Some(&b"a"[..]),
            "{onto}"
        );
    }
    d.put("file", json!("Write"), b"f");
    let onto_file = d.ask(
        "dir",
        json!({"Rename": {"new_path": format!("{DRIVE}/file")}}),
    );
    assert!(
        io_error(&onto_file).contains("Not a directory"),
        "{onto_file}"
    );
    assert_eq!(d.blob("file", json!("Read")).as_deref(), Some(&b"f"[..]));
    assert_eq!(d.ask("other", json!("CreateDir")), json!("Ok"));
    d.put("other/keep", json!("Write"), b"k");
    let onto_full = d.ask(
        "dir",
        json!({"Rename": {"new_path": format!("{DRIVE}/other")}}),
    );
    assert!(
        io_error(&onto_full).contains("Directory not empty"),
        "{onto_full}"
    );
    // An ordinary move still moves.
    let moved = d.ask(
        "dir",
        json!({"Rename": {"new_path": format!("{DRIVE}/moved")}}),
    );
    assert_eq!(moved, json!("Ok"));
    assert_eq!(d.blob("moved/b", json!("Read")).as_deref(), Some(&b"b"[..]));
    assert!(io_error(&d.ask("dir/b", json!("Read"))).contains("No such file"));
    d.world.kernel.check_invariants().unwrap();
}

/// SECURITY.md, vfs class 21: an archive entry named `.` once turned the directory it
/// unpacked into into a file; the bound's error once said "past 0 bytes".
#[test]
fn add_zip_never_makes_a_path_both_a_file_and_a_directory() {
    let mut d = Drive::new();
    assert_eq!(d.ask("web", json!("CreateDir")), json!("Ok"));
    d.put("web/old", json!("Write"), b"o");
    for archive in [
        zip_of(&[(".", b"dot")]),
        zip_of(&[("a", b"file"), ("a/b", b"under a file")]),
        zip_of(&[("old/x", b"under an existing file")]),
    ] {
        let body = d.send(false, "web", json!("AddZip"), Some(&archive)).0;
        assert!(body["Err"]["ParseError"]["error"].is_string(), "{body}");
    }
    assert_eq!(d.blob("web/old", json!("Read")).as_deref(), Some(&b"o"[..]));
    assert_eq!(
        d.ask("web", json!("Metadata"))["Metadata"]["file_type"],
        json!("Directory")
    );
    // Two entries that fill the bound and one byte more: the error names the bound.
    let max = hyperkernel::process::vfs::ZIP_BYTES_MAX as usize;
    let full = vec![1u8; max];
    let archive = zip_of(&[("full", &full), ("one", b"1")]);
    let body = d.send(false, "web", json!("AddZip"), Some(&archive)).0;
    let error = io_error(&body);
    assert!(error.contains(&format!("past {max} bytes")), "{error}");
}
