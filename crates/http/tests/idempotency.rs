//! `Idempotency-Key` end to end: a real actix server on a random port, over a real
//! PostgreSQL database of the test's own (cloned from the migrated template).
//!
//! `POST /things` (and `POST /orgs/{org_id}/things`) insert a row into `things` and
//! answer 201 with its id; the handler counts its runs, can be told to sleep (to keep a
//! request in flight) or to fail once with a 500, and answers 422 for an empty name. Its
//! answer is stored by the middleware after it returns. `POST /recorded-things` does the
//! same the way a domain handler does: its answer is recorded in the transaction of its
//! insert ([`Reply::record`]), behind a short in-flight timeout.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::sql_types::{BigInt, Integer, Nullable, SmallInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl as _;
use keel_http::idempotency::{self, Idempotency};
use keel_http::{ApiError, IdempotencyKey, Json};
use keel_persistence::AsyncConnection as _;
use keel_persistence::testing::TestDatabase;
use keel_persistence::{DbError, DbPool};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------- the test route

struct State {
    pool: DbPool,
    runs: AtomicUsize,
    fail_next: AtomicBool,
}

#[derive(Debug, Deserialize)]
struct NewThing {
    name: String,
    #[serde(default)]
    sleep_ms: u64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Integer)]
    id: i32,
}

async fn create_thing(
    state: web::Data<State>,
    body: Json<NewThing>,
) -> Result<HttpResponse, ApiError> {
    state.runs.fetch_add(1, Ordering::SeqCst);
    let thing = body.into_inner();
    if thing.sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(thing.sleep_ms)).await;
    }
    if state.fail_next.swap(false, Ordering::SeqCst) {
        return Err(ApiError::internal(&std::io::Error::other(
            "injected failure",
        )));
    }
    if thing.name.trim().is_empty() {
        return Err(ApiError::validation("name", "must not be empty"));
    }
    let mut conn = state.pool.get().await?;
    let row: Id = sql_query("INSERT INTO things (name) VALUES ($1) RETURNING id")
        .bind::<Text, _>(&thing.name)
        .get_result(&mut conn)
        .await
        .map_err(DbError::from)?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/things/{}", row.id)))
        .insert_header(("x-thing-secret", "not stored"))
        .json(json!({ "id": row.id, "name": thing.name })))
}

/// `create_thing` with its answer recorded in the insert's transaction.
async fn create_recorded_thing(
    state: web::Data<State>,
    body: Json<NewThing>,
    key: IdempotencyKey,
) -> Result<HttpResponse, ApiError> {
    state.runs.fetch_add(1, Ordering::SeqCst);
    let thing = body.into_inner();
    tokio::time::sleep(Duration::from_millis(thing.sleep_ms)).await;
    let reply = key.reply(|created: &Value| {
        keel_http::Answer::json(StatusCode::CREATED, created)
            .location(&format!("/things/{}", created["id"]))
    });
    let created = state
        .pool
        .get()
        .await?
        .transaction(async |conn| {
            let row: Id = sql_query("INSERT INTO things (name) VALUES ($1) RETURNING id")
                .bind::<Text, _>(&thing.name)
                .get_result(conn)
                .await?;
            let created = json!({ "id": row.id, "name": thing.name });
            reply.record(conn, &created).await?;
            Ok::<_, DbError>(created)
        })
        .await?;
    Ok(reply.respond(&created))
}

/// The in-flight timeout of `/recorded-things`.
const SHORT_IN_FLIGHT: Duration = Duration::from_millis(1000);

// ---------------------------------------------------------------- harness

struct TestApp {
    base: String,
    client: reqwest::Client,
    state: web::Data<State>,
    server: ServerHandle,
    _db: TestDatabase,
}

