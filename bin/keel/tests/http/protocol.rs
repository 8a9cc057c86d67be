//! HTTP at the edges of what Keel serves: a JSON body declared in another charset, a
//! request that does not parse, a served path asked with a method it does not take.

use super::{TestApp, concrete, sample, spawn_app};
use keel_persistence::testing::TestDatabase;
use keel_testing::{error_body, eventually, serve_process_logging_to};
use reqwest::Method;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_declared_in_a_charset_other_than_utf8_is_refused_with_415() {
    let app = spawn_app(&[]).await;
    let widget = r#"{"name": "w", "quantity": 1}"#;
    for content_type in [
        "application/json; charset=utf-16",
        "application/json; charset=ISO-8859-1",
    ] {
        let res = app
            .post_raw("/api/v1/test/widgets", content_type, widget)
            .await;
        let body = error_body(res, 415, "unsupported_media_type").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("UTF-8")),
            "{content_type}: {body}"
        );
    }
    // A domain's route reads its body the same way.
    let signup = r#"{"email": "ada@example.com", "password": "a long passphrase", "name": "Ada", "organization_name": "Engines"}"#;
    let res = app
        .post_raw("/api/v1/signup", "application/json; charset=utf-16", signup)
        .await;
    error_body(res, 415, "unsupported_media_type").await;
    // UTF-8, however spelled, or no charset at all, is read.
    for content_type in ["application/json; charset=UTF-8", "application/json"] {
        let res = app
            .post_raw("/api/v1/test/widgets", content_type, widget)
            .await;
        assert_eq!(res.status(), 202, "{content_type}");
    }
}

