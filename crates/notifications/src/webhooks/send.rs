//! One webhook delivery attempt: a JSON POST to a customer's URL, judged into a
//! [`Verdict`] the retry logic can act on without knowing HTTP.
//!
//! The receiving server is untrusted, so the client is locked down: every address goes
//! through the SSRF guard, redirects are never followed (a redirect to
//! `http://169.254.169.254/` would bypass the checks done on the submitted URL), the
//! whole attempt has a deadline, and at most `max_response_bytes` of the response are
//! read.

use std::error::Error as StdError;
use std::io;
use std::time::{Duration, Instant};
use tracing::Instrument;

use chrono::{DateTime, Utc};
use keel_telemetry::outgoing::Outgoing;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Response, StatusCode};

use super::guard::{GuardedResolver, ResolveError, UrlPolicy, UrlProblem};

const USER_AGENT: &str = "Keel-Webhooks/1";
/// A receiver that cannot accept a connection within this is down; waiting longer only
/// holds a worker.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest `Retry-After` honoured: beyond it the receiver is effectively asking us to
/// give up, which the retry schedule decides on its own.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest redirect target quoted in the delivery log.
const MAX_LOCATION_LEN: usize = 256;

/// Sends webhook requests through a locked-down HTTP client. Cheap to share: build one
/// and reuse it, so connections and TLS sessions are pooled.
#[derive(Debug)]
pub struct Sender {
    client: reqwest::Client,
    policy: UrlPolicy,
    timeout: Duration,
    max_response_bytes: usize,
}

/// The outcome of one attempt, for the retry logic and the delivery log.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub verdict: Verdict,
    /// The response status, when a response arrived.
    pub status: Option<u16>,
    /// From the start of the attempt until the response body was read (or abandoned).
    pub latency: Duration,
    /// What went wrong, for the delivery log (None when delivered): e.g. "timed out
    /// after 10s", "HTTP 503", "connection refused", "redirect to https://... not
    /// followed", "blocked: 127.0.0.1 is loopback".
    pub error: Option<String>,
    /// First bytes of the response body (lossy UTF-8, at most `max_response_bytes`),
    /// for the delivery log.
    pub response_excerpt: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Any 2xx.
    Delivered,
    /// Worth retrying: network error, timeout, 5xx, 429. `retry_after` comes from the
    /// `Retry-After` header (delta-seconds or an HTTP-date, capped at one day) when the
    /// receiver sent a valid one.
    Retry {
        kind: FailureKind,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help: other 4xx, 3xx (redirects are not followed), a blocked
    /// address, an invalid URL.
    Fail { kind: FailureKind },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Timeout,
    Connect,
    Http5xx,
    Http429,
    Http4xx,
    Redirect,
    Blocked,
    InvalidUrl,
    Other,
}

impl FailureKind {
    /// Stable label value for metrics and the delivery log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Http5xx => "http_5xx",
            Self::Http429 => "http_429",
            Self::Http4xx => "http_4xx",
            Self::Redirect => "redirect",
            Self::Blocked => "blocked",
            Self::InvalidUrl => "invalid_url",
            Self::Other => "other",
        }
    }
}

