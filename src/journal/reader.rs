//! Reading the journal back: its epochs, and one epoch's entries in order across segments.

use super::writer::segment_name;
use super::{
    Begin, Damage, ENTRY_BYTES_MAX, Entry, JOURNAL_FORMAT, JournalError, STORE_IMAGE, check,
    decode_input, decode_mark, take_varint,
};
use crate::env::Timestamp;
use crate::kernel::Input;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// The epochs under `root`, in order (directories named by six digits).
///
/// # Errors
/// `root` cannot be listed.
pub fn epochs(root: &Path) -> Result<Vec<u64>, JournalError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root).map_err(JournalError::io(root))? {
        let entry = entry.map_err(JournalError::io(root))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = super::parse_epoch_name(name) {
            found.push(number);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// One epoch of a journal: where its store image is, and its configuration.
#[derive(Clone, Debug)]
pub struct Epoch {
    /// Its directory.
    pub dir: PathBuf,
    /// The store image it starts from.
    pub store: PathBuf,
    /// Its configuration (its first entry).
    pub begin: Begin,
}

/// Opens epoch `epoch` of the journal under `root` (the latest when `None`) and reads its
/// first entry; returns it with a reader positioned after that entry.
///
/// # Errors
/// No journal or no such epoch, a file cannot be read, or the first entry is damaged or is
/// not the epoch's header.
pub fn open_epoch(root: &Path, epoch: Option<u64>) -> Result<(Epoch, JournalReader), JournalError> {
    if !root.is_dir() {
        return Err(JournalError::Missing(root.to_owned()));
    }
    let numbers = epochs(root)?;
    let number = match epoch {
        Some(number) if numbers.contains(&number) => number,
        Some(number) => return Err(JournalError::Missing(root.join(super::epoch_name(number)))),
        None => *numbers
            .last()
            .ok_or_else(|| JournalError::Missing(root.to_owned()))?,
    };
    let dir = root.join(super::epoch_name(number));
    let mut reader = JournalReader::new(dir.clone())?;
    let begin = match reader.next_entry()? {
        Some(Entry::Begin(begin)) if begin.epoch == number => begin,
        _ => return Err(reader.damaged_at_start(Damage::Misplaced)),
    };
    reader.last_time = begin.time_start;
    assert_eq!(reader.entry, 1, "the header is the epoch's first entry");
    let epoch = Epoch {
        store: dir.join(STORE_IMAGE),
        dir,
        begin,
    };
    Ok((epoch, reader))
}

/// Reads one epoch's entries in order, segment after segment.
pub struct JournalReader {
    dir: PathBuf,
    segment: u64,
    file: BufReader<File>,
    // Invariant: `entry` entries were read before the one at `offset` of the segment.
    entry: u64,
    offset: u64,
    entry_offset: u64,
    last_time: Timestamp,
}

impl JournalReader {
    fn new(dir: PathBuf) -> Result<Self, JournalError> {
        let path = dir.join(segment_name(0));
        let file = File::open(&path).map_err(JournalError::io(&path))?;
        Ok(Self {
            dir,
            segment: 0,
            file: BufReader::with_capacity(64 << 10, file),
            entry: 0,
            offset: 0,
            entry_offset: 0,
            last_time: Timestamp(0),
        })
    }

    /// The number of the next entry, counted across segments from 0.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The segment file being read.
    pub fn file(&self) -> PathBuf {
        self.dir.join(segment_name(self.segment))
    }

    fn damaged(&self, damage: Damage) -> JournalError {
        JournalError::Damaged {
            file: self.file(),
            entry: self.entry,
            offset: self.entry_offset,
            damage,
        }
    }

    fn damaged_at_start(&self, damage: Damage) -> JournalError {
        JournalError::Damaged {
            file: self.dir.join(segment_name(0)),
            entry: 0,
            offset: 0,
            damage,
        }
    }

    /// Reads up to `buf.len()` bytes; returns how many (fewer only at the file's end).
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, JournalError> {
        let mut read = 0;
        while read < buf.len() {
            match self.file.read(&mut buf[read..]) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(JournalError::Io {
                        path: self.file(),
                        source,
                    });
                }
            }
        }
        self.offset += read as u64;
        Ok(read)
    }

    /// The next raw payload of this segment, `None` at its clean end.
    fn payload(&mut self) -> Result<Option<Vec<u8>>, JournalError> {
        self.entry_offset = self.offset;
        let mut header = [0u8; 8];
        match self.fill(&mut header)? {
            0 => return Ok(None),
            8 => {}
            _ => return Err(self.damaged(Damage::Truncated)),
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > ENTRY_BYTES_MAX {
            return Err(self.damaged(Damage::TooLong(len)));
        }
        let mut payload = vec![0; len as usize];
        if self.fill(&mut payload)? < payload.len() {
            return Err(self.damaged(Damage::Truncated));
        }
        if check(&payload) != sum {
            return Err(self.damaged(Damage::Checksum));
        }
        Ok(Some(payload))
    }

    /// Moves to the next segment if there is one; false at the epoch's last.
    fn next_segment(&mut self) -> Result<bool, JournalError> {
        let path = self.dir.join(segment_name(self.segment + 1));
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(JournalError::Io { path, source }),
        };
        self.segment += 1;
        self.file = BufReader::with_capacity(64 << 10, file);
        self.offset = 0;
        Ok(true)
    }

    /// The next entry, `None` after the epoch's last.
    ///
    /// # Errors
    /// A segment cannot be read, or the entry is damaged (named by file, number and offset).
    pub fn next_entry(&mut self) -> Result<Option<Entry>, JournalError> {
        loop {
            if let Some(payload) = self.payload()? {
                let entry = self.decode(&payload)?;
                self.entry += 1;
                return Ok(Some(entry));
            }
            if !self.next_segment()? {
                return Ok(None);
            }
            let first = self.payload()?;
            let starts = first
                .as_deref()
                .and_then(|p| p.strip_prefix(b"S"))
                .and_then(|mut rest| Some((take_varint(&mut rest)?, take_varint(&mut rest)?)));
            if starts.is_none_or(|(_, segment)| segment != self.segment) {
                return Err(self.damaged(Damage::Misplaced));
            }
            self.entry += 1;
        }
    }

    fn decode(&mut self, payload: &[u8]) -> Result<Entry, JournalError> {
        let Some((&kind, rest)) = payload.split_first() else {
            return Err(self.damaged(Damage::Payload("an empty entry")));
        };
        let entry = match kind {
            b'B' => {
                let begin: Begin =
                    serde_json::from_slice(rest).map_err(|e| self.damaged(Damage::Json(e)))?;
                if begin.journal_format != JOURNAL_FORMAT {
                    return Err(self.damaged(Damage::Format(begin.journal_format)));
                }
                Entry::Begin(begin)
            }
            b't' => {
                let mut bytes = rest;
                let delta = take_varint(&mut bytes)
                    .filter(|_| bytes.is_empty())
                    .ok_or_else(|| self.damaged(Damage::Payload("a time is one varint")))?;
                self.last_time = Timestamp(self.last_time.0.saturating_add(delta));
                Entry::Input(Input::Time(self.last_time))
            }
            b's' if rest.is_empty() => Entry::Input(Input::Step),
            b'i' | b'j' => {
                let input = decode_input(rest, kind == b'j').map_err(|d| self.damaged(d))?;
                Entry::Input(input)
            }
            b'c' | b'e' | b'f' => {
                let mark = decode_mark(rest).map_err(|d| self.damaged(d))?;
                match kind {
                    b'c' => Entry::Checkpoint(mark),
                    b'e' => Entry::End(mark),
                    _ => Entry::Full(mark),
                }
            }
            other => return Err(self.damaged(Damage::Kind(other))),
        };
        Ok(entry)
    }
}
