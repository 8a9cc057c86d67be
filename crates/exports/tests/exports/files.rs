//! What the files hold: every row of the source exactly once, in both formats,
//! compressed or not, with formulas neutralised; and every source the binary offers.

use super::*;
use std::io::Read as _;

/// The seeded audit rows as `(id, i)` in key order, straight from the table.
async fn seeded_rows(s: &Setup) -> Vec<(String, i64)> {
    #[derive(diesel::QueryableByName)]
    struct Seeded {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        i: i64,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = s.app.platform.pool.get().await.expect("conn");
    let rows: Vec<Seeded> = diesel::sql_query(
        "SELECT id::text AS id, (details->>'i')::bigint AS i FROM accounts_audit_events \
         WHERE org_id = $1 AND action = 'test.row' ORDER BY created_at, id",
    )
    .bind::<diesel::sql_types::Uuid, _>(s.owner.org_id)
    .load(&mut conn)
    .await
    .expect("seeded rows");
    rows.into_iter().map(|r| (r.id, r.i)).collect()
}

/// The `(id, i)` of each line of an NDJSON export of seeded audit rows.
fn seeded_lines(ndjson: &[u8]) -> Vec<(String, i64)> {
    ndjson
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let row: Value = serde_json::from_slice(line).expect("a JSON line");
            (
                row["id"].as_str().expect("id").to_owned(),
                row["details"]["i"].as_i64().expect("i"),
            )
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip file");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_100k_row_export_equals_its_source_in_csv_and_ndjson() {
    let s = setup(&[("KEEL__EXPORTS__PROGRESS_EVERY_ROWS", "10000")]).await;
    s.seed_audit(100_000, 0).await;
    let expected = seeded_rows(&s).await;
    assert_eq!(expected.len(), 100_000);

    // CSV, gzip-compressed.
    let done = s.exported(seeded("csv", true)).await;
    assert_eq!(done["row_count"], 100_000);
    assert!(
        done["file_name"]
            .as_str()
            .expect("name")
            .ends_with(".csv.gz")
    );
    let csv = gunzip(&s.file(done["id"].as_str().expect("id")).await);
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "id",
            "created_at",
            "action",
            "actor_user_id",
            "actor_api_key_id",
            "target_id",
            "ip",
            "details"
        ]
    );
    let rows: Vec<(String, i64)> = reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            let details: Value = serde_json::from_str(&r[7]).expect("details JSON");
            assert_eq!(&r[2], "test.row");
            (r[0].to_owned(), details["i"].as_i64().expect("i"))
        })
        .collect();
    assert_eq!(rows.len(), expected.len());
    assert!(rows == expected, "the CSV rows differ from the table's");

    // NDJSON, plain.
    let done = s.exported(seeded("ndjson", false)).await;
    let ndjson = s.file(done["id"].as_str().expect("id")).await;
    let rows = seeded_lines(&ndjson);
    assert!(rows == expected, "the NDJSON rows differ from the table's");
}

