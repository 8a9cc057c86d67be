//! Reading Prometheus text exposition (what `/metrics` serves) back into samples: the
//! console's windows are built from the very numbers a scraper sees, so the two never
//! disagree, and the request path pays nothing for the console.

/// One sample line: `name{labels} value`, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// Inside the braces, as written (`method="GET",route="/x"`); empty without labels.
    pub labels: &'a str,
    pub value: f64,
}

/// The samples of `text`; comments and malformed lines are skipped.
pub fn parse(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(|line| {
        if line.starts_with('#') {
            return None;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().ok()?,
        };
        parse_series(series, value)
    })
}

/// The sample of series `name{labels}` (or a bare `name`) with `value`.
pub fn parse_series(series: &str, value: f64) -> Option<Sample<'_>> {
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    (!name.is_empty()).then_some(Sample {
        name,
        labels,
        value,
    })
}

/// The `(name, value)` pairs of a label set as written in the exposition format, with
/// `\"`, `\\` and `\n` unescaped.
pub fn labels(raw: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some((name, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.push((name.trim_start_matches(',').to_owned(), value));
        rest = &after[end..];
    }
    out
}

/// A label set written back in the exposition format (values escaped), sorted by name so
/// that equal sets are equal strings.
pub fn write_labels(labels: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_labels_round_trip() {
        let text = "# HELP x y\n# TYPE x counter\n\
                    keel_http_requests_total{method=\"GET\",route=\"/a \\\"b\\\"\",status=\"200\"} 42\n\
                    keel_db_pool_size 3\n\
                    keel_x_bucket{le=\"+Inf\"} 7\nbroken line\n";
        let samples: Vec<Sample> = parse(text).collect();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "keel_http_requests_total");
        assert_eq!(samples[0].value, 42.0);
        assert_eq!(samples[1].labels, "");
        let labels = labels(samples[0].labels);
        assert_eq!(
            labels,
            [
                ("method".to_owned(), "GET".to_owned()),
                ("route".to_owned(), "/a \"b\"".to_owned()),
                ("status".to_owned(), "200".to_owned())
            ]
        );
        assert_eq!(write_labels(&labels), samples[0].labels);
        assert_eq!(super::labels(samples[2].labels)[0].1, "+Inf");
    }
}
