//! Hot reload (DESIGN.md §6): watch the config file's directory, take a fresh look at the file
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
//! never notify, `SIGHUP` ([`SigHup`]), and [`ReloadHandle::reload`], which the SIGHUP handler
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

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, Flag, ModifyKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::read::{ConfigReader, ReadError};
use crate::config::{Problem, Problems};
use crate::registry::hex;
use crate::state::{self, AppState};

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
const MAX_QUEUED_EVENTS: usize = 4096;
/// Whether the platform's watcher reports `Close(Write)`, which [`write_in_progress`] relies on.
const REPORTS_CLOSE_WRITE: bool = cfg!(any(target_os = "linux", target_os = "android"));

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
pub fn look(path: &Path) -> (Seen, Option<Vec<u8>>) {
    look_with(&ConfigReader::default(), path)
}

/// The same through `reader`: only a regular file (or a symlink to one) is read, no larger than
/// its size limit and within its deadline, so a FIFO or a hung mount at the path never blocks.
pub fn look_with(reader: &ConfigReader, path: &Path) -> (Seen, Option<Vec<u8>>) {
    match reader.read(path, false) {
        Ok(contents) => {
            let sha256 = hex(&Sha256::digest(&contents.bytes));
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

/// Whether `path` is a mount point according to `/proc/self/mountinfo` text (field 5, with the
/// kernel's octal escapes for space, tab, newline and backslash).
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    mountinfo.lines().any(|line| {
        line.split(' ')
            .nth(4)
            .is_some_and(|mount_point| Path::new(&unescape_mountinfo(mount_point)) == path)
    })
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(d)) = (bytes[i], octal) {
            let value = d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            if let Ok(b) = u8::try_from(value) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Warns when the config file is itself a mount point: that is a ConfigMap (or Secret) mounted
/// with `subPath`, a bind mount of one inode that Kubernetes never updates.
pub fn warn_if_single_file_mount(config_path: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let absolute = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let canonical = std::fs::canonicalize(config_path).unwrap_or_else(|_| absolute.clone());
    if is_mount_point(&mountinfo, &absolute) || is_mount_point(&mountinfo, &canonical) {
        tracing::warn!(
            config = %config_path.display(),
            "the config file is itself a mount point (a ConfigMap mounted with subPath?); \
             Kubernetes never updates such a mount, so edits will not reach signpost: mount the \
             ConfigMap as a directory (no subPath) and point --config at the file inside it"
        );
    }
}

/// Asks the running reloader to look at the config file now (what `SIGHUP` does).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<oneshot::Sender<Outcome>>,
}

impl ReloadHandle {
    /// Looks at the file now, even if no event says it changed, and reports what was done.
    /// `None` when the reloader has stopped.
    pub async fn reload(&self) -> Option<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.requests.send(reply).await.ok()?;
        outcome.await.ok()
    }
}

/// The running watcher and reloader; dropping it stops both.
#[derive(Debug)]
pub struct Reloading {
    handle: ReloadHandle,
    task: JoinHandle<()>,
}

impl Reloading {
    pub fn handle(&self) -> ReloadHandle {
        self.handle.clone()
    }

    /// See [`ReloadHandle::reload`].
    pub async fn reload(&self) -> Option<Outcome> {
        self.handle.reload().await
    }
}

impl Drop for Reloading {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching `config_path` (as given on the command line; it names the file in logs and in
/// `/status`) and reloading `state` from it. The watch is in place when this returns; a first look
/// right after catches any change made since the served config was read. Must be called inside a
/// tokio runtime.
pub fn spawn(config_path: PathBuf, state: Arc<AppState>, options: Options) -> Reloading {
    warn_if_single_file_mount(&config_path);
    let path = std::path::absolute(&config_path).unwrap_or_else(|_| config_path.clone());
    let (wake_tx, wake_rx) = mpsc::channel(1);
    let inbox = Arc::new(Inbox {
        events: Mutex::new(Vec::new()),
        overflowed: AtomicBool::new(false),
        wake: wake_tx,
    });
    let mut watch = Watch {
        inbox,
        enabled: options.watch_events,
        watcher: None,
        watched: Vec::new(),
        retry_at: None,
    };
    let initial_target = std::fs::canonicalize(&path).ok();
    watch.sync(&path, initial_target.as_deref());
    let reloader = Reloader {
        label: config_path.display().to_string(),
        path,
        state,
        last_seen: None,
        rejected_sha256: None,
    };
    let (requests_tx, requests_rx) = mpsc::channel(4);
    let task = tokio::spawn(run(
        Arc::new(Mutex::new(reloader)),
        watch,
        wake_rx,
        requests_rx,
        options.poll_interval,
    ));
    Reloading {
        handle: ReloadHandle {
            requests: requests_tx,
        },
        task,
    }
}

/// The `SIGHUP` handler, installed early (a `SIGHUP` while starting up must not kill the
/// process; one that arrives then is acted on once the reloader runs).
#[derive(Debug)]
pub struct SigHup(tokio::signal::unix::Signal);

impl SigHup {
    /// Installs the handler now.
    pub fn install() -> std::io::Result<SigHup> {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).map(SigHup)
    }

    /// Re-reads the config on every `SIGHUP` through `handle`; without one (`--demo`) the signal
    /// is logged and ignored.
    pub fn forward_to(mut self, handle: Option<ReloadHandle>) -> JoinHandle<()> {
        tokio::spawn(async move {
            while self.0.recv().await.is_some() {
                match &handle {
                    Some(handle) => {
                        tracing::info!("SIGHUP received; re-reading the config file");
                        if handle.reload().await.is_none() {
                            return;
                        }
                    }
                    None => tracing::info!(
                        "SIGHUP received; nothing to reload (--demo, or a config read from a pipe)"
                    ),
                }
            }
        })
    }
}

// === The reload task ===

/// Why the file is being looked at (a log field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    Events,
    Poll,
    Request,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Events => "file event",
            Trigger::Poll => "poll",
            Trigger::Request => "reload request (SIGHUP)",
        }
    }
}

