//! Notifications over HTTP, end to end: events published in a transaction, fanned out by the real
//! workers to in-app rows, emails (`.eml` files) and webhooks delivered to real HTTP
//! receivers on localhost.

use diesel::sql_types::{Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl as _;
use hmac::{Hmac, Mac};
use keel_events::{Audience, Event};
use keel_persistence::AsyncConnection as _;
use keel_persistence::DbError;
use keel_queue::Workers;
use keel_testing::{Mailbox, Receiver, Respond, TestApp, User, eventually, user};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---------------------------------------------------------------- harness

/// How long a test waits for background work. Generous: with every test of this binary
/// running at once on two cores, a job is sometimes picked up many seconds late (the
/// apalis fetch cadence under load); alone, each wait here is well under a second.
const PATIENCE: Duration = Duration::from_secs(45);

/// What these tests do to the app beyond the shared harness.
trait NotificationsApp {
    async fn publish(&self, event: Event, commit: bool);
    async fn wait_for_inbox(&self, user_id: Uuid, n: i64);
    async fn fan_out_again(&self, org_id: Uuid) -> usize;
    async fn email_jobs(&self, title: &str) -> i64;
}

impl NotificationsApp for TestApp {
    /// Publishes `event` in a transaction that commits when `commit`, else rolls back.
    async fn publish(&self, event: Event, commit: bool) {
        let n = &self.domains.notifications;
        let mut conn = self.platform.pool.get().await.expect("connection");
        let result = conn
            .transaction(async |conn| {
                let ring = n.publish_on(conn, &event).await?;
                if commit {
                    Ok(ring)
                } else {
                    Err(DbError::Unavailable("rolled back on purpose".into()))
                }
            })
            .await;
        if let Ok(ring) = result {
            self.platform.queue.ring([ring]).await;
        }
    }

    /// Waits until `user_id` has `n` in-app notifications.
    async fn wait_for_inbox(&self, user_id: Uuid, n: i64) {
        let sql = INBOX_OF_USER;
        eventually("the in-app notifications", PATIENCE, || async {
            self.count_rows(sql, Some(user_id)).await == n
        })
        .await;
    }

    /// Enqueues the fan-out of the organization's (only) event once more, as a redelivered
    /// job would, and waits for it to succeed; returns how many events the organization has.
    async fn fan_out_again(&self, org_id: Uuid) -> usize {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = SqlUuid)]
            id: Uuid,
        }
        let mut conn = self.platform.pool.get().await.expect("conn");
        let events: Vec<Id> =
            diesel::sql_query("SELECT id FROM notifications_events WHERE org_id = $1")
                .bind::<SqlUuid, _>(org_id)
                .load(&mut conn)
                .await
                .expect("events");
        let again = self
            .platform
            .queue
            .enqueue(
                &mut conn,
                &keel_notifications::fanout::FanOut {
                    event_id: events[0].id,
                },
            )
            .await
            .expect("enqueue");
        drop(conn);
        self.platform.queue.ring([again.clone()]).await;
        eventually("the repeated fan-out", PATIENCE, || async {
            self.platform
                .queue
                .status(again.id)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.state == keel_queue::JobState::Succeeded)
        })
        .await;
        events.len()
    }

    /// Queued notification emails whose title is `title` (sent or not).
    async fn email_jobs(&self, title: &str) -> i64 {
        let mut conn = self.platform.pool.get().await.expect("conn");
        diesel::sql_query(
            "SELECT count(*) AS n FROM queue_jobs WHERE kind = 'notifications.send_email' \
             AND payload->>'template' = 'notification' AND payload->'vars'->>'title' = $1",
        )
        .bind::<Text, _>(title)
        .get_result::<Count>(&mut conn)
        .await
        .expect("count")
        .n
    }
}

/// A user's in-app notifications (bind the user id).
const INBOX_OF_USER: &str = "SELECT count(*) AS n FROM notifications_inbox WHERE user_id = $1";

/// The row of a `SELECT count(*) AS n ...`.
#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn event(org_id: Uuid, event_type: &str, audience: Audience) -> Event {
    Event {
        event_type: event_type.to_owned(),
        org_id,
        audience,
        title: format!("News: {event_type}"),
        body: "The export of March has finished.".to_owned(),
        link: Some("https://keel.test/exports/1".to_owned()),
        data: json!({"export_id": "e-1", "rows": 42}),
    }
}

