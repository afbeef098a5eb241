//! The node's journal: every [`Input`] the production node gives its kernel, in order, with
//! its clock readings, so that `sim replay --journal HOME` can run the real session again in
//! simulation and reach the same trace hash.
//!
//! Layout, under `HOME/journal/`: one directory per boot (an *epoch*, `000001`, `000002`, …)
//! holding `store.redb`, the store image the boot started from (a copy taken before the kernel
//! was built on it), and segments `0000.log`, `0001.log`, … of entries. A replay starts from a
//! committed store image: the in-memory state of a running node (mailboxes, timers, the
//! memories of wasm processes) is in no store, so the one boundary where the store image is the
//! whole state is a boot.
//!
//! An entry on disk is `[len: u32 LE][check: u32 LE][payload: len bytes]`, `check` being the
//! low half of the payload's xxh3. The payload's first byte is its kind:
//! - `B` begin (first entry of segment 0): JSON [`Begin`];
//! - `S` segment (first entry of every later segment): its epoch and number;
//! - `t` time: the reading's distance from the previous reading, a LEB128 varint;
//! - `s` step;
//! - `i` any other input: a varint length, the input's JSON without its blob, then `0` or
//!   `1` and the blob (varint-length MIME, `0` for none or `1` and the text; varint-length
//!   bytes);
//! - `j` the same, with the body of the message the input carries taken out of the JSON and
//!   written as varint-length bytes right after it (a body in JSON is an array of numbers at up
//!   to four bytes a byte). Written since `j` was added; `i` is still read;
//! - `c` checkpoint and `e` end: the live trace's event count (varint) and hash (u64 LE),
//!   written every [`CHECKPOINT_STEPS`] steps, at a rotation and at a clean shutdown, so a
//!   replay proves itself along the way and names where it parted;
//! - `f` full: the journal reached its byte cap and records nothing more of this epoch.
//!
//! Bounds: a segment is rotated past `Limits::segment_bytes`; whole epochs, oldest first, are
//! removed while the journal is over `Limits::journal_bytes` (never the current one; when the
//! current epoch alone reaches it, recording stops with an `f` entry and the node says so).

mod reader;
mod writer;

pub use reader::{Epoch, JournalReader, epochs, open_epoch};
pub use writer::JournalWriter;

use crate::env::Timestamp;
use crate::kernel::Input;
use crate::types::LazyLoadBlob;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The journal format this build writes and reads.
pub const JOURNAL_FORMAT: u32 = 1;
/// Steps between checkpoints.
pub const CHECKPOINT_STEPS: u64 = 1024;
/// Largest payload of one entry (a message's bytes are capped at 64 MiB; its JSON around it).
pub const ENTRY_BYTES_MAX: u32 = 160 << 20;
/// The file holding an epoch's store image.
pub const STORE_IMAGE: &str = "store.redb";

/// How large the journal may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A segment is closed and the next begun once it holds this many bytes.
    pub segment_bytes: u64,
    /// The journal's bytes in all (store images included).
    pub journal_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            journal_bytes: 1 << 30,
        }
    }
}

/// How the journaled kernel was configured: what a replay needs besides the store image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Begin {
    /// [`JOURNAL_FORMAT`].
    pub journal_format: u32,
    /// The epoch's number.
    pub epoch: u64,
    /// The node's name.
    pub node: String,
    /// The scheduler's seed of this boot.
    pub seed: u64,
    /// A new node's signing key (a booted node's is in its store image).
    pub signing_key: Option<[u8; 32]>,
    /// `KernelConfig::sync_interval_nanos`.
    pub sync_interval_nanos: u64,
    /// Where the kernel's time started.
    pub time_start: Timestamp,
    /// `KernelConfig::vfs` (absent in journals from before the vfs: off).
    #[serde(default)]
    pub vfs: bool,
    /// `KernelConfig::network` (absent: off; a node of a simulated world has it on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// `KernelConfig::net` (absent in journals from before `net:distro:sys`: off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub net: bool,
    /// `KernelConfig::trace_bodies` (absent: off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trace_bodies: bool,
}

/// One entry read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// The epoch's configuration.
    Begin(Begin),
    /// The start of a later segment.
    Segment {
        /// Its epoch.
        epoch: u64,
        /// Its number.
        segment: u64,
    },
    /// An input, in the order the kernel took it.
    Input(Input),
    /// The live trace at this point.
    Checkpoint(Mark),
    /// A clean shutdown: the live trace at its end.
    End(Mark),
    /// The journal reached its cap; nothing later of this epoch was recorded.
    Full(Mark),
}

