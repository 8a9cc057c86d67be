//! The AI task against a fake OpenAI-compatible provider on localhost: captions and
//! summaries recorded with the upload (model, tokens, latency), 429 with `Retry-After`
//! honoured, a hanging provider timed out and retried, a 4xx not retried, and the
//! provider's failures in the metrics.

use super::*;
use keel_testing::{AI_ANSWER, AiRespond, FakeAi};

/// The app with the provider configured (short timeout, quick retries).
async fn with_ai(ai: &FakeAi) -> Setup {
    let mut vars = ai.vars().to_vec();
    vars.push(("KEEL__AI__TIMEOUT_MS", "700"));
    setup(&vars).await
}

/// Waits for `results.processors.ai` of upload `id`.
async fn ai_result(s: &Setup, id: &str) -> Value {
    let path = format!("{}/{id}", s.uploads());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let upload = s.app.get_json(&s.owner.token, &path).await;
        let ai = &upload["results"]["processors"]["ai"];
        if !ai.is_null() {
            return ai.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no AI result: {upload}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_gets_a_caption_with_model_usage_and_latency() {
    let ai = FakeAi::start(vec![]);
    let s = with_ai(&ai).await;
    let created = s.uploaded("cat.png", "image/png", png(320, 200)).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(s.settled(id).await["state"], "ready");
    let result = ai_result(&s, id).await;
    assert_eq!(result["task"], "caption");
    assert_eq!(result["output"], AI_ANSWER);
    assert_eq!(result["model"], "fake-vision-1-2026");
    assert_eq!(result["provider"], "127.0.0.1");
    assert_eq!(result["usage"]["total_tokens"], 127);
    assert!(result["latency_ms"].is_u64());
    let seen = ai.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization, "Bearer sk-test-key");
    assert_eq!(seen[0].body["model"], "fake-vision-1");
    let image = seen[0].body["messages"][0]["content"][1]["image_url"]["url"]
        .as_str()
        .unwrap();
    assert!(
        image.starts_with("data:image/png;base64,"),
        "the thumbnail is sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_text_file_gets_a_summary() {
    let ai = FakeAi::start(vec![]);
    let s = with_ai(&ai).await;
    let created = s
        .uploaded(
            "notes.txt",
            "text/plain",
            "Meeting notes: ship uploads on Tuesday.",
        )
        .await;
    let result = ai_result(&s, created["id"].as_str().unwrap()).await;
    assert_eq!(result["task"], "summary");
    let prompt = ai.seen()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("ship uploads on Tuesday"), "{prompt}");
    // Files the task has nothing to say about are left alone.
    let pdf = s.uploaded("doc.pdf", "application/pdf", PDF.to_vec()).await;
    let done = s.settled(pdf["id"].as_str().unwrap()).await;
    assert!(done["results"]["processors"]["ai"].is_null(), "{done}");
    assert_eq!(ai.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_retried_after_that_long() {
    let ai = FakeAi::start(vec![AiRespond::Status(429, Some(2))]);
    let s = with_ai(&ai).await;
    let created = s.uploaded("cat.png", "image/png", png(16, 16)).await;
    let result = ai_result(&s, created["id"].as_str().unwrap()).await;
    assert_eq!(result["output"], AI_ANSWER);
    let seen = ai.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at - seen[0].at;
    assert!(gap >= Duration::from_secs(2), "retried after {gap:?}");
    let metrics = s
        .app
        .client
        .get(format!("{}/metrics", s.app.operations))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"keel_ai_failures_total{provider="127.0.0.1",kind="http_429"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_provider_is_timed_out_and_retried() {
    let ai = FakeAi::start(vec![
        AiRespond::Hang(Duration::from_secs(5)),
        AiRespond::Status(503, None),
    ]);
    let s = with_ai(&ai).await;
    let created = s.uploaded("cat.png", "image/png", png(16, 16)).await;
    let result = ai_result(&s, created["id"].as_str().unwrap()).await;
    assert_eq!(result["output"], AI_ANSWER);
    let seen = ai.seen();
    assert_eq!(seen.len(), 3, "timed out, 503, then answered");
    assert!(
        seen[1].at - seen[0].at < Duration::from_secs(5),
        "the hang was cut short"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn another_4xx_is_not_retried_and_the_upload_stays_ready() {
    let ai = FakeAi::start(vec![AiRespond::Status(400, None)]);
    let s = with_ai(&ai).await;
    let created = s.uploaded("cat.png", "image/png", png(16, 16)).await;
    let id = created["id"].as_str().unwrap();
    let result = ai_result(&s, id).await;
    assert!(
        result["error"].as_str().unwrap().contains("400"),
        "{result}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ai.seen().len(), 1);
    let upload = s
        .app
        .get_json(&s.owner.token, &format!("{}/{id}", s.uploads()))
        .await;
    assert_eq!(upload["state"], "ready");
}
