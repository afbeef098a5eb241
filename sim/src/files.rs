//! Bounded reads of the files a user names (scenarios, wasm modules, traces): only regular
//! files, checked against a size limit before reading and read through that limit, so
//! `/dev/zero`, a FIFO or a file that grows while it is read neither hangs `sim` nor runs it
//! out of memory.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum FileError {
    /// It could not be opened or read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// It is a directory, device, FIFO or socket.
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// It is larger than the limit for its kind.
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size, or at least the bytes read before the limit was passed.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A text file that is not UTF-8.
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            Self::NotRegular { path } => {
                write!(f, "{}: not a regular file, refused", path.display())
            }
            Self::TooLarge { path, len, max } => write!(
                f,
                "{}: {len} bytes or more is over the limit of {max} bytes for this kind of file",
                path.display()
            ),
            Self::NotUtf8 { path } => write!(f, "{}: not UTF-8 text", path.display()),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The bytes of the regular file at `path`, at most `max` of them.
///
/// # Errors
/// The file is missing, not a regular file, over `max` bytes, or cannot be read.
pub fn read_bytes(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_owned(),
        source,
    };
    // The type is checked before opening: opening a FIFO would block.
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_owned(),
        });
    }
    let too_large = |len| FileError::TooLarge {
        path: path.to_owned(),
        len,
        max,
    };
    if metadata.len() > max {
        return Err(too_large(metadata.len()));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew since the check.
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > max {
        return Err(too_large(len));
    }
    debug_assert!(len <= max, "a read never returns more than its limit");
    Ok(bytes)
}

/// The UTF-8 text of the regular file at `path`, at most `max` bytes.
///
/// # Errors
/// As [`read_bytes`], and text that is not UTF-8.
pub fn read_text(path: &Path, max: u64) -> Result<String, FileError> {
    String::from_utf8(read_bytes(path, max)?).map_err(|_| FileError::NotUtf8 {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_directories_are_refused_and_limits_hold() {
        assert!(matches!(
            read_bytes(Path::new("/dev/zero"), 10),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read_bytes(Path::new("/"), 10),
            Err(FileError::NotRegular { .. })
        ));
        let dir = std::env::temp_dir().join(format!("sim-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ten");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_bytes(&file, 10).unwrap().len(), 10);
        assert!(matches!(
            read_bytes(&file, 9),
            Err(FileError::TooLarge {
                len: 10,
                max: 9,
                ..
            })
        ));
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_text(&file, 10),
            Err(FileError::NotUtf8 { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
