//! The process's life, from the signals to the exit code, in this order:
//!
//! 1. [`stop_signal`] and [`SigHup::install`] run first of all, before the config is read: a
//!    `SIGTERM` (what Kubernetes sends) or `SIGINT` during start-up drains instead of killing, and
//!    a `SIGHUP` never kills.
//! 2. [`serve_until_stopped`] runs both listeners (`server.rs`) until `SIGTERM`/`SIGINT`; each
//!    `SIGHUP` asks the reloader to look at the config file ([`SigHup::forward_to`]).
//! 3. `/readyz` answers 503 ([`AppState::begin_drain`]).
//! 4. Everything keeps serving for `--shutdown-delay`, so load balancers stop sending first.
//! 5. The public listener stops accepting and drains (`server.rs`): HTTP/1 answers carry
//!    `Connection: close`, idle keep-alive connections are closed after a short linger,
//!    in-flight answers finish, all within `--shutdown-grace`.
//! 6. The admin listener stops.
//! 7. `main.rs` exits with the command's [`Exit`] code, without waiting for blocking threads (a
//!    read stuck on a FIFO or a hung network file system must not keep a stopped server alive).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::reload::ReloadHandle;
use crate::state::AppState;

/// Every exit code of the binary (README "Command line"), mapped to the process's in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success (`hint`: a server owns the resource).
    Ok,
    /// 1: anything else (a port in use, an error finding, a client family that fails, …).
    Failure,
    /// 2: a usage error; `probe` when the MCP URL cannot be reached at all.
    Usage,
    /// 78, `EX_CONFIG` from sysexits.h: the config is invalid (every problem is printed).
    Config,
}

impl Exit {
    pub const fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::Config => 78,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// Installs the handlers now (so a signal that arrives while starting up is not lost or fatal)
/// and returns a future that completes when the process is asked to stop.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; draining"),
            _ = int.recv() => tracing::info!("SIGINT received; draining"),
        }
    })
}

/// The `SIGHUP` handler, installed early (step 1: a `SIGHUP` while starting up must not kill
/// the process; one that arrives then is acted on once the reloader runs).
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

/// Serves both listeners until `shutdown`, then steps 3 to 6 of the module's order: `/readyz`
/// turns 503, everything keeps serving for the state's `shutdown_delay`, the public listener
/// stops accepting and drains, and last the admin listener (which answers `/readyz` with 503
/// meanwhile) stops.
pub async fn serve_until_stopped(
    public: TcpListener,
    admin: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (stop_public, public_stopped) = watch::channel(false);
    let (stop_admin, admin_stopped) = watch::channel(false);
    let public_task = tokio::spawn(crate::server::serve(
        public,
        state.clone(),
        changed(public_stopped),
    ));
    let admin_task = tokio::spawn(crate::server::serve_admin(
        admin,
        state.clone(),
        changed(admin_stopped),
    ));
    shutdown.await;
    state.begin_drain();
    let delay = state.settings.shutdown_delay;
    if !delay.is_zero() {
        tracing::info!(
            ?delay,
            "readyz now 503; serving on until the shutdown delay ends"
        );
        tokio::time::sleep(delay).await;
    }
    let _ = stop_public.send(true);
    let _ = public_task.await;
    let _ = stop_admin.send(true);
    let _ = admin_task.await;
}

async fn changed(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
