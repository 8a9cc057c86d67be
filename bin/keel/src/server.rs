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

/// Which routes a server mounts: the API port, or the operations port (health and
/// metrics) that every process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// API, docs, admin, health; metrics only with `server.metrics_on_api_port`.
    Api,
    /// Health and metrics only, for probes and scrapers inside the cluster.
    Operations,
}

/// Mounts the routes of the domains under `/api/v1`; `keel` passes every domain's
/// `http::configure` ([`routes`]), tests pass their own. Registered with
/// `.service(handler)`, each route brings its OpenAPI entry along.
pub type Routes = Arc<dyn for<'a> Fn(&mut ServiceConfig<'a>) + Send + Sync>;

/// The domains this binary composes: their routes and the app data they need.
pub fn routes(domains: &Domains) -> Routes {
    let accounts = web::Data::new(domains.accounts.clone());
    let notifications = web::Data::new(domains.notifications.clone());
    let uploads = web::Data::new(domains.uploads.clone());
    let exports = web::Data::new(domains.exports.clone());
    Arc::new(move |cfg: &mut ServiceConfig| {
        cfg.app_data(accounts.clone())
            .app_data(notifications.clone())
            .app_data(uploads.clone())
            .app_data(exports.clone())
            // Scoped domains first: each costs the others one prefix test.
            .configure(keel_uploads::http::configure)
            .configure(keel_exports::http::configure)
            .configure(keel_accounts::http::configure)
            .configure(keel_notifications::http::configure);
    })
}

/// Who a bearer token belongs to: the accounts service. Registered for the whole app,
/// because the rate limiter (which wraps the API scope, outside the scope's own app
/// data) needs it as much as the routes do.
pub fn authenticator(domains: &Domains) -> keel_http::auth::AuthenticatorData {
    web::Data::new(Arc::new(domains.accounts.clone()) as Arc<dyn keel_http::Authenticator>)
}

/// What the API surface serves: the domains' routes and who their tokens belong to.
#[derive(Clone)]
pub struct Api {
    pub routes: Routes,
    pub authenticator: keel_http::auth::AuthenticatorData,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// Every domain of this binary.
    pub fn of(domains: &Domains) -> Self {
        Self {
            routes: routes(domains),
            authenticator: authenticator(domains),
        }
    }
}

/// Builds and starts the server on `listener`; returns the server future (drive it to
/// completion) and its handle (to stop it gracefully). `api` is mounted on the API
/// surface only.
pub fn start(
    platform: Platform,
    listener: TcpListener,
    surface: Surface,
    api: Api,
) -> std::io::Result<(Server, ServerHandle)> {
    let settings = platform.settings.clone();
    let json_limit = settings.server.json_limit_bytes;
    let workers = match (surface, settings.server.workers) {
        // Probes and scrapes: one thread is plenty.
        (Surface::Operations, _) => 1,
        (Surface::Api, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        (Surface::Api, n) => n,
    };
    let limiter = web::Data::new(
        keel_http::rate_limit::RateLimiter::new(
            settings.server.rate_limit_per_credential,
            settings.server.rate_limit_per_ip,
            Duration::from_secs(settings.server.rate_limit_window_secs),
        )
        .shared(platform.redis.clone(), &settings.redis.key_prefix),
    );
    let addresses = web::Data::new(keel_http::client_address::ClientAddresses::new(
        settings.server.trusted_proxies.clone(),
        settings.server.forwarded_header,
    ));
    let idempotency = keel_http::Idempotency::new(platform.pool.clone())
        .in_flight_timeout(settings.server.idempotency_in_flight())
        .streamed(
            keel_uploads::http::STREAMED_ROUTES
                .iter()
                .map(|route| format!("/api/v1{route}")),
        );
    let metrics = surface == Surface::Operations || settings.server.metrics_on_api_port;
    let doc = (surface == Surface::Api).then(|| routes::docs::openapi(&api.routes, metrics));
    let allowed_methods = routes::allowed_methods(doc.as_ref(), &settings);
    let slow_requests = settings
        .telemetry
        .slow_request()
        .map(|threshold| web::Data::new(keel_telemetry::http::SlowRequests(threshold)));
    // The ops console, on the API port only and only with an admin token.
    let console = (surface == Surface::Api)
        .then(|| {
            keel_ops::Console::new(
                &settings,
                platform.pool.clone(),
                platform.queue.clone(),
                platform.redis.clone(),
            )
        })
        .flatten();
    let data = web::Data::new(platform);
    let server = HttpServer::new(move || {
        let (api, doc, console) = (api.clone(), doc.clone(), console.clone());
        let mut app = App::new();
        if let Some(slow) = &slow_requests {
            app = app.app_data(slow.clone());
        }
        app.app_data(data.clone())
            .app_data(limiter.clone())
            .app_data(addresses.clone())
            .app_data(api.authenticator.clone())
            .app_data(allowed_methods.clone())
            .configure(|cfg| keel_http::json::configure_extractors(cfg, json_limit))
            .configure(|cfg| {
                routes::operations(&mut ServiceConfig::new(cfg), metrics);
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
                        .configure(|cfg| (api.routes)(cfg)),
                );
                routes::docs::configure(cfg, doc);
                routes::admin::configure(&mut ServiceConfig::new(cfg));
                if let Some(console) = &console {
                    keel_ops::configure(cfg, console.clone());
                }
            })
            .default_service(web::to(keel_http::unmatched))
            // Inside the request span, which it records the client's address on.
            .wrap(from_fn(keel_http::client_address::middleware))
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
