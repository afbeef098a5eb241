//! `vfs:distro:sys`: the reference's file service as a native runtime module, with its request
//! and response JSON (`VfsRequest {path, action}`, `VfsResponse`), on the kernel's store.
//!
//! A path is `/package:publisher/drive/rest`. Files live in the store's vfs table under their
//! normalized path (what `spawn` and package installation read), so every write is part of the
//! step's one atomic commit; a directory is a marker key ending in `/`, and a directory also
//! exists while it holds anything. Open files keep a cursor here (bounded; the least recently
//! used is forgotten first), as the reference keeps open handles.
//!
//! Capabilities, as the reference checks them: a process may do anything in its own package's
//! drives; in another package's it needs the drive's read or write capability issued by the
//! vfs (`{"kind":"read","drive":"/pkg:pub/drive"}`), or `{"root":true}`. `CreateDrive` is for
//! the package itself (or root) and gives the creator both capabilities. Requests from the
//! kernel pass unchecked.
//!
//! Differences from the reference, all stricter: a file is at most [`FILE_LEN_MAX`] bytes;
//! `AddZip` unpacks all or nothing, refuses entries that climb out of the drive, and bounds
//! the entries ([`ZIP_ENTRIES_MAX`], [`ZIP_BYTES_MAX`]).

mod archive;

use archive::add_zip;
pub use archive::{ZIP_BYTES_MAX, ZIP_ENTRIES_MAX};

use crate::process::{Flow, Process, ProcessContext, Wake};
use crate::types::{Address, LazyLoadBlob, Message, PackageId, ProcessId, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Largest file, in bytes.
pub const FILE_LEN_MAX: u64 = 64 << 20;
/// Most open files with a cursor (each name at most [`PATH_LEN_MAX`] bytes).
const CURSORS_MAX: usize = 4096;

/// The id of the vfs.
pub fn vfs_id() -> ProcessId {
    match ProcessId::new("vfs", "distro", "sys") {
        Ok(id) => id,
        Err(_) => unreachable!("well-known ids parse"),
    }
}

/// A request to the vfs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfsRequest {
    /// `/package:publisher/drive/rest`.
    pub path: String,
    /// What to do.
    pub action: VfsAction,
}

/// What a request asks, as the reference names it.
#[allow(
    missing_docs,
    reason = "the reference's variants, documented in the module docs"
)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsAction {
    CreateDrive,
    CreateDir,
    CreateDirAll,
    CreateFile,
    OpenFile { create: bool },
    CloseFile,
    Write,
    WriteAll,
    Append,
    SyncAll,
    Read,
    ReadDir,
    ReadToEnd,
    ReadExact { length: u64 },
    ReadToString,
    Seek(SeekFrom),
    RemoveFile,
    RemoveDir,
    RemoveDirAll,
    Rename { new_path: String },
    Metadata,
    AddZip,
    CopyFile { new_path: String },
    Len,
    SetLen(u64),
    Hash,
}

/// Where a seek is from.
#[allow(missing_docs, reason = "the reference's variants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeekFrom {
    Start(u64),
    End(i64),
    Current(i64),
}

/// A file's type.
#[allow(missing_docs, reason = "the reference's variants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileType {
    File,
    Directory,
    Symlink,
    Other,
}

/// `Metadata`'s answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMetadata {
    /// File or directory.
    pub file_type: FileType,
    /// Bytes (0 for a directory).
    pub len: u64,
}

/// One entry of `ReadDir`: its path without the leading `/`, as the reference gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// `package:publisher/drive/…`.
    pub path: String,
    /// File or directory.
    pub file_type: FileType,
}

/// The vfs's answer.
#[allow(missing_docs, reason = "the reference's variants")]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsResponse {
    Ok,
    Err(VfsError),
    Read,
    SeekFrom { new_offset: u64 },
    ReadDir(Vec<DirEntry>),
    ReadToString(String),
    Metadata(FileMetadata),
    Len(u64),
    Hash([u8; 32]),
}

/// The vfs's errors, as the reference names them.
#[allow(missing_docs, reason = "the reference's variants")]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VfsError {
    NoWriteCap,
    NoReadCap,
    AddCapFailed,
    MalformedRequest,
    NoBlob,
    ParseError { error: String, path: String },
    IOError(String),
    UnzipError,
}

fn io(text: &str) -> VfsError {
    VfsError::IOError(text.to_owned())
}