async fn spawn_app() -> TestApp {
    let db = TestDatabase::new().await.expect("test database");
    let settings = keel_config::testing::settings(db.url());
    let pool = DbPool::new(&settings.database).expect("pool");
    let mut conn = pool.get().await.expect("connection");
    sql_query("CREATE TABLE things (id serial PRIMARY KEY, name text NOT NULL)")
        .execute(&mut conn)
        .await
        .expect("create things");
    drop(conn);
    // A pool that is closed: the key store is "down" for `/unprotected`.
    let closed = DbPool::new(&settings.database).expect("pool");
    closed.close();

    let state = web::Data::new(State {
        pool: pool.clone(),
        runs: AtomicUsize::new(0),
        fail_next: AtomicBool::new(false),
    });
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .configure(|cfg| keel_http::json::configure_extractors(cfg, 64 * 1024))
            .service(
                web::resource("/things")
                    .wrap(Idempotency::new(pool.clone()).max_body_bytes(256 * 1024))
                    .route(web::post().to(create_thing)),
            )
            .service(
                web::scope("/orgs/{org_id}")
                    .wrap(Idempotency::new(pool.clone()))
                    .route("/things", web::post().to(create_thing)),
            )
            .service(
                web::resource("/recorded-things")
                    .wrap(Idempotency::new(pool.clone()).in_flight_timeout(SHORT_IN_FLIGHT))
                    .route(web::post().to(create_recorded_thing)),
            )
            .service(
                web::resource("/unprotected")
                    .wrap(Idempotency::new(closed.clone()))
                    .route(web::post().to(create_thing)),
            )
            .default_service(web::to(keel_http::unmatched))
            .wrap(from_fn(keel_http::request_id::middleware))
    })
    .workers(2)
    .disable_signals()
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    // The workspace's reqwest brings no TLS provider of its own.
    keel_telemetry::install_tls_provider();
    TestApp {
        base,
        client: reqwest::Client::new(),
        state,
        server: handle,
        _db: db,
    }
}

/// A response read to the end.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn replayed(&self) -> bool {
        self.header("idempotent-replayed") == Some("true")
    }

    /// Asserts the standard error body with `code`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(
            body["error"]["request_id"].as_str(),
            self.header("x-request-id"),
            "{body}"
        );
    }
}