/// Looks at the file and applies [`decide`]. Only the reload task installs snapshots, so the next
/// generation is always the served one plus one.
#[derive(Debug)]
struct Reloader {
    /// The path as the user gave it: names the file in problems, logs and `/status`.
    label: String,
    /// The same, made absolute (the process never changes directory, but be explicit).
    path: PathBuf,
    state: Arc<AppState>,
    /// The previous look; `None` before the first.
    last_seen: Option<Seen>,
    /// The hash of the content last rejected, so the same bad file is reported once.
    rejected_sha256: Option<String>,
}

impl Reloader {
    fn target(&self) -> Option<&Path> {
        match &self.last_seen {
            Some(Seen::File { target, .. }) => Some(target),
            _ => None,
        }
    }

    fn check(&mut self, trigger: Trigger) -> Outcome {
        let (seen, bytes) = look_with(&self.state.config_reader, &self.path);
        let (served_sha256, generation) = {
            let registry = self.state.registry();
            (
                registry.source.content_sha256.clone(),
                registry.source.generation,
            )
        };
        let last_load_ok = self.state.last_load().ok;
        let served = Served {
            sha256: &served_sha256,
            last_load_ok,
            rejected_sha256: if last_load_ok {
                None
            } else {
                self.rejected_sha256.as_deref()
            },
        };
        let forced = trigger == Trigger::Request;
        let action = decide(&seen, self.last_seen.as_ref(), &served, forced);
        let was_missing = matches!(self.last_seen, Some(Seen::Missing));
        let trigger = trigger.as_str();
        let file = self.label.as_str();
        tracing::debug!(file, trigger, ?seen, ?action, "looked at the config file");
        let outcome = match action {
            Action::Nothing => Outcome::Skipped,
            Action::WarnMissing => {
                tracing::warn!(
                    file,
                    generation,
                    "the config file is gone; still serving the last good config until it is back"
                );
                Outcome::Missing
            }
            Action::ReportUnreadable => {
                let Seen::Unreadable { error } = &seen else {
                    unreachable!("decide returns ReportUnreadable only for Unreadable")
                };
                let problems = unreadable(&self.label, error);
                tracing::error!("{problems}");
                tracing::warn!(
                    file,
                    generation,
                    "config reload failed; keeping the last good config"
                );
                self.state.reject(problems.to_string());
                Outcome::Rejected
            }
            Action::Unchanged => {
                if was_missing {
                    tracing::info!(file, generation, "the config file is back, unchanged");
                } else if forced {
                    tracing::info!(file, generation, "config unchanged; nothing to reload");
                }
                Outcome::Unchanged
            }
            Action::KnownBad => Outcome::Skipped,
            Action::Load => {
                let Seen::File { sha256, .. } = &seen else {
                    unreachable!("decide returns Load only for File")
                };
                let bytes = bytes.expect("a file that was seen was read");
                let built = state::build_next(&self.state, &bytes, &self.label, generation + 1);
                match built {
                    Ok(registry) => {
                        for w in &registry.config.warnings {
                            tracing::warn!("{}: {}: {}", self.label, w.path, w.message);
                        }
                        let next = registry.source.generation;
                        let servers = registry.config.servers.len();
                        self.state.install(registry);
                        self.rejected_sha256 = None;
                        tracing::info!(
                            file,
                            trigger,
                            generation = next,
                            servers,
                            sha256 = %&sha256[..12],
                            "config reloaded"
                        );
                        Outcome::Installed { generation: next }
                    }
                    Err(problems) => {
                        for line in problems.to_string().lines() {
                            tracing::error!("{line}");
                        }
                        tracing::warn!(
                            file,
                            trigger,
                            problems = problems.list.len(),
                            generation,
                            "config reload failed; keeping the last good config"
                        );
                        self.state.reject(problems.to_string());
                        self.rejected_sha256 = Some(sha256.clone());
                        Outcome::Rejected
                    }
                }
            }
        };
        self.last_seen = Some(seen);
        outcome
    }
}

