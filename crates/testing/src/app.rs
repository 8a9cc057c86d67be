//! The real app, with every domain as `keel serve` mounts it, on a free port over a
//! database of the test's own (cloned from the migrated template) and a Redis key prefix
//! of its own, so tests run in parallel.

use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::RunQueryDsl as _;
use keel::Platform;
use keel::domains::Domains;
use keel::server::{self, Api, Routes, Surface};
use keel_persistence::testing::TestDatabase;
use keel_queue::Workers;
use serde_json::Value;
use std::net::TcpListener;
use std::sync::Arc;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

/// A running app and what a test needs to look behind it.
#[derive(Debug)]
pub struct TestApp {
    /// The API port's base URL.
    pub base: String,
    /// The operations port's (health and metrics) base URL.
    pub operations: String,
    pub client: reqwest::Client,
    pub platform: Platform,
    pub domains: Domains,
    api: Api,
    _db: TestDatabase,
}

impl Drop for TestApp {
    /// The local storage folder is the test's own: it goes with the test.
    fn drop(&mut self) {
        if self.platform.settings.storage.backend == keel_config::StorageBackend::Local {
            let _ = std::fs::remove_dir_all(self.storage_root());
        }
    }
}

/// Starts a server of `surface` on a free port; its base URL.
fn listen(platform: &Platform, surface: Surface, api: &Api) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (server, _handle) =
        server::start(platform.clone(), listener, surface, api.clone()).expect("server");
    tokio::spawn(server);
    base
}

/// The row of a `SELECT count(*) AS n ...`.
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

impl TestApp {
    /// The app with test settings and `overrides` (`("KEEL__SECTION__KEY", value)`).
    pub async fn spawn(overrides: &[(&str, &str)]) -> Self {
        Self::spawn_with(overrides, None).await
    }

    /// [`TestApp::spawn`] with `extra` routes mounted under `/api/v1` beside the domains'.
    pub async fn spawn_with(overrides: &[(&str, &str)], extra: Option<Routes>) -> Self {
        keel_telemetry::init_for_tests();
        keel_telemetry::install_tls_provider();
        let db = TestDatabase::new().await.expect("test database");
        let loader = keel_config::testing::loader(db.url()).with_vars(overrides);
        let settings = keel_config::Loader::load(&loader).expect("settings");
        let platform = Platform::new(settings).expect("platform");
        let domains = Domains::new(&platform).expect("domains");
        let mut api = Api::of(&domains);
        if let Some(extra) = extra {
            let real = api.routes;
            api.routes = Arc::new(move |cfg: &mut ServiceConfig| {
                real(cfg);
                extra(cfg);
            });
        }
        let base = listen(&platform, Surface::Api, &api);
        let operations = listen(&platform, Surface::Operations, &api);
        Self {
            base,
            operations,
            client: reqwest::Client::new(),
            platform,
            domains,
            api,
            _db: db,
        }
    }

    /// Another API server over the same database and Redis, as a second replica behind
    /// a load balancer would be (its own rate limiter and caches); its base URL.
    pub fn replica(&self) -> String {
        listen(&self.platform, Surface::Api, &self.api)
    }

    /// The folder of the local storage backend (where no file may be left behind).
    pub fn storage_root(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(&self.platform.settings.storage.local_root)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The database URL of this app (for a `keel` child process over the same data).
    pub fn database_url(&self) -> String {
        self.platform.settings.database.url.expose().clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn authed(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn authed_json(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// `GET path` as `token`, which must answer 200; its JSON body.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let res = self.authed(token, reqwest::Method::GET, path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.expect("json")
    }

    /// Whether `token`'s user has an in-app notification of `event_type`.
    pub async fn notified(&self, token: &str, event_type: &str) -> bool {
        let inbox = self.get_json(token, "/api/v1/notifications").await;
        inbox["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|n| n["type"] == event_type))
    }

    /// The workers of every domain, as `keel work` runs them.
    pub fn workers(&self) -> Workers {
        let registry = keel::jobs::registry(&self.domains).expect("registry");
        Workers::start(
            self.platform.settings.clone(),
            self.platform.queue.clone(),
            self.platform.cache.clone(),
            registry,
        )
    }

    /// Runs one statement (test set-up: ageing rows, writing a large fixture), binding `id`
    /// as `$1` when given. Without the pool's statement timeout: set-up that takes long on
    /// a busy machine is slow, not wrong.
    pub async fn run_sql(&self, sql: &str, id: Option<Uuid>) -> usize {
        use keel_persistence::AsyncConnection as _;
        let mut conn = self.platform.pool.get().await.expect("conn");
        conn.transaction(async |conn| {
            diesel::sql_query("SET LOCAL statement_timeout = 0")
                .execute(conn)
                .await?;
            match id {
                Some(id) => {
                    diesel::sql_query(sql)
                        .bind::<SqlUuid, _>(id)
                        .execute(conn)
                        .await
                }
                None => diesel::sql_query(sql).execute(conn).await,
            }
        })
        .await
        .expect(sql)
    }

    /// The `n` of a `SELECT count(*) AS n ...`, binding `id` as `$1` when given.
    pub async fn count_rows(&self, sql: &str, id: Option<Uuid>) -> i64 {
        let mut conn = self.platform.pool.get().await.expect("conn");
        let count: Count = match id {
            Some(id) => diesel::sql_query(sql)
                .bind::<SqlUuid, _>(id)
                .get_result(&mut conn)
                .await
                .expect(sql),
            None => diesel::sql_query(sql)
                .get_result(&mut conn)
                .await
                .expect(sql),
        };
        count.n
    }
}
