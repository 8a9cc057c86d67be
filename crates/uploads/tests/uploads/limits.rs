//! Size caps and quotas enforced while the bytes stream, and nothing left behind by a
//! refused or broken-off upload: no row, no object, no staging file.

use super::*;
use tokio::io::AsyncWriteExt;

/// A body of `len` bytes sent in 64 KiB chunks without a `Content-Length` (chunked), so
/// only counting while streaming can stop it.
fn unannounced(len: usize) -> reqwest::Body {
    let chunks = (0..len.div_ceil(65536)).map(move |i| {
        let n = (len - i * 65536).min(65536);
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; n]))
    });
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_cap_is_413_and_nothing_is_kept() {
    let s = setup(&[("KEEL__UPLOADS__MAX_SIZE_BYTES", "6000000")]).await;
    // Announced too big: refused before a byte is read.
    let res = s
        .upload("big.txt", "text/plain", vec![b'a'; 6_000_001])
        .await;
    let body = keel_testing::assert_error(res, 413, "payload_too_large", None).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("6000000"),
        "{body}"
    );
    // Not announced: refused once the 6,000,001st byte arrives, after a part was written.
    let res = s
        .upload("big.txt", "text/plain", unannounced(7_000_000))
        .await;
    keel_testing::assert_error(res, 413, "payload_too_large", None).await;
    assert_eq!(s.rows().await, 0);
    eventually("no file left", Duration::from_secs(5), || async {
        s.files().is_empty()
    })
    .await;
    // Exactly the cap is fine.
    let ok = s
        .upload("fits.txt", "text/plain", unannounced(6_000_000))
        .await;
    assert_eq!(ok.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organization_quota_counts_live_uploads() {
    let s = setup(&[("KEEL__UPLOADS__ORG_QUOTA_BYTES", "1000")]).await;
    let first = s.uploaded("a.txt", "text/plain", vec![b'a'; 600]).await;
    let res = s.upload("b.txt", "text/plain", unannounced(600)).await;
    let body = keel_testing::assert_error(res, 413, "payload_too_large", None).await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("quota"),
        "{body}"
    );
    assert_eq!(s.rows().await, 1);
    // Deleting gives the bytes back.
    let path = format!("{}/{}", s.uploads(), first["id"].as_str().unwrap());
    assert_eq!(
        s.app
            .authed(&s.owner.token, reqwest::Method::DELETE, &path)
            .await
            .status(),
        204
    );
    assert_eq!(
        s.upload("b.txt", "text/plain", vec![b'b'; 600])
            .await
            .status(),
        201
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_away_mid_body_leaves_nothing() {
    let s = setup(&[]).await;
    let addr = s.app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {}?name=cut.bin HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 50000000\r\n\r\n",
        s.uploads(),
        s.owner.token
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    // More than one storage part (5 MiB), so something was staged.
    let chunk = vec![7u8; 1024 * 1024];
    for _ in 0..8 {
        socket.write_all(&chunk).await.unwrap();
    }
    socket.flush().await.unwrap();
    eventually(
        "the upload to be staged",
        Duration::from_secs(10),
        || async { !s.files().is_empty() },
    )
    .await;
    drop(socket);
    eventually(
        "the staged bytes to be removed",
        Duration::from_secs(10),
        || async { s.files().is_empty() },
    )
    .await;
    assert_eq!(s.rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_content_type_or_an_empty_file_is_422() {
    let s = setup(&[]).await;
    let res = s.upload("x", "not a type", "x").await;
    keel_testing::assert_error(res, 422, "validation_failed", Some("content_type")).await;
    let res = s.upload("x", "text/plain", "").await;
    keel_testing::assert_error(res, 422, "validation_failed", Some("body")).await;
    let res = s.upload("x", "text/plain", unannounced(0)).await;
    keel_testing::assert_error(res, 422, "validation_failed", Some("body")).await;
    assert_eq!(s.rows().await, 0);
}
