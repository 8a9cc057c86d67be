//! Streamed uploads (raw body and multipart form) and reading them back.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_raw_upload_is_stored_processed_and_served() {
    let s = setup(&[]).await;
    let body = b"name,qty\nbolt,3\nnut,\"5\"\n".to_vec();
    let res = s.upload("parts.csv", "text/csv", body.clone()).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["state"], "processing");
    assert_eq!(created["method"], "streamed");
    assert_eq!(created["file_name"], "parts.csv");
    assert_eq!(created["size_bytes"], body.len());
    let id = created["id"].as_str().unwrap();
    assert!(location.ends_with(id), "{location}");

    let done = s.settled(id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["detected_type"], "text/csv");
    assert_eq!(done["results"]["table"]["rows"], 3);
    assert_eq!(done["results"]["table"]["columns"], 2);
    let sha = done["sha256"].as_str().unwrap();
    assert_eq!(sha, hex_sha256(&body));

    let content = s.get(&format!("{}/{id}/content", s.uploads())).await;
    assert_eq!(content.status(), 200);
    let h = content.headers();
    assert_eq!(h["content-type"], "text/csv");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["etag"].to_str().unwrap(), format!("\"{sha}\""));
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"parts.csv\"")
    );
    assert_eq!(content.bytes().await.unwrap().as_ref(), body.as_slice());

    // Ranges, and a tag the client already has.
    let ranged = s
        .app
        .client
        .get(s.app.url(&format!("{}/{id}/content", s.uploads())))
        .bearer_auth(&s.owner.token)
        .header("range", "bytes=5-8")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 5-8/{}", body.len()).as_str()
    );
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &body[5..9]);
    let past = s
        .app
        .client
        .get(s.app.url(&format!("{}/{id}/content", s.uploads())))
        .bearer_auth(&s.owner.token)
        .header("range", "bytes=1000-")
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    let huge = s
        .app
        .client
        .get(s.app.url(&format!("{}/{id}/content", s.uploads())))
        .bearer_auth(&s.owner.token)
        .header("range", "bytes=3-18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 206);
    assert_eq!(huge.bytes().await.unwrap().as_ref(), &body[3..]);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{}", body.len()).as_str()
    );
    let cached = s
        .app
        .client
        .get(s.app.url(&format!("{}/{id}/content", s.uploads())))
        .bearer_auth(&s.owner.token)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    // Listed, newest first, and filtered.
    let list = s
        .app
        .get_json(
            &s.owner.token,
            &format!("{}?state=ready&type=text/csv", s.uploads()),
        )
        .await;
    assert_eq!(list["items"][0]["id"], id);
    let none = s
        .app
        .get_json(&s.owner.token, &format!("{}?state=rejected", s.uploads()))
        .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multipart_form_upload_takes_the_file_part() {
    let s = setup(&[]).await;
    let form = reqwest::multipart::Form::new()
        .text("note", "ignored")
        .part(
            "file",
            reqwest::multipart::Part::bytes(png(40, 30))
                .file_name("dir/photo.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let res = s
        .app
        .client
        .post(s.app.url(&s.uploads()))
        .bearer_auth(&s.owner.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["file_name"], "photo.png");
    assert_eq!(created["declared_type"], "image/png");
    let done = s.settled(created["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["results"]["image"]["width"], 40);
    assert_eq!(done["results"]["image"]["height"], 30);

    assert_eq!(
        s.thumbnail_size(done["id"].as_str().unwrap()).await,
        (40, 30),
        "smaller than the thumbnail size: kept"
    );

    let empty_form = reqwest::multipart::Form::new().text("note", "no file");
    let res = s
        .app
        .client
        .post(s.app.url(&s.uploads()))
        .bearer_auth(&s.owner.token)
        .multipart(empty_form)
        .send()
        .await
        .unwrap();
    keel_testing::assert_error(res, 415, "unsupported_media_type", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_file_name_is_stored_and_served_safely() {
    let s = setup(&[]).await;
    let hostile = format!("../../etc/{}\u{7}\r\n\u{202E}gnp.exe", "x".repeat(300));
    let created = s.uploaded(&hostile, "text/plain", "hello").await;
    let name = created["file_name"].as_str().unwrap();
    assert!(name.len() <= 255, "{} bytes", name.len());
    assert!(
        !name.contains('/') && !name.contains("..") && !name.chars().any(char::is_control),
        "{name:?}"
    );
    assert!(!name.contains('\u{202E}'));
    assert!(
        name.ends_with("x.exe"),
        "cut to 255 bytes, keeping the extension: {name}"
    );
    let id = created["id"].as_str().unwrap();
    s.settled(id).await;
    let content = s.get(&format!("{}/{id}/content", s.uploads())).await;
    let disposition = content.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(!disposition.contains(".."), "{disposition}");
    // Storage keys never carry the name.
    for file in s.files() {
        assert!(!file.to_string_lossy().contains("gnp"), "{file:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_removes_the_row_at_once_and_the_objects_after_commit() {
    let s = setup(&[]).await;
    let created = s.uploaded("a.png", "image/png", png(8, 8)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(s.settled(id).await["state"], "ready");
    assert_eq!(
        s.files().len(),
        2,
        "original and thumbnail: {:?}",
        s.files()
    );
    let path = format!("{}/{id}", s.uploads());
    let res = s
        .app
        .authed(&s.owner.token, reqwest::Method::DELETE, &path)
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(s.get(&path).await.status(), 404);
    assert_eq!(s.get(&format!("{path}/content")).await.status(), 404);
    eventually(
        "the objects to be deleted",
        Duration::from_secs(10),
        || async { s.files().is_empty() },
    )
    .await;
    assert_eq!(s.rows().await, 0);
    assert_eq!(
        s.app
            .authed(&s.owner.token, reqwest::Method::DELETE, &path)
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_backend_stores_and_serves_the_same_way() {
    let bucket = keel_testing::S3Bucket::new().await;
    let s = setup(&bucket.vars()).await;
    let body: Vec<u8> = (0..11 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    let created = s
        .uploaded("blob.bin", "application/octet-stream", body.clone())
        .await;
    let id = created["id"].as_str().unwrap();
    let done = s.settled(id).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["sha256"].as_str().unwrap(), hex_sha256(&body));
    let ranged = s
        .app
        .client
        .get(s.app.url(&format!("{}/{id}/content", s.uploads())))
        .bearer_auth(&s.owner.token)
        .header("range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.bytes().await.unwrap().as_ref(),
        &body[body.len() - 10..]
    );
    let whole = s.get(&format!("{}/{id}/content", s.uploads())).await;
    assert_eq!(whole.bytes().await.unwrap().len(), body.len());
}

pub(super) fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
