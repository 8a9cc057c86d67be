//! `Idempotency-Key` across a crash: a real `keel serve` process killed (SIGKILL) in the
//! middle of the first attempt of a keyed request, then the same request retried
//! against a new process over the same database.

use super::{TestApp, serve_process, spawn_app};
use keel_testing::user;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A sleep of 3 s in the first attempt's transaction: at its COMMIT (a deferred trigger
/// on the invitation it writes), so the server dies after its change is committed.
const SLOW_COMMIT: [&str; 3] = [
    "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER test_slow AFTER INSERT ON accounts_tokens \
     DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow()",
    "DROP TRIGGER test_slow ON accounts_tokens",
];

/// The same sleep where the answer is written, so the server dies before it commits.
const SLOW_ANSWER: [&str; 3] = [
    "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$",
    "CREATE TRIGGER test_slow BEFORE UPDATE ON http_idempotency_keys FOR EACH ROW \
     WHEN (OLD.status IS NULL AND NEW.status IS NOT NULL) EXECUTE FUNCTION test_slow()",
    "DROP TRIGGER test_slow ON http_idempotency_keys",
];

/// Waits until a backend of this test's database sleeps in the trigger.
async fn wait_for_the_sleep(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .count_rows(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event = 'PgSleep'",
            None,
        )
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the keyed request never reached the slow statement"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the retries after the crash saw, and what was left in the database.
struct AfterCrash {
    /// The first retry that was not refused as in flight replayed a stored answer.
    replayed: bool,
    invitations: i64,
    events: i64,
}

/// An owner invites someone with `Idempotency-Key`; the server is killed while the
/// first attempt sleeps in `slow`; a new server answers the same request until it is
/// no longer in flight, and once more (which must replay).
async fn invite_through_a_crash(slow: [&str; 3]) -> AfterCrash {
    // Set-up through the in-process app: an owner with a session. The processes below
    // share its database.
    let app = spawn_app(&[]).await;
    let owner = user(&app, "owner@example.com").await;
    let db_url = app.database_url();
    let env = [("KEEL__SERVER__IDEMPOTENCY_IN_FLIGHT_SECS", "2")];
    let [create_function, create_trigger, drop_trigger] = slow;
    app.run_sql(create_function, None).await;
    app.run_sql(create_trigger, None).await;

    let path = format!("/api/v1/orgs/{}/invitations", owner.org_id);
    let body = json!({ "email": "grace@example.com", "role": "member" });
    let invite = |base: &str| {
        app.client
            .post(format!("{base}{path}"))
            .bearer_auth(&owner.token)
            .header("idempotency-key", "invite-grace")
            .json(&body)
            .send()
    };

    let (mut first, base) = serve_process(&db_url, &env).await;
    let attempt = tokio::spawn(invite(&base));
    wait_for_the_sleep(&app).await;
    first.kill();
    assert!(
        attempt.await.expect("join").is_err(),
        "the killed server sent no answer"
    );
    // Waits for the dead attempt's transaction to end (it holds a lock on the table).
    app.run_sql(drop_trigger, None).await;

    let (_second, base) = serve_process(&db_url, &env).await;
    let started = Instant::now();
    let retried = loop {
        let res = invite(&base).await.expect("retry");
        if res.status() != 409 {
            break res;
        }
        let refusal: Value = res.json().await.expect("json");
        assert_eq!(
            refusal["error"]["code"], "idempotency_key_in_flight",
            "{refusal}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the dead attempt's claim was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(retried.status(), 202);
    let replayed = retried.headers().contains_key("idempotent-replayed");
    let answer = retried.bytes().await.expect("body");
    let again = invite(&base).await.expect("second retry");
    assert_eq!(again.status(), 202);
    assert_eq!(
        again
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(again.bytes().await.expect("body"), answer);

    let of_the_org = |sql| app.count_rows(sql, Some(owner.org_id));
    AfterCrash {
        replayed,
        invitations: of_the_org(
            "SELECT count(*) AS n FROM accounts_tokens WHERE kind = 'invitation' AND org_id = $1",
        )
        .await,
        events: of_the_org(
            "SELECT count(*) AS n FROM notifications_events \
             WHERE event_type = 'member.invited' AND org_id = $1",
        )
        .await,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_after_its_change_committed_leaves_the_answer_for_the_retry() {
    let after = invite_through_a_crash(SLOW_COMMIT).await;
    assert!(
        after.replayed,
        "the change committed, so its answer did too"
    );
    assert_eq!(after.invitations, 1, "one invitation for one key");
    assert_eq!(after.events, 1, "one member.invited event for one key");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_killed_before_its_change_committed_leaves_the_retry_a_clean_slate() {
    let after = invite_through_a_crash(SLOW_ANSWER).await;
    assert!(!after.replayed, "nothing committed, so the retry ran");
    assert_eq!(after.invitations, 1, "one invitation for one key");
    assert_eq!(after.events, 1, "one member.invited event for one key");
}
