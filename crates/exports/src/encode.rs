//! Rows into bytes: CSV (RFC 4180) and NDJSON.
//!
//! CSV: a header row, every field quoted when it holds a comma, a quote, CR or LF
//! (quotes doubled), CRLF between records, UTF-8 without a byte-order mark. A text cell
//! that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! CR) is prefixed with `'` — OWASP's advice against CSV injection — and a field holding
//! `;` is quoted; numbers are never touched (`-5` stays a number). NDJSON: one JSON object per line, keyed by column name.

use crate::model::ExportFormat;
use crate::source::{Cell, Column};
use chrono::{DateTime, Datelike, Timelike, Utc};
use std::io::Write as _;

/// Writes the header (CSV only) into `out`.
pub fn header(format: ExportFormat, columns: &[Column], out: &mut Vec<u8>) {
    if format == ExportFormat::Csv {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            csv_field(column.name, out);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Writes one row into `out`.
pub fn row(format: ExportFormat, columns: &[Column], cells: &[Cell], out: &mut Vec<u8>) {
    match format {
        ExportFormat::Csv => csv_row(cells, out),
        ExportFormat::Ndjson => ndjson_row(columns, cells, out),
    }
}

fn csv_row(cells: &[Cell], out: &mut Vec<u8>) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match cell {
            Cell::Null => {}
            Cell::Text(value) => csv_text(value, out),
            Cell::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Time(at) => timestamp(at, out),
            Cell::Uuid(id) => {
                let _ = write!(out, "{id}");
            }
            Cell::Json(value) => csv_text(&value.to_string(), out),
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// A text cell, neutralised when a spreadsheet would read it as a formula.
fn csv_text(value: &str, out: &mut Vec<u8>) {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push(b'"');
        out.push(b'\'');
        escape_quotes(value, out);
        out.push(b'"');
    } else {
        csv_field(value, out);
    }
}

/// A field, quoted when RFC 4180 requires it — and when it holds a `;`: spreadsheets
/// in locales that separate fields with semicolons would split it there, and a formula
/// could start the next cell.
fn csv_field(value: &str, out: &mut Vec<u8>) {
    if value.contains([',', '"', '\r', '\n', ';']) {
        out.push(b'"');
        escape_quotes(value, out);
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

fn escape_quotes(value: &str, out: &mut Vec<u8>) {
    for (i, part) in value.split('"').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\"\"");
        }
        out.extend_from_slice(part.as_bytes());
    }
}

fn ndjson_row(columns: &[Column], cells: &[Cell], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (column, cell)) in columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(column.name, out);
        out.push(b':');
        match cell {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Text(value) => json_string(value, out),
            Cell::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Cell::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Cell::Time(at) => {
                out.push(b'"');
                timestamp(at, out);
                out.push(b'"');
            }
            Cell::Uuid(id) => {
                let _ = write!(out, "\"{id}\"");
            }
            Cell::Json(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
        }
    }
    out.extend_from_slice(b"}\n");
}

/// RFC 3339 in UTC with microseconds (`2026-12-01T17:39:46.611971Z`), written in place
/// field by field: `format` would parse its pattern again for every cell (a sixth of an
/// export's time).
fn timestamp(at: &DateTime<Utc>, out: &mut Vec<u8>) {
    let micros = at.nanosecond() % 1_000_000_000 / 1000;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
}

fn json_string(value: &str, out: &mut Vec<u8>) {
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ColumnKind;

    const COLUMNS: [Column; 3] = [
        Column::new("name", ColumnKind::Text, ""),
        Column::new("n", ColumnKind::Integer, ""),
        Column::new("extra", ColumnKind::Json, ""),
    ];

    fn csv(cells: &[Cell]) -> String {
        let mut out = Vec::new();
        row(ExportFormat::Csv, &COLUMNS, cells, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_what_rfc_4180_requires() {
        assert_eq!(csv(&["plain".into(), 5.into(), Cell::Null]), "plain,5,\r\n");
        assert_eq!(
            csv(&[
                "a,b".into(),
                Cell::Null,
                serde_json::json!({"k": "v"}).into()
            ]),
            "\"a,b\",,\"{\"\"k\"\":\"\"v\"\"}\"\r\n"
        );
        assert_eq!(
            csv(&["line\nbreak \"q\"".into()]),
            "\"line\nbreak \"\"q\"\"\"\r\n"
        );
        let mut out = Vec::new();
        header(ExportFormat::Csv, &COLUMNS, &mut out);
        assert_eq!(out, b"name,n,extra\r\n");
    }

    #[test]
    fn csv_neutralises_formulas_but_not_numbers() {
        for formula in ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            let written = csv(&[formula.into()]);
            assert!(written.starts_with("\"'"), "{formula:?} → {written:?}");
        }
        assert_eq!(csv(&[(-5i64).into()]), "-5\r\n");
        assert_eq!(csv(&["=\"x\"".into()]), "\"'=\"\"x\"\"\"\r\n");
    }

    #[test]
    fn ndjson_keys_each_line_by_column() {
        let mut out = Vec::new();
        let cells = ["é \"q\"".into(), Cell::Null, serde_json::json!([1]).into()];
        row(ExportFormat::Ndjson, &COLUMNS, &cells, &mut out);
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"name": "é \"q\"", "n": null, "extra": [1]})
        );
    }
}
