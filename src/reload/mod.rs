//! Hot reload (README "Hot reload"): watch the config file's directory, take a fresh look at the file
//! after every batch of events, and swap in a new snapshot when its content changed.
//!
//! # How a change reaches requests
//!
//! notify (inotify on Linux) calls back on its own thread. The callback queues the event in an
//! `Inbox` and `try_send`s on a capacity-1 channel, so a burst wakes the reload task once. The
//! task waits for a [`QUIET_PERIOD`] without new events, asks [`batch_needs_check`] whether the
//! batch concerns the config at all, and then takes one [`look`] at the path: it resolves it
//! (symlinks included) and hashes the bytes. [`decide`] compares that look with the previous one
//! and with the served snapshot. A load reads → parses → validates → renders the whole
//! [`Registry`](crate::registry::Registry) and installs it with one `ArcSwap::store`; requests that
//! already hold the old snapshot finish with it. A failed load changes nothing that is served: its
//! problems are logged once (per content hash) and recorded in `/status` and `/metrics`.
//!
//! Three more triggers take the same look: a slow poll (`--poll-interval`) for filesystems that
//! never notify, `SIGHUP` (`lifecycle::SigHup`), and [`ReloadHandle::reload`], which the SIGHUP handler
//! calls and tests call directly.
//!
//! # What each way of editing looks like in the directory
//!
//! * in-place write (`echo > f`, `sed -i` aside): `Modify(Data)` … `Close(Write)` naming the file.
//! * write-temp-then-rename (most editors, `kubectl cp`, config management): a rename whose
//!   destination is the file. vim moves the file to `f~` and writes a new `f`.
//! * Kubernetes ConfigMap volume: `f -> ..data/f`, `..data -> ..2026_…`; an update writes a new
//!   `..2026_…` directory and renames a `..data_tmp` symlink over `..data`. No event names `f`,
//!   which is why the path is re-resolved on every batch and `..`-names count as relevant.
//! * delete, then recreate: `Remove` (warned once; the last good config stays served), then
//!   `Create`.
//!
//! The directory is watched rather than the file because a watch on a file follows its inode,
//! which every rename-based update replaces. When the file is a symlink to another directory,
//! that directory is watched as well, so in-place edits of the target are seen. If the watcher
//! fails, or the config directory itself is removed or renamed, the watcher is re-created (retried
//! every [`REWATCH_INTERVAL`] until the directory is back).

//!
//! # Files
//!
//! * `decide.rs` — one look at the path ([`look`]) and what it calls for ([`decide`]): pure.
//! * `events.rs` — which events concern the config ([`batch_needs_check`]) and what to watch: pure.
//! * `mount.rs` — the `subPath` mount warning.
//! * `task.rs` — [`spawn`]: the watcher, the reload task and its triggers, the install.

mod decide;
mod events;
mod mount;
mod task;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use decide::{Action, Seen, Served, decide, look_with};
pub use events::{
    Interest, batch_invalidates_watch, batch_needs_check, dirs_to_watch, write_in_progress,
};
pub use mount::warn_if_single_file_mount;
pub use task::{ReloadHandle, Reloading, spawn};

/// How long the directory must stay quiet before a batch of events is acted on. Editors and the
/// kubelet make several changes per save (create, write, rename, remove); they land within
/// microseconds of each other, a writer that still holds the file open is waited for (up to
/// [`MAX_WRITE_WAIT`]), and a look in between finds the old or the new content, never a mix. Most
/// of the 15 ms reload-latency target is left to the load itself.
pub const QUIET_PERIOD: Duration = Duration::from_millis(5);
/// The longest a batch is extended by a directory that never goes quiet (a log file next to the
/// config, a loop rewriting it): the file is looked at no later than this after the first event.
pub const MAX_BATCH_WAIT: Duration = Duration::from_millis(250);
/// How long to wait for a writer that has modified the file but not closed it yet (a slow copy,
/// `cat > file`) before looking anyway. Only used where the watcher reports closes (inotify).
pub const MAX_WRITE_WAIT: Duration = Duration::from_secs(1);
/// How often to try again to watch the config directory after the watch was lost (the directory
/// was removed, or the watcher failed).
pub const REWATCH_INTERVAL: Duration = Duration::from_secs(1);
/// The default `--poll-interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Events kept per batch; a burst beyond this is treated as an inotify queue overflow (look again).
pub(crate) const MAX_QUEUED_EVENTS: usize = 4096;
/// Whether the platform's watcher reports `Close(Write)`, which [`write_in_progress`] relies on.
pub(crate) const REPORTS_CLOSE_WRITE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// How the config file is watched.
#[derive(Debug, Clone)]
pub struct Options {
    /// Look at the file this often even without events, comparing its content hash;
    /// `Duration::ZERO` disables the poll.
    pub poll_interval: Duration,
    /// Watch the directory for change events. Off only to prove that the poll alone works.
    pub watch_events: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            poll_interval: DEFAULT_POLL_INTERVAL,
            watch_events: true,
        }
    }
}

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new snapshot is served.
    Installed { generation: u64 },
    /// The file holds exactly what is served; nothing was done.
    Unchanged,
    /// The file is invalid or unreadable; the previous snapshot is still served.
    Rejected,
    /// Nothing is at the path; the previous snapshot is still served.
    Missing,
    /// The file has not changed since the last look, or holds content already rejected.
    Skipped,
}
