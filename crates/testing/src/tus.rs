//! A real tus client — tuspy, from PyPI, installed by `deploy/local/tools.sh` — driving
//! resumable uploads (`deploy/tus/client.py`).

use serde_json::Value;

/// Sends `file` to the tus `endpoint` as `token` in chunks of `chunk` bytes, up to
/// `stop_at` bytes (all without), resuming `url` when given; the client's
/// `{"url", "offset"}`. Blocking: call it from `spawn_blocking`.
pub fn tus_upload(
    endpoint: &str,
    token: &str,
    file: &std::path::Path,
    chunk: usize,
    stop_at: Option<usize>,
    url: Option<&str>,
) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut command = std::process::Command::new(root.join(".local/tools/venv/bin/python"));
    command
        .arg(root.join("deploy/tus/client.py"))
        .args([endpoint, token])
        .arg(file)
        .args(["--chunk", &chunk.to_string()]);
    if let Some(stop_at) = stop_at {
        command.args(["--stop-at", &stop_at.to_string()]);
    }
    if let Some(url) = url {
        command.args(["--url", url]);
    }
    let output = command
        .output()
        .expect("run tuspy (deploy/local/tools.sh installs it)");
    assert!(
        output.status.success(),
        "tuspy: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("tuspy's JSON")
}
