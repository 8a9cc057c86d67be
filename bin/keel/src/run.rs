//! Running the process: `serve`, `work`, `all`, with one graceful shutdown for all parts.

use crate::platform::Platform;
use crate::server::{self, Surface};
use actix_web::dev::{Server, ServerHandle};
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
    let host = settings.server.host.as_str();
    let domains = crate::domains::Domains::new(&platform)?;
    let api = server::Api::of(&domains);
    let mut servers = Vec::new();
    let operations_port = match role {
        Role::Serve | Role::All => {
            servers.push(listen(
                &platform,
                host,
                settings.server.port,
                Surface::Api,
                &api,
            )?);
            settings.server.operations_port
        }
        Role::Work => settings.server.worker_port,
    };
    servers.push(listen(
        &platform,
        host,
        operations_port,
        Surface::Operations,
        &api,
    )?);
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
    let (stop_publishing, publishing) = publish_metrics(&platform, role);
    let (handles, mut running): (Vec<_>, Vec<_>) = servers
        .into_iter()
        .map(|(server, handle)| (handle, tokio::spawn(server)))
        .unzip();
    tracing::info!(?role, "keel is running");

    tokio::select! {
        signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
        (result, ..) = futures::future::select_all(running.iter_mut()) => {
            tracing::error!(?result, "an HTTP server stopped on its own");
        }
    }
    let stop_servers = async {
        futures::future::join_all(handles.iter().map(|handle| handle.stop(true))).await;
        for server in running {
            if !server.is_finished() {
                let _ = server.await;
            }
        }
    };
    let stop_workers = async {
        if let Some(workers) = workers {
            workers.shutdown().await;
        }
    };
    tokio::join!(stop_servers, stop_workers);
    // A last turn, so the console counts this process's final seconds.
    let _ = stop_publishing.send(true);
    if let Some(publishing) = publishing {
        let _ = publishing.await;
    }
    platform.pool.close();
    tracing::info!("stopped");
    Ok(())
}

/// Starts publishing this process's metrics into the console's windows in Redis (see
/// `keel_ops::windows`), when the console is on (`admin.token`) and
/// `admin.metrics_window_secs` is not 0; stopped by sending `true` on the returned
/// sender, after one last turn.
fn publish_metrics(
    platform: &Platform,
    role: Role,
) -> (
    tokio::sync::watch::Sender<bool>,
    Option<tokio::task::JoinHandle<()>>,
) {
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let admin = &platform.settings.admin;
    // Without an admin token there is no console anywhere in the deployment (its
    // processes share their settings): nothing would read the windows.
    let (Some(_), Some(every)) = (admin.token(), admin.metrics_window()) else {
        return (stop, None);
    };
    let pool = platform.pool.clone();
    let render = move || {
        pool.record_metrics();
        keel_telemetry::metrics::render()
    };
    let role = match role {
        Role::Serve => "serve",
        Role::Work => "work",
        Role::All => "all",
    };
    let task = keel_ops::Publisher::default().run(
        platform.redis.clone(),
        platform.settings.redis.key_prefix.clone(),
        role,
        every,
        render,
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    );
    (stop, Some(tokio::spawn(task)))
}

/// Binds `port` and starts a server of `surface` on it.
fn listen(
    platform: &Platform,
    host: &str,
    port: u16,
    surface: Surface,
    api: &server::Api,
) -> anyhow::Result<(Server, ServerHandle)> {
    let listener = TcpListener::bind((host, port))
        .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, ?surface, "listening");
    Ok(server::start(
        platform.clone(),
        listener,
        surface,
        api.clone(),
    )?)
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
