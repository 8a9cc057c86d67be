//! The AI task: a one-sentence caption of an image (from its thumbnail) or a short
//! summary of a text file, through an OpenAI-compatible chat completions API. It is a
//! [`Processor`] that runs apart — in its own job kind, `uploads.ai_task`, with its own
//! concurrency limit (`ai.concurrency`) — after the upload is `ready`: a slow or failing
//! provider never holds an upload back, and a provider's rate limit bounds only these
//! jobs. It records the model, the token usage and the latency with the upload, under
//! `results.processors.ai`.

mod breaker;
mod client;

use crate::process::{Content, FileFacts, ProcessError, Processor, Verdict};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use client::Provider;
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_config::AiSettings;
use keel_storage::ByteRange;
use serde_json::json;

/// The AI task (see the module documentation). Built only when `ai.base_url` is set.
#[derive(Debug)]
pub struct AiProcessor {
    provider: Provider,
    max_text_bytes: usize,
}

impl AiProcessor {
    /// `None` when the AI task is off (`ai.base_url` empty).
    pub fn from_settings(settings: &AiSettings) -> anyhow::Result<Option<Self>> {
        if !settings.enabled() {
            return Ok(None);
        }
        Ok(Some(Self {
            provider: Provider::new(settings)?,
            max_text_bytes: settings.max_text_bytes,
        }))
    }
}

/// What is asked for a file, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    Caption,
    Summary,
}

fn task_for(file: &FileFacts) -> Option<Task> {
    let t = file.detected_type.as_str();
    if matches!(t, "image/png" | "image/jpeg" | "image/gif" | "image/webp") {
        Some(Task::Caption)
    } else if t.starts_with("text/") || t == "application/json" {
        Some(Task::Summary)
    } else {
        None
    }
}

impl Processor for AiProcessor {
    fn name(&self) -> &'static str {
        "ai"
    }

    fn accepts(&self, file: &FileFacts) -> bool {
        task_for(file).is_some()
    }

    fn deferred(&self) -> bool {
        true
    }

    fn process<'a>(
        &'a self,
        file: &'a FileFacts,
        content: &'a Content<'a>,
    ) -> BoxFuture<'a, Result<Verdict, ProcessError>> {
        async move {
            let Some(task) = task_for(file) else {
                return Ok(Verdict::Accept(None));
            };
            let message = match task {
                Task::Caption => {
                    // The thumbnail: a few kilobytes instead of the original's megabytes.
                    let Some(png) = content.read_derived("thumbnail.png").await? else {
                        return Ok(Verdict::Accept(None));
                    };
                    json!([
                        {"type": "text", "text": "Describe this image in one sentence, for a list of files."},
                        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", STANDARD.encode(png))}},
                    ])
                }
                Task::Summary => {
                    let end = (self.max_text_bytes as u64).min(file.size);
                    let head = content.read_range(ByteRange::Bounded(0, end)).await?;
                    let text = String::from_utf8_lossy(&head);
                    json!(format!(
                        "Summarize this file ({}) in at most three sentences:\n\n{text}",
                        file.file_name
                    ))
                }
            };
            let done = self.provider.complete(message).await?;
            Ok(Verdict::Accept(Some(json!({
                "task": match task { Task::Caption => "caption", Task::Summary => "summary" },
                "output": done.output,
                "provider": self.provider.name,
                "model": if done.model.is_empty() { self.provider.model.clone() } else { done.model },
                "usage": {
                    "prompt_tokens": done.prompt_tokens,
                    "completion_tokens": done.completion_tokens,
                    "total_tokens": done.prompt_tokens + done.completion_tokens,
                },
                "latency_ms": u64::try_from(done.latency.as_millis()).unwrap_or(u64::MAX),
            }))))
        }
        .boxed()
    }
}
