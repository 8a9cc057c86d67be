//! What processing decides: the bytes' real type against the label and the allow-list,
//! images within decoder limits, and the events that announce the outcome.

use super::*;

/// A PNG whose header claims `w`×`h` pixels over a few bytes of data: decoding it would
/// need `w × h × 3` bytes.
fn bomb(w: u32, h: u32) -> Vec<u8> {
    let mut png = png(1, 1);
    // IHDR's width and height are bytes 16..24; its CRC (29..33) must match them.
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn events(s: &Setup, event_type: &str) -> i64 {
    s.app
        .count_rows(
            &format!("SELECT count(*) AS n FROM notifications_events WHERE org_id = $1 AND event_type = '{event_type}'"),
            Some(s.owner.org_id),
        )
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pdf_labelled_as_png_is_rejected_and_its_bytes_removed() {
    let s = setup(&[]).await;
    let created = s.uploaded("cat.png", "image/png", PDF.to_vec()).await;
    let done = s.settled(created["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "rejected", "{done}");
    assert_eq!(done["detected_type"], "application/pdf");
    assert_eq!(
        done["reason"],
        "declared as image/png but the content is application/pdf"
    );
    let content = s
        .get(&format!(
            "{}/{}/content",
            s.uploads(),
            done["id"].as_str().unwrap()
        ))
        .await;
    keel_testing::assert_error(content, 409, "conflict", None).await;
    eventually(
        "the rejected bytes to be removed",
        Duration::from_secs(10),
        || async { s.files().is_empty() },
    )
    .await;
    assert_eq!(events(&s, "upload.rejected").await, 1);
    // The uploader is told in the app.
    eventually("the in-app notification", Duration::from_secs(10), || {
        s.app.notified(&s.owner.token, "upload.rejected")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_accept_policy_the_bytes_type_wins() {
    let s = setup(&[("KEEL__UPLOADS__TYPE_MISMATCH", "accept")]).await;
    let created = s.uploaded("cat.png", "image/png", PDF.to_vec()).await;
    let done = s.settled(created["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "ready", "{done}");
    let content = s
        .get(&format!(
            "{}/{}/content",
            s.uploads(),
            done["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(content.headers()["content-type"], "application/pdf");
    assert_eq!(events(&s, "upload.processed").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_allow_list_refuses_other_types() {
    let s = setup(&[("KEEL__UPLOADS__ALLOWED_TYPES", "image/*")]).await;
    let text = s.uploaded("notes.txt", "text/plain", "hello").await;
    let done = s.settled(text["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "rejected");
    assert_eq!(done["reason"], "text/plain files are not accepted here");
    let image = s.uploaded("dot.png", "image/png", png(2, 2)).await;
    assert_eq!(
        s.settled(image["id"].as_str().unwrap()).await["state"],
        "ready"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decompression_bomb_is_rejected_and_the_worker_carries_on() {
    let s = setup(&[]).await;
    let created = s
        .uploaded("bomb.png", "image/png", bomb(100_000, 100_000))
        .await;
    let done = s.settled(created["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "rejected", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("limit"), "{reason}");
    // Within the dimensions, past the memory limit.
    let wide = s
        .uploaded("wide.png", "image/png", bomb(16_000, 16_000))
        .await;
    let done = s.settled(wide["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "rejected", "{done}");
    // The same worker goes on to the next file.
    let fine = s.uploaded("fine.png", "image/png", png(300, 200)).await;
    let done = s.settled(fine["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["results"]["image"]["width"], 300);
    assert_eq!(
        s.thumbnail_size(done["id"].as_str().unwrap()).await,
        (256, 171)
    );
}
