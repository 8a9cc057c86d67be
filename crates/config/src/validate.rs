//! Checks that serde cannot express: ranges, URL schemes, relations between keys.
//! Each failure names the key, so a bad deployment stops with one actionable line.

use crate::{ConfigError, Settings};

impl Settings {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let db = &self.database;
        scheme(
            "database.url",
            db.url.expose(),
            &["postgres://", "postgresql://"],
        )?;
        at_least("database.pool_size", db.pool_size as u64, 1)?;
        at_least("database.acquire_timeout_ms", db.acquire_timeout_ms, 1)?;
        at_least("database.connect_timeout_ms", db.connect_timeout_ms, 1)?;
        at_least("database.statement_timeout_ms", db.statement_timeout_ms, 1)?;
        at_most("database.read_connections", db.read_connections as u64, 64)?;

        let redis = &self.redis;
        scheme("redis.url", redis.url.expose(), &["redis://", "rediss://"])?;
        at_least("redis.pool_size", redis.pool_size as u64, 1)?;
        at_least("redis.timeout_ms", redis.timeout_ms, 1)?;
        if redis.key_prefix.is_empty() || redis.key_prefix.contains(char::is_whitespace) {
            return Err(invalid(
                "redis.key_prefix",
                "must be non-empty and without spaces",
            ));
        }

        let s = &self.server;
        at_least("server.json_limit_bytes", s.json_limit_bytes as u64, 1024)?;
        at_least("server.rate_limit_window_secs", s.rate_limit_window_secs, 1)?;
        at_least(
            "server.idempotency_in_flight_secs",
            s.idempotency_in_flight_secs,
            1,
        )?;
        optional_token("server.metrics_token", s.metrics_token())?;
        if s.host.trim().is_empty() {
            return Err(invalid("server.host", "must not be empty"));
        }

        let c = &self.cache;
        at_least("cache.l1_capacity", c.l1_capacity, 1)?;
        at_least("cache.l1_ttl_ms", c.l1_ttl_ms, 1)?;
        at_least("cache.l2_ttl_secs", c.l2_ttl_secs, 1)?;
        if c.ttl_jitter_percent > 50 {
            return Err(invalid(
                "cache.ttl_jitter_percent",
                "must be between 0 and 50",
            ));
        }

        let q = &self.queue;
        at_least("queue.concurrency", q.concurrency as u64, 1)?;
        at_least(
            "queue.default_max_attempts",
            u64::from(q.default_max_attempts),
            1,
        )?;
        at_least("queue.default_timeout_secs", q.default_timeout_secs, 1)?;
        at_least("queue.backoff_base_ms", q.backoff_base_ms, 1)?;
        at_least("queue.reconcile_interval_ms", q.reconcile_interval_ms, 10)?;
        at_least("queue.redeliver_after_secs", q.redeliver_after_secs, 1)?;
        at_least("queue.poll_interval_ms", q.poll_interval_ms, 10)?;
        if q.backoff_max_secs * 1000 < q.backoff_base_ms {
            return Err(invalid(
                "queue.backoff_max_secs",
                "must not be shorter than queue.backoff_base_ms",
            ));
        }

        let st = &self.storage;
        if st.backend == crate::StorageBackend::S3 {
            if st.s3_bucket.trim().is_empty() {
                return Err(invalid(
                    "storage.s3_bucket",
                    "must be set for the s3 backend",
                ));
            }
            if !st.s3_endpoint.is_empty() {
                scheme(
                    "storage.s3_endpoint",
                    &st.s3_endpoint,
                    &["http://", "https://"],
                )?;
            }
        } else if st.local_root.trim().is_empty() {
            return Err(invalid("storage.local_root", "must not be empty"));
        }
        at_least("storage.presign_expiry_secs", st.presign_expiry_secs, 1)?;
        if st.presign_expiry_secs > 7 * 24 * 3600 {
            return Err(invalid(
                "storage.presign_expiry_secs",
                "must be at most 604800 (7 days, the S3 limit)",
            ));
        }

