//! The call to an OpenAI-compatible chat completions API, and what its failures mean:
//! timeouts, connection failures, 429 and 5xx are worth another attempt (after the
//! provider's `Retry-After` when it gives one); other 4xx, and a 429 for an exhausted
//! quota, are not. Every call is counted per provider: attempts, failures by kind,
//! latency, tokens, and the breaker's state.

use super::breaker::Breaker;
use crate::process::ProcessError;
use keel_config::AiSettings;
use keel_telemetry::outgoing::Outgoing;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What the model answered, and what it cost.
#[derive(Debug, Clone)]
pub(crate) struct Completion {
    pub model: String,
    pub output: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency: Duration,
}

/// The `kind` label values of `keel_ai_failures_total` (see [`Provider::call`]).
const FAILURE_KINDS: [&str; 7] = [
    "timeout",
    "connect",
    "invalid_response",
    "quota",
    "http_429",
    "http_5xx",
    "http_4xx",
];

/// The provider: its endpoint, credentials, breaker and metrics label.
#[derive(Debug)]
pub(crate) struct Provider {
    http: reqwest::Client,
    url: String,
    api_key: String,
    pub model: String,
    /// The provider's host: the metrics label.
    pub name: String,
    /// The provider's port, for the client span's `server.port`.
    port: u16,
    breaker: Breaker,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    model: Option<String>,
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl Provider {
    pub fn new(settings: &AiSettings) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = settings.base_url.trim_end_matches('/');
        let parsed = reqwest::Url::parse(base).ok();
        let name = parsed
            .as_ref()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let port = parsed
            .and_then(|u| u.port_or_known_default())
            .unwrap_or(443);
        let provider = Self {
            http: reqwest::Client::builder()
                .timeout(settings.timeout())
                .user_agent("Keel-AI/1")
                .build()?,
            url: format!("{base}/chat/completions"),
            api_key: settings.api_key.expose().clone(),
            model: settings.model.clone(),
            name,
            port,
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cooldown()),
        };
        // Present from the start (the breaker closed, no failures), so a dashboard and an
        // alert see the provider before its first failure.
        provider.breaker_gauge();
        for kind in FAILURE_KINDS {
            metrics::counter!("keel_ai_failures_total", "provider" => provider.name.clone(), "kind" => kind)
                .increment(0);
        }
        Ok(provider)
    }

    /// One chat completion of `content` (the user message's parts).
    pub async fn complete(&self, content: Value) -> Result<Completion, ProcessError> {
        if let Some(wait) = self.breaker.wait() {
            return Err(ProcessError::Deferred(
                wait,
                format!("the circuit breaker of AI provider {} is open", self.name),
            ));
        }
        let body = json!({
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": 200,
        });
        let mut request = self.http.post(&self.url).json(&body);
        if !self.api_key.is_empty() {
            request = request.bearer_auth(&self.api_key);
        }
        let call = Outgoing::start("POST", &self.name, self.port);
        if let Some(traceparent) = &call.traceparent {
            request = request.header("traceparent", traceparent);
        }
        let started = Instant::now();
        let result = self
            .call(request, &call)
            .instrument(call.span.clone())
            .await;
        let latency = started.elapsed();
        let provider = self.name.clone();
        metrics::histogram!("keel_ai_latency_seconds", "provider" => provider.clone())
            .record(latency.as_secs_f64());
        match result {
            Ok(mut completion) => {
                self.breaker.succeeded();
                completion.latency = latency;
                metrics::counter!("keel_ai_attempts_total", "provider" => provider.clone(), "outcome" => "ok")
                    .increment(1);
                metrics::counter!("keel_ai_tokens_total", "provider" => provider.clone(), "kind" => "prompt")
                    .increment(completion.prompt_tokens);
                metrics::counter!("keel_ai_tokens_total", "provider" => provider.clone(), "kind" => "completion")
                    .increment(completion.completion_tokens);
                self.breaker_gauge();
                Ok(completion)
            }
            Err((kind, error)) => {
                let retried = !matches!(error, ProcessError::Permanent(_));
                if !retried {
                    // The request's own fault (a 4xx): the provider answered, so it is up.
                    self.breaker.succeeded();
                } else if self.breaker.failed() {
                    tracing::warn!(ai.provider = %self.name, "AI provider circuit breaker opened");
                }
                metrics::counter!("keel_ai_attempts_total", "provider" => provider.clone(),
                    "outcome" => if retried { "retry" } else { "failed" })
                .increment(1);
                metrics::counter!("keel_ai_failures_total", "provider" => provider, "kind" => kind)
                    .increment(1);
                self.breaker_gauge();
                Err(error)
            }
        }
    }

    fn breaker_gauge(&self) {
        metrics::gauge!("keel_ai_breaker_open", "provider" => self.name.clone())
            .set(if self.breaker.is_open() { 1.0 } else { 0.0 });
    }

    /// The call and its answer, or the failure's kind (a metrics label) and meaning.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        outgoing: &Outgoing,
    ) -> Result<Completion, (&'static str, ProcessError)> {
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timeout" } else { "connect" };
            outgoing.failed(kind);
            (
                kind,
                ProcessError::Transient(anyhow::anyhow!("AI provider: {kind}: {e}")),
            )
        })?;
        let status = response.status();
        outgoing.answered(status.as_u16());
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.map_err(|e| {
            let kind = if e.is_timeout() { "timeout" } else { "connect" };
            (
                kind,
                ProcessError::Transient(anyhow::anyhow!("AI provider: reading the answer: {e}")),
            )
        })?;
        if status.is_success() {
            return parse(&text).map_err(|e| ("invalid_response", ProcessError::Transient(e)));
        }
        let why = anyhow::anyhow!("AI provider answered {status}: {}", snippet(&text));
        Err(match status.as_u16() {
            // An exhausted quota or billing problem will not fix itself in minutes.
            429 if text.contains("insufficient_quota") => ("quota", ProcessError::Permanent(why)),
            429 => ("http_429", retry(retry_after, why)),
            500..=599 => ("http_5xx", retry(retry_after, why)),
            _ => ("http_4xx", ProcessError::Permanent(why)),
        })
    }
}

fn retry(after: Option<Duration>, why: anyhow::Error) -> ProcessError {
    match after {
        Some(after) => ProcessError::RetryAfter(after, why),
        None => ProcessError::Transient(why),
    }
}

fn parse(text: &str) -> anyhow::Result<Completion> {
    let response: Response = serde_json::from_str(text)?;
    let output = response
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| anyhow::anyhow!("AI provider answered no message"))?;
    let usage = response.usage.unwrap_or_default();
    Ok(Completion {
        model: response.model.unwrap_or_default(),
        output: output.trim().to_owned(),
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        latency: Duration::ZERO,
    })
}

/// The start of an error body, for the log and the upload's record.
fn snippet(text: &str) -> String {
    text.chars().take(200).collect()
}