fn not_found(path: &str) -> VfsError {
    VfsError::IOError(format!("No such file or directory: {path}"))
}

/// A path split as the reference splits it, normalized (`.` and `..` resolved; a path that
/// climbs out of the root is malformed).
#[derive(Clone, Debug, PartialEq, Eq)]
struct VfsPath {
    package: PackageId,
    drive: String,
    /// The components after the drive.
    rest: Vec<String>,
}

/// Longest request path, in bytes (Linux's `PATH_MAX`): with the bound on open files, the open
/// files' cursors hold at most 16 MiB of names.
pub const PATH_LEN_MAX: usize = 4096;
/// Longest drive name, in bytes.
pub const DRIVE_LEN_MAX: usize = 128;

/// Whether `name` may name a drive: ASCII letters, digits, `-`, `_` and `.`, not only dots,
/// at most [`DRIVE_LEN_MAX`] bytes. A drive name ends up inside capability params and store
/// keys; nothing else may.
pub fn is_drive_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= DRIVE_LEN_MAX
        && name.bytes().any(|b| b != b'.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl VfsPath {
    fn parse(path: &str) -> Result<Self, VfsError> {
        if path.len() > PATH_LEN_MAX {
            return Err(VfsError::ParseError {
                error: format!("the path is {} bytes, past {PATH_LEN_MAX}", path.len()),
                path: path.chars().take(64).collect(),
            });
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(VfsError::MalformedRequest);
                    }
                }
                part => parts.push(part),
            }
        }
        if parts.len() < 2 {
            return Err(VfsError::MalformedRequest);
        }
        let package: PackageId = parts[0].parse().map_err(|_| VfsError::MalformedRequest)?;
        if package.check().is_err() || !is_drive_name(parts[1]) {
            return Err(VfsError::ParseError {
                error: "not a package id and drive name".into(),
                path: path.to_owned(),
            });
        }
        let path = Self {
            package,
            drive: parts[1].to_owned(),
            rest: parts[2..].iter().map(|p| (*p).to_owned()).collect(),
        };
        debug_assert!(
            !path.key().ends_with('/'),
            "a file key has no trailing slash"
        );
        debug_assert!(
            path.key().len() <= PATH_LEN_MAX,
            "normalizing never lengthens"
        );
        Ok(path)
    }

    /// `/package:publisher/drive`.
    fn drive(&self) -> String {
        format!("/{}/{}", self.package, self.drive)
    }

    /// The store key of the file at this path.
    fn key(&self) -> String {
        let mut key = self.drive();
        for part in &self.rest {
            key.push('/');
            key.push_str(part);
        }
        key
    }

    fn parent(&self) -> Option<Self> {
        let mut parent = self.clone();
        parent.rest.pop()?;
        Some(parent)
    }
}

/// The key of the marker of directory `key`.
fn marker(key: &str) -> String {
    format!("{key}/")
}

/// The vfs runtime module.
#[derive(Default)]
pub struct VfsProcess {
    /// Cursor of each open file, and when it was last used.
    cursors: BTreeMap<String, (u64, u64)>,
    uses: u64,
}

/// What an action produced: a response body and a blob.
type Answer = Result<(VfsResponse, Option<Vec<u8>>), VfsError>;

impl VfsProcess {
    /// A vfs with no open files.
    pub fn new() -> Self {
        Self::default()
    }

    fn cursor(&self, key: &str) -> u64 {
        self.cursors.get(key).map_or(0, |(cursor, _)| *cursor)
    }

