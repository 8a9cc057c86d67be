//! Running the process: `serve`, `work`, `all`, with one graceful shutdown for all parts.

use crate::platform::Platform;
use crate::server::{self, Surface};
use keel_queue::Workers;
use std::net::TcpListener;

/// What this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Serve,
    Work,
    All,
}

/// Runs until SIGTERM/SIGINT, then stops in order: stop accepting connections and finish
/// in-flight requests (bounded by `server.shutdown_timeout_secs`) while running jobs
/// finish or release their leases (bounded by `queue.shutdown_grace_secs`).
pub async fn run(platform: Platform, role: Role) -> anyhow::Result<()> {
    let settings = platform.settings.clone();
    let (surface, port) = match role {
        Role::Serve | Role::All => (Surface::Api, settings.server.port),
        Role::Work => (Surface::Operations, settings.server.worker_port),
    };
    let listener = TcpListener::bind((settings.server.host.as_str(), port))
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{port}: {e}", settings.server.host))?;
    let address = listener.local_addr()?;
    let domains = crate::domains::Domains::new(&platform)?;
    let workers = match role {
        Role::Work | Role::All => {
            let registry = crate::jobs::registry(&domains)?;
            Some(Workers::start(
                settings.clone(),
                platform.queue.clone(),
                platform.cache.clone(),
                registry,
            ))
        }
        Role::Serve => None,
    };
    let routes = server::routes(&domains);
    let (server, handle) = server::start(platform.clone(), listener, surface, routes)?;
    tracing::info!(%address, ?role, "keel is running");
    let mut server = tokio::spawn(server);

    tokio::select! {
        signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
        result = &mut server => {
            tracing::error!(?result, "the HTTP server stopped on its own");
        }
    }
    let stop_server = async {
        handle.stop(true).await;
        if !server.is_finished() {
            let _ = server.await;
        }
    };
    let stop_workers = async {
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
    };
    tokio::join!(stop_server, stop_workers);
    platform.pool.close();
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT; names the signal.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, never stop on our own.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
