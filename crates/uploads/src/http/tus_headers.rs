//! Reading the tus protocol's request headers: numbers, `Upload-Metadata`,
//! `Upload-Checksum`.

use crate::resumable::Checksum;
use actix_web::http::header::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The checksum algorithms accepted, as `Tus-Checksum-Algorithm` lists them.
pub(super) const CHECKSUMS: &str = "sha1,sha256";

pub(super) fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// The name and type a client gave in `Upload-Metadata`.
#[derive(Debug, Default)]
pub(super) struct Metadata {
    pub name: Option<String>,
    pub content_type: Option<String>,
}

/// `key base64value` pairs separated by commas; a key may come without a value.
pub(super) fn metadata(headers: &HeaderMap) -> Result<Metadata, String> {
    let mut found = Metadata::default();
    let Some(raw) = headers.get("upload-metadata") else {
        return Ok(found);
    };
    let raw = raw.to_str().map_err(|_| "Upload-Metadata must be ASCII")?;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| {
                format!("Upload-Metadata: the value of {key} is not base64 of UTF-8 text")
            })?;
        match key {
            "filename" | "name" => found.name = Some(decoded),
            "filetype" | "type" | "content_type" => found.content_type = Some(decoded),
            _ => {}
        }
    }
    Ok(found)
}

/// `Upload-Checksum: <algorithm> <base64 digest>`.
pub(super) fn checksum(headers: &HeaderMap) -> Result<Option<Checksum>, String> {
    let Some(raw) = headers.get("upload-checksum") else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| "Upload-Checksum must be ASCII")?;
    let (algorithm, digest) = raw
        .trim()
        .split_once(' ')
        .ok_or("Upload-Checksum is `<algorithm> <base64 digest>`")?;
    let digest = STANDARD
        .decode(digest.trim())
        .map_err(|_| "Upload-Checksum: the digest is not base64")?;
    let wrong_length = || format!("Upload-Checksum: not a {algorithm} digest");
    match algorithm.to_ascii_lowercase().as_str() {
        "sha1" => Ok(Some(Checksum::Sha1(
            digest.try_into().map_err(|_| wrong_length())?,
        ))),
        "sha256" => Ok(Some(Checksum::Sha256(
            digest.try_into().map_err(|_| wrong_length())?,
        ))),
        other => Err(format!(
            "Upload-Checksum: {other} is not supported (use {CHECKSUMS})"
        )),
    }
}