/// The live trace's length and hash at a point of the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// Events pushed.
    pub events: u64,
    /// The chain hash.
    pub hash: u64,
}

/// What is wrong with an entry.
#[derive(Debug)]
#[non_exhaustive]
pub enum Damage {
    /// Its checksum does not match its bytes.
    Checksum,
    /// Its length is over [`ENTRY_BYTES_MAX`].
    TooLong(u32),
    /// It is cut short (a node killed while writing it leaves this as its last entry).
    Truncated,
    /// Its kind byte is unknown.
    Kind(u8),
    /// Its payload does not decode.
    Payload(&'static str),
    /// Its JSON does not parse.
    Json(serde_json::Error),
    /// The segment does not begin as it must (`B` in segment 0, `S` with its own number in
    /// later ones).
    Misplaced,
    /// Another journal format.
    Format(u32),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Checksum => write!(f, "its checksum does not match its bytes"),
            Self::TooLong(len) => write!(f, "its length {len} is over {ENTRY_BYTES_MAX}"),
            Self::Truncated => write!(f, "it is cut short (torn by a crash?)"),
            Self::Kind(kind) => write!(f, "unknown kind byte {kind:#04x}"),
            Self::Payload(what) => write!(f, "bad payload: {what}"),
            Self::Json(error) => write!(f, "bad JSON: {error}"),
            Self::Misplaced => write!(f, "the segment does not begin with its own header"),
            Self::Format(format) => write!(
                f,
                "journal format {format} (this build reads {JOURNAL_FORMAT})"
            ),
        }
    }
}

/// Why the journal could not be written or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum JournalError {
    /// A file operation failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// There is no journal, or no such epoch, at this path.
    Missing(PathBuf),
    /// The store image is over half the journal's cap: this boot cannot be journaled.
    StoreTooLarge {
        /// The store's (apparent) size.
        store_bytes: u64,
        /// The journal's cap.
        journal_bytes: u64,
    },
    /// An entry of this many bytes is over [`ENTRY_BYTES_MAX`]: it was not written (the
    /// node bounds its inputs below that, so this is a refusal, never a panic).
    EntryTooLarge(u64),
    /// An entry is damaged; everything before it is good.
    Damaged {
        /// The segment file.
        file: PathBuf,
        /// The entry's number in its epoch, from 0.
        entry: u64,
        /// Its byte offset in the file.
        offset: u64,
        /// What is wrong.
        damage: Damage,
    },
}

impl std::fmt::Display for JournalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Missing(path) => write!(f, "{}: no journal there", path.display()),
            Self::StoreTooLarge {
                store_bytes,
                journal_bytes,
            } => write!(
                f,
                "the store is {store_bytes} bytes, over half the journal's cap of \
                 {journal_bytes}: its image cannot begin an epoch"
            ),
            Self::EntryTooLarge(bytes) => write!(
                f,
                "an entry of {bytes} bytes is over the journal's {ENTRY_BYTES_MAX}"
            ),
            Self::Damaged {
                file,
                entry,
                offset,
                damage,
            } => write!(
                f,
                "{}: entry {entry} at byte {offset}: {damage}",
                file.display()
            ),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Damaged {
                damage: Damage::Json(error),
                ..
            } => Some(error),
            _ => None,
        }
    }
}

impl JournalError {
    fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// The directory name of epoch `epoch`: its number, at least six digits wide (`000001`, …,
/// `999999`, `1000000`). The one naming rule: [`parse_epoch_name`] takes exactly these names.
pub(crate) fn epoch_name(epoch: u64) -> String {
    format!("{epoch:06}")
}

/// The epoch an epoch directory's name stands for, if it is one: digits only, of any width,
/// written as [`epoch_name`] writes its number (so `0000001` is no second name for 1).
pub(crate) fn parse_epoch_name(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number: u64 = name.parse().ok()?;
    let canonical = epoch_name(number) == name;
    debug_assert!(
        !canonical || name.len() >= 6,
        "names are at least six digits"
    );
    canonical.then_some(number)
}

/// The checksum of a payload.
fn check(payload: &[u8]) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(payload) & 0xffff_ffff) as u32
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a varint at the start of `bytes`, moving past it.
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take_bytes<'a>(bytes: &mut &'a [u8], len: u64) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if bytes.len() < len {
        return None;
    }
    let (taken, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(taken)
}