fn unreadable(label: &str, error: &str) -> Problems {
    Problems {
        file: label.to_owned(),
        list: vec![Problem {
            pos: None,
            path: String::new(),
            message: error.to_owned(),
        }],
    }
}

/// Where notify's callback (on notify's thread) leaves events for the reload task.
#[derive(Debug)]
struct Inbox {
    events: Mutex<Vec<notify::Result<Event>>>,
    /// More than [`MAX_QUEUED_EVENTS`] arrived: the batch is incomplete, look anyway.
    overflowed: AtomicBool,
    /// Capacity 1: a full channel means the task is already woken, which coalesces bursts.
    wake: mpsc::Sender<()>,
}

impl Inbox {
    fn push(&self, event: notify::Result<Event>) {
        {
            let mut events = lock(&self.events);
            if events.len() < MAX_QUEUED_EVENTS {
                events.push(event);
            } else {
                self.overflowed.store(true, Ordering::Relaxed);
            }
        }
        let _ = self.wake.try_send(());
    }

    /// Moves the queued events into `events` and the errors into `errors`.
    fn drain_into(&self, events: &mut Vec<Event>, errors: &mut Vec<notify::Error>) {
        for e in std::mem::take(&mut *lock(&self.events)) {
            match e {
                Ok(e) => events.push(e),
                Err(e) => errors.push(e),
            }
        }
        if self.overflowed.swap(false, Ordering::Relaxed) {
            events.push(Event::new(EventKind::Other).set_flag(Flag::Rescan));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The notify watcher and the directories it watches.
struct Watch {
    inbox: Arc<Inbox>,
    enabled: bool,
    watcher: Option<RecommendedWatcher>,
    /// Canonical paths; the first is the config directory.
    watched: Vec<PathBuf>,
    /// Set while the config directory is not watched: when to try again.
    retry_at: Option<Instant>,
}

impl Watch {
    fn config_dir(&self) -> Option<&Path> {
        self.watched.first().map(PathBuf::as_path)
    }

    /// Drops the watcher; the next [`Watch::sync`] creates a new one (and reports that the watch
    /// was re-established, so the caller looks at the file once more).
    fn reset(&mut self) {
        self.watcher = None;
        self.watched.clear();
        self.retry_at
            .get_or_insert_with(|| Instant::now() + REWATCH_INTERVAL);
    }

    /// Makes the watched directories match the config path and its current target. Returns true
    /// when the config directory has just become watched again after being lost (events may have
    /// been missed: look at the file).
    fn sync(&mut self, config_path: &Path, target: Option<&Path>) -> bool {
        if !self.enabled {
            return false;
        }
        match self.try_sync(config_path, target) {
            Ok(()) => self.retry_at.take().is_some(),
            Err(e) => {
                if self.retry_at.is_none() {
                    tracing::warn!(
                        config = %config_path.display(),
                        cause = %e,
                        "cannot watch the config directory; retrying every {REWATCH_INTERVAL:?} (the poll still runs)"
                    );
                }
                self.reset();
                self.retry_at = Some(Instant::now() + REWATCH_INTERVAL);
                false
            }
        }
    }

    fn try_sync(&mut self, config_path: &Path, target: Option<&Path>) -> notify::Result<()> {
        let dir = config_path.parent().unwrap_or(Path::new("/"));
        let dir = std::fs::canonicalize(dir).map_err(notify::Error::io)?;
        let wanted = dirs_to_watch(&dir, target);
        if !self.watched.is_empty() && self.config_dir() != Some(dir.as_path()) {
            // The config directory moved (its path resolves elsewhere now): start over.
            self.reset();
        }
        let watcher = match &mut self.watcher {
            Some(w) => w,
            None => {
                let inbox = self.inbox.clone();
                let w = notify::recommended_watcher(move |e| inbox.push(e))?;
                self.watcher.insert(w)
            }
        };
        for old in self.watched.iter().filter(|d| !wanted.contains(d)) {
            // Fails when the directory is already gone, which is fine.
            let _ = watcher.unwatch(old);
        }
        self.watched.retain(|d| wanted.contains(d));
        for (i, d) in wanted.iter().enumerate() {
            if self.watched.contains(d) {
                continue;
            }
            match watcher.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => self.watched.push(d.clone()),
                // Losing the config directory's watch is what `retry_at` is for.
                Err(e) if i == 0 => return Err(e),
                // The target's directory may vanish mid-swap; the next batch tries again.
                Err(e) => {
                    tracing::debug!(dir = %d.display(), cause = %e, "cannot watch the config target's directory")
                }
            }
        }
        Ok(())
    }
}

async fn run(
    reloader: Arc<Mutex<Reloader>>,
    mut watch: Watch,
    mut wake: mpsc::Receiver<()>,
    mut requests: mpsc::Receiver<oneshot::Sender<Outcome>>,
    poll_interval: Duration,
) {
    check(&reloader, &mut watch, Trigger::Start).await;
    let poll_enabled = !poll_interval.is_zero();
    let period = if poll_enabled {
        poll_interval
    } else {
        Duration::from_secs(3600)
    };
    let mut poll = tokio::time::interval_at(Instant::now() + period, period);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let retry_at = watch.retry_at;
        tokio::select! {
            Some(reply) = requests.recv() => {
                let outcome = check(&reloader, &mut watch, Trigger::Request).await;
                let _ = reply.send(outcome);
            }
            Some(()) = wake.recv() => {
                let (events, errors) = collect_batch(&watch.inbox, &mut wake, &reloader).await;
                let mut look_now = false;
                if let Some(e) = errors.first() {
                    tracing::warn!(cause = %e, errors = errors.len(), "the file watcher failed; re-creating it");
                    watch.reset();
                    look_now = true;
                }
                if let Some(dir) = watch.config_dir().filter(|d| batch_invalidates_watch(&events, d)) {
                    tracing::warn!(dir = %dir.display(), "the config directory was removed or renamed; watching it again once it is back");
                    watch.reset();
                    look_now = true;
                }
                let interest = {
                    let r = lock(&reloader);
                    Interest::new(&r.path, r.target())
                };
                if look_now || batch_needs_check(&events, &interest) {
                    check(&reloader, &mut watch, Trigger::Events).await;
                }
            }
            _ = poll.tick(), if poll_enabled => {
                check(&reloader, &mut watch, Trigger::Poll).await;
            }
            () = sleep_until_opt(retry_at) => {
                // Looks, then re-watches (and looks again if that worked).
                check(&reloader, &mut watch, Trigger::Events).await;
            }
            else => break,
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Takes one look (off the async threads: a large config takes a while to render), then makes
/// the watches follow the file's current target. When that re-establishes a lost watch, looks
/// once more: a change made between the look and the watch would otherwise wait for the poll.
async fn check(reloader: &Arc<Mutex<Reloader>>, watch: &mut Watch, trigger: Trigger) -> Outcome {
    let first = look_and_sync(reloader, watch, trigger).await;
    if !first.1 {
        return first.0;
    }
    tracing::info!(config = %lock(reloader).label, "watching the config directory again");
    match look_and_sync(reloader, watch, Trigger::Events).await.0 {
        Outcome::Skipped | Outcome::Unchanged => first.0,
        second => second,
    }
}

/// One look, then [`Watch::sync`]; true when that re-established a lost watch.
async fn look_and_sync(
    reloader: &Arc<Mutex<Reloader>>,
    watch: &mut Watch,
    trigger: Trigger,
) -> (Outcome, bool) {
    let r = reloader.clone();
    let outcome = tokio::task::spawn_blocking(move || lock(&r).check(trigger))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(cause = %e, "config reload task failed; keeping the last good config");
            Outcome::Skipped
        });
    let (path, target) = {
        let r = lock(reloader);
        (r.path.clone(), r.target().map(Path::to_path_buf))
    };
    (outcome, watch.sync(&path, target.as_deref()))
}

/// Gathers events until the directory has been quiet for [`QUIET_PERIOD`] (at most
/// [`MAX_BATCH_WAIT`]), waiting up to [`MAX_WRITE_WAIT`] for a writer to close the file.
async fn collect_batch(
    inbox: &Inbox,
    wake: &mut mpsc::Receiver<()>,
    reloader: &Mutex<Reloader>,
) -> (Vec<Event>, Vec<notify::Error>) {
    let start = Instant::now();
    let (mut events, mut errors) = (Vec::new(), Vec::new());
    inbox.drain_into(&mut events, &mut errors);
    loop {
        match tokio::time::timeout(QUIET_PERIOD, wake.recv()).await {
            Ok(Some(())) => {
                inbox.drain_into(&mut events, &mut errors);
                if start.elapsed() < MAX_BATCH_WAIT {
                    continue;
                }
            }
            Ok(None) => {}
            Err(_quiet) => {
                let writing = REPORTS_CLOSE_WRITE && {
                    let r = lock(reloader);
                    write_in_progress(&events, &Interest::new(&r.path, r.target()))
                };
                if writing && start.elapsed() < MAX_WRITE_WAIT {
                    continue;
                }
            }
        }
        return (events, errors);
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{DataChange, MetadataKind, RemoveKind, RenameMode};

    use super::*;

    const DIR: &str = "/etc/signpost";

    fn at(name: &str) -> PathBuf {
        Path::new(DIR).join(name)
    }

    fn ev(kind: EventKind, names: &[&str]) -> Event {
        names
            .iter()
            .fold(Event::new(kind), |e, n| e.add_path(at(n)))
    }

    fn create(name: &str) -> Event {
        ev(EventKind::Create(CreateKind::File), &[name])
    }
    fn create_dir(name: &str) -> Event {
        ev(EventKind::Create(CreateKind::Folder), &[name])
    }
    fn open(name: &str) -> Event {
        ev(
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            &[name],
        )
    }
    fn write(name: &str) -> Event {
        ev(
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            &[name],
        )
    }
    fn close_write(name: &str) -> Event {
        ev(
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            &[name],
        )
    }
    fn close_read(name: &str) -> Event {
        ev(
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            &[name],
        )
    }
    fn remove(name: &str) -> Event {
        ev(EventKind::Remove(RemoveKind::File), &[name])
    }
    fn remove_dir(name: &str) -> Event {
        ev(EventKind::Remove(RemoveKind::Folder), &[name])
    }
    /// What inotify gives for `rename(from, to)` inside one watched directory.
    fn rename(from: &str, to: &str) -> Vec<Event> {
        vec![
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                &[from],
            ),
            ev(EventKind::Modify(ModifyKind::Name(RenameMode::To)), &[to]),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &[from, to],
            ),
        ]
    }

    fn plain() -> Interest {
        Interest::new(&at("signpost.json"), Some(&at("signpost.json")))
    }

    fn configmap() -> Interest {
        Interest::new(
            &at("signpost.json"),
            Some(&at("..2026_11_26_14_00_00.123/signpost.json")),
        )
    }

    fn file(target: &str, sha256: &str) -> Seen {
        Seen::File {
            target: PathBuf::from(target),
            sha256: sha256.to_owned(),
        }
    }

    const SERVED: Served<'static> = Served {
        sha256: "aaaa",
        last_load_ok: true,
        rejected_sha256: None,
    };

