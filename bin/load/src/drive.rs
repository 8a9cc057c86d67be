//! Sends the requests: a fixed number over a fixed set of keep-alive connections.
//!
//! Closed loop, each connection sends its next request when the previous answer is in:
//! the run measures how fast the server goes. Open loop (`rate`), request `i` is *due*
//! at `start + i / rate` whatever happened before, and its latency is counted from that
//! moment, not from when a free connection sent it: a server that stalls is charged for
//! every request that waited behind the stall (no coordinated omission, as wrk2 and
//! `oha --latency-correction` do it).

use crate::plan::Template;
use crate::tally::Tally;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// What a run sends, and how.
#[derive(Debug)]
pub struct Run {
    pub addr: SocketAddr,
    pub plan: Vec<Template>,
    pub count: u64,
    pub connections: usize,
    /// Requests per second for an open-loop run; `None`: closed loop.
    pub rate: Option<f64>,
    /// The longest a request may take before it counts as unanswered.
    pub timeout: Duration,
}

/// The state the connections share.
struct Shared {
    run: Run,
    host: HeaderValue,
    /// What `{run}` becomes in the requests.
    id: String,
    next: AtomicU64,
    start: Instant,
}

/// Runs the requests; returns the merged tally and the time the run took.
pub async fn drive(run: Run, empty: &Tally) -> (Tally, Duration) {
    let host = HeaderValue::from_str(&run.addr.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let shared = Arc::new(Shared {
        host,
        id: format!("{}-{}", started.as_nanos(), std::process::id()),
        next: AtomicU64::new(0),
        start: Instant::now(),
        run,
    });
    let tasks: Vec<_> = (0..shared.run.connections)
        .map(|_| {
            let shared = Arc::clone(&shared);
            let tally = Tally::like(&empty.latency);
            tokio::spawn(connection(shared, tally))
        })
        .collect();
    let mut total = Tally::like(&empty.latency);
    for task in tasks {
        if let Ok(tally) = task.await {
            total.merge(tally);
        }
    }
    (total, shared.start.elapsed())
}

/// One connection's loop: takes the next request number until there is none left.
async fn connection(shared: Arc<Shared>, mut tally: Tally) -> Tally {
    let mut sender = None;
    let run = &shared.run;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        if i >= run.count {
            return tally;
        }
        let due = match run.rate {
            Some(rate) => {
                let due = shared.start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due).await;
                due
            }
            None => Instant::now(),
        };
        let template = &run.plan[(i % run.plan.len() as u64) as usize];
        let answer =
            tokio::time::timeout(run.timeout, send(&mut sender, &shared, template, i)).await;
        match answer {
            Ok(Ok(status)) => tally.answered(status, due.elapsed()),
            _ => {
                // The connection is in an unknown state: a new one for the next request.
                sender = None;
                tally.transport_errors += 1;
            }
        }
    }
}

/// Sends one request on the connection (opening it first when there is none) and reads
/// the whole answer; returns its status.
async fn send(
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    shared: &Shared,
    template: &Template,
    n: u64,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>> {
    let mut open = match sender.take() {
        Some(open) if !open.is_closed() => open,
        _ => connect(shared.run.addr).await?,
    };
    open.ready().await?;
    let response = open
        .send_request(template.request(&shared.host, &shared.id, n)?)
        .await?;
    let status = response.status().as_u16();
    let keep_alive = !response
        .headers()
        .get(hyper::header::CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    response.into_body().collect().await?;
    if keep_alive {
        *sender = Some(open);
    }
    Ok(status)
}

async fn connect(
    addr: SocketAddr,
) -> Result<SendRequest<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}
