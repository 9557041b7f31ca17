//! The shutdown signal: `SIGTERM` (what Kubernetes sends to start a graceful shutdown) or
//! `SIGINT` (Ctrl-C).

/// Completes when the process is asked to stop.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler can be installed");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler can be installed");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; draining"),
            _ = int.recv() => tracing::info!("SIGINT received; draining"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received; draining");
    }
}
