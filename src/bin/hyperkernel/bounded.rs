//! Reading what the operator points the node at, bounded: files only if they are regular
//! files no larger than asked (checked on the opened file, before a byte is read; a FIFO or a
//! device is refused, never waited on), and lines no longer than [`LINE_BYTES_MAX`] (a longer
//! one is skipped whole, in bounded chunks, and reported).

use std::fs::File;
use std::io::{BufRead, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Longest line the node takes from its operator (a command's JSON with its capabilities fits
/// many times over).
pub(crate) const LINE_BYTES_MAX: usize = 1 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub(crate) enum FileError {
    /// Opening or reading it failed.
    Io(std::io::Error),
    /// It is not a regular file (a FIFO, a device, a directory).
    NotRegular,
    /// It is larger than allowed: its bytes and the bound.
    TooLarge(u64, u64),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::NotRegular => write!(f, "not a regular file"),
            Self::TooLarge(bytes, max) => write!(f, "{bytes} bytes, over the bound of {max}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) => Some(error),
            _ => None,
        }
    }
}

/// Opens `path` for reading without blocking on a FIFO, and checks it is a regular file of
/// at most `max` bytes; the open file and its length.
///
/// # Errors
/// As [`FileError`].
pub(crate) fn open_regular(path: &Path, max: u64) -> Result<(File, u64), FileError> {
    let file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(FileError::Io)?;
    let metadata = file.metadata().map_err(FileError::Io)?;
    if !metadata.is_file() {
        return Err(FileError::NotRegular);
    }
    if metadata.len() > max {
        return Err(FileError::TooLarge(metadata.len(), max));
    }
    Ok((file, metadata.len()))
}

/// Reads regular file `path` of at most `max` bytes whole (a file that grows while it is
/// read is cut at `max + 1` bytes and refused).
///
/// # Errors
/// As [`FileError`].
pub(crate) fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let (file, len) = open_regular(path, max)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(FileError::Io)?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge(bytes.len() as u64, max));
    }
    debug_assert!(bytes.len() as u64 <= max, "a bounded read");
    Ok(bytes)
}

/// One line from `reader`, without its end: `Ok(None)` at the end of input; `Ok(Some(Err(n)))`
/// for a line of `n` bytes or more, over `max`, skipped whole. Invalid UTF-8 is replaced.
///
/// # Errors
/// Reading failed.
pub(crate) fn read_line(
    reader: &mut impl BufRead,
    max: usize,
) -> std::io::Result<Option<Result<String, usize>>> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Ok(Some(Ok(String::from_utf8_lossy(&line).into_owned())));
    }
    if line.len() <= max {
        // The last line, without an end.
        return Ok(Some(Ok(String::from_utf8_lossy(&line).into_owned())));
    }
    // Over the bound: skip to the line's end a buffer at a time, keeping nothing.
    let mut skipped = line.len();
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let (used, ended) = match buffer.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buffer.len(), false),
        };
        reader.consume(used);
        skipped = skipped.saturating_add(used - usize::from(ended));
        if ended {
            break;
        }
    }
    Ok(Some(Err(skipped)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_an_over_long_one_is_skipped_whole() {
        let text = format!("short\r\n{}\nnext\nlast", "x".repeat(100));
        let mut reader = std::io::BufReader::with_capacity(8, text.as_bytes());
        let mut lines = Vec::new();
        while let Some(line) = read_line(&mut reader, 10).unwrap() {
            lines.push(line);
        }
        assert_eq!(
            lines,
            vec![
                Ok("short".to_owned()),
                Err(100),
                Ok("next".to_owned()),
                Ok("last".to_owned())
            ]
        );
        let mut exact = "0123456789\n".as_bytes();
        assert_eq!(
            read_line(&mut exact, 10).unwrap(),
            Some(Ok("0123456789".into()))
        );
    }

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        assert!(matches!(
            read_regular(&file, 4),
            Err(FileError::TooLarge(5, 4))
        ));
        assert!(matches!(
            read_regular(dir.path(), 4),
            Err(FileError::NotRegular | FileError::Io(_))
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(read_regular(&fifo, 4), Err(FileError::NotRegular)));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 1 << 20),
            Err(FileError::NotRegular)
        ));
    }
}
