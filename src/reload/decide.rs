//! One look at the config path (resolved target and content hash, read within the reader's limits)
//! and [`decide`], which says what that look calls for given the previous look and what is served.
//! Pure but for the read.

use std::path::{Path, PathBuf};

use crate::config::read::{ConfigReader, ReadError, content_sha256};

/// One look at the config path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Nothing at the path: deleted, or a symlink whose target is gone.
    Missing,
    /// Something is there but cannot be read (permissions, a directory, …).
    Unreadable { error: String },
    /// The file's resolved target (symlinks followed) and the hex SHA-256 of its bytes.
    File { target: PathBuf, sha256: String },
}

/// What [`decide`] says to do after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Same as the last look: do nothing.
    Nothing,
    /// The file has just disappeared: warn (once), keep serving.
    WarnMissing,
    /// The path cannot be read: record a failed reload, keep serving.
    ReportUnreadable,
    /// The content is what is served (a `touch`, an identical ConfigMap update, a file that came
    /// back unchanged): no reload, no generation bump.
    Unchanged,
    /// The content was already rejected (and its problems logged): do not log them again.
    KnownBad,
    /// Read, parse, validate, render and install.
    Load,
}

/// What is served, as far as [`decide`] cares.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    /// The content hash of the served snapshot.
    pub sha256: &'a str,
    /// Whether the last load or reload attempt succeeded.
    pub last_load_ok: bool,
    /// The content hash of the last rejected file, if the last attempt failed.
    pub rejected_sha256: Option<&'a str>,
}

/// Decides what a look at the config path calls for. `before` is the previous look; `forced` is
/// an explicit request (SIGHUP), which looks again even when nothing seems to have changed.
pub fn decide(now: &Seen, before: Option<&Seen>, served: &Served<'_>, forced: bool) -> Action {
    let repeat = !forced && before == Some(now);
    match now {
        _ if repeat => Action::Nothing,
        Seen::Missing => Action::WarnMissing,
        Seen::Unreadable { .. } => Action::ReportUnreadable,
        Seen::File { sha256, .. } if sha256 == served.sha256 && served.last_load_ok => {
            Action::Unchanged
        }
        Seen::File { sha256, .. } if !forced && served.rejected_sha256 == Some(sha256) => {
            Action::KnownBad
        }
        Seen::File { .. } => Action::Load,
    }
}

/// Reads the config path once: its resolved target and the hash of its bytes (returned too, so
/// what is loaded is exactly what was hashed). Default read limits; see [`look_with`].
#[cfg(test)]
pub fn look(path: &Path) -> (Seen, Option<Vec<u8>>) {
    look_with(&ConfigReader::default(), path)
}

/// The same through `reader`: only a regular file (or a symlink to one) is read, no larger than
/// its size limit and within its deadline, so a FIFO or a hung mount at the path never blocks.
pub fn look_with(reader: &ConfigReader, path: &Path) -> (Seen, Option<Vec<u8>>) {
    match reader.read(path, false) {
        Ok(contents) => {
            let sha256 = content_sha256(&contents.bytes);
            (
                Seen::File {
                    target: contents.target,
                    sha256,
                },
                Some(contents.bytes),
            )
        }
        Err(ReadError::Missing) => (Seen::Missing, None),
        Err(e) => (
            Seen::Unreadable {
                error: e.to_string(),
            },
            None,
        ),
    }
}
