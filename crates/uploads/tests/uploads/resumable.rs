//! Resumable uploads with the tus protocol: by hand, to check each rule, and with a real
//! tus client (tuspy) interrupted halfway and resumed on another replica.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest;

fn resumable(s: &Setup) -> String {
    format!("{}/resumable", s.uploads())
}

fn tus(s: &Setup, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
    s.app
        .client
        .request(method, url)
        .bearer_auth(&s.owner.token)
        .header("tus-resumable", "1.0.0")
}

async fn create(s: &Setup, length: usize) -> String {
    let res = tus(s, reqwest::Method::POST, &s.app.url(&resumable(s)))
        .header("upload-length", length.to_string())
        .header(
            "upload-metadata",
            format!(
                "filename {},filetype {}",
                STANDARD.encode("notes.csv"),
                STANDARD.encode("text/csv")
            ),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["tus-resumable"], "1.0.0");
    assert_eq!(res.headers()["upload-offset"], "0");
    assert!(res.headers().contains_key("upload-expires"));
    s.app
        .url(res.headers()["location"].to_str().expect("location"))
}

async fn offset(s: &Setup, url: &str) -> String {
    let res = tus(s, reqwest::Method::HEAD, url)
        .send()
        .await
        .expect("head");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.headers()["upload-offset"]
        .to_str()
        .expect("offset")
        .to_owned()
}

async fn patch(
    s: &Setup,
    url: &str,
    at: usize,
    body: &[u8],
    checksum: Option<String>,
) -> reqwest::Response {
    let mut req = tus(s, reqwest::Method::PATCH, url)
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", at.to_string());
    if let Some(checksum) = checksum {
        req = req.header("upload-checksum", checksum);
    }
    req.body(body.to_vec()).send().await.expect("patch")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tus_protocol_step_by_step() {
    let s = setup(&[]).await;
    let options = s
        .app
        .client
        .request(reqwest::Method::OPTIONS, s.app.url(&resumable(&s)))
        .send()
        .await
        .unwrap();
    assert_eq!(options.status(), 204);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    assert_eq!(
        options.headers()["tus-extension"],
        "creation,expiration,checksum,termination"
    );
    assert_eq!(options.headers()["tus-checksum-algorithm"], "sha1,sha256");

    let body = b"a,b\n1,2\n3,4\n".to_vec();
    let url = create(&s, body.len()).await;
    assert_eq!(offset(&s, &url).await, "0");

    // Without the protocol version: 412.
    let res = s
        .app
        .client
        .head(&url)
        .bearer_auth(&s.owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 412);
    assert_eq!(res.headers()["tus-version"], "1.0.0");

    // A chunk whose checksum does not match is dropped.
    let wrong = format!(
        "sha256 {}",
        STANDARD.encode(sha2::Sha256::digest(b"something else"))
    );
    let res = patch(&s, &url, 0, &body[..4], Some(wrong)).await;
    keel_testing::assert_error(res, 460, "checksum_mismatch", None).await;
    assert_eq!(offset(&s, &url).await, "0");

    let sha1 = format!("sha1 {}", STANDARD.encode(sha1::Sha1::digest(&body[..4])));
    let res = patch(&s, &url, 0, &body[..4], Some(sha1)).await;
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["upload-offset"], "4");
    // The wrong offset: 409; the wrong body type: 415; past the length: 413.
    keel_testing::assert_error(
        patch(&s, &url, 0, &body[4..], None).await,
        409,
        "conflict",
        None,
    )
    .await;
    let res = tus(&s, reqwest::Method::PATCH, &url)
        .header("content-type", "application/octet-stream")
        .header("upload-offset", "4")
        .body(body[4..].to_vec())
        .send()
        .await
        .unwrap();
    keel_testing::assert_error(res, 415, "unsupported_media_type", None).await;
    let mut too_long = body[4..].to_vec();
    too_long.push(b'!');
    keel_testing::assert_error(
        patch(&s, &url, 4, &too_long, None).await,
        413,
        "payload_too_large",
        None,
    )
    .await;
    assert_eq!(offset(&s, &url).await, "4");

    // A part some lost request left at the same offset is not on the upload's path.
    let id: uuid::Uuid = url.rsplit('/').next().unwrap().parse().unwrap();
    let stale = keel_uploads::keys::derived_in(
        s.owner.org_id,
        id,
        "parts",
        &format!("{:020}-{:020}", 4, 6),
    );
    s.app
        .domains
        .uploads
        .storage()
        .put(&stale, bytes::Bytes::from_static(b"??"))
        .await
        .unwrap();
    let sha256 = format!(
        "sha256 {}",
        STANDARD.encode(sha2::Sha256::digest(&body[4..]))
    );
    let res = patch(&s, &url, 4, &body[4..], Some(sha256)).await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        res.headers()["upload-offset"],
        body.len().to_string().as_str()
    );

    let id = url.rsplit('/').next().unwrap();
    let done = s.settled(id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["method"], "resumable");
    assert_eq!(done["file_name"], "notes.csv");
    assert_eq!(done["results"]["table"]["rows"], 3);
    assert_eq!(
        done["sha256"].as_str().unwrap(),
        streamed::hex_sha256(&body)
    );
    let content = s.get(&format!("{}/{id}/content", s.uploads())).await;
    assert_eq!(content.bytes().await.unwrap().as_ref(), body.as_slice());
    // Only the original is left: the chunks were joined and removed.
    assert_eq!(s.files().len(), 1, "{:?}", s.files());
}

