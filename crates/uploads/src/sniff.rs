//! What a file really is: its magic bytes (the `infer` crate), or text — never the
//! client's `Content-Type` alone — and whether the declared type and the deployment's
//! allow-list agree with it.

/// Bytes read from the start of a file to recognise it (every signature `infer` knows
/// fits in far less; text detection wants a fair sample).
pub const HEAD_BYTES: usize = 8192;

/// Text types a client may name for text content; text declared as anything else (an
/// `image/svg+xml`, a `text/html`) is `text/plain`: a label never makes text pass for a
/// type an allow-list admits or a browser would run.
const TEXT_TYPES: [&str; 8] = [
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/tab-separated-values",
    "application/json",
    "application/x-ndjson",
    "application/xml",
    "text/xml",
];

/// The type the bytes show. Binary formats by signature; otherwise valid UTF-8 without
/// NULs is text (CSV when declared or named so, the declared type when it is one of
/// [`TEXT_TYPES`], else `text/plain`); anything else is `application/octet-stream`.
pub fn detect(head: &[u8], declared: &str, file_name: &str) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if looks_like_text(head) {
        let declared = essence(declared);
        if declared == "text/csv" || file_name.to_ascii_lowercase().ends_with(".csv") {
            return "text/csv".to_owned();
        }
        if TEXT_TYPES.contains(&declared.as_str()) {
            return declared;
        }
        return "text/plain".to_owned();
    }
    OCTET_STREAM.to_owned()
}

const OCTET_STREAM: &str = "application/octet-stream";

/// The media type without parameters, lowercased, with common aliases folded.
pub fn essence(content_type: &str) -> String {
    let bare = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match bare.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg".to_owned(),
        "application/x-pdf" => "application/pdf".to_owned(),
        "text/x-csv" | "application/csv" => "text/csv".to_owned(),
        "application/x-zip-compressed" => "application/zip".to_owned(),
        "" => OCTET_STREAM.to_owned(),
        _ => bare,
    }
}

/// `None` when the bytes may be what the client declared; otherwise why not.
/// `application/octet-stream` claims nothing, so it never contradicts.
pub fn contradiction(declared: &str, detected: &str) -> Option<String> {
    let declared = essence(declared);
    let agrees = declared == OCTET_STREAM
        || declared == detected
        || is_textual(&declared) && is_textual(detected)
        || detected == "application/zip" && is_zip_container(&declared);
    (!agrees).then(|| format!("declared as {declared} but the content is {detected}"))
}

/// `None` when `allowed` (patterns like `image/png`, `image/*`) admits `detected`; an
/// empty list admits everything.
pub fn disallowed(allowed: &[String], detected: &str) -> Option<String> {
    let admitted = allowed.is_empty()
        || allowed
            .iter()
            .any(|pattern| match pattern.strip_suffix("/*") {
                Some(family) => detected.split('/').next() == Some(family),
                None => pattern.eq_ignore_ascii_case(detected),
            });
    (!admitted).then(|| format!("{detected} files are not accepted here"))
}

fn is_textual(media_type: &str) -> bool {
    media_type.starts_with("text/")
        || matches!(
            media_type,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-ndjson"
        )
        || media_type.ends_with("+json")
        || media_type.ends_with("+xml")
}

/// Formats that are zip files inside (office documents, e-books, Java archives): their
/// signature is a zip's.
fn is_zip_container(media_type: &str) -> bool {
    media_type.ends_with("+zip")
        || media_type.starts_with("application/vnd.openxmlformats-officedocument.")
        || media_type.starts_with("application/vnd.oasis.opendocument.")
        || media_type == "application/java-archive"
}

/// Valid UTF-8 without NULs, allowing a character cut at the end of the sample.
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn bytes_decide_not_the_label() {
        assert_eq!(detect(PDF, "image/png", "cat.png"), "application/pdf");
        assert_eq!(detect(PNG, "application/octet-stream", "x"), "image/png");
        assert_eq!(detect(b"a,b\n1,2\n", "text/plain", "t.csv"), "text/csv");
        assert_eq!(
            detect(b"hello", "application/json", "x"),
            "application/json"
        );
        assert_eq!(detect(b"hello", "image/png", "x"), "text/plain");
        assert_eq!(detect(b"<svg/>", "image/svg+xml", "x.svg"), "text/plain");
        assert_eq!(detect(b"hello", "text/html", "x.html"), "text/plain");
        assert_eq!(detect(b"\0\x01\x02", "", "x"), OCTET_STREAM);
    }

    #[test]
    fn contradictions() {
        assert!(contradiction("image/png", "application/pdf").is_some());
        assert!(contradiction("IMAGE/JPG; q=1", "image/jpeg").is_none());
        assert!(contradiction("application/octet-stream", "application/pdf").is_none());
        assert!(contradiction("text/csv", "text/plain").is_none());
        assert!(
            contradiction(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/zip"
            )
            .is_none()
        );
    }

    #[test]
    fn allow_list() {
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(disallowed(&allowed, "image/webp").is_none());
        assert!(disallowed(&allowed, "application/pdf").is_none());
        assert!(disallowed(&allowed, "text/plain").is_some());
        assert!(disallowed(&[], "anything/at-all").is_none());
    }

    #[test]
    fn cut_characters_are_still_text() {
        let text = "é".repeat(10);
        assert!(looks_like_text(&text.as_bytes()[..5]));
        assert!(!looks_like_text(b"\xff\xfe"));
    }
}
