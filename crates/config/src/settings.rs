//! The typed shape of Keel's configuration. Field names are the TOML keys; see
//! `config/default.toml` for every default and what it is for.

use crate::{ForwardedHeader, MediaTypes, Secret, TrustedProxies};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The value of `KEEL_ENV` the settings were loaded for (`development` when unset).
    #[serde(default = "default_env")]
    pub env: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub cache: CacheSettings,
    pub queue: QueueSettings,
    pub telemetry: TelemetrySettings,
    pub admin: AdminSettings,
    pub mail: MailSettings,
    pub accounts: AccountsSettings,
    pub notifications: NotificationsSettings,
    pub webhooks: WebhookSettings,
    pub storage: StorageSettings,
    pub uploads: UploadsSettings,
    pub ai: AiSettings,
    pub exports: ExportsSettings,
}

fn default_env() -> String {
    "development".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Port of `keel work`'s own health and metrics endpoints.
    pub worker_port: u16,
    /// Port of the health and metrics endpoints of `keel serve` and `keel all`: for
    /// probes and scrapers inside the cluster, never published.
    pub operations_port: u16,
    /// Also serve `/metrics` on the public API port. Metrics name every organization's
    /// webhook hosts, so this stays off wherever the API port is reachable by others.
    pub metrics_on_api_port: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`, on every port.
    pub metrics_token: Secret<String>,
    /// Proxies whose forwarding header names the client (see [`TrustedProxies`]).
    pub trusted_proxies: TrustedProxies,
    /// Which header those proxies write.
    pub forwarded_header: ForwardedHeader,
    pub workers: usize,
    pub json_limit_bytes: usize,
    pub shutdown_timeout_secs: u64,
    /// Requests per `rate_limit_window_secs` per valid credential and per client address
    /// (every other request), counted across all instances in Redis; 0 turns a limit off.
    pub rate_limit_per_credential: u32,
    pub rate_limit_per_ip: u32,
    pub rate_limit_window_secs: u64,
    /// Seconds without a sign of life after which a retry may take over an
    /// `Idempotency-Key` whose first attempt never answered (its process died).
    pub idempotency_in_flight_secs: u64,
}

impl ServerSettings {
    /// The token `/metrics` wants, or `None` when it is open to whoever reaches its port.
    pub fn metrics_token(&self) -> Option<&str> {
        self.metrics_token.non_empty()
    }

    pub fn idempotency_in_flight(&self) -> Duration {
        Duration::from_secs(self.idempotency_in_flight_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Secret<String>,
    pub pool_size: usize,
    pub acquire_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// A read replica for heavy reads (exports); empty = everything reads the primary.
    pub replica_url: Secret<String>,
    /// Send a check query (`SELECT 1`) before handing out a pooled connection. Off: a
    /// connection the server closed is still noticed (its socket is closed) without a
    /// round trip; on: also a socket left half-open by a network device.
    pub verify_on_checkout: bool,
    /// Connections, besides the pool, shared by concurrent one-statement reads (list
    /// pages), which pipeline their statements on them; 0: those reads use the pool.
    pub read_connections: usize,
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct RedisSettings {
    pub url: Secret<String>,
    pub key_prefix: String,
    pub pool_size: usize,
    pub timeout_ms: u64,
}

impl RedisSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct CacheSettings {
    pub l1_capacity: u64,
    pub l1_ttl_ms: u64,
    pub l2_ttl_secs: u64,
    pub ttl_jitter_percent: u8,
}

impl CacheSettings {
    pub fn l1_ttl(&self) -> Duration {
        Duration::from_millis(self.l1_ttl_ms)
    }
    pub fn l2_ttl(&self) -> Duration {
        Duration::from_secs(self.l2_ttl_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct QueueSettings {
    pub concurrency: usize,
    pub default_max_attempts: u32,
    pub default_timeout_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
    pub reconcile_interval_ms: u64,
    pub redeliver_after_secs: u64,
    pub poll_interval_ms: u64,
    pub retain_succeeded_hours: u64,
    pub shutdown_grace_secs: u64,
}

impl QueueSettings {
    pub fn default_timeout(&self) -> Duration {
        Duration::from_secs(self.default_timeout_secs)
    }
    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }
    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs(self.backoff_max_secs)
    }
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_interval_ms)
    }
    pub fn redeliver_after(&self) -> Duration {
        Duration::from_secs(self.redeliver_after_secs)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
    Compact,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Which spans become OpenTelemetry spans (trace context, export), independent of logs.
    pub trace_filter: String,
    pub service_name: String,
    pub otlp_endpoint: String,
    pub otlp_timeout_ms: u64,
    /// Share of new traces exported (0.0–1.0); a caller's sampled `traceparent` is followed.
    pub sample_ratio: f64,
    /// A request that takes longer is logged as a warning; 0 = never.
    pub slow_request_ms: u64,
    /// A database statement that takes longer is logged as a warning (fractions of a
    /// millisecond allowed); 0 = never.
    pub slow_query_ms: f64,
}

impl TelemetrySettings {
    /// The OTLP endpoint, or `None` when export is off.
    pub fn otlp_endpoint(&self) -> Option<&str> {
        Some(self.otlp_endpoint.trim()).filter(|e| !e.is_empty())
    }

    /// The slow-statement threshold, or `None` when off.
    pub fn slow_query(&self) -> Option<Duration> {
        (self.slow_query_ms > 0.0).then(|| Duration::from_secs_f64(self.slow_query_ms / 1000.0))
    }

    /// The slow-request threshold, or `None` when off.
    pub fn slow_request(&self) -> Option<Duration> {
        (self.slow_request_ms > 0).then(|| Duration::from_millis(self.slow_request_ms))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdminSettings {
    pub token: Secret<String>,
    /// How long an ops console sign-in lasts.
    pub console_session_hours: u64,
    /// How often the console's pages refresh themselves (with JavaScript).
    pub console_refresh_secs: u64,
    /// How often each process adds its counters and histograms to the one-minute windows
    /// in Redis that the console reads (0: never, and this process is missing from it).
    pub metrics_window_secs: u64,
}

impl AdminSettings {
    /// The admin bearer token, or `None` when the admin endpoints are disabled.
    pub fn token(&self) -> Option<&str> {
        self.token.non_empty()
    }

    pub fn console_session(&self) -> Duration {
        Duration::from_secs(self.console_session_hours * 3600)
    }

    /// `None` when processes keep their metrics to themselves.
    pub fn metrics_window(&self) -> Option<Duration> {
        (self.metrics_window_secs > 0).then(|| Duration::from_secs(self.metrics_window_secs))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// One `.eml` file per message in `mail.dir` (development, tests).
    File,
    /// An SMTP relay.
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on localhost only).
    None,
    /// Upgrade with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// Folder of the `file` transport.
    pub dir: String,
    /// `From:` of every message, e.g. `Keel <no-reply@example.com>`.
    pub from: String,
    /// Base URL put in links of emails (verification, reset, invitation, unsubscribe).
    pub public_url: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_username: String,
    pub smtp_password: Secret<String>,
    pub smtp_tls: SmtpTls,
    pub smtp_timeout_ms: u64,
}

impl MailSettings {
    pub fn smtp_timeout(&self) -> Duration {
        Duration::from_millis(self.smtp_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountsSettings {
    /// A session unused this long is over.
    pub session_idle_minutes: u64,
    /// A session is over this long after login, however active.
    pub session_absolute_hours: u64,
    /// Password hashes computed at once (argon2id takes ~19 MiB and tens of ms each);
    /// 0 = one per core.
    pub password_hash_concurrency: usize,
    /// Login attempts per account (and per IP) allowed in `login_window_minutes` before
    /// each further attempt must wait a doubling delay.
    pub login_free_attempts_per_account: u32,
    pub login_free_attempts_per_ip: u32,
    pub login_window_minutes: u64,
    /// Longest wait imposed between attempts.
    pub login_max_delay_secs: u64,
}

impl AccountsSettings {
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_minutes * 60)
    }
    pub fn session_absolute(&self) -> Duration {
        Duration::from_secs(self.session_absolute_hours * 3600)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotificationsSettings {
    /// Signs the unsubscribe links in emails (HMAC-SHA256); at least 32 characters.
    /// Changing it invalidates the links already sent.
    pub unsubscribe_secret: Secret<String>,
    /// Published events older than this many days are deleted, with their in-app
    /// notifications and finished webhook deliveries (the delivery log). 0 keeps them.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Lets endpoints target loopback, private and link-local addresses (development and
    /// tests only). Cloud metadata addresses stay blocked even then.
    pub allow_private_networks: bool,
    /// Time limit of one delivery attempt, connection to last byte.
    pub timeout_ms: u64,
    /// Response bytes kept for the delivery log; the rest is not read.
    pub max_response_bytes: usize,
    /// First retry delay; it doubles per attempt (with jitter) up to `backoff_max_secs`.
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
    /// Failed attempts in a row after which the breaker opens: deliveries to the endpoint
    /// wait `breaker_cooldown_secs`, then one probe decides.
    pub breaker_threshold: u32,
    pub breaker_cooldown_secs: u64,
    /// Failed attempts in a row after which the endpoint is disabled and the
    /// organization's admins are told.
    pub disable_after_failures: u32,
    /// How long the previous signing secret keeps signing after a rotation.
    pub secret_overlap_hours: u64,
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn backoff_max(&self) -> Duration {
        Duration::from_secs(self.backoff_max_secs)
    }

    pub fn breaker_cooldown(&self) -> Duration {
        Duration::from_secs(self.breaker_cooldown_secs)
    }
}

/// Where files (uploads, exports) live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A folder on this machine (`storage.local_root`): one process or a shared volume.
    Local,
    /// Any S3-compatible object store (AWS S3, MinIO, Ceph, R2, ...).
    S3,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    pub backend: StorageBackend,
    /// Folder of the `local` backend; relative paths start at the working directory.
    pub local_root: String,
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`); empty = AWS.
    pub s3_endpoint: String,
    pub s3_bucket: String,
    pub s3_region: String,
    /// Empty = credentials from the environment (AWS_* variables, instance or pod role).
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO,
    /// most self-hosted stores).
    pub s3_path_style: bool,
    /// Lifetime of presigned URLs (direct uploads, downloads).
    pub presign_expiry_secs: u64,
}

