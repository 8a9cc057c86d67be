//! Test databases: migrated once into a template, cloned per test.
//!
//! Migrating a fresh database for every test is slow; one template per migration set,
//! cloned with `CREATE DATABASE ... TEMPLATE`, takes a few milliseconds per test and lets
//! tests run in parallel without seeing each other's rows. Each clone is dropped when its
//! [`TestDatabase`] is dropped; clones left behind by a killed test run are swept the next
//! time a harness starts (their names carry the creating process id).
//!
//! The server comes from `KEEL_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); the user needs `CREATEDB`.

use crate::error::{DbError, DbResult};
use crate::migrate::run_migrations;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::OnceCell;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Serialises template creation across test processes running at the same time.
const TEMPLATE_LOCK_KEY: i64 = 0x6b65_656c_7465_6d70; // "keeltemp"

static TEMPLATE: OnceCell<String> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The URL of the server's maintenance database that tests administer databases through.
pub fn admin_url() -> String {
    std::env::var("KEEL_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `admin_url` with its database name replaced.
pub fn url_for(database: &str) -> String {
    let admin = admin_url();
    let (base, _) = admin.rsplit_once('/').unwrap_or((admin.as_str(), ""));
    format!("{base}/{database}")
}

/// A database of its own for one test, dropped (forcibly) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// Clones the migrated template into a new database.
    pub async fn new() -> DbResult<Self> {
        let template = TEMPLATE.get_or_try_init(prepare_template).await?;
        let name = format!(
            "keel_test_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut admin = connect_admin().await?;
        // Another session still attached to the template (rare: its creator closing)
        // makes CREATE DATABASE fail; a short retry covers it.
        let mut tries = 0;
        loop {
            let created =
                diesel::sql_query(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#))
                    .execute(&mut admin)
                    .await;
            match created {
                Ok(_) => break,
                Err(e) if tries < 20 => {
                    tries += 1;
                    tracing::debug!(error = %e, "template busy, retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let url = url_for(&name);
        Ok(Self { name, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own runtime so the
        // database is really gone before the next test starts.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(drop_database(&name));
            }
        })
        .join();
        if dropped.is_err() {
            tracing::warn!("dropping a test database panicked");
        }
    }
}

async fn connect_admin() -> DbResult<AsyncPgConnection> {
    AsyncPgConnection::establish(&admin_url())
        .await
        .map_err(|e| DbError::Unavailable(format!("test database server: {e}")))
}

async fn drop_database(name: &str) {
    if let Ok(mut admin) = connect_admin().await {
        let result = diesel::sql_query(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
            .execute(&mut admin)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, database = name, "could not drop test database");
        }
    }
}

#[derive(diesel::QueryableByName)]
struct DatName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Creates (once per migration set, across processes) the migrated template and returns
/// its name; also sweeps clones whose creating process is gone.
async fn prepare_template() -> DbResult<String> {
    let name = format!("keel_template_{}", migrations_fingerprint());
    let mut admin = connect_admin().await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await?;
    let result = create_template_locked(&mut admin, &name).await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(TEMPLATE_LOCK_KEY)
        .execute(&mut admin)
        .await?;
    result.map(|()| name)
}

/// Templates of other migration sets kept, newest first: several checkouts (branches,
/// CI clones) may run tests against one server at the same time, each with its own.
const TEMPLATES_KEPT: usize = 5;

async fn create_template_locked(admin: &mut AsyncPgConnection, name: &str) -> DbResult<()> {
    // Newest first (database OIDs grow with creation).
    let existing: Vec<DatName> = diesel::sql_query(
        "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'keel\\_t%' ORDER BY oid DESC",
    )
    .load(admin)
    .await?;
    let mut templates_seen = 0;
    for db in &existing {
        if db.datname == name {
            continue;
        }
        let stale =
            if db.datname.starts_with("keel_template_") && !db.datname.ends_with("_building") {
                templates_seen += 1;
                templates_seen > TEMPLATES_KEPT
            } else {
                is_stale(&db.datname)
            };
        if stale {
            drop_database(&db.datname).await;
        }
    }
    if existing.iter().any(|d| d.datname == name) {
        return Ok(());
    }
    let building = format!("{name}_building");
    diesel::sql_query(format!(
        r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#
    ))
    .execute(admin)
    .await?;
    diesel::sql_query(format!(r#"CREATE DATABASE "{building}""#))
        .execute(admin)
        .await?;
    run_migrations(&url_for(&building)).await?;
    // Renaming only after the migrations succeeded means a template that exists is complete.
    diesel::sql_query(format!(r#"ALTER DATABASE "{building}" RENAME TO "{name}""#))
        .execute(admin)
        .await?;
    Ok(())
}

/// A clone whose creating process no longer runs, or an unfinished template build.
fn is_stale(datname: &str) -> bool {
    if datname.starts_with("keel_template_") {
        return true;
    }
    let pid = datname
        .strip_prefix("keel_test_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|pid| pid.parse::<u32>().ok());
    match pid {
        Some(pid) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    }
}

/// Changes whenever a migration file changes (computed by `build.rs`), so an edited
/// migration produces a new template instead of reusing a stale one.
fn migrations_fingerprint() -> &'static str {
    env!("KEEL_MIGRATIONS_FINGERPRINT")
}