#[tokio::test(flavor = "multi_thread")]
async fn formula_looking_values_are_neutralised_in_csv() {
    let s = setup(&[]).await;
    s.app
        .run_sql(
            &format!(
                "INSERT INTO accounts_audit_events (id, org_id, action, ip, details, created_at) VALUES \
                 (gen_random_uuid(), $1, '=HYPERLINK(\"http://evil\")', '+1', '{{}}', '{SEED_DAY}'::timestamptz + interval '1 hour')"
            ),
            Some(s.owner.org_id),
        )
        .await;
    let body = json!({
        "source": "audit_events",
        "filters": {"created_after": SEED_DAY, "created_before": SEED_NEXT_DAY},
    });
    let done = s.exported(body).await;
    let csv = s.file(done["id"].as_str().expect("id")).await;
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let record = reader.records().next().expect("one row").expect("record");
    assert_eq!(&record[2], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(&record[6], "'+1");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_source_exports_its_organization_only() {
    let s = setup(&[]).await;
    let other = user(&s.app, &format!("{}@example.com", Uuid::new_v4().simple())).await;
    // Rows of this organization and of another one, in each source's table.
    for org in [s.owner.org_id, other.org_id] {
        s.app
            .run_sql(
                "INSERT INTO uploads (id, org_id, uploaded_by_user, method, state, file_name, declared_type, size_bytes, object_key) \
                 VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'streamed', 'ready', 'a.txt', 'text/plain', 3, 'k')",
                Some(org),
            )
            .await;
        s.app
            .run_sql(
                "WITH e AS (INSERT INTO notifications_webhook_endpoints (id, org_id, url, description, event_types, secret) \
                   VALUES (gen_random_uuid(), $1, 'https://example.com/hook', '', '{test.nothing}', 'whsec_x') RETURNING id, org_id) \
                 INSERT INTO notifications_webhook_deliveries (id, endpoint_id, org_id, event_type, body, status, attempts) \
                 SELECT gen_random_uuid(), id, org_id, 'export.completed', '{}', 'delivered', 1 FROM e",
                Some(org),
            )
            .await;
    }
    for (source, rows) in [("members", 1), ("uploads", 1), ("webhook_deliveries", 1)] {
        let done = s
            .exported(json!({"source": source, "format": "ndjson"}))
            .await;
        assert_eq!(done["row_count"], rows, "{source}: {done}");
        let file = s.file(done["id"].as_str().expect("id")).await;
        let line: Value =
            serde_json::from_slice(file.split(|b| *b == b'\n').next().expect("a line"))
                .expect("json");
        let own = match source {
            "members" => line["user_id"] == s.owner.user_id.to_string(),
            _ => line["id"].is_string(),
        };
        assert!(own, "{source}: {line}");
    }
    // The filters of a source narrow it.
    let none = s
        .exported(json!({"source": "uploads", "filters": {"state": "rejected"}}))
        .await;
    assert_eq!(none["row_count"], 0);
    let file = s.file(none["id"].as_str().expect("id")).await;
    assert!(
        String::from_utf8(file)
            .expect("utf-8")
            .starts_with("id,created_at,file_name,")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_replica_configured_the_rows_are_read_from_it() {
    // The "replica" is another database of the same schema, holding rows the primary
    // does not: the file can only have them if the job read there.
    let replica = keel_persistence::testing::TestDatabase::new()
        .await
        .expect("replica database");
    let s = setup(&[("KEEL__DATABASE__REPLICA_URL", replica.url())]).await;
    let settings = &s.app.platform.settings.database;
    let pool = keel_persistence::DbPool::with_url(settings, replica.url()).expect("pool");
    let mut conn = pool.get().await.expect("replica connection");
    use diesel_async::RunQueryDsl as _;
    diesel::sql_query("INSERT INTO accounts_organizations (id, name) VALUES ($1, 'Replicated')")
        .bind::<diesel::sql_types::Uuid, _>(s.owner.org_id)
        .execute(&mut conn)
        .await
        .expect("the organization on the replica");
    diesel::sql_query(format!(
        "INSERT INTO accounts_audit_events (id, org_id, action, details, created_at) \
         SELECT gen_random_uuid(), $1, 'test.row', jsonb_build_object('i', g), \
                '{SEED_DAY}'::timestamptz + g * interval '1 millisecond' \
         FROM generate_series(1, 7) g"
    ))
    .bind::<diesel::sql_types::Uuid, _>(s.owner.org_id)
    .execute(&mut conn)
    .await
    .expect("seed the replica");
    let done = s.exported(seeded("ndjson", false)).await;
    assert_eq!(done["row_count"], 7, "{done}");
    let on_primary = s
        .app
        .count_rows(
            "SELECT count(*) AS n FROM accounts_audit_events WHERE org_id = $1 AND action = 'test.row'",
            Some(s.owner.org_id),
        )
        .await;
    assert_eq!(on_primary, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_across_many_read_transactions_and_equal_timestamps_lose_no_row() {
    // Small pages, one-second read transactions, and rows sharing their creation time
    // in runs of 1000: page boundaries fall inside runs of equal timestamps, and the
    // export (thousands of pages: seconds) spans several read transactions.
    let s = setup(&[
        ("KEEL__EXPORTS__BATCH_ROWS", "37"),
        ("KEEL__EXPORTS__MAX_TRANSACTION_SECS", "1"),
    ])
    .await;
    s.app
        .run_sql(
            &format!(
                "INSERT INTO accounts_audit_events (id, org_id, action, details, created_at) \
                 SELECT gen_random_uuid(), $1, 'test.row', jsonb_build_object('i', g), \
                        '{SEED_DAY}'::timestamptz + (g / 1000) * interval '1 second' \
                 FROM generate_series(1, 120000) g"
            ),
            Some(s.owner.org_id),
        )
        .await;
    let expected = seeded_rows(&s).await;
    let done = s.exported(seeded("ndjson", false)).await;
    let file = s.file(done["id"].as_str().expect("id")).await;
    let rows = seeded_lines(&file);
    assert_eq!(rows.len(), 120_000);
    assert!(rows == expected, "the rows differ from the table's");
}
