//! The per-organization limits on exports: how many may be queued or running at once
//! (`exports.max_running_per_org`), and how many may be requested per 24 hours
//! (`exports.max_per_org_per_day`, counted in `exports_requests`, which deleting an
//! export does not empty). Checked under a transaction-scoped advisory lock on
//! the organization, so two requests at once cannot both take the last place.

use crate::ExportsError;
use crate::repo::{exports as repo, requests};
use chrono::{Duration, Utc};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_config::ExportsSettings;
use uuid::Uuid;

/// How long a client over the running limit is asked to wait: about one small export.
const RUNNING_RETRY_SECS: u64 = 30;

/// Refuses (429) a new export of `org_id` past either limit. Call it inside the
/// transaction that inserts the export: the lock is held until it ends.
pub async fn check(
    conn: &mut AsyncPgConnection,
    settings: &ExportsSettings,
    org_id: Uuid,
) -> Result<(), ExportsError> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<Text, _>(format!("exports.limits:{org_id}"))
        .execute(conn)
        .await?;
    let running = repo::count_active(conn, org_id).await?;
    if running >= i64::from(settings.max_running_per_org) {
        return Err(ExportsError::Limited {
            message: format!(
                "the organization already has {running} exports queued or running (at most {}); retry when one finishes",
                settings.max_running_per_org
            ),
            retry_after: RUNNING_RETRY_SECS,
        });
    }
    let day = Duration::hours(24);
    let (today, oldest) = requests::since(conn, org_id, Utc::now() - day).await?;
    if today >= i64::from(settings.max_per_org_per_day) {
        let frees_at = oldest.map_or_else(Utc::now, |at| at + day);
        let wait = (frees_at - Utc::now()).num_seconds().max(1);
        return Err(ExportsError::Limited {
            message: format!(
                "the organization has requested {today} exports in the last 24 hours (at most {})",
                settings.max_per_org_per_day
            ),
            retry_after: u64::try_from(wait).unwrap_or(1),
        });
    }
    Ok(())
}
