//! Exports across process lifetimes: a worker killed in the middle of an export leaves
//! neither a half-written file nor a stuck export; the job's next run, after the lease,
//! produces the whole file, once.

use super::spawn_app;
use keel_testing::{files_under, user};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ROWS: u32 = 200_000;

#[tokio::test(flavor = "multi_thread")]
async fn an_export_survives_a_killed_worker_with_one_whole_file() {
    // Small pages: the export takes seconds, long enough to kill its worker mid-way.
    let small_pages = [
        ("KEEL__EXPORTS__BATCH_ROWS", "100"),
        ("KEEL__EXPORTS__PROGRESS_EVERY_ROWS", "1000"),
    ];
    let app = spawn_app(&small_pages).await;
    let owner = user(&app, "exporter@example.com").await;
    app.run_sql(
        &format!(
            "INSERT INTO accounts_audit_events (id, org_id, action, details, created_at) \
             SELECT gen_random_uuid(), $1, 'test.row', jsonb_build_object('i', g), \
                    '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 millisecond' \
             FROM generate_series(1, {ROWS}) g"
        ),
        Some(owner.org_id),
    )
    .await;
    let exports = format!("/api/v1/orgs/{}/exports", owner.org_id);
    let res = app
        .authed_json(
            &owner.token,
            reqwest::Method::POST,
            &exports,
            json!({"source": "audit_events", "filters": {"action": "test.row"}}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let created: Value = res.json().await.expect("json");
    let id = created["id"].as_str().expect("id");
    let path = format!("{exports}/{id}");

    // A worker process starts on it and is killed mid-export.
    let root = app.storage_root();
    let root = root.to_string_lossy();
    let mut env = vec![("KEEL__STORAGE__LOCAL_ROOT", root.as_ref())];
    env.extend(small_pages);
    let (mut worker, _) =
        keel_testing::work_process(env!("CARGO_BIN_EXE_keel"), &app.database_url(), &env).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let export = app.get_json(&owner.token, &path).await;
        if export["progress"]["rows_written"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the export never started: {export}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill();
    let export = app.get_json(&owner.token, &path).await;
    assert_eq!(export["state"], "running", "{export}");
    assert!(
        files_under(&app.storage_root())
            .iter()
            .all(|f| !f.to_string_lossy().ends_with(".csv")),
        "a file was published before the export finished"
    );

    // Its lease runs out (aged here rather than waited for), and another worker takes
    // the job over from the start.
    let id_uuid: uuid::Uuid = id.parse().expect("uuid");
    app.run_sql(
        "UPDATE queue_jobs SET lease_until = now() - interval '1 second' \
         WHERE kind = 'exports.generate' AND payload->>'export_id' = $1::text",
        Some(id_uuid),
    )
    .await;
    let _workers = app.workers();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let export = app.get_json(&owner.token, &path).await;
        if export["state"] != "running" && export["state"] != "queued" {
            break export;
        }
        assert!(Instant::now() < deadline, "{export}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["row_count"], ROWS);
    let attempts = app
        .count_rows(
            "SELECT attempts::bigint AS n FROM exports WHERE id = $1",
            Some(id_uuid),
        )
        .await;
    assert_eq!(attempts, 2);

    // One object, holding every row once (the header and one line per row).
    let published: Vec<_> = files_under(&app.storage_root())
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".csv"))
        .collect();
    assert_eq!(published.len(), 1, "{published:?}");
    let text = std::fs::read_to_string(&published[0]).expect("the file");
    assert_eq!(text.matches("\r\n").count(), ROWS as usize + 1);
}