    fn set_cursor(&mut self, key: &str, cursor: u64) {
        self.uses += 1;
        if !self.cursors.contains_key(key) && self.cursors.len() >= CURSORS_MAX {
            let oldest = self
                .cursors
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                self.cursors.remove(&oldest);
            }
        }
        self.cursors.insert(key.to_owned(), (cursor, self.uses));
        debug_assert!(self.cursors.len() <= CURSORS_MAX, "cursors stay bounded");
    }

    fn on_request(&mut self, ctx: &mut ProcessContext<'_>, source: &Address, request: &Request) {
        let answer = match serde_json::from_slice::<VfsRequest>(&request.body) {
            Ok(parsed) => self.handle(ctx, &source.process, parsed, ctx.get_blob()),
            Err(_) => Err(VfsError::MalformedRequest),
        };
        if request.expects_response.is_none() {
            return;
        }
        let (body, blob, metadata) = match answer {
            Ok((body, blob)) => (body, blob, request.metadata.clone()),
            Err(error) => (VfsResponse::Err(error), None, None),
        };
        let blob = blob.map(|bytes| LazyLoadBlob {
            mime: Some("application/octet-stream".into()),
            bytes,
        });
        let mut response = Response::new(serde_json::to_vec(&body).unwrap_or_default());
        response.metadata = metadata;
        ctx.send_response(response, blob);
    }

    fn handle(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        source: &ProcessId,
        request: VfsRequest,
        blob: Option<LazyLoadBlob>,
    ) -> Answer {
        if request.action == VfsAction::ReadDir && VfsPath::parse(&request.path).is_err() {
            return self.read_root(ctx, source, &request.path);
        }
        // A path that is not `/package:publisher/drive/…` is `MalformedRequest`, as in the
        // reference.
        let path = VfsPath::parse(&request.path)?;
        if !source.is_kernel() {
            check_caps(ctx, source, &request.action, &path)?;
        }
        let bytes = blob.map(|b| b.bytes);
        self.act(ctx, source, &path, request.action, bytes)
    }

    /// `ReadDir` of `/` (or of a path above the drives): the packages, for root only.
    fn read_root(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        source: &ProcessId,
        path: &str,
    ) -> Answer {
        if !ctx.holds_our_capability(source, &root_params()) {
            return Err(VfsError::NoReadCap);
        }
        let prefix = match path.trim_matches('/') {
            "" => "/".to_owned(),
            package => format!("/{package}/"),
        };
        let entries = list(ctx, &prefix)?;
        Ok((VfsResponse::ReadDir(entries), None))
    }

    fn act(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        source: &ProcessId,
        path: &VfsPath,
        action: VfsAction,
        blob: Option<Vec<u8>>,
    ) -> Answer {
        match action {
            VfsAction::CreateDrive
            | VfsAction::CreateDir
            | VfsAction::CreateDirAll
            | VfsAction::CreateFile
            | VfsAction::OpenFile { .. }
            | VfsAction::CloseFile => self.create(ctx, source, path, action),
            VfsAction::Write
            | VfsAction::WriteAll
            | VfsAction::Append
            | VfsAction::SyncAll
            | VfsAction::SetLen(_) => self.write(ctx, path, action, blob),
            VfsAction::Read
            | VfsAction::ReadToEnd
            | VfsAction::ReadExact { .. }
            | VfsAction::ReadToString
            | VfsAction::ReadDir
            | VfsAction::Seek(_)
            | VfsAction::Metadata
            | VfsAction::Len
            | VfsAction::Hash => self.read(ctx, path, action),
            VfsAction::RemoveFile
            | VfsAction::RemoveDir
            | VfsAction::RemoveDirAll
            | VfsAction::Rename { .. }
            | VfsAction::CopyFile { .. } => self.remove_or_move(ctx, path, action),
            VfsAction::AddZip => {
                add_zip(ctx, path, &blob.ok_or(VfsError::NoBlob)?)?;
                Ok((VfsResponse::Ok, None))
            }
        }
    }

    /// Drives, directories, files made or opened, and closed.
    fn create(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        source: &ProcessId,
        path: &VfsPath,
        action: VfsAction,
    ) -> Answer {
        let key = path.key();
        match action {
            VfsAction::CreateDrive => {
                ctx.vfs_write(&marker(&path.drive()), Some(&[]));
                let drive = path.drive();
                for kind in [DriveCap::Read, DriveCap::Write] {
                    if !ctx.issue_capability(source, &kind.params(&drive)) {
                        return Err(VfsError::AddCapFailed);
                    }
                }
            }
            VfsAction::CreateDir => {
                need_parent(ctx, path)?;
                if exists(ctx, &key)?.is_some() {
                    return Err(io("File exists"));
                }
                ctx.vfs_write(&marker(&key), Some(&[]));
            }
            VfsAction::CreateDirAll => {
                let mut dir = path.clone();
                loop {
                    if exists(ctx, &dir.key())? == Some(FileType::File) {
                        return Err(io("Not a directory"));
                    }
                    ctx.vfs_write(&marker(&dir.key()), Some(&[]));
                    match dir.parent() {
                        Some(parent) => dir = parent,
                        None => break,
                    }
                }
            }
            VfsAction::CreateFile => {
                need_parent(ctx, path)?;
                not_a_dir(ctx, &key)?;
                ctx.vfs_write(&key, Some(&[]));
                self.cursors.remove(&key);
            }
            VfsAction::OpenFile { create } => {
                if ctx.vfs_read(&key).map_err(storage)?.is_none() {
                    if !create {
                        return Err(not_found(&key));
                    }
                    need_parent(ctx, path)?;
                    not_a_dir(ctx, &key)?;
                    ctx.vfs_write(&key, Some(&[]));
                }
                self.set_cursor(&key, 0);
            }
            VfsAction::CloseFile => {
                self.cursors.remove(&key);
            }
            other => kernel_bug!("{other:?} is not a create action"),
        }
        Ok((VfsResponse::Ok, None))
    }

    /// Writes, whole or at the cursor, appends, syncs and length changes.
    fn write(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        path: &VfsPath,
        action: VfsAction,
        blob: Option<Vec<u8>>,
    ) -> Answer {
        let key = path.key();
        match action {
            VfsAction::Write => {
                let bytes = blob.ok_or(VfsError::NoBlob)?;
                need_parent(ctx, path)?;
                not_a_dir(ctx, &key)?;
                bounded(bytes.len() as u64)?;
                ctx.vfs_write(&key, Some(&bytes));
            }
            VfsAction::WriteAll => {
                let bytes = blob.ok_or(VfsError::NoBlob)?;
                let mut file = read_file(ctx, &key)?;
                let at = usize::try_from(self.cursor(&key)).map_err(|_| io("cursor"))?;
                let end = at.saturating_add(bytes.len());
                bounded(end as u64)?;
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[at..end].copy_from_slice(&bytes);
                ctx.vfs_write(&key, Some(&file));
                self.set_cursor(&key, end as u64);
            }
            VfsAction::Append => {
                let bytes = blob.ok_or(VfsError::NoBlob)?;
                let mut file = read_file(ctx, &key)?;
                bounded((file.len() + bytes.len()) as u64)?;
                file.extend_from_slice(&bytes);
                ctx.vfs_write(&key, Some(&file));
                self.set_cursor(&key, file.len() as u64);
            }
            VfsAction::SyncAll => {
                // Every step's writes are committed (and synced) at its end.
                read_file(ctx, &key)?;
            }
            VfsAction::SetLen(len) => {
                bounded(len)?;
                let mut file = read_file(ctx, &key)?;
                file.resize(len as usize, 0);
                ctx.vfs_write(&key, Some(&file));
            }
            other => kernel_bug!("{other:?} is not a write action"),
        }
        Ok((VfsResponse::Ok, None))
    }

    /// Reads, whole or from the cursor, listings, seeks, metadata and hashes.
    fn read(&mut self, ctx: &mut ProcessContext<'_>, path: &VfsPath, action: VfsAction) -> Answer {
        let key = path.key();
        let answer = |response| Ok((response, None));
        match action {
            VfsAction::Read => Ok((VfsResponse::Read, Some(read_file(ctx, &key)?))),
            VfsAction::ReadToEnd => {
                let file = read_file(ctx, &key)?;
                let at = (self.cursor(&key) as usize).min(file.len());
                self.set_cursor(&key, file.len() as u64);
                Ok((VfsResponse::Read, Some(file[at..].to_vec())))
            }
            VfsAction::ReadExact { length } => {
                let file = read_file(ctx, &key)?;
                let at = self.cursor(&key) as usize;
                let end = at.saturating_add(usize::try_from(length).unwrap_or(usize::MAX));
                if end > file.len() {
                    return Err(io("failed to fill whole buffer"));
                }
                self.set_cursor(&key, end as u64);
                Ok((VfsResponse::Read, Some(file[at..end].to_vec())))
            }
            VfsAction::ReadToString => {
                let file = read_file(ctx, &key)?;
                let at = (self.cursor(&key) as usize).min(file.len());
                let text = String::from_utf8(file[at..].to_vec())
                    .map_err(|_| io("stream did not contain valid UTF-8"))?;
                self.set_cursor(&key, file.len() as u64);
                answer(VfsResponse::ReadToString(text))
            }
            VfsAction::ReadDir => {
                if exists(ctx, &key)? != Some(FileType::Directory) {
                    return Err(not_found(&key));
                }
                answer(VfsResponse::ReadDir(list(ctx, &marker(&key))?))
            }
            VfsAction::Seek(from) => answer(self.seek(ctx, &key, from)?),
            VfsAction::Metadata => {
                let file_type = exists(ctx, &key)?.ok_or_else(|| not_found(&key))?;
                let len = match file_type {
                    FileType::File => read_file(ctx, &key)?.len() as u64,
                    _ => 0,
                };
                answer(VfsResponse::Metadata(FileMetadata { file_type, len }))
            }
            VfsAction::Len => answer(VfsResponse::Len(read_file(ctx, &key)?.len() as u64)),
            VfsAction::Hash => {
                use sha2::Digest;
                let file = read_file(ctx, &key)?;
                answer(VfsResponse::Hash(sha2::Sha256::digest(&file).into()))
            }
            other => kernel_bug!("{other:?} is not a read action"),
        }
    }

    fn seek(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        key: &str,
        from: SeekFrom,
    ) -> Result<VfsResponse, VfsError> {
        let len = read_file(ctx, key)?.len() as i128;
        let base = match from {
            SeekFrom::Start(offset) => i128::from(offset),
            SeekFrom::End(offset) => len + i128::from(offset),
            SeekFrom::Current(offset) => i128::from(self.cursor(key)) + i128::from(offset),
        };
        let new_offset = u64::try_from(base)
            .map_err(|_| io("invalid seek to a negative or overflowing position"))?;
        self.set_cursor(key, new_offset);
        Ok(VfsResponse::SeekFrom { new_offset })
    }

    /// Removals, renames and copies.
    fn remove_or_move(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        path: &VfsPath,
        action: VfsAction,
    ) -> Answer {
        let key = path.key();
        match action {
            VfsAction::RemoveFile => {
                read_file(ctx, &key)?;
                ctx.vfs_write(&key, None);
                self.cursors.remove(&key);
            }
            VfsAction::RemoveDir | VfsAction::RemoveDirAll => {
                if exists(ctx, &key)? != Some(FileType::Directory) {
                    return Err(not_found(&key));
                }
                let inside = ctx.vfs_paths(&marker(&key)).map_err(storage)?;
                if action == VfsAction::RemoveDir && inside.iter().any(|p| *p != marker(&key)) {
                    return Err(io("Directory not empty"));
                }
                for path in inside {
                    ctx.vfs_write(&path, None);
                    self.cursors.remove(&path);
                }
            }
            VfsAction::Rename { new_path } => self.move_or_copy(ctx, path, &new_path, true)?,
            VfsAction::CopyFile { new_path } => self.move_or_copy(ctx, path, &new_path, false)?,
            other => kernel_bug!("{other:?} is not a remove or move action"),
        }
        Ok((VfsResponse::Ok, None))
    }

    /// `Rename` (moving) or `CopyFile`: a file, or for a rename a whole directory.
    fn move_or_copy(
        &mut self,
        ctx: &mut ProcessContext<'_>,
        from: &VfsPath,
        to: &str,
        moving: bool,
    ) -> Result<(), VfsError> {
        let to = VfsPath::parse(to)?;
        let (from_key, to_key) = (from.key(), to.key());
        need_parent(ctx, &to)?;
        match exists(ctx, &from_key)? {
            Some(FileType::File) => {
                let file = read_file(ctx, &from_key)?;
                not_a_dir(ctx, &to_key)?;
                ctx.vfs_write(&to_key, Some(&file));
                if moving && from_key != to_key {
                    ctx.vfs_write(&from_key, None);
                    self.cursors.remove(&from_key);
                }
                Ok(())
            }
            // As rename(2): onto itself a no-op (a move that wrote each file onto itself and
            // then removed it once emptied the directory); onto a file `ENOTDIR`; onto a
            // directory that holds anything `ENOTEMPTY`.
            Some(FileType::Directory) if moving && to_key == from_key => Ok(()),
            Some(FileType::Directory) if moving => {
                if to_key.starts_with(&marker(&from_key)) {
                    return Err(io("Invalid argument: a directory cannot move into itself"));
                }
                match exists(ctx, &to_key)? {
                    Some(FileType::File) => return Err(io("Not a directory")),
                    Some(_) => {
                        let inside = ctx.vfs_paths(&marker(&to_key)).map_err(storage)?;
                        if inside.iter().any(|p| *p != marker(&to_key)) {
                            return Err(io("Directory not empty"));
                        }
                    }
                    None => {}
                }
                debug_assert!(to_key != from_key, "a move onto itself returned above");
                for inside in ctx.vfs_paths(&marker(&from_key)).map_err(storage)? {
                    let moved = format!("{to_key}{}", &inside[from_key.len()..]);
                    if let Some(bytes) = ctx.vfs_read(&inside).map_err(storage)? {
                        ctx.vfs_write(&moved, Some(&bytes));
                    }
                    ctx.vfs_write(&inside, None);
                }
                ctx.vfs_write(&marker(&to_key), Some(&[]));
                Ok(())
            }
            Some(_) => Err(io("Is a directory")),
            None => Err(not_found(&from_key)),
        }
    }
}

