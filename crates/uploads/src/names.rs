//! Client file names: kept for display and as the download's suggested name, after
//! cleaning — never used as a storage key or a path.

use actix_web::http::header::{ContentDisposition, HeaderValue};

/// Longest kept name, in bytes (a common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;
/// The name of a file the client did not name.
pub const UNNAMED: &str = "upload";

/// The last path segment of `raw` (clients send `C:\dir\a.txt` or `../../a.txt`), with
/// control and bidirectional-override characters dropped, surrounding dots and spaces
/// trimmed, and cut to [`MAX_NAME_BYTES`] on a character boundary, keeping the extension
/// when it is short. Nothing usable left gives [`UNNAMED`].
pub fn clean(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last.chars().filter(|c| !is_unsafe(*c)).collect();
    let trimmed = kept.trim_matches(|c: char| c == '.' || c.is_whitespace());
    if trimmed.is_empty() {
        return UNNAMED.to_owned();
    }
    truncate(trimmed)
}

/// Control characters, and the invisible formatting characters (bidirectional overrides
/// such as U+202E) that make `evil<U+202E>txt.exe` display as `evilexe.txt`.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn truncate(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|ext| ext.len() <= 16)
        .unwrap_or("");
    let mut stem_end = MAX_NAME_BYTES - ext.len();
    while !name.is_char_boundary(stem_end) {
        stem_end -= 1;
    }
    format!("{}{ext}", &name[..stem_end])
}

/// The file name in a request's `Content-Disposition` (`filename*=UTF-8''…` preferred
/// over `filename="…"`), for raw uploads that name the file there; parsed by actix-web's
/// own `ContentDisposition`.
pub fn from_disposition(header: &HeaderValue) -> Option<String> {
    let parsed = ContentDisposition::from_raw(header).ok()?;
    match parsed.get_filename_ext() {
        Some(ext) => Some(String::from_utf8_lossy(&ext.value).into_owned()),
        None => parsed.get_filename().map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_and_controls_go() {
        assert_eq!(clean("../../etc/passwd"), "passwd");
        assert_eq!(clean("C:\\Users\\me\\report.pdf"), "report.pdf");
        assert_eq!(clean("a\u{0}b\r\nc.txt"), "abc.txt");
        assert_eq!(clean("evil\u{202E}txt.exe"), "eviltxt.exe");
        assert_eq!(clean(".."), UNNAMED);
        assert_eq!(clean(""), UNNAMED);
    }

    #[test]
    fn long_names_keep_their_extension() {
        let long = format!("{}.png", "é".repeat(200));
        let cleaned = clean(&long);
        assert!(cleaned.len() <= MAX_NAME_BYTES);
        assert!(cleaned.ends_with(".png"));
    }

    #[test]
    fn disposition_round_trips() {
        let header = keel_http::download::content_disposition("résumé \"final\".pdf");
        assert!(header.starts_with("attachment; filename=\"r_sum_ _final_.pdf\""));
        let parse = |text: &str| from_disposition(&HeaderValue::from_str(text).unwrap());
        assert_eq!(parse(&header).as_deref(), Some("résumé \"final\".pdf"));
        assert_eq!(
            parse("attachment; filename=\"a.txt\"").as_deref(),
            Some("a.txt")
        );
    }
}
