//! An export's life: cancelled (queued or mid-run), announced when it ends, expired and
//! removed by retention.

use super::*;
use keel_testing::{Receiver, assert_error};

impl Setup {
    async fn cancel(&self, id: &str) -> reqwest::Response {
        self.app
            .authed(
                &self.owner.token,
                reqwest::Method::POST,
                &format!("{}/{id}/cancel", self.exports()),
            )
            .await
    }

    /// The export's `exports.generate` job has run to its end.
    async fn job_done(&self, id: &str) {
        let sql = "SELECT count(*) AS n FROM queue_jobs WHERE kind = 'exports.generate' \
                   AND state = 'succeeded' AND payload->>'export_id' = $1::text";
        let id: Uuid = id.parse().expect("uuid");
        eventually("the export job to end", Duration::from_secs(60), || async {
            self.app.count_rows(sql, Some(id)).await == 1
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_export_cancels_and_a_finished_one_does_not() {
    let mut s = idle(&[]).await;
    let queued = s.requested(json!({"source": "members"})).await;
    let id = queued["id"].as_str().expect("id");
    let res = s.cancel(id).await;
    assert_eq!(res.status(), 200);
    let canceled: Value = res.json().await.expect("json");
    assert_eq!(canceled["state"], "canceled");
    // Again: the same answer.
    let again: Value = s.cancel(id).await.json().await.expect("json");
    assert_eq!(again["state"], "canceled");
    // Its job finds nothing to do; there is no file to download.
    s.start_workers();
    s.job_done(id).await;
    assert_eq!(s.get(id).await["state"], "canceled");
    assert_error(s.download_link(id).await, 409, "conflict", None).await;
    assert!(s.files().is_empty(), "{:?}", s.files());

    let done = s.exported(json!({"source": "members"})).await;
    let res = s.cancel(done["id"].as_str().expect("id")).await;
    assert_error(res, 409, "conflict", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_mid_run_stops_the_job_and_leaves_no_object() {
    // Small pages and frequent progress: the export takes long enough to be caught.
    let s = setup(&[
        ("KEEL__EXPORTS__BATCH_ROWS", "50"),
        ("KEEL__EXPORTS__PROGRESS_EVERY_ROWS", "500"),
    ])
    .await;
    s.seed_audit(200_000, 0).await;
    let created = s.requested(seeded("csv", false)).await;
    let id = created["id"].as_str().expect("id");
    eventually(
        "the export to be under way",
        Duration::from_secs(60),
        || async {
            s.get(id).await["progress"]["rows_written"]
                .as_i64()
                .is_some_and(|n| n > 0)
        },
    )
    .await;
    let res = s.cancel(id).await;
    assert_eq!(res.status(), 200);
    s.job_done(id).await;
    let export = s.get(id).await;
    assert_eq!(export["state"], "canceled", "{export}");
    let written = export["progress"]["rows_written"].as_i64().expect("rows");
    assert!(written < 200_000, "it ran to the end: {export}");
    eventually("no file to be left", Duration::from_secs(10), || async {
        s.files().is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn completion_reaches_the_inbox_an_email_and_a_webhook() {
    let mailbox = keel_testing::Mailbox::new();
    let s = setup(&[mailbox.setting()]).await;
    let receiver = Receiver::start(Vec::new());
    let res = s
        .app
        .authed_json(
            &s.owner.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/webhooks", s.owner.org_id),
            json!({"url": receiver.url, "event_types": ["export.completed"]}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let done = s.exported(json!({"source": "members"})).await;
    let id = done["id"].as_str().expect("id");
    eventually("the webhook delivery", Duration::from_secs(30), || async {
        !receiver.seen().is_empty()
    })
    .await;
    let delivered: Value = serde_json::from_slice(&receiver.seen()[0].body).expect("json");
    assert_eq!(delivered["type"], "export.completed", "{delivered}");
    assert_eq!(delivered["data"]["export_id"], id);
    assert_eq!(delivered["data"]["row_count"], 1);
    assert_eq!(
        delivered["data"]["download"],
        format!("{}/{id}/download", s.exports())
    );
    eventually("the in-app notification", Duration::from_secs(30), || {
        s.app.notified(&s.owner.token, "export.completed")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_that_cannot_be_produced_fails_and_is_announced() {
    let mut s = idle(&[]).await;
    let created = s.requested(json!({"source": "members"})).await;
    let id = created["id"].as_str().expect("id");
    // A source this deployment no longer offers (a rolled-back release, say).
    s.app
        .run_sql(
            "UPDATE exports SET source = 'retired' WHERE id = $1",
            Some(id.parse().expect("uuid")),
        )
        .await;
    s.start_workers();
    let failed = s.finished(id).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .expect("error")
            .contains("no longer offered"),
        "{failed}"
    );
    let events = s
        .app
        .count_rows(
            "SELECT count(*) AS n FROM notifications_events WHERE org_id = $1 AND event_type = 'export.failed'",
            Some(s.owner.org_id),
        )
        .await;
    assert_eq!(events, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn past_its_retention_an_export_expires_and_is_removed() {
    let s = setup(&[]).await;
    let done = s.exported(json!({"source": "members"})).await;
    let id = done["id"].as_str().expect("id");
    assert_eq!(s.files().len(), 1);
    let uuid: Uuid = id.parse().expect("uuid");
    s.app
        .run_sql(
            "UPDATE exports SET expires_at = now() - interval '1 second' WHERE id = $1",
            Some(uuid),
        )
        .await;
    // Expired at once, before the retention job has run.
    assert_eq!(s.get(id).await["state"], "expired");
    assert_error(s.download_link(id).await, 410, "gone", None).await;

    let removed = s
        .app
        .domains
        .exports
        .apply_retention()
        .await
        .expect("retention");
    assert_eq!(removed.expired, 1);
    assert!(s.files().is_empty(), "{:?}", s.files());
    let res = s
        .app
        .authed(
            &s.owner.token,
            reqwest::Method::GET,
            &format!("{}/{id}", s.exports()),
        )
        .await;
    assert_error(res, 404, "not_found", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_export_is_gone_with_its_file() {
    let s = setup(&[]).await;
    let done = s.exported(json!({"source": "members"})).await;
    let id = done["id"].as_str().expect("id");
    assert_eq!(s.files().len(), 1);
    let path = format!("{}/{id}", s.exports());
    let res = s
        .app
        .authed(&s.owner.token, reqwest::Method::DELETE, &path)
        .await;
    assert_eq!(res.status(), 204);
    let gone = s
        .app
        .authed(&s.owner.token, reqwest::Method::GET, &path)
        .await;
    assert_error(gone, 404, "not_found", None).await;
    eventually(
        "the file to be deleted",
        Duration::from_secs(30),
        || async { s.files().is_empty() },
    )
    .await;
    let audited = s
        .app
        .count_rows(
            "SELECT count(*) AS n FROM accounts_audit_events WHERE action = 'export.deleted' AND org_id = $1",
            Some(s.owner.org_id),
        )
        .await;
    assert_eq!(audited, 1);
    let again = s
        .app
        .authed(&s.owner.token, reqwest::Method::DELETE, &path)
        .await;
    assert_error(again, 404, "not_found", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_export_whose_job_died_is_failed_by_the_retention_job() {
    let s = idle(&[]).await;
    let created = s.requested(json!({"source": "members"})).await;
    let id = created["id"].as_str().expect("id");
    let uuid: Uuid = id.parse().expect("uuid");
    // Its worker died on the last attempt an hour and more ago; a queued one waits on.
    s.app
        .run_sql(
            "UPDATE exports SET state = 'running', attempts = 3, \
             updated_at = now() - interval '61 minutes' WHERE id = $1",
            Some(uuid),
        )
        .await;
    let queued = s.requested(json!({"source": "uploads"})).await;
    s.app
        .run_sql(
            "UPDATE exports SET updated_at = now() - interval '5 hours' WHERE id = $1",
            Some(queued["id"].as_str().expect("id").parse().expect("uuid")),
        )
        .await;
    let removed = s
        .app
        .domains
        .exports
        .apply_retention()
        .await
        .expect("retention");
    assert_eq!(removed.stale, 1);
    let failed = s.get(id).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .expect("error")
            .contains("request it again")
    );
    assert_eq!(
        s.get(queued["id"].as_str().expect("id")).await["state"],
        "queued"
    );
}
