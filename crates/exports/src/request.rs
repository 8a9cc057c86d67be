//! A request for an export, checked against the sources: the source exists, the format
//! is known, every filter is one the source takes with a value it accepts.

use crate::ExportsError;
use crate::model::ExportFormat;
use crate::source::{DataSource, Scope, Sources};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The body of `POST .../exports`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExport {
    /// What to export: a source's name (`GET .../exports/sources`).
    pub source: String,
    /// `csv` (default) or `ndjson`.
    #[serde(default)]
    pub format: Option<ExportFormat>,
    /// `created_after` / `created_before` (RFC 3339, on the rows' creation time) and the
    /// source's own filters, each a text.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filters: Map<String, Value>,
    /// Gzip the file (`.gz`, served as `application/gzip`).
    #[serde(default)]
    pub compress: bool,
}

/// The time-range filters every source takes.
pub const CREATED_AFTER: &str = "created_after";
pub const CREATED_BEFORE: &str = "created_before";

/// Longest value of a text filter.
const MAX_FILTER_CHARS: usize = 200;

/// A request that passed every check.
#[derive(Debug)]
pub struct Validated {
    pub source: &'static str,
    pub format: ExportFormat,
    pub compress: bool,
    /// The filters, normalised (timestamps in RFC 3339 UTC).
    pub filters: Value,
}

impl Validated {
    pub fn check(sources: &Sources, input: NewExport) -> Result<Self, ExportsError> {
        let source = sources.get(&input.source).ok_or_else(|| {
            ExportsError::invalid(
                "source",
                format!(
                    "unknown source `{}`; one of: {}",
                    input.source,
                    sources.names().join(", ")
                ),
            )
        })?;
        let filters = check_filters(source.as_ref(), input.filters)?;
        Ok(Self {
            source: source.info().name,
            format: input.format.unwrap_or(ExportFormat::Csv),
            compress: input.compress,
            filters,
        })
    }

    /// `members-20261201-142530.csv.gz`
    pub fn file_name(&self, at: DateTime<Utc>) -> String {
        let gz = if self.compress { ".gz" } else { "" };
        format!(
            "{}-{}.{}{gz}",
            self.source,
            at.format("%Y%m%d-%H%M%S"),
            self.format.extension()
        )
    }
}

fn check_filters(
    source: &dyn DataSource,
    given: Map<String, Value>,
) -> Result<Value, ExportsError> {
    let mut normal = Map::new();
    let mut range = (None, None);
    for (name, value) in given {
        let field = format!("filters.{name}");
        if name == CREATED_AFTER || name == CREATED_BEFORE {
            let at = value
                .as_str()
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|at| at.with_timezone(&Utc))
                // Years past these do not survive RFC 3339 (a signed or five-digit year).
                .filter(|at| (1..=9999).contains(&at.year()))
                .ok_or_else(|| {
                    ExportsError::invalid(
                        &field,
                        "must be an RFC 3339 timestamp between the years 1 and 9999, e.g. 2026-12-01T00:00:00Z",
                    )
                })?;
            if name == CREATED_AFTER {
                range.0 = Some(at);
            } else {
                range.1 = Some(at);
            }
            normal.insert(name, Value::String(at.to_rfc3339()));
            continue;
        }
        let Some(spec) = source.info().filters.iter().find(|f| f.name == name) else {
            let mut known = vec![CREATED_AFTER, CREATED_BEFORE];
            known.extend(source.info().filters.iter().map(|f| f.name));
            return Err(ExportsError::invalid(
                &field,
                format!(
                    "`{}` takes no filter `{name}`; it takes: {}",
                    source.info().name,
                    known.join(", ")
                ),
            ));
        };
        let Some(text) = value
            .as_str()
            .filter(|t| !t.is_empty() && t.chars().count() <= MAX_FILTER_CHARS)
        else {
            return Err(ExportsError::invalid(
                &field,
                format!("must be a text of 1 to {MAX_FILTER_CHARS} characters"),
            ));
        };
        if let Some(values) = spec.values
            && !values.contains(&text)
        {
            return Err(ExportsError::invalid(
                &field,
                format!("must be one of: {}", values.join(", ")),
            ));
        }
        normal.insert(name, Value::String(text.to_owned()));
    }
    if let (Some(after), Some(before)) = range
        && after >= before
    {
        return Err(ExportsError::invalid(
            format!("filters.{CREATED_BEFORE}"),
            "must be later than created_after",
        ));
    }
    Ok(Value::Object(normal))
}

/// The scope of a stored export: its organization, its filters, and the moment it was
/// requested as the upper bound of what it reads. A stored filter that does not read
/// back (never, unless the row was changed by hand) fails the export rather than being
/// dropped: a filter silently ignored would export more than was asked for.
pub fn scope_of(
    org_id: Uuid,
    filters: &Value,
    requested_at: DateTime<Utc>,
) -> Result<Scope, String> {
    let Some(filters) = filters.as_object() else {
        return Err("the export's filters are not an object".to_owned());
    };
    let mut range = (None, None);
    let mut own = BTreeMap::new();
    for (name, value) in filters {
        let unreadable = || format!("the export's filter `{name}` cannot be read");
        let text = value.as_str().ok_or_else(unreadable)?;
        if name == CREATED_AFTER || name == CREATED_BEFORE {
            let at = DateTime::parse_from_rfc3339(text)
                .map_err(|_| unreadable())?
                .with_timezone(&Utc);
            if name == CREATED_AFTER {
                range.0 = Some(at);
            } else {
                range.1 = Some(at);
            }
        } else {
            own.insert(name.clone(), text.to_owned());
        }
    }
    let before = range.1.map_or(requested_at, |at| at.min(requested_at));
    Ok(Scope::new(org_id, range.0, before, own))
}
