//! The ops console end to end: `keel serve` and `keel work` as separate processes (the
//! console must show both), two dead email jobs in the queue, and a real browser
//! (Debian's Chromium driven by playwright-core, `deploy/ops/console.mjs`) that signs in,
//! walks every page keeping a screenshot of each, retries one job with JavaScript and one
//! without, and pauses and resumes a job kind. Then the jobs' effects and the audit log
//! are checked here.

use super::spawn_app;
use keel_testing::{Mailbox, TestApp, eventually, serve_process, work_process};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;

const TOKEN: &str = "console-test-admin-token";

/// A password-reset email that died on a relay that refused it; its payload holds a
/// secret the console must not show (the reset link).
async fn dead_email(app: &TestApp) -> Uuid {
    let id = Uuid::now_v7();
    app.run_sql(
        "INSERT INTO queue_jobs (id, kind, payload, state, attempts, max_attempts, timeout_ms, last_error, finished_at) \
         VALUES ($1, 'notifications.send_email', \
                 '{\"to\": \"ada@example.com\", \"template\": \"password_reset\", \
                   \"vars\": {\"name\": \"Ada\", \"link\": \"https://keel.example/reset\"}}', \
                 'dead', 12, 12, 60000, 'smtp: connection refused by relay', now())",
        Some(id),
    )
    .await;
    id
}