    // --- Which batches call for a look ---

    #[test]
    fn reloads_when_file_is_written_in_place() {
        let batch = [
            open("signpost.json"),
            write("signpost.json"),
            write("signpost.json"),
            close_write("signpost.json"),
        ];
        assert!(batch_needs_check(&batch, &plain()));
        assert!(!write_in_progress(&batch, &plain()));
    }

    #[test]
    fn reloads_when_editor_renames_temp_file_over_config() {
        let mut batch = vec![
            create(".signpost.json.tmp"),
            write(".signpost.json.tmp"),
            close_write(".signpost.json.tmp"),
        ];
        assert!(
            !batch_needs_check(&batch, &plain()),
            "the temp file alone is no change"
        );
        batch.extend(rename(".signpost.json.tmp", "signpost.json"));
        assert!(batch_needs_check(&batch, &plain()));
        assert!(!write_in_progress(&batch, &plain()));
    }

    #[test]
    fn reloads_when_vim_renames_over_config() {
        // vim (backupcopy=auto): move the file to its backup, write a new one, drop the backup.
        let mut batch = vec![create("4913"), remove("4913")];
        batch.extend(rename("signpost.json", "signpost.json~"));
        batch.extend([
            create("signpost.json"),
            open("signpost.json"),
            write("signpost.json"),
            close_write("signpost.json"),
            ev(
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                &["signpost.json"],
            ),
            remove("signpost.json~"),
        ]);
        assert!(batch_needs_check(&batch, &plain()));
        assert!(!write_in_progress(&batch, &plain()));
        assert!(!batch_invalidates_watch(&batch, Path::new(DIR)));
    }

