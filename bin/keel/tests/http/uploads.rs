//! Uploads across process lifetimes: a tus upload interrupted halfway resumes on a
//! restarted `keel serve`, because its offset and chunks live in Postgres and storage,
//! not in the process.

use super::{serve_process, spawn_app};
use futures::StreamExt;
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

/// VmHWM (peak resident memory) of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

const GIB: usize = 1 << 30;

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_streams_in_bounded_memory_and_survives_a_killed_worker() {
    use sha2::Digest;
    let app = spawn_app(&[]).await;
    let owner = user(&app, "big@example.com").await;
    let root = app.storage_root();
    let root = root.to_string_lossy();
    let env = [("KEEL__STORAGE__LOCAL_ROOT", root.as_ref())];
    let (server, base) = serve_process(&app.database_url(), &env).await;
    let before = peak_rss(server.pid());

    // 1 GiB in 1 MiB chunks of a pattern, hashed as it is sent, never held whole.
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(sha2::Sha256::new()));
    let sent = hasher.clone();
    let chunks = futures::stream::iter(0..GIB / (1 << 20)).map(move |i| {
        let chunk: Vec<u8> = (0..1 << 20).map(|j| ((i * 31 + j) % 251) as u8).collect();
        sent.lock().expect("lock").update(&chunk);
        Ok::<_, std::io::Error>(chunk)
    });
    let res = app
        .client
        .post(format!(
            "{base}/api/v1/orgs/{}/uploads?name=big.bin",
            owner.org_id
        ))
        .bearer_auth(&owner.token)
        .header("content-type", "application/octet-stream")
        .header("content-length", GIB.to_string())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    let grew = peak_rss(server.pid()).saturating_sub(before);
    assert!(
        grew < 64 << 20,
        "the server's peak RSS grew by {} MiB",
        grew >> 20
    );
    let expected = hex::encode(hasher.lock().expect("lock").clone().finalize());
    let id: uuid::Uuid = created["id"].as_str().expect("id").parse().expect("uuid");

    // A worker starts processing it (hashing a gigabyte takes a while) and is killed.
    let (mut worker, _) =
        keel_testing::work_process(env!("CARGO_BIN_EXE_keel"), &app.database_url(), &env).await;
    let running = "SELECT count(*) AS n FROM queue_jobs WHERE kind = 'uploads.process' AND state = 'running' \
                   AND payload->>'upload_id' = $1::text";
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.count_rows(running, Some(id)).await == 0 {
        assert!(Instant::now() < deadline, "processing never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill();
    let upload_path = format!("/api/v1/orgs/{}/uploads/{id}", owner.org_id);
    assert_eq!(
        app.get_json(&owner.token, &upload_path).await["state"],
        "processing"
    );

    // Its lease runs out (the attempt's timeout: aged here rather than waited for), and
    // another worker takes the job over.
    app.run_sql(
        "UPDATE queue_jobs SET lease_until = now() - interval '1 second' \
         WHERE kind = 'uploads.process' AND payload->>'upload_id' = $1::text",
        Some(id),
    )
    .await;
    let _workers = app.workers();
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let upload = app.get_json(&owner.token, &upload_path).await;
        if upload["state"] != "processing" {
            break upload;
        }
        assert!(Instant::now() < deadline, "{upload}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "ready", "{done}");
    assert_eq!(done["sha256"], expected.as_str());
    assert_eq!(done["size_bytes"], GIB);
    drop(server);
}
