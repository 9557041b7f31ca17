//! Reading the config file without trusting the path: whatever is there (a FIFO nobody writes to,
//! a hung NFS or FUSE mount, a device, a 500 MiB file), the process neither blocks nor reads it
//! whole.
//!
//! The file is opened with `O_NONBLOCK` (an `open` of a FIFO without a writer returns at once),
//! checked to be a regular file (symlinks followed) and no larger than the size limit, then read on
//! a thread of its own under a deadline. A read that outlives its deadline is reported and left to
//! finish; the next read refuses to start while it is still stuck, so at most one thread ever waits
//! on a hung filesystem, and [`ConfigReader::stuck_since`] tells `/status` about it. A pipe (`--config
//! <(…)`, `/dev/stdin`) is accepted only where the caller allows it: read once at start-up.

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// The default `--max-config-size`: 64 MiB. A config of 100,000 servers (three resource paths
/// each, modes mixed, indented) is about 18 MiB, so this leaves room while refusing a file that
/// cannot be a config before reading it.
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;
/// The default `--config-read-timeout`: reading even the largest allowed config from a local disk
/// takes well under a second; a read still running after this is stuck.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How much may be read, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    pub max_size: u64,
    pub timeout: Duration,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_size: DEFAULT_MAX_SIZE,
            timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// What was at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (or a symlink to one): watched and reloaded.
    File,
    /// A pipe or FIFO: read once; there is nothing to reload from.
    Pipe,
}

/// The bytes read and where they came from.
#[derive(Debug)]
pub struct Contents {
    pub bytes: Vec<u8>,
    pub kind: Kind,
    /// The path with every symlink resolved (the path itself when that fails).
    pub target: PathBuf,
}