/// The payload of a `j` entry (module docs).
fn encode_input(input: &Input, out: &mut Vec<u8>) {
    let mut bare = input.clone();
    let blob = bare.take_blob();
    let body = bare.take_body();
    // Inputs are plain data (strings, numbers, byte arrays): writing them cannot fail.
    let json = match serde_json::to_vec(&bare) {
        Ok(json) => json,
        Err(error) => crate::kernel_bug!("an input did not serialize: {error}"),
    };
    out.reserve(json.len() + body.len() + blob.as_ref().map_or(0, |b| b.bytes.len()) + 32);
    out.push(b'j');
    put_varint(out, json.len() as u64);
    out.extend_from_slice(&json);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(&body);
    let Some(blob) = blob else {
        out.push(0);
        return;
    };
    out.push(1);
    match &blob.mime {
        None => out.push(0),
        Some(mime) => {
            out.push(1);
            put_varint(out, mime.len() as u64);
            out.extend_from_slice(mime.as_bytes());
        }
    }
    put_varint(out, blob.bytes.len() as u64);
    out.extend_from_slice(&blob.bytes);
}

/// Decodes the payload of an `i` entry, or of a `j` entry (`with_body`).
fn decode_input(mut bytes: &[u8], with_body: bool) -> Result<Input, Damage> {
    let len = take_varint(&mut bytes).ok_or(Damage::Payload("no JSON length"))?;
    let json = take_bytes(&mut bytes, len).ok_or(Damage::Payload("JSON cut short"))?;
    let mut input: Input = serde_json::from_slice(json).map_err(Damage::Json)?;
    if with_body {
        let len = take_varint(&mut bytes).ok_or(Damage::Payload("no body length"))?;
        let body = take_bytes(&mut bytes, len).ok_or(Damage::Payload("body cut short"))?;
        if !input.put_body(body.to_vec()) {
            return Err(Damage::Payload("a body on an input that carries none"));
        }
    }
    let (&has_blob, mut rest) = bytes.split_first().ok_or(Damage::Payload("no blob mark"))?;
    if has_blob == 0 {
        return if rest.is_empty() {
            Ok(input)
        } else {
            Err(Damage::Payload("bytes after the input"))
        };
    }
    let (&has_mime, after) = rest.split_first().ok_or(Damage::Payload("no MIME mark"))?;
    rest = after;
    let mime = if has_mime == 1 {
        let len = take_varint(&mut rest).ok_or(Damage::Payload("no MIME length"))?;
        let text = take_bytes(&mut rest, len).ok_or(Damage::Payload("MIME cut short"))?;
        Some(String::from_utf8(text.to_vec()).map_err(|_| Damage::Payload("MIME not UTF-8"))?)
    } else {
        None
    };
    let len = take_varint(&mut rest).ok_or(Damage::Payload("no blob length"))?;
    let data = take_bytes(&mut rest, len).ok_or(Damage::Payload("blob cut short"))?;
    if !rest.is_empty() {
        return Err(Damage::Payload("bytes after the blob"));
    }
    let blob = LazyLoadBlob {
        mime,
        bytes: data.to_vec(),
    };
    if !input.put_blob(blob) {
        return Err(Damage::Payload("a blob on an input that carries none"));
    }
    Ok(input)
}

fn encode_mark(kind: u8, mark: Mark, out: &mut Vec<u8>) {
    out.push(kind);
    put_varint(out, mark.events);
    out.extend_from_slice(&mark.hash.to_le_bytes());
}