/// The log lines of a `keel` child that logs JSON, parsed.
fn log_lines(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .expect("read the log")
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Sends `request` as raw bytes on a new connection; what came back before it closed.
async fn raw_request(base: &str, request: &[u8]) -> String {
    let address = base.strip_prefix("http://").expect("an http URL");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_does_not_parse_is_answered_400_and_counted_not_logged_as_an_error() {
    let db = TestDatabase::new().await.expect("test database");
    let log = std::env::temp_dir().join(format!("keel-log-{}.json", uuid::Uuid::now_v7()));
    let (_child, base) = serve_process_logging_to(
        env!("CARGO_BIN_EXE_keel"),
        db.url(),
        &[
            ("KEEL__TELEMETRY__LOG_FORMAT", "json"),
            ("KEEL__TELEMETRY__LOG_FILTER", "info"),
            // The counter is read from the API port (the operations port is a random one).
            ("KEEL__SERVER__METRICS_ON_API_PORT", "true"),
        ],
        std::fs::File::create(&log).expect("log file"),
    )
    .await;

    let answer = raw_request(
        &base,
        b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // The dispatcher reports the error once the connection is done: either as a log line
    // or, dropped from the log, in the counter.
    let counted = || async {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        sample(
            &metrics,
            r#"keel_http_connection_errors_total{kind="malformed"}"#,
        )
    };
    eventually(
        "the dispatcher to report the error",
        Duration::from_secs(5),
        || async {
            let logged = log_lines(&log)
                .iter()
                .any(|line| line["target"] == "actix_http::h1::dispatcher");
            logged || counted().await.is_some()
        },
    )
    .await;

    let lines = log_lines(&log);
    let _ = std::fs::remove_file(&log);
    assert!(
        lines.iter().any(|line| line["level"] == "INFO"),
        "the child's log is captured: {lines:?}"
    );
    let loud: Vec<&Value> = lines
        .iter()
        .filter(|line| line["level"] == "ERROR" || line["level"] == "WARN")
        .collect();
    assert!(
        loud.is_empty(),
        "a client's malformed request logged {loud:?}"
    );
    assert_eq!(counted().await, Some(1.0));
}

/// `TRACE path`: 405 with the standard body; its `Allow`.
async fn method_not_allowed(app: &TestApp, path: &str) -> String {
    let res = app
        .client
        .request(Method::TRACE, app.url(path))
        .send()
        .await
        .expect("request");
    let allow = res
        .headers()
        .get("allow")
        .map(|v| v.to_str().expect("ascii").to_owned());
    error_body(res, 405, "method_not_allowed").await;
    allow.unwrap_or_else(|| panic!("405 without Allow for {path}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_served_path_asked_with_a_method_it_does_not_take_is_405_with_allow() {
    let app = spawn_app(&[("KEEL__ADMIN__TOKEN", "an admin token for tests")]).await;
    let doc: Value = app
        .get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "{} paths", paths.len());
    for (template, item) in paths {
        let documented: Vec<String> = ["get", "put", "post", "delete", "patch"]
            .into_iter()
            .filter(|method| item.get(method).is_some())
            .map(str::to_uppercase)
            .collect();
        let allow = method_not_allowed(&app, &concrete(template)).await;
        let allowed: Vec<&str> = allow.split(", ").collect();
        assert!(
            documented.iter().all(|m| allowed.contains(&m.as_str())),
            "{template}: Allow {allow}, documented {documented:?}"
        );
    }
    assert_eq!(method_not_allowed(&app, "/health/live").await, "GET");
    let res = app
        .client
        .delete(app.url("/api/v1/signup"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.headers()["allow"], "POST");
    error_body(res, 405, "method_not_allowed").await;

    // A path nothing serves stays 404, whatever the method.
    for method in [Method::GET, Method::TRACE, Method::DELETE] {
        let res = app
            .client
            .request(method, app.url("/api/v1/nothing/here"))
            .send()
            .await
            .expect("request");
        assert!(res.headers().get("allow").is_none());
        error_body(res, 404, "not_found").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_admin_token_the_admin_paths_are_404_whatever_the_method() {
    let app = spawn_app(&[]).await;
    let res = app
        .client
        .delete(app.url("/admin/jobs/counts"))
        .send()
        .await
        .expect("request");
    error_body(res, 404, "not_found").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_and_statements_are_logged_with_their_trace() {
    let db = TestDatabase::new().await.expect("test database");
    let log = std::env::temp_dir().join(format!("keel-log-{}.json", uuid::Uuid::now_v7()));
    let (_child, base) = serve_process_logging_to(
        env!("CARGO_BIN_EXE_keel"),
        db.url(),
        &[
            ("KEEL__TELEMETRY__LOG_FORMAT", "json"),
            ("KEEL__TELEMETRY__LOG_FILTER", "warn"),
            ("KEEL__TELEMETRY__SLOW_REQUEST_MS", "5"),
            // Every statement is slow at a microsecond.
            ("KEEL__TELEMETRY__SLOW_QUERY_MS", "0.001"),
        ],
        std::fs::File::create(&log).expect("log file"),
    )
    .await;
    // A signup hashes a password (argon2: tens of milliseconds): slow by design.
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/signup"))
        .json(&serde_json::json!({"email": "slow@example.com", "password": "a long passphrase for tests", "name": "Ada", "organization_name": "Engines"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(res.status(), 202);
    let slow = |lines: &[Value]| {
        lines
            .iter()
            .find(|line| line["message"] == "slow request")
            .cloned()
    };
    eventually(
        "the slow-request warning",
        Duration::from_secs(5),
        || async { slow(&log_lines(&log)).is_some() },
    )
    .await;
    let line = slow(&log_lines(&log)).expect("the warning");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["http.route"], "/api/v1/signup", "{line}");
    assert_eq!(line["http.response.status_code"], 202, "{line}");
    assert!(
        line["duration_ms"].as_u64().expect("duration") >= 5,
        "{line}"
    );
    let trace_id = line["trace_id"].as_str().expect("trace id");
    assert!(
        trace_id.len() == 32 && trace_id.chars().all(|c| c.is_ascii_hexdigit()),
        "{line}"
    );
    // The request's statements: named, timed, in the same trace, without bound values
    // (the email address, the password hash).
    let lines = log_lines(&log);
    let statements: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "slow query" && l["trace_id"] == trace_id)
        .collect();
    assert!(
        statements
            .iter()
            .any(|l| l["db.statement"] == "insert accounts_users"),
        "{statements:?}"
    );
    for statement in &statements {
        let text = statement.to_string();
        assert!(
            !text.contains("slow@example.com") && !text.contains("binds"),
            "{text}"
        );
        assert!(
            statement["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
            "{text}"
        );
    }
    let _ = std::fs::remove_file(&log);
}