/// A drive's two capabilities, issued by the vfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriveCap {
    /// `{"kind":"read","drive":"/package:publisher/drive"}`.
    Read,
    /// `{"kind":"write","drive":"/package:publisher/drive"}`.
    Write,
}

impl DriveCap {
    /// The capability's params, built as a JSON value (never as text: a drive name is data,
    /// and no name can add a key).
    pub fn params(self, drive: &str) -> serde_json::Value {
        debug_assert!(
            drive.starts_with('/'),
            "a drive is /package:publisher/drive"
        );
        let kind = match self {
            Self::Read => "read",
            Self::Write => "write",
        };
        serde_json::json!({ "kind": kind, "drive": drive })
    }
}

/// The root capability's params, `{"root":true}`.
pub fn root_params() -> serde_json::Value {
    serde_json::json!({ "root": true })
}

fn storage(_: crate::kernel::SyscallError) -> VfsError {
    io("the kernel's store failed")
}

fn bounded(len: u64) -> Result<(), VfsError> {
    if len > FILE_LEN_MAX {
        return Err(VfsError::IOError(format!(
            "File too large: {len} bytes (at most {FILE_LEN_MAX})"
        )));
    }
    Ok(())
}

/// What is at `key`: a file, a directory, or nothing.
fn exists(ctx: &mut ProcessContext<'_>, key: &str) -> Result<Option<FileType>, VfsError> {
    if ctx.vfs_read(key).map_err(storage)?.is_some() {
        return Ok(Some(FileType::File));
    }
    if !ctx.vfs_paths(&marker(key)).map_err(storage)?.is_empty() {
        return Ok(Some(FileType::Directory));
    }
    Ok(None)
}

