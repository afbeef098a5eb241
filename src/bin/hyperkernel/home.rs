//! A node's home directory: `kernel.redb` (the store) and `node.lock` (held while a node runs,
//! so two nodes never share a home). A home is a missing or empty directory (a new node), or
//! one that holds `kernel.redb`; anything else is refused untouched.

use hyperkernel::{RedbStorage, StorageError};
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The store's file in a home.
pub(crate) const STORE: &str = "kernel.redb";
/// The lock file in a home.
pub(crate) const LOCK: &str = "node.lock";
/// The directory of the node's journal (hyperkernel::journal).
pub(crate) const JOURNAL: &str = "journal";
/// The terminal's line history in a home (`console`).
pub(crate) const HISTORY: &str = "history";

/// Why a home cannot be used.
#[derive(Debug)]
pub(crate) enum HomeError {
    /// It exists and is not a directory.
    NotADirectory(PathBuf),
    /// It holds files but no store: not a node's home.
    Foreign(PathBuf),
    /// Another node holds its lock.
    Locked(PathBuf),
    /// The file system failed.
    Io(PathBuf, std::io::Error),
    /// The store could not be opened.
    Store(StorageError),
}

impl fmt::Display for HomeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotADirectory(path) => write!(f, "{} is not a directory", path.display()),
            Self::Foreign(path) => write!(
                f,
                "{} is not a node's home: it holds files but no {STORE}",
                path.display()
            ),
            Self::Locked(path) => write!(
                f,
                "another node runs on this home ({} is locked)",
                path.display()
            ),
            Self::Io(path, error) => write!(f, "{}: {error}", path.display()),
            Self::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for HomeError {}

/// An opened home: its lock held for as long as this lives.
pub(crate) struct Home {
    /// The directory.
    pub(crate) dir: PathBuf,
    /// Whether the store existed (a boot) or not (a new node).
    pub(crate) existed: bool,
    _lock: File,
}

impl Home {
    /// Opens `dir`, creating it if missing, and takes its lock.
    ///
    /// # Errors
    /// The home is not a directory, is foreign, is locked, or the file system failed.
    pub(crate) fn open(dir: &Path) -> Result<Self, HomeError> {
        let io = |e| HomeError::Io(dir.to_owned(), e);
        if dir.exists() && !dir.is_dir() {
            return Err(HomeError::NotADirectory(dir.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let existed = dir.join(STORE).is_file();
        if !existed {
            let mut entries = std::fs::read_dir(dir).map_err(io)?;
            let other = entries.any(|e| e.is_ok_and(|e| e.file_name() != LOCK));
            if other {
                return Err(HomeError::Foreign(dir.to_owned()));
            }
        }
        let lock_path = dir.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| HomeError::Io(lock_path.clone(), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(HomeError::Locked(lock_path)),
            Err(std::fs::TryLockError::Error(e)) => return Err(HomeError::Io(lock_path, e)),
        }
        Ok(Self {
            dir: dir.to_owned(),
            existed,
            _lock: lock,
        })
    }

    /// Opens the home's store.
    ///
    /// # Errors
    /// redb could not open it.
    pub(crate) fn store(&self) -> Result<RedbStorage, HomeError> {
        RedbStorage::open(&self.dir.join(STORE)).map_err(HomeError::Store)
    }
}

/// 32 bytes from the operating system's randomness (a new node's key and the scheduler's
/// seed: the node, not the kernel, draws them).
///
/// # Errors
/// `/dev/urandom` could not be read.
pub(crate) fn os_random() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut bytes = [0; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}
