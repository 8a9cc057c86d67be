//! Who the client is and how much it may ask: forwarding headers believed only from
//! trusted proxies, rate limits that junk credentials cannot escape and that hold across
//! replicas, and metrics kept off the public port.

use super::spawn_app;
use keel_testing::{TestApp, error_body, user};
use serde_json::json;

/// A failed login from the test's peer, optionally claiming another client address.
async fn failed_login(app: &TestApp, n: usize, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": format!("nobody{n}@example.com"), "password": "wrong password"}));
    if let Some(addr) = forwarded_for {
        req = req.header("x-forwarded-for", addr);
    }
    req.send().await.expect("login")
}

/// Failed logins from the test's peer until its address is throttled (429); the next
/// attempt number.
async fn throttle_address(app: &TestApp, mut n: usize, forwarded_for: Option<&str>) -> usize {
    let deadline = n + 20;
    while n < deadline {
        n += 1;
        if failed_login(app, n, forwarded_for).await.status() == 429 {
            return n;
        }
    }
    panic!("the address was never throttled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_forwarding_header_neither_escapes_the_login_throttle_nor_reaches_the_audit() {
    let app = spawn_app(&[("KEEL__ACCOUNTS__LOGIN_FREE_ATTEMPTS_PER_IP", "2")]).await;
    let mut n = throttle_address(&app, 0, None).await;
    for forged in [
        "198.51.100.99",
        "198.51.100.100",
        "203.0.113.1, 198.51.100.7",
    ] {
        // The throttle's first locks are short: make sure this address is locked right
        // now, then claim to be someone else.
        n = throttle_address(&app, n, None).await + 1;
        let res = failed_login(&app, n, Some(forged)).await;
        assert_eq!(
            res.status(),
            429,
            "X-Forwarded-For: {forged} is not believed"
        );
        error_body(res, 429, "rate_limited").await;
    }

    // The audit trail records the peer, not what the client claims.
    let other = spawn_app(&[]).await;
    let ada = user(&other, "ada@example.com").await;
    let res = other
        .client
        .post(other.url("/api/v1/sessions"))
        .header("x-forwarded-for", "198.51.100.99")
        .json(&json!({"email": "ada@example.com", "password": keel_testing::PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 201);
    let logins = |ip: &'static str| {
        let sql = format!(
            "SELECT count(*) AS n FROM accounts_audit_events \
             WHERE action = 'login.succeeded' AND actor_user_id = $1 AND ip = '{ip}'"
        );
        let other = &other;
        async move { other.count_rows(&sql, Some(ada.user_id)).await }
    };
    assert_eq!(logins("198.51.100.99").await, 0);
    assert_eq!(
        logins("127.0.0.1").await,
        2,
        "the fixture's login and this one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
    let app = spawn_app(&[
        ("KEEL__SERVER__TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8"),
        ("KEEL__ACCOUNTS__LOGIN_FREE_ATTEMPTS_PER_IP", "1"),
    ])
    .await;
    // The client forged the first entry; the proxies appended the client and a hop.
    let chain = |client: &str| format!("198.51.100.99, {client}, 10.1.2.3");
    throttle_address(&app, 0, Some(&chain("203.0.113.5"))).await;
    assert_eq!(
        failed_login(&app, 100, Some(&chain("203.0.113.6")))
            .await
            .status(),
        401,
        "another client behind the same proxy is not throttled"
    );

    let ada = user(&app, "ada@example.com").await;
    let res = app
        .client
        .post(app.url("/api/v1/sessions"))
        .header("x-forwarded-for", chain("203.0.113.7"))
        .json(&json!({"email": "ada@example.com", "password": keel_testing::PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 201);
    let recorded = app
        .count_rows(
            "SELECT count(*) AS n FROM accounts_audit_events \
             WHERE action = 'login.succeeded' AND actor_user_id = $1 AND ip = '203.0.113.7'",
            Some(ada.user_id),
        )
        .await;
    assert_eq!(recorded, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_requests_are_rate_limited_with_ratelimit_headers() {
    let app = spawn_app(&[
        ("KEEL__SERVER__RATE_LIMIT_PER_IP", "3"),
        ("KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL", "5"),
    ])
    .await;
    for remaining in ["2", "1", "0"] {
        let res = app.get("/api/v1/me").await;
        assert_eq!(res.status(), 401, "counted, then answered by the route");
        assert_eq!(res.headers()["ratelimit-limit"], "3");
        assert_eq!(res.headers()["ratelimit-remaining"], remaining);
    }
    let limited = app.get("/api/v1/me").await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    error_body(limited, 429, "rate_limited").await;
    let forged = app
        .client
        .get(app.url("/api/v1/me"))
        .header("x-forwarded-for", "198.51.100.99")
        .send()
        .await
        .expect("request");
    assert_eq!(
        forged.status(),
        429,
        "a forwarding header buys no new budget"
    );
    // Health is not limited.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn junk_credentials_count_against_the_address_and_a_valid_one_has_its_own_budget() {
    let app = spawn_app(&[
        ("KEEL__SERVER__RATE_LIMIT_PER_IP", "8"),
        ("KEEL__SERVER__RATE_LIMIT_PER_CREDENTIAL", "1000"),
    ])
    .await;
    let ada = user(&app, "ada@example.com").await; // signup and login: 2 of the 8
    let mut statuses = Vec::new();
    for n in 0..20 {
        let res = app
            .authed(
                &format!("keel_sess_junk{n}"),
                reqwest::Method::GET,
                "/api/v1/me",
            )
            .await;
        statuses.push(res.status().as_u16());
    }
    let served = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((served, limited), (6, 14), "{statuses:?}");

    // The address is spent; a valid session still gets through, on its own budget.
    let res = app
        .authed(&ada.token, reqwest::Method::GET, "/api/v1/me")
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["ratelimit-limit"], "1000");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_one_budget() {
    const LIMIT: usize = 40;
    let app = spawn_app(&[("KEEL__SERVER__RATE_LIMIT_PER_IP", &LIMIT.to_string())]).await;
    let replicas = [app.base.clone(), app.replica()];
    let mut served = 0;
    for n in 0..60 {
        let base = &replicas[n % 2];
        let res = app
            .client
            .get(format!("{base}/api/v1/me"))
            .send()
            .await
            .expect("request");
        if res.status() != 429 {
            served += 1;
        }
    }
    eprintln!("two replicas, a limit of {LIMIT}: served {served} of 60");
    // Never more than the limit; fewer by at most one lease (limit / 20) left unspent
    // in the other replica.
    assert!(
        (LIMIT - LIMIT / 20..=LIMIT).contains(&served),
        "served {served} of 60 through two replicas"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_on_the_operations_port_only_unless_configured() {
    let app = spawn_app(&[]).await;
    assert_eq!(
        app.get("/metrics").await.status(),
        404,
        "not on the API port"
    );
    let ops = |app: &TestApp, token: Option<&str>| {
        let mut req = app.client.get(format!("{}/metrics", app.operations));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    assert_eq!(ops(&app, None).await.expect("metrics").status(), 200);
    assert_eq!(
        app.client
            .get(format!("{}/api/v1/me", app.operations))
            .send()
            .await
            .expect("request")
            .status(),
        404,
        "the operations port serves no API"
    );

    let token = "a-metrics-token-of-some-length";
    let guarded = spawn_app(&[
        ("KEEL__SERVER__METRICS_TOKEN", token),
        ("KEEL__SERVER__METRICS_ON_API_PORT", "true"),
    ])
    .await;
    error_body(
        ops(&guarded, None).await.expect("metrics"),
        401,
        "unauthorized",
    )
    .await;
    error_body(
        ops(&guarded, Some("wrong")).await.expect("metrics"),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        ops(&guarded, Some(token)).await.expect("metrics").status(),
        200
    );
    let api_port = guarded
        .client
        .get(guarded.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .expect("metrics");
    assert_eq!(api_port.status(), 200, "on the API port when configured");
}