/// The receiver's side of the signature, written from the documentation, not with
/// Keel's code: `t=<ts>,v1=<hex hmac_sha256(secret, "<ts>.<body>")>`.
fn signature_is_valid(header: &str, secret: &str, body: &[u8]) -> bool {
    let mut ts = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => ts = Some(v.to_owned()),
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(ts) = ts else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    sigs.contains(&expected)
}

async fn create_endpoint(app: &TestApp, owner: &User, url: &str, types: &[&str]) -> (Uuid, String) {
    let res = app
        .authed_json(
            &owner.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/webhooks", owner.org_id),
            json!({"url": url, "event_types": types, "description": "test receiver"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.expect("json");
    let secret = body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    (
        body["id"].as_str().expect("id").parse().expect("uuid"),
        secret,
    )
}

/// An app with one user (ada, owning her organization), a receiver answering `plan`, an
/// endpoint of ada's organization subscribed to `types` that points at it, and workers.
struct Hooked {
    app: TestApp,
    ada: User,
    receiver: Receiver,
    endpoint: Uuid,
    secret: String,
    workers: Workers,
}

async fn hooked(overrides: &[(&str, &str)], plan: Vec<Respond>, types: &[&str]) -> Hooked {
    let app = TestApp::spawn(overrides).await;
    let ada = user(&app, "ada@example.com").await;
    let receiver = Receiver::start(plan);
    let (endpoint, secret) = create_endpoint(&app, &ada, &receiver.url, types).await;
    let workers = app.workers();
    Hooked {
        app,
        ada,
        receiver,
        endpoint,
        secret,
        workers,
    }
}

async fn deliveries(app: &TestApp, owner: &User, endpoint: Uuid) -> Vec<Value> {
    let path = format!(
        "/api/v1/orgs/{}/webhooks/{endpoint}/deliveries",
        owner.org_id
    );
    app.get_json(&owner.token, &path).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread")]
async fn an_event_reaches_the_inbox_and_the_mailbox_once_and_preferences_and_unsubscribe_apply() {
    let mailbox = Mailbox::new();
    let app = TestApp::spawn(&[mailbox.setting()]).await;
    let ada = user(&app, "ada@example.com").await;
    let workers = app.workers();

    app.publish(
        event(ada.org_id, "export.completed", Audience::Members),
        true,
    )
    .await;
    app.wait_for_inbox(ada.user_id, 1).await;
    let count: Value = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 1);
    let list: Value = app
        .get_json(&ada.token, "/api/v1/notifications?unread=true")
        .await;
    let item = &list["items"][0];
    assert_eq!(item["type"], "export.completed");
    assert_eq!(item["title"], "News: export.completed");
    assert_eq!(item["data"]["rows"], 42);
    let id = item["id"].as_str().expect("id");

    // The email went out with a working unsubscribe link (no login needed).
    eventually("the notification email", PATIENCE, || async {
        mailbox
            .emails()
            .iter()
            .any(|e| e.contains("News: export.completed"))
    })
    .await;
    let eml = mailbox
        .emails()
        .into_iter()
        .find(|e| e.contains("News: export.completed"))
        .expect("email");
    let start = eml
        .find("/api/v1/unsubscribe?token=")
        .expect("unsubscribe link");
    let token: String = eml[start + "/api/v1/unsubscribe?token=".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    assert!(
        eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "one-click unsubscribe offered to mail clients"
    );
    // Opening the link changes nothing (scanners follow links); its button POSTs.
    let res = app.get(&format!("/api/v1/unsubscribe?token={token}")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.expect("page").contains("method=\"post\""));
    assert_eq!(
        app.get_json(&ada.token, "/api/v1/me/notification-preferences")
            .await["preferences"],
        json!([])
    );
    let res = app
        .client
        .post(app.url(&format!("/api/v1/unsubscribe?token={token}")))
        .send()
        .await
        .expect("unsubscribe");
    assert_eq!(res.status(), 200);
    let res = app
        .get(&format!("/api/v1/unsubscribe?token={token}x"))
        .await;
    assert_eq!(res.status(), 400, "a tampered link is refused");
    let prefs: Value = app
        .get_json(&ada.token, "/api/v1/me/notification-preferences")
        .await;
    assert_eq!(
        prefs["preferences"],
        json!([{"event_type": "export.completed", "channel": "email", "enabled": false}])
    );

    // Reading drops the cached count at once.
    let res = app
        .authed(
            &ada.token,
            reqwest::Method::POST,
            &format!("/api/v1/notifications/{id}/read"),
        )
        .await;
    assert_eq!(res.status(), 204);
    let count: Value = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 0);

    // In-app off for another type: its next event makes no row; a bad entry changes nothing.
    let res = app
        .authed_json(
            &ada.token,
            reqwest::Method::PUT,
            "/api/v1/me/notification-preferences",
            json!({"preferences": [
                {"event_type": "upload.processed", "channel": "in_app", "enabled": false},
                {"event_type": "upload.processed", "channel": "pager", "enabled": false}
            ]}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .authed_json(
            &ada.token,
            reqwest::Method::PUT,
            "/api/v1/me/notification-preferences",
            json!({"preferences": [{"event_type": "upload.processed", "channel": "in_app", "enabled": false}]}),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.publish(
        event(ada.org_id, "upload.processed", Audience::Members),
        true,
    )
    .await;
    app.publish(
        event(ada.org_id, "export.completed", Audience::Members),
        true,
    )
    .await;
    app.wait_for_inbox(ada.user_id, 2).await;
    let types: Value = app.get_json(&ada.token, "/api/v1/notifications").await;
    let types: Vec<&str> = types["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["export.completed", "export.completed"],
        "newest first, no upload row"
    );
    let res = app
        .authed(
            &ada.token,
            reqwest::Method::POST,
            "/api/v1/notifications/read-all",
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.expect("json")["marked"], 1);
    // Emails: only the first export's (the second came after unsubscribing). The
    // second's fan-out committed with its inbox row, so no email job means no email.
    assert_eq!(app.email_jobs("News: export.completed").await, 1);
    let exports = mailbox
        .emails()
        .iter()
        .filter(|e| e.contains("News: export.completed"))
        .count();
    assert_eq!(exports, 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_back_event_delivers_nothing_and_a_repeated_fan_out_delivers_once() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], Vec::new(), &["*"]).await;

    app.publish(
        event(ada.org_id, "export.completed", Audience::Members),
        false,
    )
    .await;
    app.publish(event(ada.org_id, "export.failed", Audience::Members), true)
        .await;
    eventually("the committed event's delivery", PATIENCE, || async {
        !receiver.seen().is_empty()
    })
    .await;
    // Run the committed event's fan-out again, as a redelivered job would.
    let events = app.fan_out_again(ada.org_id).await;
    assert_eq!(events, 1, "the rolled-back event was never recorded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "one event, one endpoint: one delivery");
    let body: Value = serde_json::from_slice(&seen[0].body).expect("json body");
    assert_eq!(body["type"], "export.failed");
    assert_eq!(body["id"], seen[0].delivery_id.as_str());
    assert_eq!(deliveries(&app, &ada, endpoint).await.len(), 1);
    assert_eq!(app.count_rows(INBOX_OF_USER, Some(ada.user_id)).await, 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_failing_three_times_gets_it_once_with_growing_gaps_and_valid_signatures() {
    let overrides = [
        ("KEEL__WEBHOOKS__BREAKER_THRESHOLD", "5"),
        // Gaps of about 3, 6 and 12 s (each 75-100% of that, by jitter). A scheduled retry
        // is sometimes picked up a second late (seen: 0.9-1.0 s); these ranges stay apart
        // even then.
        ("KEEL__WEBHOOKS__BACKOFF_BASE_MS", "3000"),
        ("KEEL__WEBHOOKS__BACKOFF_MAX_SECS", "16"),
        ("KEEL__WEBHOOKS__DISABLE_AFTER_FAILURES", "10"),
    ];
    let plan = vec![
        Respond::Status(500),
        Respond::Status(503),
        Respond::Status(429),
    ];
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        secret,
        workers,
    } = hooked(&overrides, plan, &["export.completed"]).await;
    app.publish(
        event(ada.org_id, "export.completed", Audience::Nobody),
        true,
    )
    .await;
    eventually("the fourth attempt", PATIENCE, || async {
        receiver.seen().len() >= 4
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = receiver.seen();
    assert_eq!(
        seen.len(),
        4,
        "delivered once after three failures, then no more"
    );
    assert!(
        seen.iter().all(|r| r.delivery_id == seen[0].delivery_id),
        "one delivery id throughout"
    );
    assert!(
        seen.iter().all(|r| r.body == seen[0].body),
        "the same bytes every time"
    );
    for r in &seen {
        assert!(
            signature_is_valid(&r.signature, &secret, &r.body),
            "{}",
            r.signature
        );
        assert!(!signature_is_valid(&r.signature, "whsec_wrong", &r.body));
    }
    let gaps: Vec<Duration> = seen.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps[0] < gaps[1] && gaps[1] < gaps[2],
        "gaps grow: {gaps:?}"
    );
    let log = deliveries(&app, &ada, endpoint).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 4);
    assert_eq!(log[0]["response_status"], 200);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endpoint_that_always_fails_is_disabled_and_the_admins_are_told() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], vec![Respond::Status(500); 100], &["export.completed"]).await;
    app.publish(
        event(ada.org_id, "export.completed", Audience::Nobody),
        true,
    )
    .await;
    let path = format!("/api/v1/orgs/{}/webhooks/{endpoint}", ada.org_id);
    eventually("the endpoint to be disabled", PATIENCE, || async {
        let e: Value = app.get_json(&ada.token, &path).await;
        e["enabled"] == false
    })
    .await;
    // test.toml: disabled after 6 failures in a row; the breaker (3) spaced the last ones.
    assert_eq!(receiver.seen().len(), 6);
    let e: Value = app.get_json(&ada.token, &path).await;
    assert_eq!(e["consecutive_failures"], 6);
    assert!(
        e["disabled_reason"]
            .as_str()
            .expect("reason")
            .contains("6 failed attempts")
    );
    eventually("the admin's notification", PATIENCE, || async {
        let list: Value = app.get_json(&ada.token, "/api/v1/notifications").await;
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| i["type"] == "webhook.disabled"))
    })
    .await;
    let log = deliveries(&app, &ada, endpoint).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["response_status"], 500);
    // Disabled endpoints take no tests; re-enabling closes the breaker.
    let res = app
        .authed(&ada.token, reqwest::Method::POST, &format!("{path}/test"))
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .authed_json(
            &ada.token,
            reqwest::Method::PATCH,
            &path,
            json!({"enabled": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let e: Value = res.json().await.expect("json");
    assert_eq!(e["consecutive_failures"], 0);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_receiver_is_timed_out_and_retried_and_requests_never_wait_for_it() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], vec![Respond::Hang(Duration::from_secs(5))], &["*"]).await;
    let started = Instant::now();
    let res = app
        .authed(
            &ada.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/webhooks/{endpoint}/test", ada.org_id),
        )
        .await;
    assert_eq!(res.status(), 202);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the request did not wait for the receiver"
    );
    let delivery: Value = res.json().await.expect("json");
    assert_eq!(delivery["event_type"], "webhook.test");
    eventually("the retry after the timeout", PATIENCE, || async {
        deliveries(&app, &ada, endpoint)
            .await
            .iter()
            .any(|d| d["status"] == "delivered")
    })
    .await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].delivery_id, seen[1].delivery_id);
    // test.toml: 1.5 s per attempt.
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_millis(1500), "{gap:?}");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_whose_worker_died_mid_request_is_delivered_again_with_the_same_id() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], vec![Respond::Hang(Duration::from_secs(30))], &["*"]).await;
    app.publish(
        event(ada.org_id, "export.completed", Audience::Nobody),
        true,
    )
    .await;
    eventually("the first attempt to arrive", PATIENCE, || async {
        !receiver.seen().is_empty()
    })
    .await;
    // The worker dies mid-request: its tasks stop without recording anything.
    drop(workers);
    // Its lease runs out (here: at once, instead of after the job's timeout).
    let mut conn = app.platform.pool.get().await.expect("conn");
    diesel::sql_query(
        "UPDATE queue_jobs SET lease_until = now() - interval '1 second' WHERE kind = $1 AND state = 'running'",
    )
    .bind::<Text, _>("notifications.deliver_webhook")
    .execute(&mut conn)
    .await
    .expect("expire lease");
    let workers = app.workers();
    eventually("the second attempt", PATIENCE, || async {
        receiver.seen().len() >= 2
    })
    .await;
    let seen = receiver.seen();
    assert_eq!(
        seen[0].delivery_id, seen[1].delivery_id,
        "deduplicable by delivery id"
    );
    assert_eq!(seen[0].body, seen[1].body);
    eventually("the delivery to be recorded", PATIENCE, || async {
        deliveries(&app, &ada, endpoint)
            .await
            .iter()
            .any(|d| d["status"] == "delivered")
    })
    .await;
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn private_and_metadata_addresses_are_refused() {
    let app = TestApp::spawn(&[("KEEL__WEBHOOKS__ALLOW_PRIVATE_NETWORKS", "false")]).await;
    let ada = user(&app, "ada@example.com").await;
    let path = format!("/api/v1/orgs/{}/webhooks", ada.org_id);
    for url in [
        "http://127.0.0.1:5432/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://localhost:8080/",
        "http://10.0.0.8/",
        "ftp://example.com/",
        "http://user:pw@example.com/",
    ] {
        let res = app
            .authed_json(
                &ada.token,
                reqwest::Method::POST,
                &path,
                json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(res.status(), 422, "{url}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
    }
    let endpoints = "SELECT count(*) AS n FROM notifications_webhook_endpoints WHERE org_id = $1";
    assert_eq!(
        app.count_rows(endpoints, Some(ada.org_id)).await,
        0,
        "nothing half-written"
    );

    // Even where private networks are allowed, cloud metadata stays out of reach.
    let dev = TestApp::spawn(&[]).await;
    let grace = user(&dev, "grace@example.com").await;
    let res = dev
        .authed_json(
            &grace.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/webhooks", grace.org_id),
            json!({"url": "http://169.254.169.254/", "event_types": ["*"]}),
        )
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_creates_stop_exactly_at_the_endpoint_limit() {
    let app = TestApp::spawn(&[]).await;
    let ada = user(&app, "ada@example.com").await;
    let limit = keel_notifications::webhooks::endpoints::MAX_ENDPOINTS as usize;
    for i in 0..limit - 4 {
        create_endpoint(&app, &ada, &format!("http://127.0.0.1:9/{i}"), &["*"]).await;
    }
    let path = format!("/api/v1/orgs/{}/webhooks", ada.org_id);
    let attempts = (0..12).map(|i| {
        app.authed_json(
            &ada.token,
            reqwest::Method::POST,
            &path,
            json!({"url": format!("http://127.0.0.1:9/race/{i}"), "event_types": ["*"]}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|res| res.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        8,
        "{statuses:?}"
    );
    let listed = app.get_json(&ada.token, &format!("{path}?limit=100")).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(limit),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organizations_webhooks_deliveries_and_notifications_are_not_found() {
    let app = TestApp::spawn(&[]).await;
    let ada = user(&app, "ada@example.com").await;
    let mallory = user(&app, "mallory@example.com").await;
    let receiver = Receiver::start(Vec::new());
    let (endpoint, _) = create_endpoint(&app, &ada, &receiver.url, &["*"]).await;
    let res = app
        .authed(
            &ada.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/webhooks/{endpoint}/test", ada.org_id),
        )
        .await;
    let delivery = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.publish(
        event(ada.org_id, "export.completed", Audience::Members),
        true,
    )
    .await;
    let workers = app.workers();
    app.wait_for_inbox(ada.user_id, 1).await;
    let notification: Uuid =
        app.get_json(&ada.token, "/api/v1/notifications").await["items"][0]["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("uuid");

    use reqwest::Method as M;
    let (a, e, n) = (ada.org_id, endpoint, notification);
    let cases: Vec<(M, String, Option<Value>)> = vec![
        (M::GET, format!("/api/v1/orgs/{a}/webhooks"), None),
        (
            M::POST,
            format!("/api/v1/orgs/{a}/webhooks"),
            Some(json!({"url": receiver.url, "event_types": ["*"]})),
        ),
        (M::GET, format!("/api/v1/orgs/{a}/webhooks/{e}"), None),
        (
            M::PATCH,
            format!("/api/v1/orgs/{a}/webhooks/{e}"),
            Some(json!({"url": "https://evil.example/"})),
        ),
        (M::DELETE, format!("/api/v1/orgs/{a}/webhooks/{e}"), None),
        (
            M::POST,
            format!("/api/v1/orgs/{a}/webhooks/{e}/rotate-secret"),
            None,
        ),
        (M::POST, format!("/api/v1/orgs/{a}/webhooks/{e}/test"), None),
        (
            M::GET,
            format!("/api/v1/orgs/{a}/webhooks/{e}/deliveries"),
            None,
        ),
        (
            M::POST,
            format!("/api/v1/orgs/{a}/webhooks/{e}/deliveries/{delivery}/redeliver"),
            None,
        ),
        // Mallory's own org, ada's endpoint id:
        (
            M::GET,
            format!("/api/v1/orgs/{}/webhooks/{e}", mallory.org_id),
            None,
        ),
        (
            M::GET,
            format!("/api/v1/orgs/{}/webhooks/{e}/deliveries", mallory.org_id),
            None,
        ),
        (M::POST, format!("/api/v1/notifications/{n}/read"), None),
    ];
    for (method, path, body) in cases {
        let res = match body {
            Some(body) => {
                app.authed_json(&mallory.token, method.clone(), &path, body)
                    .await
            }
            None => app.authed(&mallory.token, method.clone(), &path).await,
        };
        assert_eq!(res.status(), 404, "{method} {path}");
    }
    // Nothing changed: ada still sees her endpoint, its secret works, the row is unread.
    let e: Value = app
        .get_json(&ada.token, &format!("/api/v1/orgs/{a}/webhooks/{endpoint}"))
        .await;
    assert_eq!(e["url"], receiver.url.as_str());
    assert!(e["previous_secret_expires_at"].is_null(), "not rotated");
    let count: Value = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 1);
    let list: Value = app.get_json(&mallory.token, "/api/v1/notifications").await;
    assert_eq!(list["items"], json!([]));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_tells_the_admins_in_app_and_the_organizations_webhooks() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], Vec::new(), &["member.invited"]).await;
    let res = app
        .authed_json(
            &ada.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/invitations", ada.org_id),
            json!({"email": "grace@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    eventually("the webhook delivery", PATIENCE, || async {
        !receiver.seen().is_empty()
    })
    .await;
    let body: Value = serde_json::from_slice(&receiver.seen()[0].body).expect("json");
    assert_eq!(body["type"], "member.invited");
    assert_eq!(body["data"]["email"], "grace@example.com");
    assert_eq!(body["data"]["role"], "admin");
    // The fan-out commits the deliveries before the in-app rows: the webhook can arrive
    // first.
    eventually("the in-app notification", PATIENCE, || async {
        let list = app.get_json(&ada.token, "/api/v1/notifications").await;
        list["items"][0]["type"] == "member.invited"
    })
    .await;
    assert_eq!(
        deliveries(&app, &ada, endpoint).await[0]["status"],
        "delivered"
    );
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_deletes_old_events_with_their_notifications_and_finished_deliveries_only() {
    let hooked = hooked(&[], vec![], &["export.completed"]).await;
    let (app, ada, endpoint) = (&hooked.app, &hooked.ada, hooked.endpoint);
    for n in 1..=3 {
        app.publish(
            event(ada.org_id, "export.completed", Audience::Members),
            true,
        )
        .await;
        app.wait_for_inbox(ada.user_id, n).await;
    }
    eventually("three deliveries", PATIENCE, || async {
        let log = deliveries(app, ada, endpoint).await;
        log.len() == 3 && log.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    hooked.workers.shutdown().await;
    assert_eq!(hooked.receiver.seen().len(), 3);

    // The two oldest events age past the retention; the second one's delivery is still
    // being attempted (a redelivery), so it must stay.
    app.run_sql(
        "UPDATE notifications_events SET created_at = now() - interval '100 days' \
         WHERE id IN (SELECT id FROM notifications_events WHERE org_id = $1 ORDER BY id LIMIT 2)",
        Some(ada.org_id),
    )
    .await;
    app.run_sql(
        "UPDATE notifications_webhook_deliveries SET status = 'pending' WHERE event_id = \
         (SELECT id FROM notifications_events WHERE org_id = $1 ORDER BY id OFFSET 1 LIMIT 1)",
        Some(ada.org_id),
    )
    .await;
    let count = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 3, "cached before the purge");

    let notifications = &app.domains.notifications;
    let purged = notifications.purge_expired().await.expect("purge");
    assert_eq!(
        (purged.events, purged.notifications, purged.deliveries),
        (1, 1, 1)
    );
    let count = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 2, "the cached count follows the purge");
    let events = "SELECT count(*) AS n FROM notifications_events WHERE org_id = $1";
    assert_eq!(app.count_rows(events, Some(ada.org_id)).await, 2);
    assert_eq!(deliveries(app, ada, endpoint).await.len(), 2);
    let again = notifications.purge_expired().await.expect("purge");
    assert_eq!(
        (again.events, again.notifications, again.deliveries),
        (0, 0, 0)
    );

    // A pending delivery without an attempt for over a week was abandoned by its job: it
    // no longer keeps its event.
    app.run_sql(
        "UPDATE notifications_webhook_deliveries SET updated_at = now() - interval '8 days' \
         WHERE org_id = $1 AND status = 'pending'",
        Some(ada.org_id),
    )
    .await;
    let stalled = notifications.purge_expired().await.expect("purge");
    assert_eq!(
        (stalled.events, stalled.notifications, stalled.deliveries),
        (1, 1, 1)
    );
    assert_eq!(app.count_rows(events, Some(ada.org_id)).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_audience_is_written_in_chunks_and_notified_once_each() {
    let app = TestApp::spawn(&[]).await;
    let ada = user(&app, "ada@example.com").await;
    // 600 more members written straight into accounts' tables: signing them up through
    // the API would hash 600 passwords. More than two chunks of the fan-out.
    app.run_sql(
        "WITH u AS (INSERT INTO accounts_users (id, email, name, password_hash, email_verified_at) \
                    SELECT gen_random_uuid(), 'member' || n || '@example.com', 'Member ' || n, 'x', now() \
                    FROM generate_series(1, 600) n RETURNING id) \
         INSERT INTO accounts_memberships (org_id, user_id, role) SELECT $1, id, 'member' FROM u",
        Some(ada.org_id),
    )
    .await;
    let workers = app.workers();
    app.publish(
        event(ada.org_id, "export.completed", Audience::Members),
        true,
    )
    .await;
    let inbox = "SELECT count(*) AS n FROM notifications_inbox WHERE org_id = $1";
    eventually("601 in-app notifications", PATIENCE, || async {
        app.count_rows(inbox, Some(ada.org_id)).await == 601
    })
    .await;
    assert_eq!(app.email_jobs("News: export.completed").await, 601);

    assert_eq!(app.fan_out_again(ada.org_id).await, 1);
    assert_eq!(
        app.count_rows(inbox, Some(ada.org_id)).await,
        601,
        "no second notification"
    );
    assert_eq!(
        app.email_jobs("News: export.completed").await,
        601,
        "no second email"
    );
    let count = app
        .get_json(&ada.token, "/api/v1/notifications/unread-count")
        .await;
    assert_eq!(count["count"], 1);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_delivery_is_redelivered_with_its_id_once_per_key_and_a_pending_one_is_not() {
    let Hooked {
        app,
        ada,
        receiver,
        endpoint,
        workers,
        ..
    } = hooked(&[], Vec::new(), &["export.completed"]).await;
    app.publish(
        event(ada.org_id, "export.completed", Audience::Nobody),
        true,
    )
    .await;
    eventually("the delivery", PATIENCE, || async {
        deliveries(&app, &ada, endpoint)
            .await
            .iter()
            .any(|d| d["status"] == "delivered")
    })
    .await;
    let id = deliveries(&app, &ada, endpoint).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!(
        "/api/v1/orgs/{}/webhooks/{endpoint}/deliveries/{id}/redeliver",
        ada.org_id
    );
    let redeliver = || {
        app.client
            .post(app.url(&path))
            .bearer_auth(&ada.token)
            .header("idempotency-key", "again")
            .send()
    };
    let first = redeliver().await.expect("redeliver");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["id"], id.as_str(), "the same delivery");
    assert_eq!(first["status"], "pending");
    let replay = redeliver().await.expect("retry");
    assert_eq!(replay.status(), 202);
    assert!(replay.headers().contains_key("idempotent-replayed"));
    eventually("the redelivery", PATIENCE, || async {
        receiver.seen().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2, "one redelivery for one key");
    assert_eq!(seen[1].delivery_id, seen[0].delivery_id);

    // While a delivery is still being attempted, a redelivery would send it twice at once.
    app.run_sql(
        "UPDATE notifications_webhook_deliveries SET status = 'pending' WHERE endpoint_id = $1",
        Some(endpoint),
    )
    .await;
    let pending = app.authed(&ada.token, reqwest::Method::POST, &path).await;
    keel_testing::assert_error(pending, 409, "conflict", None).await;
    workers.shutdown().await;
}