impl Sender {
    /// Builds the client: redirects never followed, `timeout` for the whole attempt
    /// (including reading the capped body), connect timeout `min(timeout, 5 s)`, the
    /// [`GuardedResolver`], no proxy from the environment (a proxy would resolve names
    /// itself, past the guard), rustls with the ring provider.
    pub fn new(
        policy: UrlPolicy,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Self, reqwest::Error> {
        // reqwest is built without a crypto provider (the process installs ring, see
        // keel_telemetry::install_tls_provider); this fails harmlessly when one is
        // installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(connect_timeout(timeout))
            .dns_resolver(GuardedResolver::new(policy))
            .user_agent(USER_AGENT)
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            policy,
            timeout,
            max_response_bytes,
        })
    }

    /// POSTs `body` as `application/json` with `headers` to `url`. Never fails: every
    /// failure is an [`Attempt`] with a verdict, so callers have one path to record.
    ///
    /// The URL is checked again first: reqwest does not resolve IP-literal hosts, so
    /// the resolver alone would let `http://127.0.0.1/` through, and the policy may
    /// have changed since the endpoint was saved.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Vec<u8>) -> Attempt {
        let started = Instant::now();
        let url = match self.policy.check_url(url) {
            Ok(url) => url,
            Err(UrlProblem::Forbidden { ip, reason }) => {
                let kind = FailureKind::Blocked;
                return Attempt::failed(
                    started,
                    Verdict::Fail { kind },
                    format!("blocked: {ip} is {reason}"),
                );
            }
            Err(UrlProblem::Invalid(problem)) => {
                let kind = FailureKind::InvalidUrl;
                return Attempt::failed(
                    started,
                    Verdict::Fail { kind },
                    format!("invalid URL: {problem}"),
                );
            }
        };

        let call = Outgoing::start(
            "POST",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(443),
        );
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        if let Some(traceparent) = &call.traceparent {
            request = request.header("traceparent", traceparent);
        }
        let sent = request
            .body(body)
            .send()
            .instrument(call.span.clone())
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                let (verdict, error) = self.classify_error(&e);
                if let Verdict::Retry { kind, .. } | Verdict::Fail { kind } = verdict {
                    call.failed(kind.as_str());
                }
                return Attempt::failed(started, verdict, error);
            }
        };

        let status = response.status();
        call.answered(status.as_u16());
        let (verdict, error) = judge_status(status, response.headers(), Utc::now());
        let body = read_capped(&mut response, self.max_response_bytes).await;
        Attempt {
            verdict,
            status: Some(status.as_u16()),
            latency: started.elapsed(),
            error,
            response_excerpt: lossy_excerpt(&body, self.max_response_bytes),
        }
    }

    /// Verdict and log message for a request that got no response.
    fn classify_error(&self, e: &reqwest::Error) -> (Verdict, String) {
        let retry = |kind| Verdict::Retry {
            kind,
            retry_after: None,
        };
        match find_source::<ResolveError>(e) {
            Some(blocked @ ResolveError::Blocked { .. }) => {
                let kind = FailureKind::Blocked;
                return (Verdict::Fail { kind }, format!("blocked: {blocked}"));
            }
            // Resolution failures are often temporary (DNS outage, record being fixed).
            Some(other) => return (retry(FailureKind::Connect), other.to_string()),
            None => {}
        }
        if e.is_builder() {
            // A header we were given is malformed: our bug, not the receiver's.
            let kind = FailureKind::Other;
            return (
                Verdict::Fail { kind },
                format!("invalid request: {}", root_cause(e)),
            );
        }
        if e.is_timeout() {
            let error = if e.is_connect() {
                format!(
                    "connect timed out after {:?}",
                    connect_timeout(self.timeout)
                )
            } else {
                format!("timed out after {:?}", self.timeout)
            };
            return (retry(FailureKind::Timeout), error);
        }
        if e.is_connect() {
            let error = match find_source::<io::Error>(e).map(io::Error::kind) {
                Some(io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
                _ => format!("connection failed: {}", root_cause(e)),
            };
            return (retry(FailureKind::Connect), error);
        }
        (
            retry(FailureKind::Other),
            format!("request failed: {}", root_cause(e)),
        )
    }
}

impl Attempt {
    fn failed(started: Instant, verdict: Verdict, error: String) -> Self {
        Self {
            verdict,
            status: None,
            latency: started.elapsed(),
            error: Some(error),
            response_excerpt: String::new(),
        }
    }
}

fn connect_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_CONNECT_TIMEOUT)
}

