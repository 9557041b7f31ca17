//! The reload task: [`spawn`] sets up the directory watch (notify's callback queues events in an
//! `Inbox` and wakes the task), and the task gathers each batch until the directory is quiet,
//! looks at the file, [`decide`]s and installs; the poll and [`ReloadHandle::reload`] (SIGHUP)
//! take the same look.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use notify::event::{EventKind, Flag};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Problems;
use crate::state::{self, AppState};

use super::{
    Action, Interest, MAX_BATCH_WAIT, MAX_QUEUED_EVENTS, MAX_WRITE_WAIT, Options, Outcome,
    QUIET_PERIOD, REPORTS_CLOSE_WRITE, REWATCH_INTERVAL, Seen, Served, batch_invalidates_watch,
    batch_needs_check, decide, dirs_to_watch, look_with, warn_if_single_file_mount,
    write_in_progress,
};

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
    let task = tokio::spawn(reload_task(
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
                let problems = Problems::unreadable(&self.label, error);
                crate::config::log_problems!(problems);
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
                let built = state::build_next(
                    &self.state,
                    bytes,
                    sha256.clone(),
                    &self.label,
                    generation + 1,
                );
                match built {
                    Ok(registry) => {
                        crate::config::log_warnings!(&self.label, &registry.config.warnings);
                        let next = registry.source.generation;
                        let servers = registry.server_count();
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
                        crate::config::log_problems!(problems);
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

async fn reload_task(
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
    let outcome = crate::builder::run(move || lock(&r).check(trigger))
        .await
        .unwrap_or_else(|| {
            tracing::error!("config reload task failed; keeping the last good config");
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
