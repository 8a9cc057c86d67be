//! The HTTP server: middleware, routes, graceful stop.

use crate::domains::Domains;
use crate::platform::Platform;
use crate::routes;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use utoipa_actix_web::service_config::ServiceConfig;

/// Which routes a server mounts: `keel work` serves only health and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Everything: API, docs, admin, health, metrics.
    Api,
    /// Health and metrics only (a worker process's operations port).
    Operations,
}

/// Mounts the routes of the domains under `/api/v1`; `keel` passes every domain's
/// `http::configure` ([`routes`]), tests pass their own. Registered with
/// `.service(handler)`, each route brings its OpenAPI entry along.
pub type Routes = Arc<dyn for<'a> Fn(&mut ServiceConfig<'a>) + Send + Sync>;

/// The domains this binary composes: their routes and the app data they need (the
/// accounts service doubles as the authenticator every domain's routes use).
pub fn routes(domains: &Domains) -> Routes {
    let accounts = web::Data::new(domains.accounts.clone());
    let notifications = web::Data::new(domains.notifications.clone());
    let authenticator: keel_http::auth::AuthenticatorData =
        web::Data::new(Arc::new(domains.accounts.clone()) as Arc<dyn keel_http::Authenticator>);
    Arc::new(move |cfg: &mut ServiceConfig| {
        cfg.app_data(accounts.clone())
            .app_data(notifications.clone())
            .app_data(authenticator.clone())
            .configure(keel_accounts::http::configure)
            .configure(keel_notifications::http::configure);
    })
}

/// Builds and starts the server on `listener`; returns the server future (drive it to
/// completion) and its handle (to stop it gracefully).
pub fn start(
    platform: Platform,
    listener: TcpListener,
    surface: Surface,
    api: Routes,
) -> std::io::Result<(Server, ServerHandle)> {
    let settings = platform.settings.clone();
    let json_limit = settings.server.json_limit_bytes;
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let limiter = web::Data::new(keel_http::rate_limit::RateLimiter::new(
        settings.server.rate_limit_per_credential,
        settings.server.rate_limit_per_ip,
        Duration::from_secs(settings.server.rate_limit_window_secs),
    ));
    let idempotency = keel_http::Idempotency::new(platform.pool.clone())
        .in_flight_timeout(settings.server.idempotency_in_flight());
    let doc = (surface == Surface::Api).then(|| routes::docs::openapi(&api));
    let allowed_methods = routes::allowed_methods(doc.as_ref(), &settings);
    let data = web::Data::new(platform);
    let server = HttpServer::new(move || {
        let (api, doc) = (api.clone(), doc.clone());
        App::new()
            .app_data(data.clone())
            .app_data(limiter.clone())
            .app_data(allowed_methods.clone())
            .configure(|cfg| keel_http::json::configure_extractors(cfg, json_limit))
            .configure(|cfg| {
                routes::operations(&mut ServiceConfig::new(cfg));
                let Some(doc) = doc else {
                    return;
                };
                // The API first: actix tries services in registration order, and the
                // docs and admin routes are patterns (a regex match each).
                ServiceConfig::new(cfg).service(
                    utoipa_actix_web::scope("/api/v1")
                        // Any POST with an Idempotency-Key header is deduplicated.
                        .wrap(idempotency.clone())
                        // Outermost in the scope: a limited request claims no key.
                        .wrap(from_fn(keel_http::rate_limit::middleware))
                        .configure(|cfg| api(cfg)),
                );
                routes::docs::configure(cfg, doc);
                routes::admin::configure(&mut ServiceConfig::new(cfg));
            })
            .default_service(web::to(keel_http::unmatched))
            .wrap(from_fn(keel_telemetry::http::observe))
            .wrap(from_fn(keel_http::request_id::middleware))
    })
    .workers(workers)
    // Signals are handled by the binary, which stops the server and the workers together.
    .disable_signals()
    .shutdown_timeout(settings.server.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(10))
    .listen(listener)?
    .run();
    let handle = server.handle();
    Ok((server, handle))
}