        let u = &self.uploads;
        at_least("uploads.max_size_bytes", u.max_size_bytes, 1)?;
        at_least(
            "uploads.image_max_dimension",
            u64::from(u.image_max_dimension),
            1,
        )?;
        at_least("uploads.thumbnail_size", u64::from(u.thumbnail_size), 16)?;
        at_least(
            "uploads.unfinished_expiry_hours",
            u.unfinished_expiry_hours,
            1,
        )?;

        let ai = &self.ai;
        if ai.enabled() {
            scheme("ai.base_url", &ai.base_url, &["http://", "https://"])?;
            if ai.model.trim().is_empty() {
                return Err(invalid(
                    "ai.model",
                    "must name the model when ai.base_url is set",
                ));
            }
        }
        at_least("ai.timeout_ms", ai.timeout_ms, 100)?;
        at_least("ai.concurrency", ai.concurrency as u64, 1)?;
        at_least("ai.breaker_threshold", u64::from(ai.breaker_threshold), 1)?;
        at_least("ai.max_text_bytes", ai.max_text_bytes as u64, 256)?;

        let t = &self.telemetry;
        if let Some(endpoint) = t.otlp_endpoint() {
            scheme(
                "telemetry.otlp_endpoint",
                endpoint,
                &["http://", "https://"],
            )?;
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return Err(invalid(
                "telemetry.sample_ratio",
                "must be between 0.0 and 1.0",
            ));
        }
        if !(t.slow_query_ms.is_finite() && t.slow_query_ms >= 0.0) {
            return Err(invalid(
                "telemetry.slow_query_ms",
                "must be 0 (off) or a positive number of milliseconds",
            ));
        }
        if t.service_name.trim().is_empty() {
            return Err(invalid("telemetry.service_name", "must not be empty"));
        }
        let m = &self.mail;
        if m.dir.trim().is_empty() {
            return Err(invalid("mail.dir", "must not be empty"));
        }
        if !m.from.contains('@') {
            return Err(invalid(
                "mail.from",
                "must be an email address, e.g. Keel <no-reply@example.com>",
            ));
        }
        scheme("mail.public_url", &m.public_url, &["http://", "https://"])?;
        if m.transport == crate::MailTransport::Smtp && m.smtp_host.trim().is_empty() {
            return Err(invalid(
                "mail.smtp_host",
                "must be set when mail.transport is smtp",
            ));
        }
        at_least("mail.smtp_timeout_ms", m.smtp_timeout_ms, 1)?;
        let a = &self.accounts;
        at_least("accounts.session_idle_minutes", a.session_idle_minutes, 1)?;
        at_least(
            "accounts.session_absolute_hours",
            a.session_absolute_hours,
            1,
        )?;
        if a.session_idle_minutes > a.session_absolute_hours * 60 {
            return Err(invalid(
                "accounts.session_idle_minutes",
                "must not exceed accounts.session_absolute_hours",
            ));
        }
        at_least(
            "accounts.login_free_attempts_per_account",
            u64::from(a.login_free_attempts_per_account),
            1,
        )?;
        at_least(
            "accounts.login_free_attempts_per_ip",
            u64::from(a.login_free_attempts_per_ip),
            1,
        )?;
        at_least("accounts.login_window_minutes", a.login_window_minutes, 1)?;
        at_least("accounts.login_max_delay_secs", a.login_max_delay_secs, 1)?;
        let unsubscribe = self.notifications.unsubscribe_secret.expose();
        if unsubscribe.len() < 32 {
            return Err(invalid(
                "notifications.unsubscribe_secret",
                "must be at least 32 characters",
            ));
        }
        // The development default is public: in production it would let anyone forge
        // unsubscribe links.
        if self.env == "production" && unsubscribe.starts_with(DEVELOPMENT_SECRET_PREFIX) {
            return Err(invalid(
                "notifications.unsubscribe_secret",
                "is the development default; set KEEL__NOTIFICATIONS__UNSUBSCRIBE_SECRET",
            ));
        }
        let w = &self.webhooks;
        at_least("webhooks.timeout_ms", w.timeout_ms, 1)?;
        at_least("webhooks.backoff_base_ms", w.backoff_base_ms, 1)?;
        at_least(
            "webhooks.breaker_threshold",
            u64::from(w.breaker_threshold),
            1,
        )?;
        if w.disable_after_failures < w.breaker_threshold {
            return Err(invalid(
                "webhooks.disable_after_failures",
                "must be at least webhooks.breaker_threshold",
            ));
        }
        let e = &self.exports;
        at_least("exports.retention_days", u64::from(e.retention_days), 1)?;
        at_least("exports.link_expiry_secs", e.link_expiry_secs, 1)?;
        if e.link_expiry_secs > 900 {
            return Err(invalid(
                "exports.link_expiry_secs",
                "must be at most 900 (15 minutes)",
            ));
        }
        at_least(
            "exports.max_running_per_org",
            u64::from(e.max_running_per_org),
            1,
        )?;
        at_least(
            "exports.max_per_org_per_day",
            u64::from(e.max_per_org_per_day),
            1,
        )?;
        at_least("exports.batch_rows", u64::from(e.batch_rows), 1)?;
        if e.batch_rows > 50_000 {
            return Err(invalid("exports.batch_rows", "must be at most 50000"));
        }
        at_least(
            "exports.progress_every_rows",
            u64::from(e.progress_every_rows),
            1,
        )?;
        at_least("exports.max_transaction_secs", e.max_transaction_secs, 1)?;
        at_least("exports.concurrency", e.concurrency as u64, 1)?;
        if self.env == "production"
            && e.link_keys
                .all()
                .iter()
                .any(|k| k.secret.expose().starts_with(DEVELOPMENT_SECRET_PREFIX))
        {
            return Err(invalid(
                "exports.link_keys",
                "holds the development default; set KEEL__EXPORTS__LINK_KEYS",
            ));
        }
        let replica = self.database.replica_url.expose();
        if !replica.is_empty() {
            scheme(
                "database.replica_url",
                replica,
                &["postgres://", "postgresql://"],
            )?;
        }
        optional_token("admin.token", self.admin.token())?;
        let admin = &self.admin;
        at_least(
            "admin.console_session_hours",
            admin.console_session_hours,
            1,
        )?;
        at_most(
            "admin.console_session_hours",
            admin.console_session_hours,
            24 * 7,
        )?;
        at_least("admin.console_refresh_secs", admin.console_refresh_secs, 2)?;
        at_most("admin.metrics_window_secs", admin.metrics_window_secs, 60)?;
        Ok(())
    }
}

/// How the development default of `notifications.unsubscribe_secret` begins.
const DEVELOPMENT_SECRET_PREFIX: &str = "development-only-";

fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.to_owned(),
    }
}

fn at_least(key: &str, value: u64, min: u64) -> Result<(), ConfigError> {
    if value < min {
        return Err(invalid(
            key,
            &format!("must be at least {min} (got {value})"),
        ));
    }
    Ok(())
}

fn at_most(key: &str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value > max {
        return Err(invalid(
            key,
            &format!("must be at most {max} (got {value})"),
        ));
    }
    Ok(())
}

/// A bearer token that turns a feature on must not be guessable when it is set.
fn optional_token(key: &str, token: Option<&str>) -> Result<(), ConfigError> {
    match token {
        Some(token) if token.len() < 16 => {
            Err(invalid(key, "must be at least 16 characters when set"))
        }
        _ => Ok(()),
    }
}

/// Checks the URL scheme without echoing the value: URLs may carry passwords.
fn scheme(key: &str, value: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    if allowed.iter().any(|p| value.starts_with(p)) {
        return Ok(());
    }
    Err(invalid(
        key,
        &format!("must start with {}", allowed.join(" or ")),
    ))
}