impl StorageSettings {
    pub fn presign_expiry(&self) -> Duration {
        Duration::from_secs(self.presign_expiry_secs)
    }
}

/// What processing does when the bytes contradict the declared content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeMismatch {
    /// The upload is `rejected`, with the reason.
    Reject,
    /// The upload is kept under the type its bytes show.
    Accept,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UploadsSettings {
    /// Largest file, however it arrives.
    pub max_size_bytes: u64,
    /// Bytes of live uploads per organization; 0 = no quota.
    pub org_quota_bytes: u64,
    /// Content types accepted after sniffing (`image/png`, `image/*`); empty = any.
    pub allowed_types: MediaTypes,
    pub type_mismatch: TypeMismatch,
    /// Images larger than this are not decoded (no dimensions, no thumbnail).
    pub image_max_bytes: u64,
    /// Decoder limits: an image past them is rejected, not decoded.
    pub image_max_dimension: u32,
    pub image_max_alloc_bytes: u64,
    /// Longest side of a thumbnail, in pixels.
    pub thumbnail_size: u32,
    /// A resumable or direct upload not finished this long after its creation is removed.
    pub unfinished_expiry_hours: u64,
}

/// The AI task on uploads: a caption of images and a summary of text through an
/// OpenAI-compatible chat completions API. Off while `base_url` is empty.
#[derive(Debug, Clone, Deserialize)]
pub struct AiSettings {
    /// The API's base URL, e.g. `https://api.openai.com/v1` (the path
    /// `/chat/completions` is appended); empty = off.
    pub base_url: String,
    pub api_key: Secret<String>,
    pub model: String,
    /// Time limit of one call to the provider.
    pub timeout_ms: u64,
    /// AI tasks running at once per worker process.
    pub concurrency: usize,
    /// Failed calls in a row after which the provider is left alone for
    /// `breaker_cooldown_secs` (tasks wait without using an attempt).
    pub breaker_threshold: u32,
    pub breaker_cooldown_secs: u64,
    /// Text sent for a summary, from the start of the file.
    pub max_text_bytes: usize,
}