/// Why the config could not be read. Each displays as one line that says what to do.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing at the path (or a symlink to nothing).
    Missing,
    /// Something that is not a regular file: `what` names it ("a directory").
    NotRegular {
        what: &'static str,
    },
    TooLarge {
        size: u64,
        max: u64,
    },
    /// The read did not finish within the timeout; it goes on in the background.
    TimedOut {
        timeout: Duration,
        pipe: bool,
    },
    /// An earlier read that timed out has still not returned.
    StillStuck {
        since: SystemTime,
    },
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Missing => write!(
                f,
                "cannot read the config file: no such file; check the path"
            ),
            ReadError::NotRegular { what } => write!(
                f,
                "the config path is {what}, not a regular file; signpost reads its config from a regular file (or a symlink to one): write the config to a file and point --config at it"
            ),
            ReadError::TooLarge { size, max } => write!(
                f,
                "the config file is {size} bytes, over the limit of {max} bytes (100,000 servers take about 20 MB); check the path, or raise --max-config-size"
            ),
            ReadError::TimedOut {
                timeout,
                pipe: true,
            } => write!(
                f,
                "reading the config pipe did not finish within {} (--config-read-timeout): nothing wrote it to the end; write the whole config and close the pipe, or use a regular file",
                humantime::format_duration(*timeout)
            ),
            ReadError::TimedOut {
                timeout,
                pipe: false,
            } => write!(
                f,
                "reading the config file did not finish within {} (--config-read-timeout): its filesystem does not answer (a hung NFS or FUSE mount?); fix the mount, signpost keeps waiting for that read in the background",
                humantime::format_duration(*timeout)
            ),
            ReadError::StillStuck { since } => write!(
                f,
                "an earlier read of the config file has not returned since {} (a hung NFS or FUSE mount?); not starting another until it does",
                humantime::format_rfc3339_seconds(*since)
            ),
            ReadError::Io(e) => write!(f, "cannot read the config file: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads config files under [`ReadLimits`], one at a time, remembering a read that got stuck.
#[derive(Debug, Default)]
pub struct ConfigReader {
    pub limits: ReadLimits,
    /// The read that outlived its deadline, if any: `true` while it runs, and when it started.
    stuck: Mutex<Option<(Arc<AtomicBool>, SystemTime)>>,
    /// The read in progress, if any, and when it started (`/status` shows it).
    reading: Arc<Mutex<Option<SystemTime>>>,
}

impl ConfigReader {
    pub fn new(limits: ReadLimits) -> ConfigReader {
        ConfigReader {
            limits,
            ..ConfigReader::default()
        }
    }

    /// When the read that has not returned started: one still within its deadline, or one that
    /// outlived it and is still stuck. `None` when no read is waiting.
    pub fn stuck_since(&self) -> Option<SystemTime> {
        let stuck = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
        match &*stuck {
            Some((running, since)) if running.load(Ordering::Acquire) => Some(*since),
            _ => *self.reading.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Reads `path`, refusing anything but a regular file (and a pipe when `allow_pipe`), anything
    /// larger than the limit, and giving up after the timeout.
    pub fn read(&self, path: &Path, allow_pipe: bool) -> Result<Contents, ReadError> {
        {
            // Not held while reading: `/status` asks for `stuck_since` meanwhile.
            let mut stuck = self.stuck.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((running, since)) = &*stuck {
                if running.load(Ordering::Acquire) {
                    return Err(ReadError::StillStuck { since: *since });
                }
                *stuck = None;
            }
        }
        let started = SystemTime::now();
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        let running = Arc::new(AtomicBool::new(true));
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (path_owned, limits, flag) = (path.to_path_buf(), self.limits, running.clone());
        let spawned = std::thread::Builder::new()
            .name("signpost-config-read".into())
            .spawn(move || {
                let result = read_now(&path_owned, limits.max_size, allow_pipe);
                flag.store(false, Ordering::Release);
                let _ = tx.send(result);
            });
        let result = match spawned {
            Err(e) => Err(ReadError::Io(e)),
            Ok(_) => match rx.recv_timeout(self.limits.timeout) {
                Ok(result) => result,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let pipe = std::fs::symlink_metadata(path)
                        .is_ok_and(|m| m.file_type().is_fifo())
                        || is_fd_path(path);
                    *self.stuck.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((running, started));
                    Err(ReadError::TimedOut {
                        timeout: self.limits.timeout,
                        pipe,
                    })
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(ReadError::Io(
                    std::io::Error::other("the reading thread failed"),
                )),
            },
        };
        *self.reading.lock().unwrap_or_else(|e| e.into_inner()) = None;
        result
    }
}

/// `/dev/fd/N`, `/dev/stdin`, `/proc/self/fd/N`: what `<(…)` and shell redirections name.
fn is_fd_path(path: &Path) -> bool {
    path.starts_with("/dev/fd") || path.starts_with("/proc") || path == Path::new("/dev/stdin")
}

/// The read itself, on the reading thread: may block as long as the filesystem does.
fn read_now(path: &Path, max: u64, allow_pipe: bool) -> Result<Contents, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ReadError::Missing,
            // `open` of a Unix socket.
            _ if e.raw_os_error() == Some(libc::ENXIO) => {
                ReadError::NotRegular { what: "a socket" }
            }
            _ => ReadError::Io(e),
        })?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        if meta.len() > max {
            return Err(ReadError::TooLarge {
                size: meta.len(),
                max,
            });
        }
        Kind::File
    } else if ft.is_fifo() && allow_pipe {
        Kind::Pipe
    } else {
        let what = if ft.is_fifo() {
            "a pipe or FIFO (read only once, at start-up)"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_block_device() {
            "a block device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        return Err(ReadError::NotRegular { what });
    };
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut bytes = Vec::with_capacity(match kind {
        Kind::File => usize::try_from(meta.len()).unwrap_or(0).saturating_add(1),
        Kind::Pipe => 64 << 10,
    });
    match kind {
        Kind::File => read_file(file, max, &mut bytes)?,
        Kind::Pipe => read_pipe(file, max, &mut bytes)?,
    }
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(Contents {
        bytes,
        kind,
        target,
    })
}

/// Reads at most `max + 1` bytes of a regular file (one more tells "too large" from "exactly at
/// the limit"); `O_NONBLOCK` does not change how a regular file reads.
fn read_file(file: std::fs::File, max: u64, out: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut limited = file.take(max.saturating_add(1));
    loop {
        match limited.read_to_end(out) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Reads a pipe to its end through the non-blocking descriptor, at most `max + 1` bytes. An empty
/// read before any data means no writer has opened it yet (or one is about to write), so it
/// waits: the caller's deadline bounds that. The descriptor stays open throughout, so what an
/// early writer wrote and closed is still there to read.
fn read_pipe(mut file: std::fs::File, max: u64, out: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut chunk) {
            Ok(0) if !out.is_empty() => return Ok(()),
            Ok(0) => std::thread::sleep(PIPE_WAIT),
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                if out.len() as u64 > max {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(PIPE_WAIT),
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// How long to wait before reading an empty pipe again.
const PIPE_WAIT: Duration = Duration::from_millis(2);

/// Parses a size such as `64MiB`, `20MB`, `500k` or `1048576` (bytes).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write it like 64MiB or 20000000"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, KiB, MiB or GiB"
            ));
        }
    };
    n.checked_mul(factor)
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

/// The lower-case hex SHA-256 of a config file's bytes: what tells one content from another in
/// `/status`, the reload decisions and the log.
pub fn content_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read that never returns (here: a real FIFO nobody writes; in production a hung mount)
    /// is reported at its deadline, shown by `stuck_since`, and never started twice.
    #[test]
    fn a_stuck_read_is_reported_and_not_repeated_until_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo (coreutils)");
        assert!(made.success());
        let reader = ConfigReader::new(ReadLimits {
            max_size: DEFAULT_MAX_SIZE,
            timeout: Duration::from_millis(200),
        });
        assert!(reader.stuck_since().is_none());
        let first = reader.read(&fifo, true).unwrap_err();
        assert!(
            matches!(first, ReadError::TimedOut { pipe: true, .. }),
            "{first}"
        );
        let since = reader.stuck_since().expect("the read is still waiting");
        let again = reader.read(&fifo, true).unwrap_err();
        assert!(
            matches!(again, ReadError::StillStuck { since: s } if s == since),
            "{again}"
        );
        // The writer comes: the stuck read returns, and the next read runs normally.
        {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            w.write_all(b"{}").unwrap();
        }
        let start = std::time::Instant::now();
        while reader.stuck_since().is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the read never returned"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // A FIFO is refused where pipes are not allowed (reloads), without blocking.
        let refused = reader.read(&fifo, false).unwrap_err();
        assert!(matches!(refused, ReadError::NotRegular { .. }), "{refused}");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