fn read_file(ctx: &mut ProcessContext<'_>, key: &str) -> Result<Vec<u8>, VfsError> {
    match ctx.vfs_read(key).map_err(storage)? {
        Some(bytes) => Ok(bytes),
        None if exists(ctx, key)? == Some(FileType::Directory) => Err(io("Is a directory")),
        None => Err(not_found(key)),
    }
}

fn not_a_dir(ctx: &mut ProcessContext<'_>, key: &str) -> Result<(), VfsError> {
    if exists(ctx, key)? == Some(FileType::Directory) {
        return Err(io("Is a directory"));
    }
    Ok(())
}

/// The parent of `path` must be a directory (a drive's root always is once created; files
/// written there by an install make it exist too).
fn need_parent(ctx: &mut ProcessContext<'_>, path: &VfsPath) -> Result<(), VfsError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    match exists(ctx, &parent.key())? {
        Some(FileType::Directory) => Ok(()),
        Some(_) => Err(io("Not a directory")),
        None => Err(not_found(&parent.key())),
    }
}

/// The entries directly under directory prefix `prefix` (ending in `/`).
fn list(ctx: &mut ProcessContext<'_>, prefix: &str) -> Result<Vec<DirEntry>, VfsError> {
    debug_assert!(prefix.ends_with('/'), "a directory prefix ends in a slash");
    let mut entries: BTreeMap<String, FileType> = BTreeMap::new();
    for path in ctx.vfs_paths(prefix).map_err(storage)? {
        let inside = &path[prefix.len()..];
        if inside.is_empty() {
            continue;
        }
        let (name, file_type) = match inside.split_once('/') {
            Some((name, _)) => (name, FileType::Directory),
            None => (inside, FileType::File),
        };
        let shown = format!("{}{name}", &prefix[1..]);
        entries.entry(shown).or_insert(file_type);
    }
    Ok(entries
        .into_iter()
        .map(|(path, file_type)| DirEntry { path, file_type })
        .collect())
}

