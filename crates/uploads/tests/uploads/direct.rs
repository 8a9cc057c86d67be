//! Direct uploads to S3 through presigned URLs, and the sweeper that removes what is
//! never finished and what no row accounts for.

use super::*;
use serde_json::json;

async fn start(s: &Setup, name: &str, content_type: &str, size: usize) -> reqwest::Response {
    s.app
        .authed_json(
            &s.owner.token,
            reqwest::Method::POST,
            &format!("{}/direct", s.uploads()),
            json!({"file_name": name, "content_type": content_type, "size_bytes": size}),
        )
        .await
}

async fn put(direct: &Value, body: Vec<u8>) -> reqwest::Response {
    let mut req = reqwest::Client::new().put(direct["url"].as_str().expect("url"));
    for (name, value) in direct["headers"].as_object().expect("headers") {
        req = req.header(name, value.as_str().expect("a header value"));
    }
    req.body(body).send().await.expect("PUT")
}

async fn complete(s: &Setup, id: &str) -> reqwest::Response {
    s.app
        .authed(
            &s.owner.token,
            reqwest::Method::POST,
            &format!("{}/{id}/complete", s.uploads()),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_upload_goes_to_the_bucket_and_is_processed_once_completed() {
    let bucket = keel_testing::S3Bucket::new().await;
    let s = setup(&bucket.vars()).await;
    let body = png(64, 48);
    let res = start(&s, "direct.png", "image/png", body.len()).await;
    assert_eq!(res.status(), 201);
    let direct: Value = res.json().await.unwrap();
    assert_eq!(direct["upload"]["state"], "receiving");
    assert_eq!(direct["upload"]["method"], "direct");
    assert!(direct["upload"]["expires_at"].is_string());
    assert_eq!(direct["method"], "PUT");
    let id = direct["upload"]["id"].as_str().unwrap().to_owned();

    // Not there yet.
    keel_testing::assert_error(complete(&s, &id).await, 409, "conflict", None).await;
    assert!(put(&direct, body.clone()).await.status().is_success());
    let res = complete(&s, &id).await;
    assert_eq!(res.status(), 202);
    let completed: Value = res.json().await.unwrap();
    assert_eq!(completed["state"], "processing");
    let done = s.settled(&id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["results"]["image"]["width"], 64);
    assert_eq!(
        done["sha256"].as_str().unwrap(),
        streamed::hex_sha256(&body)
    );
    // Completing again is harmless, and a PUT to the URL after the check changes
    // nothing: it lands beside the checked file, for the sweeper.
    let again = complete(&s, &id).await;
    assert_eq!(again.status(), 202);
    assert!(
        put(&direct, b"something else entirely".to_vec())
            .await
            .status()
            .is_success()
    );
    let content = s.get(&format!("{}/{id}/content", s.uploads())).await;
    assert_eq!(content.bytes().await.unwrap().as_ref(), body.as_slice());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_direct_upload_of_another_size_is_refused_and_removed() {
    let bucket = keel_testing::S3Bucket::new().await;
    let s = setup(&bucket.vars()).await;
    let res = start(&s, "short.txt", "text/plain", 10).await;
    let direct: Value = res.json().await.unwrap();
    let id = direct["upload"]["id"].as_str().unwrap().to_owned();
    assert!(put(&direct, b"12345".to_vec()).await.status().is_success());
    let body = keel_testing::assert_error(complete(&s, &id).await, 409, "conflict", None).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 bytes"),
        "{body}"
    );
    let upload = s
        .app
        .get_json(&s.owner.token, &format!("{}/{id}", s.uploads()))
        .await;
    assert_eq!(upload["state"], "receiving");
    // The bytes are gone: completing again says nothing was uploaded.
    keel_testing::assert_error(complete(&s, &id).await, 409, "conflict", None).await;

    // Sizes are checked up front too.
    let res = start(&s, "huge.bin", "application/octet-stream", 6_000_000_000).await;
    keel_testing::assert_error(res, 413, "payload_too_large", None).await;
    let res = start(&s, "bad", "nonsense", 3).await;
    keel_testing::assert_error(res, 422, "validation_failed", Some("content_type")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_s3_direct_uploads_are_409() {
    let s = setup(&[]).await;
    let res = start(&s, "a.txt", "text/plain", 3).await;
    keel_testing::assert_error(res, 409, "conflict", None).await;
    assert_eq!(s.rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_removes_expired_uploads_and_objects_without_a_row() {
    let bucket = keel_testing::S3Bucket::new().await;
    let s = setup(&bucket.vars()).await;
    let direct: Value = start(&s, "never.txt", "text/plain", 4)
        .await
        .json()
        .await
        .unwrap();
    let id: uuid::Uuid = direct["upload"]["id"].as_str().unwrap().parse().unwrap();
    assert!(put(&direct, b"half".to_vec()).await.status().is_success());
    let kept = s.uploaded("kept.txt", "text/plain", "kept").await;
    let uploads = &s.app.domains.uploads;

    // Nothing to do yet: the unfinished upload has not expired, every object has a row.
    let swept = uploads.sweep().await.unwrap();
    assert_eq!((swept.orphan_objects, swept.expired_uploads), (0, 0));

    s.app
        .run_sql(
            "UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1",
            Some(id),
        )
        .await;
    let swept = uploads.sweep().await.unwrap();
    assert_eq!(swept.expired_uploads, 1);
    assert_eq!(s.get(&format!("{}/{id}", s.uploads())).await.status(), 404);
    let storage = uploads.storage();
    let key = keel_uploads::keys::original(s.owner.org_id, id);
    eventually(
        "the expired upload's bytes to go",
        Duration::from_secs(10),
        || async { storage.head(&key).await.is_err() },
    )
    .await;
    // The kept upload stays.
    assert_eq!(
        s.settled(kept["id"].as_str().unwrap()).await["state"],
        "ready"
    );
    assert_eq!(s.rows().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_removes_old_objects_without_a_row_and_spares_young_ones() {
    let s = setup(&[]).await;
    let kept = s.uploaded("kept.txt", "text/plain", "kept").await;
    assert_eq!(
        s.settled(kept["id"].as_str().unwrap()).await["state"],
        "ready"
    );
    let root = s.app.storage_root();
    let orphan = |age: &str| {
        let dir = root
            .join(s.owner.org_id.to_string())
            .join("uploads")
            .join(uuid::Uuid::now_v7().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("original");
        std::fs::write(&file, b"left behind").unwrap();
        let touched = std::process::Command::new("touch")
            .args(["-d", age])
            .arg(&file)
            .status()
            .unwrap();
        assert!(touched.success());
        file
    };
    let old = orphan("2 hours ago");
    let young = orphan("1 minute ago");
    // The kept upload's files are old too, but they have a row.
    for file in s.files() {
        if !file.starts_with(old.parent().unwrap()) && !file.starts_with(young.parent().unwrap()) {
            let status = std::process::Command::new("touch")
                .args(["-d", "3 hours ago"])
                .arg(&file)
                .status()
                .unwrap();
            assert!(status.success());
        }
    }
    // An upload whose processing never recorded an outcome is given up on.
    let stuck = s.uploaded("stuck.txt", "text/plain", "stuck").await;
    let stuck_id: uuid::Uuid = stuck["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(s.settled(&stuck_id.to_string()).await["state"], "ready");
    s.app
        .run_sql(
            "UPDATE uploads SET state = 'processing', updated_at = now() - interval '7 hours' WHERE id = $1",
            Some(stuck_id),
        )
        .await;
    let swept = s.app.domains.uploads.sweep().await.unwrap();
    assert_eq!(swept.orphan_objects, 1);
    assert_eq!(swept.stale_processing, 1);
    let stuck = s
        .app
        .get_json(&s.owner.token, &format!("{}/{stuck_id}", s.uploads()))
        .await;
    assert_eq!(stuck["state"], "failed", "{stuck}");
    assert!(!old.exists());
    assert!(young.exists());
    let content = s
        .get(&format!(
            "{}/{}/content",
            s.uploads(),
            kept["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(content.status(), 200);
}
