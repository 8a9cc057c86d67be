//! The uploads domain end to end, one binary: the whole app on a free port over real
//! PostgreSQL and Redis, files in a local folder of the test's own or a bucket of its own
//! on the S3-compatible test server, and the workers that process them.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use keel_queue::Workers;
use keel_testing::{TestApp, User, eventually, user};
use serde_json::Value;
use std::time::Duration;

#[path = "uploads/ai.rs"]
mod ai;
#[path = "uploads/direct.rs"]
mod direct;
#[path = "uploads/files.rs"]
mod files;
#[path = "uploads/idempotency.rs"]
mod idempotency;
#[path = "uploads/limits.rs"]
mod limits;
#[path = "uploads/processing.rs"]
mod processing;
#[path = "uploads/resumable.rs"]
mod resumable;
#[path = "uploads/streamed.rs"]
mod streamed;

/// The app, its workers, and a user (owner of a fresh organization).
struct Setup {
    app: TestApp,
    _workers: Workers,
    owner: User,
}

async fn setup(vars: &[(&str, &str)]) -> Setup {
    let app = TestApp::spawn(vars).await;
    let workers = app.workers();
    let owner = user(
        &app,
        &format!("{}@example.com", uuid::Uuid::new_v4().simple()),
    )
    .await;
    Setup {
        app,
        _workers: workers,
        owner,
    }
}

impl Setup {
    fn uploads(&self) -> String {
        format!("/api/v1/orgs/{}/uploads", self.owner.org_id)
    }

    /// `POST .../uploads?name=` with `body` as `content_type`.
    async fn upload(
        &self,
        name: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(&self.uploads()))
            .query(&[("name", name)])
            .bearer_auth(&self.owner.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload")
    }

    /// Uploads and expects 201; the upload.
    async fn uploaded(
        &self,
        name: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Value {
        let res = self.upload(name, content_type, body).await;
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        res.json().await.expect("json")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.app
            .authed(&self.owner.token, reqwest::Method::GET, path)
            .await
    }

    /// Waits for processing to end; the upload as it ended.
    async fn settled(&self, id: &str) -> Value {
        let path = format!("{}/{id}", self.uploads());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let upload = self.app.get_json(&self.owner.token, &path).await;
            if !matches!(upload["state"].as_str(), Some("processing" | "receiving")) {
                return upload;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still processing: {upload}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Width and height of upload `id`'s thumbnail, served as a PNG.
    async fn thumbnail_size(&self, id: &str) -> (u32, u32) {
        let thumb = self
            .get(&format!("{}/{id}/thumbnail", self.uploads()))
            .await;
        assert_eq!(thumb.status(), 200);
        assert_eq!(thumb.headers()["content-type"], "image/png");
        let bytes = thumb.bytes().await.expect("body");
        let decoded = image::load_from_memory(&bytes).expect("a PNG thumbnail");
        (decoded.width(), decoded.height())
    }

    async fn rows(&self) -> i64 {
        self.app
            .count_rows(
                "SELECT count(*) AS n FROM uploads WHERE org_id = $1",
                Some(self.owner.org_id),
            )
            .await
    }

    /// Every file under the local storage folder (staging files included).
    fn files(&self) -> Vec<std::path::PathBuf> {
        keel_testing::files_under(&self.app.storage_root())
    }
}

/// A valid PNG of `w`×`h` pixels.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