#[tokio::test(flavor = "multi_thread")]
async fn terminating_a_resumable_upload_removes_it() {
    let s = setup(&[("KEEL__UPLOADS__ORG_QUOTA_BYTES", "100")]).await;
    let url = create(&s, 60).await;
    assert_eq!(patch(&s, &url, 0, &[b'x'; 30], None).await.status(), 204);
    // The declared length is reserved: another 60 bytes do not fit in 100.
    let res = tus(&s, reqwest::Method::POST, &s.app.url(&resumable(&s)))
        .header("upload-length", "60")
        .send()
        .await
        .unwrap();
    keel_testing::assert_error(res, 413, "payload_too_large", None).await;
    // Past its expiry it is gone (410), before the sweeper even removes it.
    let id: uuid::Uuid = url.rsplit('/').next().unwrap().parse().unwrap();
    s.app
        .run_sql(
            "UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1",
            Some(id),
        )
        .await;
    keel_testing::assert_error(
        patch(&s, &url, 30, &[b'x'; 30], None).await,
        410,
        "gone",
        None,
    )
    .await;
    s.app
        .run_sql(
            "UPDATE uploads SET expires_at = now() + interval '1 hour' WHERE id = $1",
            Some(id),
        )
        .await;
    let res = tus(&s, reqwest::Method::DELETE, &url).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = tus(&s, reqwest::Method::HEAD, &url).send().await.unwrap();
    assert_eq!(res.status(), 404);
    eventually(
        "the chunks to be removed",
        Duration::from_secs(10),
        || async { s.files().is_empty() },
    )
    .await;
    let res = tus(&s, reqwest::Method::POST, &s.app.url(&resumable(&s)))
        .header("upload-length", "60")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the quota was given back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_tus_client_resumes_on_another_replica() {
    let s = setup(&[]).await;
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let file = std::env::temp_dir().join(format!("keel-tus-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&file, &data).unwrap();
    let (endpoint, token) = (s.app.url(&resumable(&s)), s.owner.token.clone());
    let upload = |stop_at: Option<usize>, url: Option<String>| {
        let (endpoint, token, file) = (endpoint.clone(), token.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            keel_testing::tus_upload(&endpoint, &token, &file, 524_288, stop_at, url.as_deref())
        })
    };
    let first = upload(Some(1_572_864), None).await.unwrap();
    assert_eq!(first["offset"], 1_572_864);
    let url = first["url"].as_str().unwrap().to_owned();

    // Another replica over the same database and storage picks it up where it stopped.
    let replica = s.app.replica();
    let path = url.splitn(4, '/').nth(3).unwrap();
    let second = upload(None, Some(format!("{replica}/{path}")))
        .await
        .unwrap();
    assert_eq!(second["offset"], data.len());
    std::fs::remove_file(&file).ok();

    let id = url.rsplit('/').next().unwrap();
    let done = s.settled(id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(
        done["sha256"].as_str().unwrap(),
        streamed::hex_sha256(&data)
    );
}
