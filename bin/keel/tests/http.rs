//! The binary's HTTP surface end to end: the real app on a random port over real
//! PostgreSQL and Redis, plus the real `keel` executable for signal handling.
//!
//! A small test domain mounted under `/api/v1/test` exercises the shared pieces the way a
//! domain crate does: the `Json` extractor, validation, enqueueing in a transaction, the
//! pool's 503.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use actix_web::{HttpResponse, web};
use diesel_async::RunQueryDsl as _;
use keel::Platform;
use keel::server::Routes;
use keel_http::{ApiError, Json};
use keel_persistence::AsyncConnection as _;
use keel_persistence::testing::TestDatabase;
use keel_queue::Job;
use keel_testing::{KeelProcess, OwnRedis, TestApp, error_body, free_port};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa_actix_web::service_config::ServiceConfig;

#[path = "http/architecture.rs"]
mod architecture;
#[path = "http/console.rs"]
mod console;
#[path = "http/exports.rs"]
mod exports;
#[path = "http/idempotency.rs"]
mod idempotency;
#[path = "http/limits.rs"]
mod limits;
#[path = "http/openapi.rs"]
mod openapi;
#[path = "http/protocol.rs"]
mod protocol;
#[path = "http/uploads.rs"]
mod uploads;
#[path = "http/visibility.rs"]
mod visibility;

// ---------------------------------------------------------------- the test domain

#[derive(Debug, Deserialize)]
struct NewWidget {
    name: String,
    quantity: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct MakeWidget {
    name: String,
}
impl Job for MakeWidget {
    const NAME: &'static str = "test.make_widget";
}

async fn create_widget(
    platform: web::Data<Platform>,
    body: Json<NewWidget>,
) -> Result<HttpResponse, ApiError> {
    let widget = body.into_inner();
    if widget.name.trim().is_empty() {
        return Err(ApiError::validation("name", "must not be empty"));
    }
    let queue = platform.queue.clone();
    let job = MakeWidget { name: widget.name };
    let enqueued = platform
        .pool
        .get()
        .await?
        .transaction(async |conn| queue.enqueue(conn, &job).await)
        .await?;
    let id = enqueued.id;
    platform.queue.ring([enqueued]).await;
    Ok(HttpResponse::Accepted()
        .json(serde_json::json!({ "job_id": id, "quantity": widget.quantity })))
}

/// Holds a pooled connection for `ms` milliseconds.
async fn hold(
    platform: web::Data<Platform>,
    query: web::Query<Hold>,
) -> Result<HttpResponse, ApiError> {
    let _conn = platform.pool.get().await?;
    tokio::time::sleep(Duration::from_millis(query.ms)).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct Hold {
    ms: u64,
}

fn test_domain() -> Routes {
    Arc::new(|cfg: &mut ServiceConfig| {
        cfg.route("/test/widgets", web::post().to(create_widget))
            .route("/test/hold", web::get().to(hold));
    })
}

// ---------------------------------------------------------------- harness

/// The real app with the test domain mounted beside the real ones.
async fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(overrides, Some(test_domain())).await
}

/// `keel serve` as a process of its own over `database_url`.
async fn serve_process(database_url: &str, env: &[(&str, &str)]) -> (KeelProcess, String) {
    keel_testing::serve_process(env!("CARGO_BIN_EXE_keel"), database_url, env).await
}

async fn wait_for_status(app: &TestApp, path: &str, status: u16, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let res = app.get(path).await;
        let got = res.status().as_u16();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} stayed {got}, wanted {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = spawn_app(&[]).await;
    let res = app.get("/health/live").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("req");
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "bad id!")
        .send()
        .await
        .expect("req");
    assert_ne!(res.headers()["x-request-id"], "bad id!");
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_goes_503_when_redis_is_unreachable_and_back_when_it_returns() {
    let port = free_port();
    let mut redis = OwnRedis::start_on(port);
    let url = redis.url();
    let app = spawn_app(&[
        ("KEEL__REDIS__URL", &url),
        ("KEEL__REDIS__TIMEOUT_MS", "300"),
    ])
    .await;
    let body = wait_for_status(&app, "/health/ready", 200, Duration::from_secs(5)).await;
    assert_eq!(body["checks"]["redis"]["ok"], true);
    assert_eq!(body["checks"]["migrations"]["ok"], true);

    redis.stop();
    let body = wait_for_status(&app, "/health/ready", 503, Duration::from_secs(5)).await;
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["redis"]["ok"], false);
    assert_eq!(body["checks"]["postgres"]["ok"], true);
    // Liveness does not depend on Redis.
    assert_eq!(app.get("/health/live").await.status(), 200);