    #[test]
    fn reloads_on_configmap_data_swap_without_event_naming_the_file() {
        let mut batch = vec![
            create_dir("..2026_11_26_14_05_00.456"),
            create("..data_tmp"),
        ];
        batch.extend(rename("..data_tmp", "..data"));
        batch.push(remove_dir("..2026_11_26_14_00_00.123"));
        assert!(
            batch
                .iter()
                .all(|e| e.paths.iter().all(|p| !p.ends_with("signpost.json")))
        );
        assert!(batch_needs_check(&batch, &configmap()));
        assert!(!write_in_progress(&batch, &configmap()));
        // The look then finds a new target and new content: load.
        let before = file(
            "/etc/signpost/..2026_11_26_14_00_00.123/signpost.json",
            "aaaa",
        );
        let now = file(
            "/etc/signpost/..2026_11_26_14_05_00.456/signpost.json",
            "bbbb",
        );
        assert_eq!(decide(&now, Some(&before), &SERVED, false), Action::Load);
    }

    #[test]
    fn reloads_when_symlink_target_outside_dir_is_edited_in_place() {
        let interest = Interest::new(&at("signpost.json"), Some(Path::new("/srv/conf/prod.json")));
        let batch = [
            Event::new(EventKind::Modify(ModifyKind::Data(DataChange::Any)))
                .add_path(PathBuf::from("/srv/conf/prod.json")),
        ];
        assert!(batch_needs_check(&batch, &interest));
        assert_eq!(
            dirs_to_watch(Path::new(DIR), Some(Path::new("/srv/conf/prod.json"))),
            [PathBuf::from(DIR), PathBuf::from("/srv/conf")]
        );
    }