/// The browser driver and its dependency, installed by `deploy/local/tools.sh`.
fn driver() -> PathBuf {
    let ops = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/ops");
    assert!(
        ops.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run deploy/local/tools.sh (just test does)"
    );
    ops.join("console.mjs")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_a_browser() {
    let script = driver();
    let app = spawn_app(&[]).await;
    let mailbox = Mailbox::new();
    let dead = [dead_email(&app).await, dead_email(&app).await];
    let prefix = keel_config::testing::unique_prefix();
    let env = [
        ("KEEL__ADMIN__TOKEN", TOKEN),
        ("KEEL__REDIS__KEY_PREFIX", prefix.as_str()),
        ("KEEL__ADMIN__METRICS_WINDOW_SECS", "1"),
        ("KEEL__ADMIN__CONSOLE_REFRESH_SECS", "2"),
        mailbox.setting(),
    ];
    let keel = env!("CARGO_BIN_EXE_keel");
    let (_serve, base) = serve_process(keel, &app.database_url(), &env).await;
    let (_work, _) = work_process(keel, &app.database_url(), &env).await;
    // Traffic for the pages to show: answered, refused and unknown routes.
    for path in ["/health/live", "/api/v1/me", "/api/v1/nowhere"] {
        for _ in 0..5 {
            app.client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("request");
        }
    }
    // Both processes publish every second.
    let redis = redis::Client::open(
        std::env::var("KEEL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into()),
    )
    .expect("redis")
    .get_multiplexed_async_connection()
    .await
    .expect("redis connection");
    let replicas = format!("{prefix}:ops:replicas");
    eventually("both processes publishing", Duration::from_secs(20), || {
        let mut redis = redis.clone();
        let replicas = replicas.clone();
        async move {
            let n: usize = redis::cmd("HLEN")
                .arg(&replicas)
                .query_async(&mut redis)
                .await
                .unwrap_or(0);
            n == 2
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ops-console");
    let ids = format!("{},{}", dead[0], dead[1]);
    let run = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("OPS_BASE", &base)
            .env("OPS_TOKEN", TOKEN)
            .env("OPS_DEAD_JOBS", ids)
            .env("OPS_SHOTS", &shots)
            .output()
            .expect("node runs (deploy/local/tools.sh installs it)")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The screenshots are the test's artefacts: say where they are.
    eprintln!("{stdout}");

    // Both retried emails were sent, the secret never reached the page (checked in the
    // browser), and every action is in the audit log.
    assert_eq!(mailbox.files().len(), 2, "{:?}", mailbox.files());
    let mut actions: Vec<String> = Vec::new();
    for action in [
        "sign_in_refused",
        "signed_in",
        "retried_job",
        "paused_kind",
        "resumed_kind",
        "signed_out",
    ] {
        let n = app
            .count_rows(
                &format!("SELECT count(*) AS n FROM ops_audit WHERE action = '{action}'"),
                None,
            )
            .await;
        if n == 0 {
            actions.push(action.to_owned());
        }
    }
    assert!(actions.is_empty(), "not in the audit log: {actions:?}");
    let paused = app
        .count_rows("SELECT count(*) AS n FROM queue_paused_kinds", None)
        .await;
    assert_eq!(paused, 0, "the kind was resumed");
}

/// `pairs` as a browser posts a form (`application/x-www-form-urlencoded`).
fn form<S: AsRef<str>>(
    request: reqwest::RequestBuilder,
    pairs: &[(&str, S)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_ref())))
        .finish();
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// A client that follows no redirect: the console's answers are looked at as sent.
fn no_redirects() -> reqwest::Client {
    keel_telemetry::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_refuses_strangers_forged_forms_and_bad_input() {
    let client = no_redirects();
    let closed = spawn_app(&[]).await;
    let res = client.get(closed.url("/ops")).send().await.expect("get");
    assert_eq!(res.status(), 404, "no admin token, no console");

    let app = spawn_app(&[("KEEL__ADMIN__TOKEN", TOKEN)]).await;
    let dead = dead_email(&app).await;
    let res = client.get(app.url("/ops/jobs")).send().await.expect("get");
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/ops/login");
    // A form posted without a session does nothing.
    let res = form(
        client.post(app.url(&format!("/ops/jobs/{dead}/retry"))),
        &[("csrf", "x")],
    )
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), 303);

    let res = form(
        client.post(app.url("/ops/login")),
        &[("token", "wrong-token-wrong-token")],
    )
    .send()
    .await
    .expect("login");
    assert_eq!(res.status(), 401);
    assert!(
        res.text()
            .await
            .expect("html")
            .contains("not the admin token")
    );
    let res = form(client.post(app.url("/ops/login")), &[("token", TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 303);
    let set_cookie = res.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ops"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().expect("pair").to_owned();
    let page = client
        .get(app.url("/ops/jobs"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("jobs");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let html = page.text().await.expect("html");
    assert!(html.contains(&dead.to_string()), "the dead job is listed");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf token in the page")
        .to_owned();

    let post = |path: &str, pairs: Vec<(&'static str, String)>| {
        form(client.post(app.url(path)).header("cookie", &cookie), &pairs)
    };
    // A forged form: no token, or one from another session, or from another site.
    let res = post(
        "/ops/kinds/notifications.send_email/pause",
        vec![("csrf", "forged".into())],
    )
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), 403);
    let res = post(
        "/ops/kinds/notifications.send_email/pause",
        vec![("csrf", csrf.clone())],
    )
    .header("origin", "https://evil.example")
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.count_rows("SELECT count(*) AS n FROM queue_paused_kinds", None)
            .await,
        0,
        "nothing was paused"
    );
    // Bad input: a clear page with a 4xx, and nothing done.
    let res = post(
        "/ops/kinds/Not%20a%20kind/pause",
        vec![("csrf", csrf.clone())],
    )
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(
        res.text()
            .await
            .expect("html")
            .contains("is not a job kind")
    );
    let res = post("/ops/jobs/dead/discard", vec![("csrf", csrf.clone())])
        .send()
        .await
        .expect("post");
    assert_eq!(
        res.status(),
        400,
        "an empty filter needs \"every dead job\" ticked"
    );
    let res = client
        .get(app.url("/ops/jobs?error=%00"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(
        res.status(),
        400,
        "a NUL in a filter is refused, not sent to Postgres"
    );
    let res = client
        .get(app.url("/ops/jobs/not-a-job"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.count_rows(
            "SELECT count(*) AS n FROM queue_jobs WHERE state = 'dead'",
            None
        )
        .await,
        1,
        "the dead job is still there"
    );
    // A well-formed form does what it says, and says so.
    let res = post(
        "/ops/jobs/dead/discard",
        vec![("csrf", csrf.clone()), ("error", "relay".into())],
    )
    .send()
    .await
    .expect("post");
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/ops/jobs?done=discarded&n=1&error=relay#dead"
    );
    assert_eq!(
        app.count_rows(
            "SELECT count(*) AS n FROM ops_audit WHERE action = 'discarded_dead'",
            None
        )
        .await,
        1
    );
}
