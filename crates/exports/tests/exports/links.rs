//! Download links: Keel's own signed route (ranges, tampering, expiry; key rotation is
//! covered by the signer's unit tests) and, on S3, a multipart object behind a presigned URL.

use super::*;
use keel_testing::error_body;

/// A small succeeded export of the seeded rows; its id.
async fn small_export(s: &Setup) -> String {
    s.seed_audit(50, 0).await;
    let done = s.exported(seeded("csv", false)).await;
    done["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_link_serves_the_file_and_its_ranges() {
    let s = setup(&[]).await;
    let id = small_export(&s).await;
    let res = s.download_link(&id).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let location = res.headers()["location"].to_str().expect("text").to_owned();
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["url"], location.as_str());
    let expires: chrono::DateTime<chrono::Utc> = body["expires_at"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("time");
    let lifetime = expires - chrono::Utc::now();
    assert!(lifetime <= chrono::Duration::minutes(15) && lifetime > chrono::Duration::minutes(14));

    // The link needs no credentials.
    let whole = s
        .app
        .client
        .get(s.app.url(&location))
        .send()
        .await
        .expect("get");
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .expect("text");
    assert!(
        disposition.starts_with("attachment; filename=\"audit_events-"),
        "{disposition}"
    );
    let bytes = whole.bytes().await.expect("bytes");
    let part = s
        .app
        .client
        .get(s.app.url(&location))
        .header("range", "bytes=10-19")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(part.bytes().await.expect("bytes"), bytes.slice(10..20));
    let past = s
        .app
        .client
        .get(s.app.url(&location))
        .header("range", format!("bytes={}-", bytes.len() + 5))
        .send()
        .await
        .expect("range");
    error_body(past, 416, "range_not_satisfiable").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_expired_or_retired_link_is_403() {
    let key_a = "a:0123456789abcdef0123456789abcdef";
    let s = setup(&[
        ("KEEL__EXPORTS__LINK_EXPIRY_SECS", "3"),
        ("KEEL__EXPORTS__LINK_KEYS", key_a),
    ])
    .await;
    let id = small_export(&s).await;
    let link = s.link(&id).await;
    let client = &s.app.client;
    let get = |url: String| async move { client.get(url).send().await.expect("get") };
    assert_eq!(get(link.clone()).await.status(), 200);

    let (path, query) = link.split_once('?').expect("a query");
    let other_org = Uuid::now_v7().to_string();
    let tampered = [
        // Another signature, another expiry, another key id, another export or org.
        link.replace("signature=", "signature=A"),
        link.replace("expires=", "expires=9"),
        link.replace("key=a", "key=b"),
        format!("{}?{query}", path.replace(&id, &Uuid::now_v7().to_string())),
        format!(
            "{}?{query}",
            path.replace(&s.owner.org_id.to_string(), &other_org)
        ),
    ];
    for url in tampered {
        let error = error_body(get(url.clone()).await, 403, "forbidden").await;
        assert!(error["error"]["message"].is_string(), "{url}");
    }
    // A link with its signature cut off is as good as a tampered one.
    error_body(get(path.to_owned()).await, 403, "forbidden").await;
    let partial = format!("{path}?expires=1&key=a");
    error_body(get(partial).await, 403, "forbidden").await;

    // Expired.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let error = error_body(get(link).await, 403, "forbidden").await;
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("expired"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_s3_the_file_is_a_multipart_object_behind_a_presigned_link() {
    let bucket = keel_testing::S3Bucket::new().await;
    let s = setup(&bucket.vars()).await;
    // About 12 MiB of CSV: three parts of the streamed writer.
    s.seed_audit(40_000, 300).await;
    let done = s.exported(seeded("csv", false)).await;
    assert!(
        done["size_bytes"].as_i64().expect("size") > 10 << 20,
        "{done}"
    );
    let id = done["id"].as_str().expect("id");
    let link = s.link(id).await;
    assert!(link.starts_with(&bucket.endpoint), "{link}");
    assert!(link.contains("X-Amz-Signature"), "{link}");
    assert!(link.contains("response-content-disposition"), "{link}");
    let res = reqwest::get(&link).await.expect("presigned get");
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.expect("bytes");
    use sha2::Digest as _;
    assert_eq!(done["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    let rows = csv::Reader::from_reader(bytes.as_ref()).records().count();
    assert_eq!(rows, 40_000);
}
