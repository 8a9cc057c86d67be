//! The command line: `keel serve | work | all | migrate | jobs ...`.

use crate::platform::Platform;
use crate::run::{self, Role};
use clap::{Parser, Subcommand};
use keel_config::Settings;
use keel_persistence::AsyncConnection as _;
use std::io::Write;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "keel",
    version,
    about = "Keel: API server and job workers in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API only.
    Serve,
    /// Run the job workers, the reconciler and periodic jobs only (health and metrics on
    /// `server.worker_port`).
    Work,
    /// Run the API and the workers in one process.
    All,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect and repair the job queue.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Print the OpenAPI document (JSON) the API serves at `/api/openapi.json`, for
    /// client generators and contract tests; needs no running server.
    Openapi,
    /// Publish test events to an organization, as a domain would (checks webhooks and
    /// notifications end to end; `just bench-fanout` uses it).
    PublishEvents {
        /// The organization (tenant).
        #[arg(long)]
        org: Uuid,
        #[arg(long, default_value = "keel.test_event")]
        event_type: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Who is told in-app and by email: nobody (webhooks only), admins or members.
        #[arg(long, default_value = "nobody")]
        audience: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Backlog by job kind (JSON).
    Counts,
    /// Dead jobs, most recent first (JSON lines).
    Dead {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One job's state (JSON).
    Status { id: Uuid },
    /// Give a dead job a fresh set of attempts.
    Retry { id: Uuid },
    /// Run one reconciler pass now.
    Reconcile,
}

impl Cli {
    pub async fn execute(self, settings: Settings) -> anyhow::Result<()> {
        match self.command {
            Command::Serve => run::run(Platform::new(settings)?, Role::Serve).await,
            Command::Work => run::run(Platform::new(settings)?, Role::Work).await,
            Command::All => run::run(Platform::new(settings)?, Role::All).await,
            Command::Migrate => {
                let applied =
                    keel_persistence::run_migrations(settings.database.url.expose()).await?;
                tracing::info!(count = applied.len(), ?applied, "migrations applied");
                Ok(())
            }
            Command::Jobs(cmd) => jobs(Platform::new(settings)?, cmd).await,
            Command::Openapi => {
                let platform = Platform::new(settings)?;
                let domains = crate::domains::Domains::new(&platform)?;
                let doc = crate::routes::docs::openapi(
                    &crate::server::routes(&domains),
                    platform.settings.server.metrics_on_api_port,
                );
                writeln!(std::io::stdout().lock(), "{}", doc.to_pretty_json()?)?;
                Ok(())
            }
            Command::PublishEvents {
                org,
                event_type,
                count,
                audience,
            } => publish_events(Platform::new(settings)?, org, event_type, count, &audience).await,
        }
    }
}

async fn jobs(platform: Platform, cmd: JobsCommand) -> anyhow::Result<()> {
    let queue = &platform.queue;
    let mut out = std::io::stdout().lock();
    match cmd {
        JobsCommand::Counts => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&queue.counts().await?)?
        )?,
        JobsCommand::Dead { limit } => {
            for job in queue.dead_jobs(limit, None).await? {
                writeln!(out, "{}", serde_json::to_string(&job)?)?;
            }
        }
        JobsCommand::Status { id } => match queue.status(id).await? {
            Some(job) => writeln!(out, "{}", serde_json::to_string_pretty(&job)?)?,
            None => anyhow::bail!("no job {id}"),
        },
        JobsCommand::Retry { id } => {
            if !queue.retry_dead(id).await? {
                anyhow::bail!("job {id} does not exist or is not dead");
            }
            writeln!(out, "job {id} queued again")?;
        }
        JobsCommand::Reconcile => writeln!(out, "{:?}", queue.reconcile_now().await?)?,
    }
    Ok(())
}

/// Publishes `count` events, 100 per transaction, each through the notifications
/// publisher exactly as a domain does, and rings their fan-out jobs.
async fn publish_events(
    platform: Platform,
    org_id: Uuid,
    event_type: String,
    count: u32,
    audience: &str,
) -> anyhow::Result<()> {
    use keel_events::{Audience, Event};
    let audience = match audience {
        "nobody" => Audience::Nobody,
        "admins" => Audience::Admins,
        "members" => Audience::Members,
        other => anyhow::bail!("--audience must be nobody, admins or members, not {other:?}"),
    };
    let notifications = crate::domains::Domains::new(&platform)?.notifications;
    let mut sent = 0;
    while sent < count {
        let batch = (count - sent).min(100);
        let (n, event_type, audience) =
            (notifications.clone(), event_type.clone(), audience.clone());
        let rings = platform
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let mut rings = Vec::with_capacity(batch as usize);
                for i in 0..batch {
                    let event = Event {
                        event_type: event_type.clone(),
                        org_id,
                        audience: audience.clone(),
                        title: "A test event".to_owned(),
                        body: "Published with `keel publish-events`.".to_owned(),
                        link: None,
                        data: serde_json::json!({ "sequence": sent + i }),
                    };
                    rings.push(n.publish_on(conn, &event).await?);
                }
                Ok::<_, keel_persistence::DbError>(rings)
            })
            .await?;
        platform.queue.ring(rings).await;
        sent += batch;
    }
    writeln!(std::io::stdout(), "published {sent} events")?;
    Ok(())
}
