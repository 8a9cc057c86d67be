//! What every Keel test binary shares, so each is written once: the real app with all
//! domains on a free port ([`TestApp`]), the `keel` executable as a child process
//! ([`serve_process`]), users with sessions ([`user`]) and API keys ([`api_key`]), the
//! whole error body checked in one call ([`assert_error`]), waiting for background work
//! ([`eventually`]), and the outside world faked by small real servers: a Redis of the
//! test's own ([`OwnRedis`]), a bucket on the test S3 server ([`S3Bucket`]), a real tus client ([`tus_upload`]), a webhook receiver ([`Receiver`]), an OTLP trace receiver ([`OtlpReceiver`]), an AI provider ([`FakeAi`]) and the mail directory
//! ([`Mailbox`]).
//!
//! A dev-dependency only: it depends on every domain (through the binary), which no
//! shipped crate may.

#![expect(
    clippy::expect_used,
    reason = "test support: a failed expectation is a failed test"
)]

mod ai;
mod app;
mod errors;
mod files;
mod mailbox;
mod net;
mod otlp;
mod process;
mod receiver;
mod redis;
mod s3;
mod tus;
mod users;
mod wait;

pub use ai::{AI_ANSWER, AiRequest, AiRespond, FakeAi};
pub use app::TestApp;
pub use errors::{assert_error, error_body};
pub use files::files_under;
pub use mailbox::Mailbox;
pub use net::free_port;
pub use otlp::{ExportedSpan, OtlpReceiver};
pub use process::{KeelProcess, serve_process, serve_process_logging_to, work_process};
pub use receiver::{Received, Receiver, Respond};
pub use redis::OwnRedis;
pub use s3::S3Bucket;
pub use tus::tus_upload;
pub use users::{PASSWORD, User, api_key, user};
pub use wait::{eventually, wait_until};
