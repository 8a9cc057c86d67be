//! `keel`: see `keel --help`.

use clap::Parser;
use keel::cli::Cli;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: a request allocates and frees dozens of
/// small objects (headers, JSON, futures), and glibc's malloc/free cost about 6% of a
/// cached route's CPU. Measured in docs/benchmarks.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A bad setting stops start-up with one line naming the key.
    let settings = match keel_config::Settings::load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("keel: {e}");
            return ExitCode::from(2);
        }
    };
    // Multi-threaded: diesel-async's migration harness needs `block_in_place`.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let telemetry = match keel_telemetry::init(&settings.telemetry) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("keel: {e}");
                return ExitCode::from(2);
            }
        };
        let result = cli.execute(settings).await;
        telemetry.shutdown();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "keel failed");
                eprintln!("keel: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