    #[test]
    fn plain_file_watches_only_its_directory() {
        assert_eq!(
            dirs_to_watch(Path::new(DIR), Some(&at("signpost.json"))),
            [PathBuf::from(DIR)]
        );
        assert_eq!(dirs_to_watch(Path::new(DIR), None), [PathBuf::from(DIR)]);
    }

    #[test]
    fn ignores_events_for_other_files_in_dir() {
        let batch = [
            create("other.json"),
            write("other.json"),
            close_write("other.json"),
            create(".signpost.json.swp"),
            write(".signpost.json.swp"),
            remove("signpost.json.bak"),
            create_dir("backups"),
        ];
        assert!(!batch_needs_check(&batch, &plain()));
        assert!(!write_in_progress(&batch, &plain()));
    }

    #[test]
    fn ignores_our_own_reads_of_the_config() {
        // inotify reports every open and close, including the reloader's own read.
        let batch = [open("signpost.json"), close_read("signpost.json")];
        assert!(!batch_needs_check(&batch, &plain()));
        assert!(!batch_needs_check(&batch, &configmap()));
    }

    #[test]
    fn looks_again_after_event_queue_overflow() {
        let batch = [Event::new(EventKind::Other).set_flag(Flag::Rescan)];
        assert!(batch_needs_check(&batch, &plain()));
    }