    let _redis = OwnRedis::start_on(port);
    let body = wait_for_status(&app, "/health/ready", 200, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_the_error_body_with_the_right_status() {
    let app = spawn_app(&[("KEEL__SERVER__JSON_LIMIT_BYTES", "1024")]).await;
    let path = "/api/v1/test/widgets";

    let malformed = app
        .post_raw(path, "application/json", r#"{"name": "w", "quantity": "#)
        .await;
    error_body(malformed, 400, "bad_request").await;

    let wrong_type = app
        .post_raw(
            path,
            "application/json",
            r#"{"name": "w", "quantity": "many"}"#,
        )
        .await;
    let body = error_body(wrong_type, 422, "validation_failed").await;
    assert_eq!(body["error"]["field"], "quantity");

    let negative = app
        .post_raw(path, "application/json", r#"{"name": "w", "quantity": -1}"#)
        .await;
    assert_eq!(
        error_body(negative, 422, "validation_failed").await["error"]["field"],
        "quantity"
    );

    let missing = app
        .post_raw(path, "application/json", r#"{"quantity": 1}"#)
        .await;
    assert_eq!(
        error_body(missing, 422, "validation_failed").await["error"]["field"],
        "name"
    );

    let invalid = app
        .post_raw(path, "application/json", r#"{"name": " ", "quantity": 1}"#)
        .await;
    assert_eq!(
        error_body(invalid, 422, "validation_failed").await["error"]["field"],
        "name"
    );

    let oversize = format!(r#"{{"name": "{}", "quantity": 1}}"#, "x".repeat(2000));
    error_body(
        app.post_raw(path, "application/json", oversize).await,
        413,
        "payload_too_large",
    )
    .await;

    let form = app
        .post_raw(
            path,
            "application/x-www-form-urlencoded",
            "name=w&quantity=1",
        )
        .await;
    error_body(form, 415, "unsupported_media_type").await;

    error_body(app.get("/api/v1/nothing/here").await, 404, "not_found").await;
    let bad_query = app.get("/api/v1/test/hold?ms=soon").await;
    error_body(bad_query, 400, "bad_request").await;

    // Nothing was enqueued by any rejected request.
    let counts = app.platform.queue.counts().await.expect("counts");
    assert!(counts.is_empty(), "{counts:?}");
    let ok = app
        .post_raw(path, "application/json", r#"{"name": "w", "quantity": 2}"#)
        .await;
    assert_eq!(ok.status(), 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_answers_503_with_retry_after_quickly() {
    let app = spawn_app(&[
        ("KEEL__DATABASE__POOL_SIZE", "1"),
        ("KEEL__DATABASE__ACQUIRE_TIMEOUT_MS", "200"),
    ])
    .await;
    let holder = {
        let (client, url) = (app.client.clone(), app.url("/api/v1/test/hold?ms=1500"));
        tokio::spawn(async move { client.get(url).send().await.expect("hold").status() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let res = app.get("/api/v1/test/hold?ms=0").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        res.headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ascii")),
        Some("1")
    );
    error_body(res, 503, "unavailable").await;
    assert_eq!(holder.await.expect("join"), 204);
}

/// A path of the document with each `{placeholder}` filled in.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190c4c0-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The value of one sample line of the Prometheus text, if present.
fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text_and_count_a_request_just_made() {
    let app = spawn_app(&[]).await;
    let series = r#"keel_http_requests_total{method="GET",route="/health/live",status="200"}"#;
    let metrics = || async {
        app.client
            .get(format!("{}/metrics", app.operations))
            .send()
            .await
            .expect("metrics")
    };
    let before = sample(&metrics().await.text().await.expect("text"), series).unwrap_or(0.0);
    assert_eq!(app.get("/health/live").await.status(), 200);
    let res = metrics().await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let text = res.text().await.expect("text");

    // Every line is a comment (# HELP / # TYPE) or `name{labels} value`.
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            assert!(
                comment.starts_with(" HELP ") || comment.starts_with(" TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series_part, value) = line.rsplit_once(' ').expect("a value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value: {line}"
        );
        let name = series_part.split('{').next().expect("name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.is_empty(),
            "bad metric name: {line}"
        );
        if let Some(labels) = series_part.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels: {line}"
            );
        }
    }
    let after = sample(&text, series).expect("the request is counted");
    assert!(after >= before + 1.0, "before {before}, after {after}");
    for family in [
        "keel_http_request_duration_seconds_bucket",
        "keel_db_pool_size",
        "keel_db_pool_in_use",
        "keel_db_pool_waiting",
    ] {
        assert!(text.contains(family), "{family} missing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incoming_traceparent_is_continued_by_the_request_and_the_job_it_enqueues() {
    let app = spawn_app(&[]).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let res = app
        .client
        .post(app.url("/api/v1/test/widgets"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&serde_json::json!({"name": "traced", "quantity": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 202);
    let traceresponse = res.headers()["traceresponse"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        traceresponse.split('-').nth(1),
        Some(trace_id),
        "{traceresponse}"
    );
    assert!(
        !traceresponse.contains("b7ad6b7169203331"),
        "the server span is a child, not the caller's span"
    );

    let body: Value = res.json().await.expect("json");
    let job_id: uuid::Uuid = body["job_id"]
        .as_str()
        .expect("job id")
        .parse()
        .expect("uuid");
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
        trace_context: Option<Value>,
    }
    let mut conn = app.platform.pool.get().await.expect("conn");
    let row: Row = diesel::sql_query("SELECT trace_context FROM queue_jobs WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(job_id)
        .get_result(&mut conn)
        .await
        .expect("job row");
    let stored = row.trace_context.expect("trace context stored");
    assert_eq!(
        stored["traceparent"]
            .as_str()
            .and_then(|t| t.split('-').nth(1)),
        Some(trace_id),
        "{stored}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_job_endpoints_need_the_admin_token() {
    let disabled = spawn_app(&[]).await;
    error_body(disabled.get("/admin/jobs/counts").await, 404, "not_found").await;

    let token = "correct-horse-battery-staple";
    let app = spawn_app(&[("KEEL__ADMIN__TOKEN", token)]).await;
    error_body(app.get("/admin/jobs/counts").await, 401, "unauthorized").await;
    let wrong = app
        .client
        .get(app.url("/admin/jobs/counts"))
        .bearer_auth("nope")
        .send()
        .await
        .expect("req");
    error_body(wrong, 401, "unauthorized").await;
    let ok = app
        .client
        .get(app.url("/admin/jobs/counts"))
        .bearer_auth(token)
        .send()
        .await
        .expect("req");
    assert_eq!(ok.status(), 200);
    let missing = app
        .client
        .post(app.url(&format!("/admin/jobs/{}/retry", uuid::Uuid::now_v7())))
        .bearer_auth(token)
        .send()
        .await
        .expect("req");
    error_body(missing, 404, "not_found").await;
    let dead = app
        .client
        .get(app.url("/admin/jobs/dead?limit=500"))
        .bearer_auth(token)
        .send()
        .await
        .expect("req");
    assert_eq!(
        error_body(dead, 422, "validation_failed").await["error"]["field"],
        "limit"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_request_complete_and_exits_zero() {
    // A Redis that accepts connections and never answers makes /health/ready take the
    // full Redis timeout: a slow request, in flight when the signal arrives.
    let black_hole = TcpListener::bind("127.0.0.1:0").expect("bind");
    let redis_url = format!("redis://{}/0", black_hole.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in black_hole.incoming().flatten() {
            held.push(stream);
        }
    });
    let db = TestDatabase::new().await.expect("test database");
    let (mut child, base) = serve_process(
        db.url(),
        &[
            ("KEEL__REDIS__URL", &redis_url),
            ("KEEL__REDIS__TIMEOUT_MS", "1500"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/health/ready");
        async move {
            let started = Instant::now();
            let res = client
                .get(url)
                .send()
                .await
                .expect("the in-flight request got an answer");
            (
                res.status().as_u16(),
                started.elapsed(),
                res.json::<Value>().await.expect("json"),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());

    let (status, took, body) = slow.await.expect("join");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["redis"]["ok"], false);
    assert!(
        took >= Duration::from_millis(1000),
        "the request was slow ({took:?})"
    );
    let exit = tokio::task::spawn_blocking(move || child.0.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(exit.success(), "keel exited with {exit:?}");
    // New connections are refused once it has stopped.
    assert!(
        client
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("serve")
        .env("KEEL__SERVER__PORT", "eighty")
        .output()
        .expect("run keel");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.port"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_keel"))
        .arg("serve")
        .env("KEEL__DATABASE__URL", "mysql://root:hunter2@db/keel")
        .output()
        .expect("run keel");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("database.url") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signup_retried_with_an_idempotency_key_is_replayed_and_sends_one_email() {
    let mail_dir = std::env::temp_dir().join(format!("keel-mail-{}", uuid::Uuid::now_v7()));
    let app = spawn_app(&[("KEEL__MAIL__DIR", mail_dir.to_str().expect("utf-8 path"))]).await;
    let body = serde_json::json!({
        "email": "ada@example.com", "password": "a long passphrase", "name": "Ada", "organization_name": "Engines"
    });
    let send = || {
        app.client
            .post(app.url("/api/v1/signup"))
            .header("idempotency-key", "signup-1")
            .json(&body)
            .send()
    };
    let first = send().await.expect("first");
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.expect("body");
    let second = send().await.expect("second");
    assert_eq!(second.status(), 202);
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(
        second.bytes().await.expect("body"),
        first_body,
        "replayed byte for byte"
    );

    // One account, one verification email job, through the real notifications channel.
    let counts = app.platform.queue.counts().await.expect("counts");
    let emails = counts
        .iter()
        .find(|c| c.kind == "notifications.send_email")
        .expect("an email job");
    assert_eq!(
        emails.ready + emails.scheduled + emails.running,
        1,
        "{counts:?}"
    );
}
