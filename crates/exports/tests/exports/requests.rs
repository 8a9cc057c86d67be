//! Requesting exports: the 202 resource, validation, access, idempotency, limits, and
//! the transaction the request is written in.

use super::*;
use keel_persistence::AsyncConnection as _;
use keel_testing::{api_key, assert_error, error_body};

#[tokio::test(flavor = "multi_thread")]
async fn a_request_is_accepted_then_produced_and_downloaded() {
    let s = setup(&[]).await;
    let res = s.request(json!({"source": "members"})).await;
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"].to_str().expect("text").to_owned();
    let created: Value = res.json().await.expect("json");
    let id = created["id"].as_str().expect("id");
    assert_eq!(location, format!("{}/{id}", s.exports()));
    assert_eq!(created["state"], "queued");
    assert_eq!(created["format"], "csv");
    assert_eq!(created["compress"], false);
    assert_eq!(created["progress"]["rows_written"], 0);
    assert!(
        created["file_name"]
            .as_str()
            .expect("name")
            .starts_with("members-")
    );

    let done = s.finished(id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["row_count"], 1);
    assert_eq!(done["progress"]["percent"], 100.0);
    assert_eq!(done["progress"]["estimated_rows"], 1);
    assert!(done["expires_at"].is_string() && done["finished_at"].is_string());

    let file = s.file(id).await;
    let text = String::from_utf8(file.clone()).expect("utf-8");
    let mut lines = text.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("user_id,email,name,role,joined_at"),
        "{text}"
    );
    let member = lines.next().expect("one member");
    assert!(
        member.starts_with(&format!("{},", s.owner.user_id)),
        "{member}"
    );
    assert!(member.contains(",owner,"), "{member}");
    assert_eq!(done["size_bytes"], file.len());
    use sha2::Digest as _;
    assert_eq!(done["sha256"], hex::encode(sha2::Sha256::digest(&file)));

    // Both the request and the download are in the audit trail.
    let trail = s
        .app
        .get_json(
            &s.owner.token,
            &format!("/api/v1/orgs/{}/audit-events", s.owner.org_id),
        )
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["target_id"] == id)
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"export.requested"), "{trail}");
    assert!(actions.contains(&"export.downloaded"), "{trail}");

    // And the list shows it, newest first.
    s.requested(json!({"source": "uploads"})).await;
    let list = s.app.get_json(&s.owner.token, &s.exports()).await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["id"], id);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_name_the_field_and_leave_nothing() {
    let s = idle(&[]).await;
    for (body, field) in [
        (json!({"source": "nope"}), "source"),
        (json!({"source": "members", "format": "xlsx"}), "format"),
        (
            json!({"source": "members", "filters": {"color": "red"}}),
            "filters.color",
        ),
        (
            json!({"source": "members", "filters": {"role": "king"}}),
            "filters.role",
        ),
        (
            json!({"source": "members", "filters": {"role": 5}}),
            "filters.role",
        ),
        (
            json!({"source": "members", "filters": {"created_after": "yesterday"}}),
            "filters.created_after",
        ),
        (
            json!({"source": "members", "filters": {"created_after": SEED_NEXT_DAY, "created_before": SEED_DAY}}),
            "filters.created_before",
        ),
        (json!({"source": "members", "colour": "red"}), "colour"),
        // Year 0 in UTC: a timestamp RFC 3339 cannot write back.
        (
            json!({"source": "members", "filters": {"created_before": "0000-01-01T00:00:00+01:00"}}),
            "filters.created_before",
        ),
    ] {
        let res = s.request(body.clone()).await;
        let error = error_body(res, 422, "validation_failed").await;
        assert_eq!(error["error"]["field"], field, "{body} → {error}");
    }
    let rows = s
        .app
        .count_rows("SELECT count(*) AS n FROM exports", None)
        .await;
    assert_eq!(rows, 0);
    // What can be exported, and with which filters, is listed.
    let sources = s
        .app
        .get_json(&s.owner.token, &format!("{}/sources", s.exports()))
        .await;
    let names: Vec<&str> = sources
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["audit_events", "members", "uploads", "webhook_deliveries"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_needs_a_manager_or_the_scope_and_stays_in_the_organization() {
    let s = idle(&[]).await;
    let reader = api_key(&s.app, &s.owner, &["exports:read"]).await;
    let writer = api_key(&s.app, &s.owner, &["exports:write"]).await;
    let body = json!({"source": "members"});
    let post = |token: String| {
        let s = &s;
        let body = body.clone();
        async move {
            s.app
                .authed_json(&token, reqwest::Method::POST, &s.exports(), body)
                .await
        }
    };
    assert_error(post(reader.clone()).await, 403, "forbidden", None).await;
    let res = post(writer.clone()).await;
    assert_eq!(res.status(), 202);
    let by_key: Value = res.json().await.expect("json");
    assert!(by_key["requested_by_key"].is_string());
    let id = by_key["id"].as_str().expect("id");
    // A reader reads it.
    let read = s
        .app
        .authed(
            &reader,
            reqwest::Method::GET,
            &format!("{}/{id}", s.exports()),
        )
        .await;
    assert_eq!(read.status(), 200);

    // Another organization sees neither the export nor the organization.
    let other = user(&s.app, &format!("{}@example.com", Uuid::new_v4().simple())).await;
    for path in [
        format!("{}/{id}", s.exports()),
        format!("/api/v1/orgs/{}/exports/{id}", other.org_id),
        format!("/api/v1/orgs/{}/exports/{id}/download", other.org_id),
    ] {
        let res = s
            .app
            .authed(&other.token, reqwest::Method::GET, &path)
            .await;
        assert_error(res, 404, "not_found", None).await;
    }
    let cancel = s
        .app
        .authed(
            &other.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/exports/{id}/cancel", other.org_id),
        )
        .await;
    assert_error(cancel, 404, "not_found", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_gives_one_export() {
    let s = idle(&[]).await;
    let send = || {
        s.app
            .client
            .post(s.app.url(&s.exports()))
            .bearer_auth(&s.owner.token)
            .header("idempotency-key", "export-once")
            .json(&json!({"source": "members", "format": "ndjson"}))
            .send()
    };
    let first = send().await.expect("first");
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.expect("json");
    let again = send().await.expect("again");
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.expect("json");
    assert_eq!(first["id"], again["id"]);
    let rows = s
        .app
        .count_rows("SELECT count(*) AS n FROM exports", None)
        .await;
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organization_limits_answer_429_with_retry_after() {
    let s = idle(&[
        ("KEEL__EXPORTS__MAX_RUNNING_PER_ORG", "1"),
        ("KEEL__EXPORTS__MAX_PER_ORG_PER_DAY", "2"),
    ])
    .await;
    let first = s.requested(json!({"source": "members"})).await;
    // One is queued: a second waits for it.
    let res = s.request(json!({"source": "members"})).await;
    let retry = retry_after(&res);
    assert!(retry > 0);
    error_body(res, 429, "too_many_requests").await;

    // Once it has ended, a second may run; a third in the same day may not.
    let cancel = s
        .app
        .authed(
            &s.owner.token,
            reqwest::Method::POST,
            &format!(
                "{}/{}/cancel",
                s.exports(),
                first["id"].as_str().expect("id")
            ),
        )
        .await;
    assert_eq!(cancel.status(), 200);
    // Deleting an export frees its running place but not the day's allowance.
    let second = s.requested(json!({"source": "members"})).await;
    let deleted = s
        .app
        .authed(
            &s.owner.token,
            reqwest::Method::DELETE,
            &format!("{}/{}", s.exports(), second["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let res = s.request(json!({"source": "members"})).await;
    let retry = retry_after(&res);
    assert!(retry > 23 * 3600, "{retry}");
    let error = error_body(res, 429, "too_many_requests").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("24 hours"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_a_rolled_back_transaction_leaves_no_export_and_no_job() {
    let s = idle(&[]).await;
    let exports = &s.app.domains.exports;
    let mut conn = s.app.platform.pool.get().await.expect("conn");
    let org_id = s.owner.org_id;
    let actor = keel_events::Actor::User(s.owner.user_id);
    let input: keel_exports::NewExport =
        serde_json::from_value(json!({"source": "members"})).expect("input");
    let outcome = conn
        .transaction(async |conn| {
            let (export, _job) = exports
                .request_in(conn, org_id, actor, input)
                .await
                .expect("requested");
            // The caller's next step fails: everything rolls back.
            Err::<(), _>(keel_exports::ExportsError::NotFound).map(|()| export)
        })
        .await;
    assert!(outcome.is_err());
    for table in ["exports", "queue_jobs WHERE kind = 'exports.generate'"] {
        let n = s
            .app
            .count_rows(&format!("SELECT count(*) AS n FROM {table}"), None)
            .await;
        assert_eq!(n, 0, "{table}");
    }
    let audited = s
        .app
        .count_rows(
            "SELECT count(*) AS n FROM accounts_audit_events WHERE action = 'export.requested'",
            None,
        )
        .await;
    assert_eq!(audited, 0);
}

/// The `Retry-After` of an answer, in seconds.
fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds")
}
