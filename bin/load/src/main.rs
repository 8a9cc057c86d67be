//! `keel-load`: the load generator of the mixed-workload benchmarks (`just bench-1m`,
//! `just bench-scale`).
//!
//! wrk sends one request over and over, and wrk2 (open loop) is not packaged here; these
//! benchmarks need a *mix* — thousands of users' tokens, reads and writes — sent an exact
//! number of times, closed-loop and open-loop at a given rate with the latency counted
//! from when each request was due. It prints one JSON object on stdout:
//!
//! ```text
//! {"requests":1000000,"seconds":21.4,"rps":46729,"p50_ms":1.1,"p99_ms":6.2,"p999_ms":14.0,
//!  "max_ms":40.3,"errors":0,"transport_errors":0,"statuses":{"200":990000,"202":10000}}
//! ```
//!
//! Usage: `keel-load --addr 127.0.0.1:8080 --requests FILE --count N [--connections N]
//! [--rate PER_SECOND] [--threads N] [--timeout-secs N]` (defaults: 64 connections, closed
//! loop, one thread, 10 s). The request file's format is in `plan.rs`.

mod drive;
mod plan;
mod tally;

use drive::{Run, drive};
use std::net::SocketAddr;
use std::time::Duration;
use tally::Tally;

const USAGE: &str = "usage: keel-load --addr HOST:PORT --requests FILE --count N [--connections N] [--rate PER_SECOND] [--threads N] [--timeout-secs N]";

/// The command line, parsed.
#[derive(Debug)]
struct Options {
    addr: SocketAddr,
    requests: String,
    count: u64,
    connections: usize,
    rate: Option<f64>,
    threads: usize,
    timeout: Duration,
}

fn options(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let (mut addr, mut requests, mut count) = (None, None, None);
    let (mut connections, mut rate, mut threads, mut timeout) = (64, None, 1, 10);
    let mut args = args;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}\n{USAGE}");
        match flag.as_str() {
            "--addr" => addr = Some(value.parse::<SocketAddr>().map_err(|e| bad(&e))?),
            "--requests" => requests = Some(value),
            "--count" => count = Some(value.parse::<u64>().map_err(|e| bad(&e))?),
            "--connections" => connections = value.parse().map_err(|e| bad(&e))?,
            "--rate" => rate = Some(value.parse::<f64>().map_err(|e| bad(&e))?),
            "--threads" => threads = value.parse().map_err(|e| bad(&e))?,
            "--timeout-secs" => timeout = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let missing = |name: &str| format!("{name} is required\n{USAGE}");
    if connections == 0 || threads == 0 || rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(format!(
            "--connections, --threads and --rate must be positive\n{USAGE}"
        ));
    }
    Ok(Options {
        addr: addr.ok_or_else(|| missing("--addr"))?,
        requests: requests.ok_or_else(|| missing("--requests"))?,
        count: count.ok_or_else(|| missing("--count"))?,
        connections,
        rate,
        threads,
        timeout: Duration::from_secs(timeout),
    })
}

fn main() -> std::process::ExitCode {
    match run(std::env::args().skip(1)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: impl Iterator<Item = String>) -> Result<(), String> {
    let options = options(args)?;
    let text = std::fs::read_to_string(&options.requests)
        .map_err(|e| format!("{}: {e}", options.requests))?;
    let plan = plan::parse(&text).map_err(|e| format!("{}: {e}", options.requests))?;
    let empty = Tally::new().map_err(|e| e.to_string())?;
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let run = Run {
        addr: options.addr,
        plan,
        count: options.count,
        connections: options.connections,
        rate: options.rate,
        timeout: options.timeout,
    };
    let (tally, elapsed) = runtime.block_on(drive(run, &empty));
    report(&tally, elapsed);
    Ok(())
}

#[expect(clippy::print_stdout, reason = "the report is the program's output")]
fn report(tally: &Tally, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let statuses: serde_json::Map<String, serde_json::Value> = tally
        .statuses
        .iter()
        .map(|(status, n)| (status.to_string(), (*n).into()))
        .collect();
    let report = serde_json::json!({
        "requests": tally.requests(),
        "seconds": (seconds * 100.0).round() / 100.0,
        "rps": (tally.requests() as f64 / seconds.max(1e-9)).round(),
        "p50_ms": tally.millis_at(0.5),
        "p99_ms": tally.millis_at(0.99),
        "p999_ms": tally.millis_at(0.999),
        "max_ms": tally.millis_at(1.0),
        "errors": tally.errors(),
        "transport_errors": tally.transport_errors,
        "statuses": statuses,
    });
    println!("{report}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> impl Iterator<Item = String> {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn the_command_line_is_read_with_defaults() {
        let o = options(args("--addr 127.0.0.1:8080 --requests r.tsv --count 10")).expect("valid");
        assert_eq!(
            (o.count, o.connections, o.threads, o.rate),
            (10, 64, 1, None)
        );
        let o = options(args(
            "--addr 127.0.0.1:1 --requests r --count 1 --rate 500.5 --connections 8",
        ))
        .expect("valid");
        assert_eq!(o.rate, Some(500.5));
        assert_eq!(o.connections, 8);
    }

    #[test]
    fn a_wrong_command_line_says_what_is_wrong() {
        assert!(
            options(args("--requests r --count 1"))
                .expect_err("no addr")
                .contains("--addr")
        );
        assert!(options(args("--addr nope --requests r --count 1")).is_err());
        assert!(options(args("--addr 127.0.0.1:1 --requests r --count 1 --rate 0")).is_err());
        assert!(options(args("--addr 127.0.0.1:1 --bogus 1")).is_err());
    }
}