fn decode_mark(mut bytes: &[u8]) -> Result<Mark, Damage> {
    let events = take_varint(&mut bytes).ok_or(Damage::Payload("no event count"))?;
    let hash: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Damage::Payload("a hash is 8 bytes"))?;
    Ok(Mark {
        events,
        hash: u64::from_le_bytes(hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Address, ProcessId, Request};

    #[test]
    fn varints_round_trip_at_their_edges() {
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut bytes = out.as_slice();
            assert_eq!(take_varint(&mut bytes), Some(value));
            assert!(bytes.is_empty());
        }
        assert_eq!(take_varint(&mut &[0x80u8][..]), None, "a cut varint");
    }

    #[test]
    fn inputs_round_trip_with_and_without_blobs() {
        let process: ProcessId = "client:test:our.os".parse().unwrap();
        let target = Address::new("our.os", ProcessId::timer());
        let with_blob = Input::Send {
            process: process.clone(),
            target,
            request: Request::new(b"{\"x\":1}".to_vec()),
            context: Some(vec![1, 2]),
            blob: Some(LazyLoadBlob {
                mime: Some("application/wasm".into()),
                bytes: vec![0, 255, 7],
            }),
        };
        for input in [with_blob, Input::Receive { process }, Input::Shutdown] {
            let mut out = Vec::new();
            encode_input(&input, &mut out);
            assert_eq!(out[0], b'j');
            assert_eq!(decode_input(&out[1..], true).unwrap(), input);
            // Every cut of the payload is refused, never misread.
            for cut in 1..out.len() {
                assert!(decode_input(&out[1..cut], true).is_err(), "cut at {cut}");
            }
        }
    }

    #[test]
    fn the_setup_inputs_round_trip_and_a_files_bytes_are_journaled_as_bytes() {
        use crate::package::{CapabilitySpec, ManifestEntry, Package};
        use crate::types::{KernelMessage, Message, OnExit, PackageId};
        let us = Address::new("our.os", ProcessId::kernel());
        let local = Input::Local(Box::new(KernelMessage {
            id: 0,
            source: us.clone(),
            target: us,
            rsvp: None,
            message: Message::Request(Request::new(b"{\"RunProcess\":\"a:b:c\"}".to_vec())),
            lazy_load_blob: Some(LazyLoadBlob {
                mime: None,
                bytes: vec![0, 97, 115, 109],
            }),
        }));
        let package = Package {
            id: PackageId {
                package_name: "app".into(),
                publisher_node: "our.os".into(),
            },
            wit_version: Some(1),
            entries: vec![ManifestEntry {
                process_name: "app".into(),
                process_wasm_path: "/app.wasm".into(),
                on_exit: OnExit::Restart,
                request_networking: true,
                request_capabilities: vec![CapabilitySpec::Messaging(ProcessId::timer())],
                grant_capabilities: Vec::new(),
                public: false,
            }],
            files: vec![("app.wasm".into(), vec![0, 97, 115, 109, 1])],
        };
        let install = Input::Install {
            package: Box::new(package),
            run: true,
        };
        let module = vec![7u8; 1 << 20];
        let write = Input::VfsWrite {
            path: "/tester:sys/tests/t.wasm".into(),
            bytes: module.clone(),
        };
        let step = Input::StepBefore(crate::env::Timestamp(42));
        for input in [local, install, write, step] {
            let mut out = Vec::new();
            encode_input(&input, &mut out);
            assert_eq!(decode_input(&out[1..], true).unwrap(), input);
            if matches!(input, Input::VfsWrite { .. }) {
                assert!(out.len() < module.len() + 512, "{} bytes", out.len());
            }
        }
    }

    #[test]
    fn a_body_is_journaled_as_its_bytes_and_old_entries_still_read() {
        let process: ProcessId = "client:test:our.os".parse().unwrap();
        let body = vec![255u8; 1 << 20];
        let input = Input::Send {
            process: process.clone(),
            target: Address::new("our.os", ProcessId::timer()),
            request: Request::new(body.clone()),
            context: None,
            blob: None,
        };
        let mut out = Vec::new();
        encode_input(&input, &mut out);
        // Once an array of numbers: 4 MiB for this body.
        assert!(out.len() < body.len() + 512, "{} bytes", out.len());
        assert_eq!(decode_input(&out[1..], true).unwrap(), input);
        // An `i` entry, as journals before `j` hold: the body inside the JSON.
        let json = serde_json::to_vec(&input).unwrap();
        let mut old = Vec::new();
        put_varint(&mut old, json.len() as u64);
        old.extend_from_slice(&json);
        old.push(0);
        assert_eq!(decode_input(&old, false).unwrap(), input);
        // A body on an input that carries none is damage.
        let mut wrong = Vec::new();
        encode_input(&Input::Receive { process }, &mut wrong);
        let json_len = usize::from(wrong[1]);
        let mut forged = wrong[..2 + json_len].to_vec();
        forged.extend_from_slice(&[3, 1, 2, 3, 0]);
        assert!(matches!(
            decode_input(&forged[1..], true),
            Err(Damage::Payload(_))
        ));
    }

    fn begin() -> Begin {
        Begin {
            journal_format: JOURNAL_FORMAT,
            epoch: 0,
            node: "our.os".into(),
            seed: 7,
            signing_key: Some([3; 32]),
            sync_interval_nanos: 0,
            time_start: Timestamp(0),
            vfs: true,
            network: false,
            net: false,
            trace_bodies: false,
        }
    }

    fn inputs(n: u64) -> Vec<Input> {
        let process: ProcessId = "client:test:our.os".parse().unwrap();
        let mut out = Vec::new();
        for i in 0..n {
            out.push(Input::Time(Timestamp(i * 1_000)));
            out.push(Input::Step);
            if i % 3 == 0 {
                out.push(Input::Receive {
                    process: process.clone(),
                });
            }
        }
        out
    }

    /// Writes `inputs` into a new epoch of `root`, marking a fake trace after each.
    fn write(root: &std::path::Path, inputs: &[Input], limits: Limits) -> u64 {
        let store = root.with_extension("store");
        std::fs::write(&store, b"image").unwrap();
        let mut writer = JournalWriter::begin(root, &store, begin(), limits).unwrap();
        let mut trace = crate::trace::Trace::new(crate::trace::TraceLevel::Hash);
        for input in inputs {
            writer.append(input, &trace).unwrap();
            trace.push(Timestamp(0), crate::trace::Event::Shutdown);
            writer.taken(&trace).unwrap();
        }
        let epoch = writer.epoch();
        writer.end(&trace).unwrap();
        epoch
    }

    #[test]
    fn a_store_over_half_the_cap_is_refused_before_anything_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let store = dir.path().join("store");
        std::fs::write(&store, b"image").unwrap();
        let limits = Limits {
            segment_bytes: 1 << 20,
            journal_bytes: 1 << 20,
        };
        let first = JournalWriter::begin(&root, &store, begin(), limits).unwrap();
        let trace = crate::trace::Trace::new(crate::trace::TraceLevel::Hash);
        first.end(&trace).unwrap();
        // Sparse: its apparent size is what a copy would write.
        std::fs::File::options()
            .write(true)
            .open(&store)
            .unwrap()
            .set_len(6 << 30)
            .unwrap();
        let Err(error) = JournalWriter::begin(&root, &store, begin(), limits) else {
            panic!("a 6 GB store began an epoch of a 1 MiB journal");
        };
        assert!(
            matches!(error, JournalError::StoreTooLarge { .. }),
            "{error}"
        );
        assert_eq!(epochs(&root).unwrap(), vec![1], "the older epoch is kept");
    }

    #[test]
    fn epochs_are_named_by_one_rule_past_six_digits() {
        for (name, number) in [("000001", Some(1)), ("999999", Some(999_999))] {
            assert_eq!(parse_epoch_name(name), number);
        }
        assert_eq!(parse_epoch_name("1000000"), Some(1_000_000));
        for other in ["0000001", "12345", "", "00001a", "-00001", "+000001"] {
            assert_eq!(parse_epoch_name(other), None, "{other:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let store = dir.path().join("store");
        std::fs::write(&store, b"image").unwrap();
        std::fs::create_dir_all(root.join("999999")).unwrap();
        let mut made = Vec::new();
        for _ in 0..2 {
            let writer = JournalWriter::begin(&root, &store, begin(), Limits::default()).unwrap();
            made.push(writer.epoch());
            let trace = crate::trace::Trace::new(crate::trace::TraceLevel::Hash);
            writer.end(&trace).unwrap();
        }
        assert_eq!(made, vec![1_000_000, 1_000_001]);
        assert_eq!(epochs(&root).unwrap(), vec![999_999, 1_000_000, 1_000_001]);
        let (latest, _) = open_epoch(&root, None).unwrap();
        assert_eq!(
            latest.begin.epoch, 1_000_001,
            "the latest, not the widest-sorted"
        );
    }

    #[test]
    fn an_entry_over_the_bound_is_an_error_and_the_journal_reads_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let store = dir.path().join("store");
        std::fs::write(&store, b"image").unwrap();
        let limits = Limits {
            segment_bytes: 1 << 30,
            journal_bytes: 1 << 30,
        };
        let mut writer = JournalWriter::begin(&root, &store, begin(), limits).unwrap();
        let trace = crate::trace::Trace::new(crate::trace::TraceLevel::Hash);
        let huge = Input::Send {
            process: "client:test:our.os".parse().unwrap(),
            target: Address::new("our.os", ProcessId::timer()),
            request: Request::new(vec![0; ENTRY_BYTES_MAX as usize + 1]),
            context: None,
            blob: None,
        };
        let error = writer.append(&huge, &trace).unwrap_err();
        assert!(matches!(error, JournalError::EntryTooLarge(n) if n > u64::from(ENTRY_BYTES_MAX)));
        writer.append(&Input::Step, &trace).unwrap();
        writer.end(&trace).unwrap();
        let (entries, error) = read_all(&root);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(read_inputs(&entries), vec![Input::Step]);
    }

    fn read_all(root: &std::path::Path) -> (Vec<Entry>, Option<JournalError>) {
        let (epoch, mut reader) = open_epoch(root, None).unwrap();
        assert_eq!(std::fs::read(&epoch.store).unwrap(), b"image");
        let mut entries = Vec::new();
        loop {
            match reader.next_entry() {
                Ok(Some(entry)) => entries.push(entry),
                Ok(None) => return (entries, None),
                Err(error) => return (entries, Some(error)),
            }
        }
    }

    fn read_inputs(entries: &[Entry]) -> Vec<Input> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Input(input) => Some(input.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_journal_reads_back_every_input_in_order_across_rotated_segments() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let written = inputs(3_000);
        let limits = Limits {
            segment_bytes: 4 << 10,
            journal_bytes: 1 << 30,
        };
        assert_eq!(write(&root, &written, limits), 1);
        let segments = std::fs::read_dir(root.join("000001")).unwrap().count() - 1;
        assert!(segments > 5, "rotated into {segments} segments");
        let (entries, error) = read_all(&root);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(read_inputs(&entries), written);
        let marks: Vec<_> = entries
            .iter()
            .filter_map(|e| match e {
                Entry::Checkpoint(m) | Entry::End(m) => Some(*m),
                _ => None,
            })
            .collect();
        // Every mark counts the inputs before it (one fake event per input).
        // One mark closes every segment: a rotation's checkpoint, or the end.
        assert_eq!(marks.len(), segments, "marks {marks:?}");
        assert_eq!(marks.last().unwrap().events, written.len() as u64);
        assert!(matches!(entries.last(), Some(Entry::End(_))));
    }

    #[test]
    fn a_torn_tail_and_a_flipped_byte_are_named_and_what_precedes_them_reads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let written = inputs(50);
        write(&root, &written, Limits::default());
        let segment = root.join("000001").join("0000.log");
        let bytes = std::fs::read(&segment).unwrap();
        // Torn: the end entry loses its last 3 bytes.
        std::fs::write(&segment, &bytes[..bytes.len() - 3]).unwrap();
        let (entries, error) = read_all(&root);
        assert_eq!(read_inputs(&entries), written);
        let Some(JournalError::Damaged { entry, damage, .. }) = error else {
            panic!("{error:?}");
        };
        assert!(matches!(damage, Damage::Truncated));
        assert_eq!(entry, entries.len() as u64 + 1, "the header is entry 0");
        // Flipped: a byte in the middle breaks its entry's checksum.
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        std::fs::write(&segment, &flipped).unwrap();
        let (entries, error) = read_all(&root);
        let Some(JournalError::Damaged { damage, offset, .. }) = error else {
            panic!("{error:?}");
        };
        assert!(
            matches!(damage, Damage::Checksum | Damage::TooLong(_)),
            "{damage}"
        );
        assert!(offset <= middle as u64);
        assert!(read_inputs(&entries).len() < written.len());
        assert_eq!(
            read_inputs(&entries)[..],
            written[..read_inputs(&entries).len()]
        );
    }

    #[test]
    fn the_journal_keeps_to_its_cap_by_removing_old_epochs_then_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("journal");
        let limits = Limits {
            segment_bytes: 1 << 10,
            journal_bytes: 16 << 10,
        };
        for _ in 0..4 {
            write(&root, &inputs(200), limits);
        }
        let kept = epochs(&root).unwrap();
        assert_eq!(kept.last(), Some(&4));
        assert!(kept.len() < 4, "old epochs removed: {kept:?}");
        // One epoch over the cap stops recording with a full mark.
        write(&root, &inputs(2_000), limits);
        let (entries, error) = read_all(&root);
        assert!(error.is_none(), "{error:?}");
        assert!(matches!(entries.last(), Some(Entry::Full(_))));
        let size: u64 = std::fs::read_dir(root.join("000005"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(size <= limits.journal_bytes, "{size} bytes");
    }
}
