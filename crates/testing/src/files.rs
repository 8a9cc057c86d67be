//! The files a test's storage folder holds, to check that nothing was left behind.

use std::path::{Path, PathBuf};

/// Every file under `dir` (staging files included), however deep; none when `dir` does
/// not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}
