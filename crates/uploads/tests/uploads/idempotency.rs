//! `Idempotency-Key` on uploads, whose bodies are streamed rather than buffered: a retry
//! of the same file replays the first answer (one upload, one object), a different file
//! under the same key is refused — the body compared by a digest taken while streaming.

use super::*;

async fn upload_with_key(s: &Setup, key: &str, body: Vec<u8>) -> reqwest::Response {
    s.app
        .client
        .post(s.app.url(&s.uploads()))
        .query(&[("name", "big.bin")])
        .bearer_auth(&s.owner.token)
        .header("content-type", "application/octet-stream")
        .header("idempotency-key", key)
        .body(body)
        .send()
        .await
        .expect("upload")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_upload_is_replayed_and_another_file_under_its_key_refused() {
    let s = setup(&[]).await;
    // Well past the 1 MiB the middleware would buffer.
    let body: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 199) as u8).collect();
    let first = upload_with_key(&s, "upload-1", body.clone()).await;
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = first.json().await.unwrap();

    let retry = upload_with_key(&s, "upload-1", body.clone()).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["location"].to_str().unwrap(), location);
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], created["id"]);
    assert_eq!(s.rows().await, 1);

    let mut other = body.clone();
    other[2 * 1024 * 1024] ^= 1;
    let res = upload_with_key(&s, "upload-1", other).await;
    keel_testing::assert_error(res, 422, "idempotency_key_reused", None).await;
    assert_eq!(s.rows().await, 1);
    s.settled(created["id"].as_str().unwrap()).await;
    assert_eq!(s.files().len(), 1, "one object: {:?}", s.files());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_multipart_upload_is_replayed() {
    let s = setup(&[]).await;
    // A retry sends the same bytes, boundary included (a client retries the serialized
    // request), with a field after the file part.
    let boundary = "keel-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"z.txt\"\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'z', 2 * 1024 * 1024));
    body.extend(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\n\
             a field after the file\r\n--{boundary}--\r\n"
        )
        .into_bytes(),
    );
    let send = |body: Vec<u8>| async {
        s.app
            .client
            .post(s.app.url(&s.uploads()))
            .bearer_auth(&s.owner.token)
            .header("idempotency-key", "form-1")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload")
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), 201);
    let created: Value = first.json().await.unwrap();
    assert_eq!(created["size_bytes"], 2 * 1024 * 1024);
    let retry = send(body.clone()).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let replayed: Value = retry.json().await.unwrap();
    assert_eq!(replayed["id"], created["id"]);
    // The field after the file is part of the fingerprint too.
    let changed = String::from_utf8_lossy(&body).replace("a field after", "b field after");
    let res = send(changed.into_bytes()).await;
    keel_testing::assert_error(res, 422, "idempotency_key_reused", None).await;
    assert_eq!(s.rows().await, 1);
}