impl AiSettings {
    pub fn enabled(&self) -> bool {
        !self.base_url.trim().is_empty()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn breaker_cooldown(&self) -> Duration {
        Duration::from_secs(self.breaker_cooldown_secs)
    }
}

/// Exports: reports generated by a job and downloaded through expiring links.
#[derive(Debug, Clone, Deserialize)]
pub struct ExportsSettings {
    /// Days a finished export (its file and its row) is kept.
    pub retention_days: u32,
    /// Lifetime of a download link, in seconds (at most 900).
    pub link_expiry_secs: u64,
    /// Keys that sign local download links, the signing one first (`id:secret`).
    pub link_keys: crate::LinkKeys,
    /// Exports of one organization queued or running at once.
    pub max_running_per_org: u32,
    /// Exports one organization may request per 24 hours.
    pub max_per_org_per_day: u32,
    /// Rows read per query: what the job holds in memory at once.
    pub batch_rows: u32,
    /// Rows between two progress writes (and cancellation checks are per batch).
    pub progress_every_rows: u32,
    /// Longest a read transaction stays open; a longer export continues in a new one.
    pub max_transaction_secs: u64,
    /// Exports produced at once per worker process.
    pub concurrency: usize,
    /// Rows an export writes per second at most (0: as fast as it can).
    pub max_rows_per_second: u32,
}

impl ExportsSettings {
    pub fn link_expiry(&self) -> Duration {
        Duration::from_secs(self.link_expiry_secs)
    }

    pub fn max_transaction(&self) -> Duration {
        Duration::from_secs(self.max_transaction_secs)
    }
}