impl TestApp {
    async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        authorization: Option<&str>,
        body: &Value,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).expect("serialize"));
        if let Some(key) = key {
            req = req.header("idempotency-key", key);
        }
        if let Some(authorization) = authorization {
            req = req.header("authorization", authorization);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("body").to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn things(&self, key: Option<&str>, body: &Value) -> Answer {
        self.post("/things", key, None, body).await
    }

    fn runs(&self) -> usize {
        AtomicUsize::load(&self.state.runs, Ordering::SeqCst)
    }

    async fn count(&self, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.state.pool.get().await.expect("connection");
        let count: Count = sql_query(sql)
            .get_result(&mut conn)
            .await
            .expect("count query");
        count.n
    }

    async fn rows_of_things(&self) -> i64 {
        self.count("SELECT count(*) AS n FROM things").await
    }

    async fn keys(&self) -> i64 {
        self.count("SELECT count(*) AS n FROM http_idempotency_keys")
            .await
    }

    async fn run_sql(&self, sql: &str) -> usize {
        let mut conn = self.state.pool.get().await.expect("connection");
        sql_query(sql).execute(&mut conn).await.expect("statement")
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_replays_the_first_answer_byte_for_byte() {
    let app = spawn_app().await;
    let body = json!({ "name": "first" });

    let first = app.things(Some("order-1"), &body).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(!first.replayed());
    let id = first.json()["id"].as_i64().expect("id");

    let second = app.things(Some("order-1"), &body).await;
    assert_eq!(second.status, 201);
    assert!(second.replayed());
    assert_eq!(second.body, first.body, "the same bytes, id included");
    assert_eq!(second.json()["id"].as_i64(), Some(id));
    assert_eq!(second.header("content-type"), first.header("content-type"));
    assert_eq!(second.header("location"), Some(&*format!("/things/{id}")));
    assert_eq!(
        second.header("x-thing-secret"),
        None,
        "only the listed headers are stored"
    );
    assert_ne!(
        second.header("x-request-id"),
        first.header("x-request-id"),
        "the request id is the retry's own"
    );

    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_key_with_a_different_body_is_rejected() {
    let app = spawn_app().await;
    let first = app.things(Some("k"), &json!({ "name": "a" })).await;
    assert_eq!(first.status, 201);

    let other = app.things(Some("k"), &json!({ "name": "b" })).await;
    other.assert_error(422, "idempotency_key_reused");
    assert!(!other.replayed());
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_while_the_first_runs_gets_409_with_retry_after() {
    let app = Arc::new(spawn_app().await);
    let body = json!({ "name": "slow", "sleep_ms": 800 });

    let first = {
        let app = Arc::clone(&app);
        let body = body.clone();
        tokio::spawn(async move { app.things(Some("slow-1"), &body).await })
    };
    // Wait until the first request holds its claim.
    for _ in 0..100 {
        if app
            .count("SELECT count(*) AS n FROM http_idempotency_keys WHERE status IS NULL")
            .await
            == 1
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let duplicate = app.things(Some("slow-1"), &body).await;
    duplicate.assert_error(409, "idempotency_key_in_flight");
    assert_eq!(duplicate.header("retry-after"), Some("1"));

    let first = first.await.expect("first request");
    assert_eq!(first.status, 201);
    let retry = app.things(Some("slow-1"), &body).await;
    assert!(retry.replayed());
    assert_eq!(retry.body, first.body);
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    Arc::into_inner(app).expect("sole owner").stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_duplicates_create_one_thing() {
    let app = Arc::new(spawn_app().await);
    let body = json!({ "name": "popular", "sleep_ms": 300 });

    let requests: Vec<_> = (0..20)
        .map(|_| {
            let app = Arc::clone(&app);
            let body = body.clone();
            tokio::spawn(async move { app.things(Some("burst"), &body).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request"));
    }

    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert!(!created.is_empty(), "{answers:?}");
    assert!(
        created.iter().all(|a| a.body == created[0].body),
        "every 201 is the original answer: {answers:?}"
    );
    for answer in answers.iter().filter(|a| a.status != 201) {
        answer.assert_error(409, "idempotency_key_in_flight");
    }
    assert_eq!(
        created.iter().filter(|a| !a.replayed()).count(),
        1,
        "one original"
    );
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    Arc::into_inner(app).expect("sole owner").stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_with_different_credentials_have_their_own_keys() {
    let app = spawn_app().await;
    let body = json!({ "name": "mine" });

    let alice = app
        .post("/things", Some("same"), Some("Bearer alice"), &body)
        .await;
    let bob = app
        .post("/things", Some("same"), Some("Bearer bob"), &body)
        .await;
    let anonymous = app.post("/things", Some("same"), None, &body).await;
    for answer in [&alice, &bob, &anonymous] {
        assert_eq!(answer.status, 201);
        assert!(!answer.replayed());
    }
    assert_ne!(alice.body, bob.body);
    let alice_again = app
        .post("/things", Some("same"), Some("Bearer alice"), &body)
        .await;
    assert!(alice_again.replayed());
    assert_eq!(alice_again.body, alice.body);

    assert_eq!(app.runs(), 3);
    assert_eq!(app.rows_of_things().await, 3);
    assert_eq!(app.keys().await, 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_scoped_by_route_template_and_checked_against_the_path() {
    let app = spawn_app().await;
    let body = json!({ "name": "org thing" });

    let first = app.post("/orgs/1/things", Some("k"), None, &body).await;
    assert_eq!(first.status, 201);
    let same = app.post("/orgs/1/things", Some("k"), None, &body).await;
    assert!(same.replayed());
    // Same template, other organization: a reused key, never the other one's answer.
    let other_org = app.post("/orgs/2/things", Some("k"), None, &body).await;
    other_org.assert_error(422, "idempotency_key_reused");
    // Another route: a key space of its own.
    let elsewhere = app.things(Some("k"), &body).await;
    assert_eq!(elsewhere.status, 201);
    assert!(!elsewhere.replayed());

    let scopes = app
        .count("SELECT count(*) AS n FROM http_idempotency_keys WHERE scope = 'anonymous POST /orgs/{org_id}/things'")
        .await;
    assert_eq!(scopes, 1, "scoped by the route template");
    assert_eq!(app.runs(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_answer_releases_the_key_for_a_retry() {
    let app = spawn_app().await;
    let body = json!({ "name": "flaky" });

    app.state.fail_next.store(true, Ordering::SeqCst);
    let failed = app.things(Some("retry-me"), &body).await;
    failed.assert_error(500, "internal");
    assert_eq!(app.keys().await, 0, "the key was released");

    let retried = app.things(Some("retry-me"), &body).await;
    assert_eq!(retried.status, 201);
    assert!(!retried.replayed());
    assert_eq!(app.runs(), 2, "the retry ran the handler again");

    let again = app.things(Some("retry-me"), &body).await;
    assert!(again.replayed());
    assert_eq!(again.body, retried.body);
    assert_eq!(app.runs(), 2);
    assert_eq!(app.rows_of_things().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_4xx_answer_is_stored_and_replayed() {
    let app = spawn_app().await;
    let body = json!({ "name": "  " });

    let first = app.things(Some("invalid"), &body).await;
    first.assert_error(422, "validation_failed");
    assert_eq!(first.json()["error"]["field"], "name");

    let second = app.things(Some("invalid"), &body).await;
    assert_eq!(second.status, 422);
    assert!(second.replayed());
    assert_eq!(
        second.body, first.body,
        "byte for byte, original request id included"
    );
    assert_eq!(second.header("content-type"), Some("application/json"));
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_key_the_handler_runs_every_time() {
    let app = spawn_app().await;
    let body = json!({ "name": "plain" });
    for _ in 0..3 {
        let answer = app.things(None, &body).await;
        assert_eq!(answer.status, 201);
        assert!(!answer.replayed());
    }
    assert_eq!(app.runs(), 3);
    assert_eq!(app.rows_of_things().await, 3);
    assert_eq!(app.keys().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_keys_are_rejected_before_the_handler() {
    let app = spawn_app().await;
    let body = json!({ "name": "x" });

    let too_long = "k".repeat(300);
    app.things(Some(&too_long), &body)
        .await
        .assert_error(400, "bad_request");
    app.things(Some(""), &body)
        .await
        .assert_error(400, "bad_request");
    let longest = "k".repeat(255);
    assert_eq!(app.things(Some(&longest), &body).await.status, 201);

    assert_eq!(app.runs(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_buffering_cap_are_rejected() {
    let app = spawn_app().await;
    let body = json!({ "name": "x".repeat(300 * 1024) });
    app.things(Some("big"), &body)
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(app.runs(), 0);
    assert_eq!(app.keys().await, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_key_store_answers_503_without_running_the_handler() {
    let app = spawn_app().await;
    let answer = app
        .post("/unprotected", Some("k"), None, &json!({ "name": "x" }))
        .await;
    answer.assert_error(503, "unavailable");
    assert!(answer.header("retry-after").is_some());
    assert_eq!(app.runs(), 0);

    // Without a key the store is not needed.
    let plain = app
        .post("/unprotected", None, None, &json!({ "name": "x" }))
        .await;
    assert_eq!(plain.status, 201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_keys_count_as_absent_and_are_purged() {
    let app = spawn_app().await;
    for key in ["a", "b", "c"] {
        let answer = app.things(Some(key), &json!({ "name": key })).await;
        assert_eq!(answer.status, 201);
    }
    let aged = app
        .run_sql(
            "UPDATE http_idempotency_keys SET created_at = now() - interval '25 hours' \
             WHERE key IN ('a', 'b')",
        )
        .await;
    assert_eq!(aged, 2);

    // An expired key is free again, even for another request.
    let reused = app.things(Some("a"), &json!({ "name": "new a" })).await;
    assert_eq!(reused.status, 201);
    assert!(!reused.replayed());
    assert_eq!(reused.json()["name"], "new a");
    assert_eq!(app.runs(), 4);

    let purged = idempotency::purge_expired(&app.state.pool)
        .await
        .expect("purge");
    assert_eq!(purged, 1, "only b is still expired");
    assert_eq!(app.keys().await, 2);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM http_idempotency_keys WHERE key = 'b'")
            .await,
        0
    );

    #[derive(QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Nullable<SmallInt>)]
        status: Option<i16>,
    }
    let mut conn = app.state.pool.get().await.expect("connection");
    let stored: Stored = sql_query("SELECT status FROM http_idempotency_keys WHERE key = 'c'")
        .get_result(&mut conn)
        .await
        .expect("row c");
    assert_eq!(stored.status, Some(201));
    drop(conn);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_gave_up_gets_one_thing_on_retry() {
    let app = spawn_app().await;
    let body = json!({ "name": "impatient", "sleep_ms": 600 });
    let gone = app
        .client
        .post(format!("{}/things", app.base))
        .header("content-type", "application/json")
        .header("idempotency-key", "impatient")
        .body(serde_json::to_vec(&body).expect("serialize"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    // The abandoned request either finishes (its answer is kept) or is dropped (its key
    // released); either way it leaves no claim behind.
    for _ in 0..150 {
        let in_flight = app
            .count("SELECT count(*) AS n FROM http_idempotency_keys WHERE status IS NULL")
            .await;
        if in_flight == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let retry = app.things(Some("impatient"), &body).await;
    assert_eq!(retry.status, 201, "{retry:?}");
    let again = app.things(Some("impatient"), &body).await;
    assert!(again.replayed());
    assert_eq!(again.body, retry.body);
    assert_eq!(app.rows_of_things().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_recorded_with_the_change_is_replayed_byte_for_byte() {
    let app = spawn_app().await;
    let body = json!({ "name": "recorded" });
    let first = app.post("/recorded-things", Some("r-1"), None, &body).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(!first.replayed());
    assert_eq!(first.header("location"), Some("/things/1"));
    let retry = app.post("/recorded-things", Some("r-1"), None, &body).await;
    assert!(retry.replayed());
    assert_eq!(retry.status, 201);
    assert_eq!(retry.body, first.body);
    assert_eq!(retry.header("location"), Some("/things/1"));
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_first_attempt_keeps_its_key_by_its_heartbeat() {
    let app = Arc::new(spawn_app().await);
    // Runs for more than three in-flight timeouts: only its heartbeat keeps the key.
    let body = json!({ "name": "slow", "sleep_ms": 3_500 });
    let first = {
        let app = Arc::clone(&app);
        let body = body.clone();
        tokio::spawn(async move {
            app.post("/recorded-things", Some("beat"), None, &body)
                .await
        })
    };
    tokio::time::sleep(SHORT_IN_FLIGHT * 2).await;
    let duplicate = app
        .post("/recorded-things", Some("beat"), None, &body)
        .await;
    duplicate.assert_error(409, "idempotency_key_in_flight");
    let first = first.await.expect("first request");
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(app.runs(), 1);
    assert_eq!(app.rows_of_things().await, 1);
    Arc::into_inner(app).expect("sole owner").stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_whose_key_was_taken_over_cannot_commit_its_change() {
    let app = Arc::new(spawn_app().await);
    let body = json!({ "name": "stale", "sleep_ms": 600 });
    let first = {
        let app = Arc::clone(&app);
        let body = body.clone();
        tokio::spawn(async move {
            app.post("/recorded-things", Some("stale"), None, &body)
                .await
        })
    };
    // What a retry does when it finds the attempt silent: a new claim, a new fence.
    let mut taken = 0;
    for _ in 0..100 {
        taken = app
            .run_sql(
                "UPDATE http_idempotency_keys SET created_at = clock_timestamp() \
                 WHERE key = 'stale' AND status IS NULL",
            )
            .await;
        if taken == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(taken, 1, "the first attempt claimed the key");
    let first = first.await.expect("first request");
    first.assert_error(409, "idempotency_key_in_flight");
    assert_eq!(first.header("retry-after"), Some("1"));
    assert_eq!(app.runs(), 1);
    assert_eq!(
        app.rows_of_things().await,
        0,
        "the stale attempt's insert rolled back"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM http_idempotency_keys WHERE status IS NOT NULL")
            .await,
        0,
        "nothing stored under the new claim"
    );
    Arc::into_inner(app).expect("sole owner").stop().await;
}
