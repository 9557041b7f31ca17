//! The shutdown signal: `SIGTERM` (what Kubernetes sends to start a graceful shutdown) or
//! `SIGINT` (Ctrl-C).

use std::future::Future;

/// Installs the handlers now (so a signal that arrives while starting up is not lost or fatal)
/// and returns a future that completes when the process is asked to stop.
pub fn signal() -> std::io::Result<impl Future<Output = ()>> {
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
