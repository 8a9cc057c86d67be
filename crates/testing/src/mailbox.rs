//! The mail sink: Keel's file transport writes each email as an `.eml` file into a
//! directory of the test's own (`KEEL__MAIL__DIR`).

use std::path::{Path, PathBuf};

/// A fresh directory for one test's emails, removed when dropped.
#[derive(Debug)]
pub struct Mailbox {
    dir: PathBuf,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Mailbox {
    pub fn new() -> Self {
        Self {
            dir: std::env::temp_dir().join(format!("keel-mail-{}", uuid::Uuid::now_v7())),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `KEEL__MAIL__DIR` override that sends Keel's emails here.
    pub fn setting(&self) -> (&'static str, &str) {
        ("KEEL__MAIL__DIR", self.dir.to_str().expect("utf-8 path"))
    }

    /// The names of the files written so far, sorted (`<job id>.eml`).
    pub fn files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The email the job `id` wrote, as sent.
    pub fn read(&self, id: uuid::Uuid) -> String {
        std::fs::read_to_string(self.dir.join(format!("{id}.eml"))).expect("the .eml file")
    }

    /// Every email delivered so far, as text with quoted-printable soft breaks joined
    /// and `=3D` decoded (what a reader sees).
    pub fn emails(&self) -> Vec<String> {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .map(|eml| unfold(&eml))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn unfold(eml: &str) -> String {
    eml.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