    #[test]
    fn delete_is_a_change_and_does_not_invalidate_the_watch() {
        let batch = [remove("signpost.json")];
        assert!(batch_needs_check(&batch, &plain()));
        assert!(!batch_invalidates_watch(&batch, Path::new(DIR)));
        assert!(!write_in_progress(&batch, &plain()));
    }

    #[test]
    fn removing_or_renaming_the_config_dir_invalidates_the_watch() {
        let removed =
            [Event::new(EventKind::Remove(RemoveKind::Folder)).add_path(PathBuf::from(DIR))];
        assert!(batch_invalidates_watch(&removed, Path::new(DIR)));
        let moved = [
            Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::From)))
                .add_path(PathBuf::from(DIR)),
        ];
        assert!(batch_invalidates_watch(&moved, Path::new(DIR)));
    }

    #[test]
    fn waits_while_the_writer_has_not_closed_the_file() {
        let started = [open("signpost.json"), write("signpost.json")];
        assert!(write_in_progress(&started, &plain()));
        let recreated = [remove("signpost.json"), create("signpost.json")];
        assert!(write_in_progress(&recreated, &plain()));
        let done = [
            started[0].clone(),
            started[1].clone(),
            close_write("signpost.json"),
        ];
        assert!(!write_in_progress(&done, &plain()));
    }

    // --- What a look calls for ---

    #[test]
    fn no_reload_when_content_unchanged() {
        // `touch`, or a write of the same bytes.
        let now = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(decide(&now, None, &SERVED, false), Action::Unchanged);
        assert_eq!(decide(&now, Some(&now), &SERVED, false), Action::Nothing);
    }

    #[test]
    fn no_generation_bump_when_configmap_update_keeps_content() {
        let before = file("/etc/signpost/..2026_a/signpost.json", "aaaa");
        let now = file("/etc/signpost/..2026_b/signpost.json", "aaaa");
        assert_eq!(
            decide(&now, Some(&before), &SERVED, false),
            Action::Unchanged
        );
    }

    #[test]
    fn reloads_when_content_changed() {
        let before = file("/etc/signpost/signpost.json", "aaaa");
        let now = file("/etc/signpost/signpost.json", "bbbb");
        assert_eq!(decide(&now, Some(&before), &SERVED, false), Action::Load);
    }

    #[test]
    fn warns_once_when_the_file_disappears() {
        let before = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(
            decide(&Seen::Missing, Some(&before), &SERVED, false),
            Action::WarnMissing
        );
        assert_eq!(
            decide(&Seen::Missing, Some(&Seen::Missing), &SERVED, false),
            Action::Nothing
        );
    }

    #[test]
    fn reloads_when_deleted_file_is_recreated_with_new_content() {
        let now = file("/etc/signpost/signpost.json", "bbbb");
        assert_eq!(
            decide(&now, Some(&Seen::Missing), &SERVED, false),
            Action::Load
        );
        let same = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(
            decide(&same, Some(&Seen::Missing), &SERVED, false),
            Action::Unchanged
        );
    }

    #[test]
    fn bad_content_is_reported_once() {
        let failed = Served {
            sha256: "aaaa",
            last_load_ok: false,
            rejected_sha256: Some("bad1"),
        };
        let bad = file("/etc/signpost/signpost.json", "bad1");
        assert_eq!(
            decide(&bad, Some(&bad), &failed, false),
            Action::Nothing,
            "poll"
        );
        // The same bad bytes under a new ConfigMap directory: not logged again.
        let moved = file("/etc/signpost/..2026_b/signpost.json", "bad1");
        assert_eq!(decide(&moved, Some(&bad), &failed, false), Action::KnownBad);
        let other_bad = file("/etc/signpost/signpost.json", "bad2");
        assert_eq!(decide(&other_bad, Some(&bad), &failed, false), Action::Load);
    }

    #[test]
    fn fix_after_bad_edit_reloads_even_when_it_restores_the_served_bytes() {
        let failed = Served {
            sha256: "aaaa",
            last_load_ok: false,
            rejected_sha256: Some("bad1"),
        };
        let bad = file("/etc/signpost/signpost.json", "bad1");
        let reverted = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(decide(&reverted, Some(&bad), &failed, false), Action::Load);
    }

    #[test]
    fn sighup_looks_again_even_when_nothing_changed() {
        let same = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(decide(&same, Some(&same), &SERVED, true), Action::Unchanged);
        let failed = Served {
            sha256: "aaaa",
            last_load_ok: false,
            rejected_sha256: Some("bad1"),
        };
        let bad = file("/etc/signpost/signpost.json", "bad1");
        assert_eq!(
            decide(&bad, Some(&bad), &failed, true),
            Action::Load,
            "re-report"
        );
        assert_eq!(
            decide(&Seen::Missing, Some(&Seen::Missing), &SERVED, true),
            Action::WarnMissing
        );
    }

    #[test]
    fn unreadable_file_is_reported_once() {
        let denied = Seen::Unreadable {
            error: "Permission denied (os error 13)".into(),
        };
        let before = file("/etc/signpost/signpost.json", "aaaa");
        assert_eq!(
            decide(&denied, Some(&before), &SERVED, false),
            Action::ReportUnreadable
        );
        assert_eq!(
            decide(&denied, Some(&denied), &SERVED, false),
            Action::Nothing
        );
    }

    #[test]
    fn look_hashes_through_a_symlink_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "{}").unwrap();
        let link = dir.path().join("signpost.json");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(not(unix))]
        std::fs::copy(&real, &link).unwrap();
        let (seen, bytes) = look(&link);
        assert_eq!(bytes.as_deref(), Some(&b"{}"[..]));
        let Seen::File { target, sha256 } = seen else {
            panic!("expected a file, got {seen:?}")
        };
        assert_eq!(
            sha256,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        #[cfg(unix)]
        assert_eq!(target, std::fs::canonicalize(&real).unwrap());
        let _ = target;
        std::fs::remove_file(&real).unwrap();
        assert_eq!(look(&link).0, Seen::Missing, "dangling symlink");
    }

    // --- subPath detection ---

    const MOUNTINFO: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
812 790 253:1 /var/lib/kubelet/pods/0d6c/volumes/kubernetes.io~configmap/cfg /etc/signpost ro,relatime - ext4 /dev/vda1 rw
813 790 253:1 /var/lib/kubelet/pods/0d6c/volume-subpaths/cfg/signpost/0 /etc/sub/signpost.json ro,relatime - ext4 /dev/vda1 rw
814 790 0:52 / /etc/with\\040space/signpost.json ro,relatime - tmpfs tmpfs rw
";

    #[test]
    fn detects_configmap_subpath_mount() {
        assert!(is_mount_point(
            MOUNTINFO,
            Path::new("/etc/sub/signpost.json")
        ));
    }

    #[test]
    fn directory_mount_is_fine() {
        assert!(!is_mount_point(
            MOUNTINFO,
            Path::new("/etc/signpost/signpost.json")
        ));
        assert!(is_mount_point(MOUNTINFO, Path::new("/etc/signpost")));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert!(is_mount_point(
            MOUNTINFO,
            Path::new("/etc/with space/signpost.json")
        ));
    }
}
