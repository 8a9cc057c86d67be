//! The command line: `keel serve | work | all | migrate | jobs ...`.

use crate::platform::Platform;
use crate::run::{self, Role};
use clap::{Parser, Subcommand};
use keel_config::Settings;
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
