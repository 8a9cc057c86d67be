//! The console's templates, compiled into the binary, and the filters that format its
//! numbers the same way on every page.

use minijinja::Environment;

/// Every template, by name (the `.html` suffix turns on HTML escaping).
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    (
        "endpoints.html",
        include_str!("../templates/endpoints.html"),
    ),
    ("jobs.html", include_str!("../templates/jobs.html")),
    ("job.html", include_str!("../templates/job.html")),
    (
        "third_parties.html",
        include_str!("../templates/third_parties.html"),
    ),
    ("database.html", include_str!("../templates/database.html")),
    ("audit.html", include_str!("../templates/audit.html")),
];

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            // Compiled in and covered by the tests: a broken template is a bug caught there.
            tracing::error!(template = name, error = %e, "ops template does not compile");
        }
    }
    env.add_filter("ms", |seconds: Option<f64>| duration(seconds));
    env.add_filter("pct", |ratio: Option<f64>| percent(ratio));
    env.add_filter("num", |value: f64| -> String {
        if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{}", value as i64)
        } else if value.abs() >= 100.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.2}")
        }
    });
    env.add_filter("age", |seconds: f64| -> String {
        let s = seconds.max(0.0) as u64;
        match s {
            0..=119 => format!("{s} s"),
            120..=7199 => format!("{} min", s / 60),
            _ => format!("{} h", s / 3600),
        }
    });
    env
}

/// A latency: "0.45 ms", "12.3 ms", "1.20 s"; "–" without observations. Shared by the
/// templates' `ms` filter and the pages that format in Rust.
pub fn duration(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".to_owned(),
        Some(s) if s < 0.001 => format!("{:.2} ms", s * 1000.0),
        Some(s) if s < 1.0 => format!("{:.1} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

/// A ratio as a percentage, two decimals below 1% (where an SLO's budget lives); "–"
/// without a whole.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        None => "–".to_owned(),
        Some(r) if r < 0.01 => format!("{:.2}%", r * 100.0),
        Some(r) => format!("{:.1}%", r * 100.0),
    }
}
