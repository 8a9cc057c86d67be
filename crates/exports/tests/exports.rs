//! The exports domain end to end, one binary: the whole app on a free port over real
//! PostgreSQL and Redis, files in a local folder of the test's own or a bucket of its own
//! on the S3-compatible test server, and the workers that produce them.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use keel_queue::Workers;
use keel_testing::{TestApp, User, eventually, user};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

#[path = "exports/files.rs"]
mod files;
#[path = "exports/lifecycle.rs"]
mod lifecycle;
#[path = "exports/links.rs"]
mod links;
#[path = "exports/requests.rs"]
mod requests;

/// The app, its workers (when started), and a user (owner of a fresh organization).
struct Setup {
    app: TestApp,
    workers: Option<Workers>,
    owner: User,
}

async fn setup(vars: &[(&str, &str)]) -> Setup {
    let mut s = idle(vars).await;
    s.workers = Some(s.app.workers());
    s
}

/// [`setup`] without workers: exports stay queued until [`Setup::start_workers`].
async fn idle(vars: &[(&str, &str)]) -> Setup {
    let app = TestApp::spawn(vars).await;
    let owner = user(&app, &format!("{}@example.com", Uuid::new_v4().simple())).await;
    Setup {
        app,
        workers: None,
        owner,
    }
}

/// When seeded rows were created: a fixed day, so exports can select exactly them.
const SEED_DAY: &str = "2026-01-01T00:00:00Z";
const SEED_NEXT_DAY: &str = "2026-01-02T00:00:00Z";

impl Setup {
    fn start_workers(&mut self) {
        self.workers = Some(self.app.workers());
    }

    fn exports(&self) -> String {
        format!("/api/v1/orgs/{}/exports", self.owner.org_id)
    }

    /// `POST .../exports` with `body` as the owner.
    async fn request(&self, body: Value) -> reqwest::Response {
        self.app
            .authed_json(
                &self.owner.token,
                reqwest::Method::POST,
                &self.exports(),
                body,
            )
            .await
    }

    /// Requests and expects 202; the export.
    async fn requested(&self, body: Value) -> Value {
        let res = self.request(body).await;
        assert_eq!(res.status(), 202, "request an export");
        res.json().await.expect("json")
    }

    async fn get(&self, id: &str) -> Value {
        self.app
            .get_json(&self.owner.token, &format!("{}/{id}", self.exports()))
            .await
    }

    /// Waits until the export has ended; the export.
    async fn finished(&self, id: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let export = self.get(id).await;
            if !matches!(export["state"].as_str(), Some("queued" | "running")) {
                return export;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the export never finished: {export}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests `body`, waits for it to succeed; the export.
    async fn exported(&self, body: Value) -> Value {
        let created = self.requested(body).await;
        let done = self.finished(created["id"].as_str().expect("id")).await;
        assert_eq!(done["state"], "succeeded", "{done}");
        done
    }

    /// `GET .../{id}/download` (not followed); the response.
    async fn download_link(&self, id: &str) -> reqwest::Response {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        client
            .get(self.app.url(&format!("{}/{id}/download", self.exports())))
            .bearer_auth(&self.owner.token)
            .send()
            .await
            .expect("download link")
    }

    /// The signed link of a succeeded export, absolute.
    async fn link(&self, id: &str) -> String {
        let res = self.download_link(id).await;
        assert_eq!(res.status(), 303);
        let location = res
            .headers()
            .get("location")
            .expect("location")
            .to_str()
            .expect("text")
            .to_owned();
        if location.starts_with('/') {
            self.app.url(&location)
        } else {
            location
        }
    }

    /// The file of a succeeded export, through its link.
    async fn file(&self, id: &str) -> Vec<u8> {
        let res = self
            .app
            .client
            .get(self.link(id).await)
            .send()
            .await
            .expect("file");
        assert_eq!(res.status(), 200);
        res.bytes().await.expect("bytes").to_vec()
    }

    /// `n` audit entries of the owner's organization created on [`SEED_DAY`], one
    /// millisecond apart; entry `i` has action `test.row` and details `{"i": i, "pad": ...}`.
    async fn seed_audit(&self, n: u32, pad: usize) {
        let sql = format!(
            "INSERT INTO accounts_audit_events (id, org_id, action, details, created_at) \
             SELECT gen_random_uuid(), $1, 'test.row', jsonb_build_object('i', g, 'pad', repeat('x', {pad})), \
                    '{SEED_DAY}'::timestamptz + g * interval '1 millisecond' \
             FROM generate_series(1, {n}) g"
        );
        self.app.run_sql(&sql, Some(self.owner.org_id)).await;
    }

    /// Every file in the test's local storage folder.
    fn files(&self) -> Vec<std::path::PathBuf> {
        keel_testing::files_under(&self.app.storage_root())
    }
}

/// The body of an export of the seeded audit entries.
fn seeded(format: &str, compress: bool) -> Value {
    json!({
        "source": "audit_events",
        "format": format,
        "compress": compress,
        "filters": {"created_after": SEED_DAY, "created_before": SEED_NEXT_DAY, "action": "test.row"},
    })
}