/// The reference's capability checks (module docs).
fn check_caps(
    ctx: &ProcessContext<'_>,
    source: &ProcessId,
    action: &VfsAction,
    path: &VfsPath,
) -> Result<(), VfsError> {
    let own = source.package() == path.package.package_name
        && source.publisher() == path.package.publisher_node;
    let root = ctx.holds_our_capability(source, &root_params());
    let holds =
        |kind: DriveCap, drive: &str| root || ctx.holds_our_capability(source, &kind.params(drive));
    let drive = path.drive();
    match action {
        VfsAction::CreateDrive => {
            if own || root {
                Ok(())
            } else {
                Err(VfsError::NoWriteCap)
            }
        }
        VfsAction::Read
        | VfsAction::ReadDir
        | VfsAction::ReadExact { .. }
        | VfsAction::ReadToEnd
        | VfsAction::ReadToString
        | VfsAction::Seek(_)
        | VfsAction::Hash
        | VfsAction::Metadata
        | VfsAction::Len => {
            if own || holds(DriveCap::Read, &drive) {
                Ok(())
            } else {
                Err(VfsError::NoReadCap)
            }
        }
        VfsAction::Rename { new_path } | VfsAction::CopyFile { new_path } => {
            let to = VfsPath::parse(new_path).map_err(|_| VfsError::MalformedRequest)?;
            let to_own = source.package() == to.package.package_name
                && source.publisher() == to.package.publisher_node;
            if own && to_own {
                return Ok(());
            }
            if holds(DriveCap::Write, &drive)
                && (to.drive() == drive || holds(DriveCap::Write, &to.drive()))
            {
                Ok(())
            } else {
                Err(VfsError::NoWriteCap)
            }
        }
        _ => {
            if own || holds(DriveCap::Write, &drive) {
                Ok(())
            } else {
                Err(VfsError::NoWriteCap)
            }
        }
    }
}

