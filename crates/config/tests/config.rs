//! Layering and validation, through the same loader the binary uses.

use keel_config::{ConfigError, Loader, LogFormat};
use std::collections::HashMap;

fn repo_config_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// The repository's config for `env_name`; production gets the secrets it requires.
fn loader(env_name: &str) -> Loader {
    let loader = Loader::new(repo_config_dir(), env_name, HashMap::new());
    if env_name == "production" {
        loader
            .with_var(
                "KEEL__NOTIFICATIONS__UNSUBSCRIBE_SECRET",
                "0123456789abcdef0123456789abcdef-prod",
            )
            .with_var(
                "KEEL__EXPORTS__LINK_KEYS",
                "k1:0123456789abcdef0123456789abcdef-prod",
            )
    } else {
        loader
    }
}

#[test]
fn production_refuses_the_development_unsubscribe_secret() {
    let err = Loader::new(repo_config_dir(), "production", HashMap::new())
        .load()
        .expect_err("the public development secret must not reach production");
    assert!(
        err.to_string().contains("notifications.unsubscribe_secret"),
        "{err}"
    );
}

#[test]
fn production_refuses_the_development_link_key() {
    let err = Loader::new(repo_config_dir(), "production", HashMap::new())
        .with_var(
            "KEEL__NOTIFICATIONS__UNSUBSCRIBE_SECRET",
            "0123456789abcdef0123456789abcdef-prod",
        )
        .load()
        .expect_err("the public development link key must not reach production");
    assert!(err.to_string().contains("exports.link_keys"), "{err}");
}

#[test]
fn link_keys_and_link_lifetimes_are_checked() {
    for (key, value, named) in [
        ("KEEL__EXPORTS__LINK_KEYS", "k1:short", "exports.link_keys"),
        (
            "KEEL__EXPORTS__LINK_EXPIRY_SECS",
            "901",
            "exports.link_expiry_secs",
        ),
        (
            "KEEL__DATABASE__REPLICA_URL",
            "mysql://x",
            "database.replica_url",
        ),
    ] {
        let err = loader("development")
            .with_var(key, value)
            .load()
            .expect_err("refused");
        assert!(err.to_string().contains(named), "{key}={value}: {err}");
    }
}

#[test]
fn defaults_load_and_validate() {
    let s = loader("development").load().expect("defaults are valid");
    assert_eq!(s.server.port, 8080);
    assert_eq!(s.env, "development");
    assert_eq!(s.telemetry.log_format, LogFormat::Pretty);
    assert!(s.telemetry.otlp_endpoint().is_none());
}

#[test]
fn environment_file_overrides_defaults() {
    let s = loader("production")
        .load()
        .expect("production config is valid");
    assert_eq!(s.telemetry.log_format, LogFormat::Json);
    assert_eq!(s.server.host, "0.0.0.0");
}

#[test]
fn environment_variables_override_files() {
    let s = loader("production")
        .with_var("KEEL__SERVER__PORT", "9091")
        .with_var("KEEL__TELEMETRY__LOG_FORMAT", "compact")
        .with_var("KEEL__DATABASE__URL", "postgres://app:pw@db:5432/keel")
        .load()
        .expect("valid overrides");
    assert_eq!(s.server.port, 9091);
    assert_eq!(s.telemetry.log_format, LogFormat::Compact);
    assert_eq!(s.database.url.expose(), "postgres://app:pw@db:5432/keel");
}

#[test]
fn a_badly_typed_value_names_its_key() {
    let err = loader("development")
        .with_var("KEEL__SERVER__PORT", "eighty")
        .load()
        .expect_err("port must be a number");
    assert!(matches!(err, ConfigError::Load(_)));
    let msg = err.to_string();
    assert!(msg.contains("server.port"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn an_out_of_range_value_names_its_key() {
    let err = loader("development")
        .with_var("KEEL__DATABASE__POOL_SIZE", "0")
        .load()
        .expect_err("pool size must be positive");
    assert_eq!(
        err.to_string(),
        "invalid configuration: database.pool_size: must be at least 1 (got 0)"
    );
}

#[test]
fn a_wrong_url_scheme_names_the_key_without_printing_the_url() {
    let err = loader("development")
        .with_var("KEEL__DATABASE__URL", "mysql://root:s3cret@db/keel")
        .load()
        .expect_err("only postgres URLs");
    let msg = err.to_string();
    assert!(msg.contains("database.url"), "{msg}");
    assert!(!msg.contains("s3cret"), "the password leaked: {msg}");
}

#[test]
fn secrets_never_print() {
    let s = loader("development")
        .with_var("KEEL__DATABASE__URL", "postgres://app:hunter2@db/keel")
        .load()
        .expect("valid");
    let debug = format!("{s:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

#[test]
fn an_unknown_log_format_is_rejected_with_its_key() {
    let err = loader("development")
        .with_var("KEEL__TELEMETRY__LOG_FORMAT", "xml")
        .load()
        .expect_err("unknown variant");
    assert!(err.to_string().contains("telemetry.log_format"), "{err}");
}
