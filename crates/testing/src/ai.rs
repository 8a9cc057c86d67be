//! A fake AI provider on localhost speaking the OpenAI chat completions API: records
//! what it is asked and answers as planned — a completion, an error status (with
//! `Retry-After` when given), or no answer for a while.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The caption every planned-or-not success answers.
pub const AI_ANSWER: &str = "A small test picture.";

/// How the provider answers its n-th request (0-based); later ones succeed.
#[derive(Debug, Clone, Copy)]
pub enum AiRespond {
    /// A completion with [`AI_ANSWER`].
    Answer,
    /// This status, with `Retry-After: secs` when given.
    Status(u16, Option<u64>),
    /// Nothing for this long, then a completion.
    Hang(Duration),
}

/// One request the provider got.
#[derive(Debug, Clone)]
pub struct AiRequest {
    pub at: Instant,
    pub authorization: String,
    /// The W3C `traceparent` the call carried ("" when absent).
    pub traceparent: String,
    pub body: Value,
}

/// The provider; `base_url` goes in `ai.base_url`.
#[derive(Debug, Clone)]
pub struct FakeAi {
    pub base_url: String,
    seen: Arc<Mutex<Vec<AiRequest>>>,
}

type State = (Arc<Mutex<Vec<AiRequest>>>, Arc<Vec<AiRespond>>);

impl FakeAi {
    pub fn start(plan: Vec<AiRespond>) -> Self {
        let seen: Arc<Mutex<Vec<AiRequest>>> = Arc::default();
        let state: State = (seen.clone(), Arc::new(plan));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/v1/chat/completions", web::post().to(complete))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { base_url, seen }
    }

    /// Everything asked so far, in order.
    pub fn seen(&self) -> Vec<AiRequest> {
        self.seen.lock().expect("lock").clone()
    }

    /// The settings that point Keel at this provider.
    pub fn vars(&self) -> [(&'static str, &str); 3] {
        [
            ("KEEL__AI__BASE_URL", &self.base_url),
            ("KEEL__AI__API_KEY", "sk-test-key"),
            ("KEEL__AI__MODEL", "fake-vision-1"),
        ]
    }
}

async fn complete(
    state: web::Data<State>,
    req: actix_web::HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let n = {
        let header = |name: &str| crate::receiver::header(&req, name);
        let mut seen = state.0.lock().expect("lock");
        seen.push(AiRequest {
            at: Instant::now(),
            authorization: header("authorization"),
            traceparent: header("traceparent"),
            body: body.into_inner(),
        });
        seen.len() - 1
    };
    match state.1.get(n).copied().unwrap_or(AiRespond::Answer) {
        AiRespond::Answer => answer(),
        AiRespond::Status(code, retry_after) => {
            let mut res =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status"));
            if let Some(secs) = retry_after {
                res.insert_header(("retry-after", secs.to_string()));
            }
            res.json(json!({"error": {"message": "the fake provider says no", "type": "test"}}))
        }
        AiRespond::Hang(d) => {
            tokio::time::sleep(d).await;
            answer()
        }
    }
}

fn answer() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "fake-vision-1-2026",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": AI_ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 7, "total_tokens": 127},
    }))
}
