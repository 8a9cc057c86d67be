//! Uploads across process lifetimes: a tus upload interrupted halfway resumes on a
//! restarted `keel serve`, because its offset and chunks live in Postgres and storage,
//! not in the process.

use super::{serve_process, spawn_app};
use keel_testing::{tus_upload, user};
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn a_tus_upload_resumes_on_a_restarted_server() {
    let app = spawn_app(&[]).await;
    let _workers = app.workers();
    let owner = user(&app, "uploader@example.com").await;
    let root = app.storage_root();
    let root = root.to_string_lossy();
    let env = [("KEEL__STORAGE__LOCAL_ROOT", root.as_ref())];
    let data: Vec<u8> = (0..4 * 1024 * 1024 + 3)
        .map(|i| (i * 13 % 241) as u8)
        .collect();
    let file = std::env::temp_dir().join(format!("keel-tus-{}.bin", uuid::Uuid::new_v4()));
    std::fs::write(&file, &data).expect("write");
    let path = format!("/api/v1/orgs/{}/uploads/resumable", owner.org_id);
    let upload = |base: String, stop_at: Option<usize>, url: Option<String>| {
        let (token, file, path) = (owner.token.clone(), file.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            tus_upload(
                &format!("{base}{path}"),
                &token,
                &file,
                1 << 20,
                stop_at,
                url.as_deref(),
            )
        })
    };

    let (mut first, base) = serve_process(&app.database_url(), &env).await;
    let half = upload(base, Some(2 << 20), None).await.expect("join");
    assert_eq!(half["offset"], 2 << 20);
    first.kill();

    let (_second, base) = serve_process(&app.database_url(), &env).await;
    let url = half["url"].as_str().expect("url");
    let upload_path = url.splitn(4, '/').nth(3).expect("path");
    let rest = upload(base.clone(), None, Some(format!("{base}/{upload_path}")))
        .await
        .expect("join");
    assert_eq!(rest["offset"], data.len());
    std::fs::remove_file(&file).ok();

    let id = url.rsplit('/').next().expect("id");
    let deadline = Instant::now() + Duration::from_secs(20);
    let done: Value = loop {
        let upload = app
            .get_json(
                &owner.token,
                &format!("/api/v1/orgs/{}/uploads/{id}", owner.org_id),
            )
            .await;
        if upload["state"] != "receiving" && upload["state"] != "processing" {
            break upload;
        }
        assert!(Instant::now() < deadline, "{upload}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["size_bytes"], data.len());
}
