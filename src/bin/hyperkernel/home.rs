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
/// The exposed HTTP door's secret (`--http-expose`), readable by the home's owner only.
pub(crate) const DOOR_TOKEN: &str = "http-token";
/// Length of the door's token: 32 random bytes in hex.
const DOOR_TOKEN_LEN: usize = 64;

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
    /// The door's token file is not a token.
    BadToken(PathBuf),
    /// The store is an empty file.
    EmptyStore(PathBuf),
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
            Self::EmptyStore(path) => write!(
                f,
                "{} is empty: the store is damaged (it is not booted as a new node, which would \
                 lose its name, key and processes); restore it from a backup, or remove it to \
                 make a new node",
                path.display()
            ),
            Self::BadToken(path) => write!(
                f,
                "{} is not a door token (a regular file of 32 to 64 characters, no spaces); \
                 remove it and a new one is made",
                path.display()
            ),
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
        let store = dir.join(STORE);
        let existed = store.is_file();
        // An empty store is a damaged one (a file created and never written), never a new
        // node: booting it as new would give the home another name and key, and lose every
        // process it held.
        if existed && std::fs::metadata(&store).map_err(io)?.len() == 0 {
            return Err(HomeError::EmptyStore(store));
        }
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

impl Home {
    /// The exposed door's token: read from [`DOOR_TOKEN`], or made (32 random bytes in hex, a
    /// file created exclusively with mode 0600) when the home has none.
    ///
    /// # Errors
    /// The file is not a regular file of a token, or the file system failed.
    pub(crate) fn door_token(&self) -> Result<String, HomeError> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.dir.join(DOOR_TOKEN);
        let io = |e| HomeError::Io(path.clone(), e);
        let created = File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(mut file) => {
                let token: String = os_random()
                    .map_err(io)?
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                file.write_all(token.as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                assert_eq!(token.len(), DOOR_TOKEN_LEN, "32 bytes in hex");
                Ok(token)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Never follow a planted link, never read more than a token's bytes.
                let file = File::options()
                    .read(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(io)?;
                if !file.metadata().map_err(io)?.is_file() {
                    return Err(HomeError::BadToken(path));
                }
                let mut text = String::new();
                file.take(DOOR_TOKEN_LEN as u64 + 2)
                    .read_to_string(&mut text)
                    .map_err(|_| HomeError::BadToken(path.clone()))?;
                let token = text.trim().to_owned();
                if token.len() < 32
                    || token.len() > DOOR_TOKEN_LEN
                    || token.contains(char::is_whitespace)
                {
                    return Err(HomeError::BadToken(path));
                }
                Ok(token)
            }
            Err(e) => Err(io(e)),
        }
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
