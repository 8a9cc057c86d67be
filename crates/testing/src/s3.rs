//! The S3-compatible server of the test suite (moto's server mode, started by
//! `deploy/local/services.sh`), with a bucket of the test's own so tests sharing the
//! server never see each other's objects.

/// A fresh, empty bucket on the test S3 server (`KEEL_TEST_S3_URL`, default
/// `http://127.0.0.1:9000`).
#[derive(Debug, Clone)]
pub struct S3Bucket {
    pub endpoint: String,
    pub name: String,
}

impl S3Bucket {
    /// Creates the bucket. The test server takes any credentials.
    pub async fn new() -> Self {
        let endpoint =
            std::env::var("KEEL_TEST_S3_URL").unwrap_or_else(|_| "http://127.0.0.1:9000".into());
        let name = format!("keel-test-{}", uuid::Uuid::new_v4().simple());
        keel_telemetry::install_tls_provider();
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{name}"))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the test S3 server at {endpoint} is not reachable ({e}); run `just services`"
                )
            });
        assert!(
            created.status().is_success(),
            "creating bucket {name}: {}",
            created.status()
        );
        Self { endpoint, name }
    }

    /// The settings that point Keel at this bucket, for `TestApp::spawn`.
    pub fn vars(&self) -> [(&'static str, &str); 7] {
        [
            ("KEEL__STORAGE__BACKEND", "s3"),
            ("KEEL__STORAGE__S3_ENDPOINT", &self.endpoint),
            ("KEEL__STORAGE__S3_BUCKET", &self.name),
            ("KEEL__STORAGE__S3_REGION", "us-east-1"),
            ("KEEL__STORAGE__S3_ACCESS_KEY_ID", "keel-test"),
            ("KEEL__STORAGE__S3_SECRET_ACCESS_KEY", "keel-test-secret"),
            ("KEEL__STORAGE__S3_PATH_STYLE", "true"),
        ]
    }
}
