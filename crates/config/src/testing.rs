//! Settings for tests: the repository's `config/test.toml`, a given database, the test
//! Redis (`KEEL_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/0`) and a key prefix of
//! the test's own, so tests sharing one Redis never see each other's keys.

use crate::{Loader, Settings};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The loader a test starts from; add `with_var` overrides, then `load()`.
pub fn loader(database_url: &str) -> Loader {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let redis_url = std::env::var("KEEL_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
    let prefix = unique_prefix();
    let storage = std::env::temp_dir().join("keel-test-storage").join(&prefix);
    Loader::new(dir, "test", HashMap::new())
        .with_var("KEEL__DATABASE__URL", database_url)
        .with_var("KEEL__REDIS__URL", redis_url)
        .with_var("KEEL__STORAGE__LOCAL_ROOT", storage.to_string_lossy())
        .with_var("KEEL__REDIS__KEY_PREFIX", prefix)
        .with_var("KEEL__SERVER__PORT", "0")
}

/// `loader(database_url).load()`, for tests that need no overrides.
pub fn settings(database_url: &str) -> Settings {
    match loader(database_url).load() {
        Ok(s) => s,
        Err(e) => panic!("test settings: {e}"),
    }
}

/// `keel_test_<pid>_<n>_<nanos>`: unique per test within and across processes.
pub fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "keel_test_{}_{}_{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