/// Verdict and log message for a response status.
fn judge_status(
    status: StatusCode,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> (Verdict, Option<String>) {
    let code = status.as_u16();
    let http_error = Some(format!("HTTP {code}"));
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now))
    };
    if status.is_success() {
        (Verdict::Delivered, None)
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        let kind = FailureKind::Http429;
        let retry_after = retry_after();
        (Verdict::Retry { kind, retry_after }, http_error)
    } else if status.is_server_error() {
        let kind = FailureKind::Http5xx;
        let retry_after = retry_after();
        (Verdict::Retry { kind, retry_after }, http_error)
    } else if status.is_redirection() {
        let error = match headers.get(LOCATION) {
            Some(location) => {
                let mut target = String::from_utf8_lossy(location.as_bytes()).into_owned();
                truncate_at_char_boundary(&mut target, MAX_LOCATION_LEN);
                format!("redirect to {target} not followed")
            }
            None => format!("HTTP {code} redirect not followed"),
        };
        let kind = FailureKind::Redirect;
        (Verdict::Fail { kind }, Some(error))
    } else if status.is_client_error() {
        let kind = FailureKind::Http4xx;
        (Verdict::Fail { kind }, http_error)
    } else {
        let kind = FailureKind::Other;
        (
            Verdict::Fail { kind },
            Some(format!("unexpected HTTP status {code}")),
        )
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date (a date in the past means now),
/// capped at [`MAX_RETRY_AFTER`]; `None` when unparsable.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is still just "very long".
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Reads at most `cap` bytes of the body. Stopping early is not an error: the excerpt
/// is only for the log, and the status has already decided the verdict. The rest of
/// the body is never downloaded; the connection is dropped instead of reused.
async fn read_capped(response: &mut Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "stopped reading a webhook response body");
                break;
            }
        }
    }
    body
}

/// Lossy UTF-8 of `bytes`, at most `cap` bytes long: the cut may split a character,
/// and replacement characters are longer than the bytes they replace.
fn lossy_excerpt(bytes: &[u8], cap: usize) -> String {
    let mut excerpt = String::from_utf8_lossy(bytes).into_owned();
    truncate_at_char_boundary(&mut excerpt, cap);
    excerpt
}

fn truncate_at_char_boundary(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// The first error of type `T` in `e`'s source chain, `e` included.
fn find_source<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    std::iter::successors(Some(e), |&e| e.source()).find_map(|e| e.downcast_ref::<T>())
}

