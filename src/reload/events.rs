//! Which notify events concern the config file, and which directories to watch: pure functions
//! of the event batch (the module doc of `reload` lists what each way of editing looks like).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use notify::Event;
use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind};

/// The file names in the watched directories that can change what the config path resolves to.
#[derive(Debug, Clone)]
pub struct Interest {
    /// The config file's own name, and its resolved target's when that differs.
    names: Vec<std::ffi::OsString>,
}

impl Interest {
    pub fn new(config_path: &Path, target: Option<&Path>) -> Interest {
        let mut names = Vec::with_capacity(2);
        for p in [Some(config_path), target].into_iter().flatten() {
            if let Some(name) = p.file_name() {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
        Interest { names }
    }

    /// The event path is the config file or its resolved target.
    fn is_file(&self, path: &Path) -> bool {
        path.file_name()
            .is_some_and(|n| self.names.iter().any(|m| m == n))
    }

    /// The event path is the file, or one of the `..data`, `..data_tmp`, `..2026_…` entries of a
    /// Kubernetes projected volume (an atomic-writer update renames those, never the file).
    fn is_relevant(&self, path: &Path) -> bool {
        self.is_file(path) || path.file_name().is_some_and(is_projection_entry)
    }
}

fn is_projection_entry(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"..")
}

/// Whether a batch of events can have changed what the config path holds. Reads (including our
/// own: inotify reports every open and close) and changes to other files in the directory do not.
pub fn batch_needs_check(events: &[Event], interest: &Interest) -> bool {
    events.iter().any(|e| {
        e.need_rescan()
            || match e.kind {
                EventKind::Any | EventKind::Other => true,
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                    e.paths.iter().any(|p| interest.is_file(p))
                }
                EventKind::Access(_) => false,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
                    e.paths.iter().any(|p| interest.is_relevant(p))
                }
            }
    })
}

/// Whether a batch removed or renamed the watched config directory itself, which ends the watch:
/// the watcher must be re-created once the directory is back.
pub fn batch_invalidates_watch(events: &[Event], config_dir: &Path) -> bool {
    events.iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        ) && e.paths.iter().any(|p| p == config_dir)
    })
}

/// Whether the batch ends with the file modified but not yet closed by its writer, so looking now
/// would likely read half a file (which would be rejected, not served, but reported as a failed
/// reload). Only meaningful where the watcher reports `Close(Write)`.
pub fn write_in_progress(events: &[Event], interest: &Interest) -> bool {
    let mut open = false;
    for e in events {
        if !e.paths.iter().any(|p| interest.is_file(p)) {
            continue;
        }
        match e.kind {
            EventKind::Create(CreateKind::File | CreateKind::Any)
            | EventKind::Modify(ModifyKind::Data(_)) => open = true,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_) => open = false,
            _ => {}
        }
    }
    open
}

/// The directories to watch: the config file's own, and the one its resolved target lives in
/// when that is elsewhere (a symlink into another directory, edited in place there).
pub fn dirs_to_watch(config_dir: &Path, target: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = vec![config_dir.to_path_buf()];
    if let Some(parent) = target.and_then(Path::parent) {
        if parent != config_dir {
            dirs.push(parent.to_path_buf());
        }
    }
    dirs
}
