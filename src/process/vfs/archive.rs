//! `AddZip`: an archive unpacked into a vfs directory, checked whole before anything is
//! written (entries inside the drive, files or directories only, bounded in count and bytes,
//! no path made both a file and a directory), then written in the step's one commit.

use super::{FILE_LEN_MAX, FileType, VfsError, VfsPath, exists, marker, storage};
use crate::process::ProcessContext;

/// Most entries an `AddZip` archive may hold.
pub const ZIP_ENTRIES_MAX: usize = 10_000;
/// Most bytes its entries may hold unpacked, together (a small archive can claim gigabytes).
pub const ZIP_BYTES_MAX: u64 = 64 << 20;

/// `AddZip`: unpacks the archive in `zip` into the directory `path`, as the reference does,
/// but checked first and all or nothing: every entry must stay inside the drive of `path` (a
/// `../` that climbs out is a `ParseError` naming it, where the reference writes wherever it
/// points), be a file or a directory (else `UnzipError`), and the entries are bounded in count,
/// in each file's size and in bytes together.
pub(super) fn add_zip(
    ctx: &mut ProcessContext<'_>,
    path: &VfsPath,
    zip: &[u8],
) -> Result<(), VfsError> {
    let bad = |error: String| VfsError::ParseError {
        error,
        path: path.key(),
    };
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(zip)).map_err(|e| bad(e.to_string()))?;
    if archive.len() > ZIP_ENTRIES_MAX {
        return Err(bad(format!("more than {ZIP_ENTRIES_MAX} entries")));
    }
    let mut entries: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(archive.len());
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| bad(e.to_string()))?;
        let name = entry.name().map_err(|e| bad(e.to_string()))?.into_owned();
        let inside = VfsPath::parse(&format!("{}/{name}", path.key()))
            .ok()
            .filter(|p| p.package == path.package && p.drive == path.drive)
            .ok_or_else(|| bad(format!("entry {name:?} is outside the drive")))?;
        if entry.is_dir() {
            entries.push((inside.key(), None));
            continue;
        }
        if !entry.is_file() {
            return Err(VfsError::UnzipError);
        }
        let room = FILE_LEN_MAX.min(ZIP_BYTES_MAX - total);
        let mut bytes = Vec::new();
        use std::io::Read as _;
        let read = (&mut entry)
            .take(room + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("entry {name:?}: {e}")))?;
        if read as u64 > room {
            // Which bound it broke, by its number (the room left once read "past 0 bytes").
            let text = if room < FILE_LEN_MAX {
                format!("File too large: the archive unpacks past {ZIP_BYTES_MAX} bytes")
            } else {
                format!("File too large: entry {name:?} is past {FILE_LEN_MAX} bytes")
            };
            return Err(VfsError::IOError(text));
        }
        total += read as u64;
        entries.push((inside.key(), Some(bytes)));
    }
    debug_assert!(
        total <= ZIP_BYTES_MAX,
        "an archive unpacks within its bound"
    );
    add_zip_check_shape(ctx, path, &entries)?;
    ctx.vfs_write(&marker(&path.key()), Some(&[]));
    for (key, bytes) in entries {
        match bytes {
            Some(bytes) => ctx.vfs_write(&key, Some(&bytes)),
            None => ctx.vfs_write(&marker(&key), Some(&[])),
        }
    }
    Ok(())
}

/// Refuses an archive that would make a path both a file and a directory: a file entry at
/// the directory it unpacks into (an entry named `.`), at a directory that exists or that
/// another entry makes, or under a file that exists.
fn add_zip_check_shape(
    ctx: &mut ProcessContext<'_>,
    path: &VfsPath,
    entries: &[(String, Option<Vec<u8>>)],
) -> Result<(), VfsError> {
    let root = path.key();
    let bad = |error: String| VfsError::ParseError {
        error,
        path: root.clone(),
    };
    let files: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter(|(_, bytes)| bytes.is_some())
        .map(|(key, _)| key.as_str())
        .collect();
    for (key, bytes) in entries {
        assert!(
            key.starts_with(&root),
            "entries were checked to be inside the directory"
        );
        if bytes.is_some() && *key == root {
            return Err(bad("an entry names the directory it unpacks into".into()));
        }
        if bytes.is_some() && exists(ctx, key)? == Some(FileType::Directory) {
            return Err(bad(format!("entry {key:?} is a directory already")));
        }
        // Every directory above the entry, up to the one unpacked into, must not be a file.
        let mut above = key.as_str();
        while let Some((parent, _)) = above.rsplit_once('/') {
            if parent.len() < root.len() {
                break;
            }
            if files.contains(parent) || ctx.vfs_read(parent).map_err(storage)?.is_some() {
                return Err(bad(format!("{parent:?} is a file, not a directory")));
            }
            above = parent;
        }
    }
    Ok(())
}