/// The innermost error: reqwest's own messages are generic ("error sending request").
fn root_cause(e: &(dyn StdError + 'static)) -> String {
    std::iter::successors(Some(e), |&e| e.source())
        .last()
        .map_or_else(String::new, ToString::to_string)
}

#[cfg(test)]
mod tests {
    use crate::webhooks::guard::{LAX, STRICT};
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A one-trick HTTP/1.1 server on 127.0.0.1: answers every request with the same
    /// canned bytes after `delay`, and records the requests it received.
    struct TestServer {
        port: u16,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl TestServer {
        async fn start(response: Vec<u8>, delay: Duration) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let response: Arc<[u8]> = response.into();
            let recorded = Arc::clone(&requests);
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    let (response, recorded) = (Arc::clone(&response), Arc::clone(&recorded));
                    tokio::spawn(async move {
                        let Some(request) = read_request(&mut socket).await else {
                            return;
                        };
                        recorded.lock().unwrap().push(request);
                        tokio::time::sleep(delay).await;
                        // The client may hang up early (body cap): not an error here.
                        let _ = socket.write_all(&response).await;
                        let _ = socket.shutdown().await;
                    });
                }
            });
            Self { port, requests }
        }

        async fn replying(status: &str, headers: &str, body: &str) -> Self {
            Self::start(canned(status, headers, body.as_bytes()), Duration::ZERO).await
        }

        fn url(&self) -> String {
            format!("http://127.0.0.1:{}/hook", self.port)
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn canned(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
        let mut response = format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        response
    }

    /// Reads one request, head and `content-length` body, so the response is never
    /// answered to a half-sent request.
    async fn read_request(socket: &mut TcpStream) -> Option<String> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let body_len = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|len| len.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + body_len {
                    return Some(String::from_utf8_lossy(&buf).into_owned());
                }
            }
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn sender(policy: UrlPolicy) -> Sender {
        Sender::new(policy, Duration::from_secs(5), 1024).unwrap()
    }

    async fn post(sender: &Sender, url: &str) -> Attempt {
        sender.post(url, &[], b"{}".to_vec()).await
    }

    fn fail(kind: FailureKind) -> Verdict {
        Verdict::Fail { kind }
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_with_headers_and_body_sent() {
        let server = TestServer::replying("200 OK", "", "thanks").await;
        let headers = [
            ("keel-event-type", "ping".to_owned()),
            ("keel-delivery-id", "d_1".to_owned()),
        ];
        let attempt = sender(LAX)
            .post(&server.url(), &headers, br#"{"id":"evt_1"}"#.to_vec())
            .await;
        assert_eq!(attempt.verdict, Verdict::Delivered);
        assert_eq!(attempt.status, Some(200));
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.response_excerpt, "thanks");

        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let request = requests[0].to_ascii_lowercase();
        assert!(request.starts_with("post /hook http/1.1\r\n"), "{request}");
        for expected in [
            "content-type: application/json\r\n",
            "user-agent: keel-webhooks/1\r\n",
            "keel-event-type: ping\r\n",
            "keel-delivery-id: d_1\r\n",
        ] {
            assert!(
                request.contains(expected),
                "{expected:?} missing in {request}"
            );
        }
        assert!(request.ends_with("\r\n\r\n{\"id\":\"evt_1\"}"), "{request}");
    }

    #[tokio::test]
    async fn a_503_is_retried_after_the_requested_delay() {
        let server =
            TestServer::replying("503 Service Unavailable", "retry-after: 7\r\n", "").await;
        let attempt = post(&sender(LAX), &server.url()).await;
        assert_eq!(
            attempt.verdict,
            Verdict::Retry {
                kind: FailureKind::Http5xx,
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(attempt.status, Some(503));
        assert_eq!(attempt.error.as_deref(), Some("HTTP 503"));
    }

    #[tokio::test]
    async fn a_429_is_retried() {
        let server = TestServer::replying("429 Too Many Requests", "", "slow down").await;
        let attempt = post(&sender(LAX), &server.url()).await;
        assert_eq!(
            attempt.verdict,
            Verdict::Retry {
                kind: FailureKind::Http429,
                retry_after: None
            }
        );
        assert_eq!(attempt.error.as_deref(), Some("HTTP 429"));
        assert_eq!(attempt.response_excerpt, "slow down");
    }

    #[tokio::test]
    async fn a_404_fails_for_good() {
        let server = TestServer::replying("404 Not Found", "", "no such hook").await;
        let attempt = post(&sender(LAX), &server.url()).await;
        assert_eq!(attempt.verdict, fail(FailureKind::Http4xx));
        assert_eq!(attempt.status, Some(404));
        assert_eq!(attempt.error.as_deref(), Some("HTTP 404"));
        assert_eq!(attempt.response_excerpt, "no such hook");
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let target = TestServer::replying("200 OK", "", "").await;
        let location = format!("location: {}\r\n", target.url());
        let server = TestServer::replying("302 Found", &location, "").await;
        let attempt = post(&sender(LAX), &server.url()).await;
        assert_eq!(attempt.verdict, fail(FailureKind::Redirect));
        assert_eq!(attempt.status, Some(302));
        assert_eq!(
            attempt.error,
            Some(format!("redirect to {} not followed", target.url()))
        );
        assert_eq!(server.requests().len(), 1);
        assert!(target.requests().is_empty());
    }

    #[tokio::test]
    async fn a_hanging_receiver_times_out() {
        let hang = canned("200 OK", "", b"");
        let server = TestServer::start(hang, Duration::from_secs(60)).await;
        let timeout = Duration::from_millis(300);
        let sender = Sender::new(LAX, timeout, 1024).unwrap();
        let attempt = post(&sender, &server.url()).await;
        assert_eq!(
            attempt.verdict,
            Verdict::Retry {
                kind: FailureKind::Timeout,
                retry_after: None
            }
        );
        assert_eq!(attempt.error.as_deref(), Some("timed out after 300ms"));
        assert!(attempt.latency >= timeout, "{:?}", attempt.latency);
        assert!(
            attempt.latency < Duration::from_secs(3),
            "{:?}",
            attempt.latency
        );
    }

    #[tokio::test]
    async fn a_long_body_is_read_up_to_the_cap_only() {
        let body = vec![b'a'; 1 << 20];
        let server = TestServer::start(canned("200 OK", "", &body), Duration::ZERO).await;
        let attempt = post(&sender(LAX), &server.url()).await;
        assert_eq!(attempt.verdict, Verdict::Delivered);
        assert_eq!(attempt.response_excerpt.len(), 1024);
    }

    #[tokio::test]
    async fn private_literal_addresses_are_blocked_without_a_request() {
        let server = TestServer::replying("200 OK", "", "").await;
        let attempt = post(&sender(STRICT), &server.url()).await;
        assert_eq!(attempt.verdict, fail(FailureKind::Blocked));
        assert_eq!(
            attempt.error.as_deref(),
            Some("blocked: 127.0.0.1 is loopback")
        );
        assert_eq!(attempt.status, None);
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn private_names_are_blocked_by_the_resolver() {
        let server = TestServer::replying("200 OK", "", "").await;
        let url = format!("http://localhost:{}/hook", server.port);
        let attempt = post(&sender(STRICT), &url).await;
        assert_eq!(attempt.verdict, fail(FailureKind::Blocked));
        let error = attempt.error.unwrap_or_default();
        assert!(
            error.starts_with("blocked: localhost resolves to "),
            "{error}"
        );
        assert!(error.ends_with("which is loopback"), "{error}");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn cloud_metadata_is_blocked_even_on_private_networks() {
        let attempt = post(&sender(LAX), "http://169.254.169.254/latest/meta-data/").await;
        assert_eq!(attempt.verdict, fail(FailureKind::Blocked));
        assert_eq!(
            attempt.error.as_deref(),
            Some("blocked: 169.254.169.254 is cloud metadata")
        );
    }

    #[tokio::test]
    async fn invalid_urls_and_headers_fail_without_panicking() {
        let attempt = post(&sender(LAX), "ftp://x").await;
        assert_eq!(attempt.verdict, fail(FailureKind::InvalidUrl));
        let error = attempt.error.unwrap_or_default();
        assert!(error.starts_with("invalid URL: "), "{error}");

        let server = TestServer::replying("200 OK", "", "").await;
        let headers = [("bad header", "x".to_owned())];
        let attempt = sender(LAX).post(&server.url(), &headers, Vec::new()).await;
        assert_eq!(attempt.verdict, fail(FailureKind::Other));
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let attempt = post(&sender(LAX), &format!("http://127.0.0.1:{port}/")).await;
        assert_eq!(
            attempt.verdict,
            Verdict::Retry {
                kind: FailureKind::Connect,
                retry_after: None
            }
        );
        assert_eq!(attempt.error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let secs = |s| Some(Duration::from_secs(s));
        let day = secs(86_400);
        let cases: &[(&str, Option<Duration>)] = &[
            ("7", secs(7)),
            (" 120 ", secs(120)),
            ("0", secs(0)),
            ("86401", day),
            ("99999999999999999999999999", day),
            ("Wed, 21 Oct 2015 07:28:30 GMT", secs(90)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", secs(0)),
            ("Thu, 21 Oct 2100 07:28:00 GMT", day),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), *expected, "{value:?}");
        }
    }

    #[test]
    fn excerpts_never_exceed_the_cap() {
        let text = "ééé".as_bytes();
        assert_eq!(lossy_excerpt(&text[..5], 5), "éé");
        assert_eq!(lossy_excerpt(&text[..5], 6), "éé");
        assert_eq!(lossy_excerpt(&text[..5], 7), "éé\u{fffd}");
        assert_eq!(lossy_excerpt(b"\xff\xff", 4), "\u{fffd}");
        assert_eq!(lossy_excerpt(b"abc", 0), "");
    }

    #[test]
    fn failure_kinds_have_distinct_labels() {
        let kinds = [
            FailureKind::Timeout,
            FailureKind::Connect,
            FailureKind::Http5xx,
            FailureKind::Http429,
            FailureKind::Http4xx,
            FailureKind::Redirect,
            FailureKind::Blocked,
            FailureKind::InvalidUrl,
            FailureKind::Other,
        ];
        let labels: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(labels.len(), kinds.len());
        assert_eq!(FailureKind::Http5xx.as_str(), "http_5xx");
        assert_eq!(FailureKind::InvalidUrl.as_str(), "invalid_url");
    }
}
