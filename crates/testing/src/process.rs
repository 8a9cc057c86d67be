//! The `keel` executable as a child process: for signals, crashes (SIGKILL mid-request)
//! and restarts, which an in-process app cannot show.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `keel` child process, killed (SIGKILL) when dropped so a failed test leaves none
/// behind.
#[derive(Debug)]
pub struct KeelProcess(pub Child);

impl KeelProcess {
    /// The process id (for reading `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL now, and reap it.
    pub fn kill(&mut self) {
        let _ = self.0.kill(); // std's kill is SIGKILL on Unix
        let _ = self.0.wait();
    }
}

impl Drop for KeelProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `keel serve` over `database_url` (test settings, its own Redis key prefix, `env` on
/// top), once it answers `/health/live`; with its base URL. `keel` is the executable
/// (`env!("CARGO_BIN_EXE_keel")` in the binary's tests).
pub async fn serve_process(
    keel: &str,
    database_url: &str,
    env: &[(&str, &str)],
) -> (KeelProcess, String) {
    serve_process_logging_to(keel, database_url, env, Stdio::null()).await
}

/// [`serve_process`] with the child's standard output, where it logs, sent to `log`
/// (a file the test reads back) instead of discarded.
pub async fn serve_process_logging_to(
    keel: &str,
    database_url: &str,
    env: &[(&str, &str)],
    log: impl Into<Stdio>,
) -> (KeelProcess, String) {
    spawn(keel, Role::Serve, database_url, env, log.into()).await
}

/// `keel work` over `database_url`, like [`serve_process`], once its health port
/// answers; with that port's base URL.
pub async fn work_process(
    keel: &str,
    database_url: &str,
    env: &[(&str, &str)],
) -> (KeelProcess, String) {
    spawn(keel, Role::Work, database_url, env, Stdio::null()).await
}

/// Which `keel` subcommand, and the setting naming the port it answers `/health/live` on.
#[derive(Debug, Clone, Copy)]
enum Role {
    Serve,
    Work,
}

async fn spawn(
    keel: &str,
    role: Role,
    database_url: &str,
    env: &[(&str, &str)],
    log: Stdio,
) -> (KeelProcess, String) {
    let port = crate::free_port();
    let (subcommand, port_key) = match role {
        Role::Serve => ("serve", "KEEL__SERVER__PORT"),
        Role::Work => ("work", "KEEL__SERVER__WORKER_PORT"),
    };
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let redis_url =
        std::env::var("KEEL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let child = Command::new(keel)
        .arg(subcommand)
        .env("KEEL_ENV", "test")
        .env("KEEL_CONFIG_DIR", config_dir)
        .env("KEEL__DATABASE__URL", database_url)
        .env("KEEL__REDIS__URL", redis_url)
        .env(
            "KEEL__REDIS__KEY_PREFIX",
            keel_config::testing::unique_prefix(),
        )
        .env("KEEL__SERVER__PORT", "0")
        .env(port_key, port.to_string())
        .env("KEEL__SERVER__OPERATIONS_PORT", "0")
        .env(
            "KEEL__STORAGE__LOCAL_ROOT",
            std::env::temp_dir()
                .join("keel-test-storage")
                .join(keel_config::testing::unique_prefix()),
        )
        .envs(env.iter().copied())
        .stdout(log)
        .spawn()
        .expect("spawn keel");
    let process = KeelProcess(child);
    let base = format!("http://127.0.0.1:{port}");
    keel_telemetry::install_tls_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("{base}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "keel {subcommand} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (process, base)
}