impl Process for VfsProcess {
    fn wake(&mut self, ctx: &mut ProcessContext<'_>, wake: Wake) -> Flow {
        if let Wake::Received(Ok((source, Message::Request(request)))) = wake {
            // Requests must come from our node, as in the reference.
            if *source.node == *ctx.our().node {
                self.on_request(ctx, &source, &request);
            }
        }
        Flow::Receive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_and_refuse_to_climb_out() {
        let path = VfsPath::parse("/app:pub.os/pkg/./a/../b.txt").unwrap();
        assert_eq!(path.key(), "/app:pub.os/pkg/b.txt");
        assert_eq!(path.drive(), "/app:pub.os/pkg");
        assert_eq!(path.parent().unwrap().key(), "/app:pub.os/pkg");
        assert!(path.parent().unwrap().parent().is_none());
        assert_eq!(
            VfsPath::parse("/../etc/passwd"),
            Err(VfsError::MalformedRequest)
        );
        assert_eq!(
            VfsPath::parse("/app:pub.os"),
            Err(VfsError::MalformedRequest)
        );
        assert_eq!(
            VfsPath::parse("/nocolon/pkg"),
            Err(VfsError::MalformedRequest)
        );
        let climbed = VfsPath::parse("/app:pub.os/pkg/../../other:pub.os/pkg/x").unwrap();
        assert_eq!(
            climbed.key(),
            "/other:pub.os/pkg/x",
            "lexical, like the reference"
        );
    }

    #[test]
    fn the_json_is_the_references() {
        let request: VfsRequest =
            serde_json::from_str(r#"{"path":"/a:b/c","action":{"OpenFile":{"create":true}}}"#)
                .unwrap();
        assert_eq!(request.action, VfsAction::OpenFile { create: true });
        let seek: VfsAction = serde_json::from_str(r#"{"Seek":{"End":-2}}"#).unwrap();
        assert_eq!(seek, VfsAction::Seek(SeekFrom::End(-2)));
        let error = VfsResponse::Err(VfsError::IOError("x".into()));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"Err":{"IOError":"x"}}"#
        );
        let meta = VfsResponse::Metadata(FileMetadata {
            file_type: FileType::File,
            len: 3,
        });
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            r#"{"Metadata":{"file_type":"File","len":3}}"#
        );
        assert_eq!(serde_json::to_string(&VfsResponse::Ok).unwrap(), r#""Ok""#);
    }
}
