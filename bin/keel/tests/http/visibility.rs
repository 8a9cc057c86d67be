//! What an operator sees. One trace from a request to the third party it reaches: `keel
//! serve` and `keel work` export to a real OTLP/HTTP receiver, which decodes the spans
//! with the `opentelemetry-proto` types, and the receivers (a webhook endpoint, the AI
//! provider) get a `traceparent` of that trace. And the Grafana dashboard and the
//! Prometheus alerts query only metrics that Keel exports.

use super::spawn_app;
use diesel_async::RunQueryDsl as _;
use keel_persistence::AsyncConnection as _;
use keel_testing::{
    ExportedSpan, FakeAi, OtlpReceiver, Receiver, Respond, TestApp, User, eventually,
    serve_process, user, work_process,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The third parties a workload reaches, and the owner it acts as.
struct Outside {
    owner: User,
    receiver: Receiver,
    ai: FakeAi,
}

impl Outside {
    /// The webhook receiver answers as `plan` says, then 200.
    async fn new(app: &TestApp, plan: Vec<Respond>) -> Self {
        Self {
            owner: user(app, "operator-view@example.com").await,
            receiver: Receiver::start(plan),
            ai: FakeAi::start(Vec::new()),
        }
    }

    /// What every process of the workload runs with.
    fn env<'a>(&'a self, root: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![("KEEL__STORAGE__LOCAL_ROOT", root)];
        env.extend(self.ai.vars());
        env
    }

    /// An invitation (`member.invited`: fan-out, then a webhook delivery to the receiver)
    /// and a text upload (processing, then the AI task's call to the provider), both
    /// through `base`; the trace id of each request, from its `traceresponse`.
    async fn drive(&self, client: &reqwest::Client, base: &str) -> (String, String) {
        let org = format!("{base}/api/v1/orgs/{}", self.owner.org_id);
        let res = client
            .post(format!("{org}/webhooks"))
            .bearer_auth(&self.owner.token)
            .json(&json!({"url": self.receiver.url, "event_types": ["member.invited"]}))
            .send()
            .await
            .expect("webhook");
        assert_eq!(res.status(), 201);
        let res = client
            .post(format!("{org}/invitations"))
            .bearer_auth(&self.owner.token)
            .json(&json!({"email": "new-colleague@example.com", "role": "member"}))
            .send()
            .await
            .expect("invite");
        assert_eq!(res.status(), 202);
        let invited = trace_id_of(&res);
        let res = client
            .post(format!("{org}/uploads?name=notes.txt"))
            .bearer_auth(&self.owner.token)
            .header("content-type", "text/plain")
            .body("Minutes of the weekly meeting: ship the console.")
            .send()
            .await
            .expect("upload");
        assert_eq!(res.status(), 201);
        let uploaded = trace_id_of(&res);
        eventually("the webhook delivery", Duration::from_secs(30), || async {
            self.receiver.seen().len() > self.receiver.planned()
        })
        .await;
        eventually("the AI call", Duration::from_secs(30), || async {
            !self.ai.seen().is_empty()
        })
        .await;
        (invited, uploaded)
    }
}

async fn text(client: &reqwest::Client, url: &str) -> String {
    let res = client.get(url).send().await.expect("get");
    assert_eq!(res.status(), 200, "{url}");
    res.text().await.expect("text")
}

fn trace_id_of(res: &reqwest::Response) -> String {
    let traceresponse = res.headers()["traceresponse"].to_str().expect("ascii");
    traceresponse
        .split('-')
        .nth(1)
        .expect("trace id")
        .to_owned()
}

/// The span of `trace` named `name` whose attribute `key` is `value`.
fn find<'a>(
    spans: &'a [ExportedSpan],
    trace: &str,
    name: &str,
    key: &str,
    value: &str,
) -> Option<&'a ExportedSpan> {
    spans
        .iter()
        .find(|s| s.trace_id == trace && s.name == name && s.attr(key) == value)
}

/// The spans of `trace`, one per line, for a failure message.
fn tree(spans: &[ExportedSpan], trace: &str) -> String {
    spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .map(|s| {
            format!(
                "{} {} <- {} {:?}\n",
                s.span_id, s.name, s.parent_span_id, s.attributes
            )
        })
        .collect()
}

/// Asserts the chain request → job → job → outgoing call in one trace: each span the
/// child of the one before, with the attributes an operator searches by.
fn assert_chain(spans: &[ExportedSpan], trace: &str, route: &str, jobs: [&str; 2], org: &str) {
    let shown = tree(spans, trace);
    let server = find(spans, trace, &format!("POST {route}"), "http.route", route)
        .unwrap_or_else(|| panic!("no server span for {route}:\n{shown}"));
    assert_eq!(server.kind, 2, "a server span:\n{shown}");
    assert!(
        server.attr("http.response.status_code").starts_with('2'),
        "{shown}"
    );
    let mut parent = server;
    for kind in jobs {
        let job = find(spans, trace, &format!("job {kind}"), "job.kind", kind)
            .unwrap_or_else(|| panic!("no span of job {kind}:\n{shown}"));
        assert_eq!(
            job.parent_span_id, parent.span_id,
            "{kind}'s parent:\n{shown}"
        );
        assert_eq!(job.kind, 5, "a consumer span:\n{shown}");
        assert_eq!(job.attr("job.attempt"), "1", "{shown}");
        assert_eq!(job.attr("org.id"), org, "{shown}");
        parent = job;
    }
    let call = spans
        .iter()
        .find(|s| s.trace_id == trace && s.kind == 3)
        .unwrap_or_else(|| panic!("no client span:\n{shown}"));
    assert_eq!(
        call.parent_span_id, parent.span_id,
        "the call's parent:\n{shown}"
    );
    assert_eq!(call.attr("server.address"), "127.0.0.1", "{shown}");
    assert_eq!(call.attr("http.response.status_code"), "200", "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_its_jobs_and_their_third_party_calls_are_one_trace() {
    let app = spawn_app(&[]).await;
    let outside = Outside::new(&app, Vec::new()).await;
    let otlp = OtlpReceiver::start();
    let root = app.storage_root();
    let root = root.to_string_lossy();
    let prefix = keel_config::testing::unique_prefix();
    let mut env = outside.env(&root);
    env.extend([
        ("KEEL__TELEMETRY__OTLP_ENDPOINT", otlp.endpoint.as_str()),
        ("KEEL__REDIS__KEY_PREFIX", prefix.as_str()),
        // Export every 100 ms instead of every 5 s.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]);
    let keel = env!("CARGO_BIN_EXE_keel");
    let (_serve, base) = serve_process(keel, &app.database_url(), &env).await;
    let (_work, _) = work_process(keel, &app.database_url(), &env).await;
    let (invited, uploaded) = outside.drive(&app.client, &base).await;

    // The receivers were handed the trace.
    let traceparent = &outside.receiver.seen()[0].traceparent;
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(invited.as_str()),
        "{traceparent}"
    );
    let traceparent = &outside.ai.seen()[0].traceparent;
    assert_eq!(
        traceparent.split('-').nth(1),
        Some(uploaded.as_str()),
        "{traceparent}"
    );

    // A span is exported when it ends, a job's after its call's: wait for the whole
    // chain of each trace.
    let expected = [
        (
            &invited,
            [
                "job notifications.fan_out",
                "job notifications.deliver_webhook",
            ],
        ),
        (&uploaded, ["job uploads.process", "job uploads.ai_task"]),
    ];
    eventually("every span exported", Duration::from_secs(20), || async {
        let spans = otlp.spans();
        expected.iter().all(|(trace, jobs)| {
            let of_trace = || spans.iter().filter(|s| &s.trace_id == *trace);
            of_trace().any(|s| s.kind == 2)
                && of_trace().any(|s| s.kind == 3)
                && jobs.iter().all(|job| of_trace().any(|s| s.name == *job))
        })
    })
    .await;
    let spans = otlp.spans();
    let org = outside.owner.org_id.to_string();
    assert_chain(
        &spans,
        &invited,
        "/api/v1/orgs/{org_id}/invitations",
        ["notifications.fan_out", "notifications.deliver_webhook"],
        &org,
    );
    assert_chain(
        &spans,
        &uploaded,
        "/api/v1/orgs/{org_id}/uploads",
        ["uploads.process", "uploads.ai_task"],
        &org,
    );
    assert!(spans.iter().all(|s| s.service == "keel"));
}

/// The metric names a PromQL expression reads (histogram series by their family).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("keel_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        names.insert(family.to_owned());
        rest = &tail[end..];
    }
    names
}

/// Every `expr` of the dashboard and every rule of the alerts file.
fn queried_metrics() -> BTreeSet<String> {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(deploy.join("grafana/keel.json")).expect("dashboard"),
    )
    .expect("dashboard json");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            names.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    let alerts = std::fs::read_to_string(deploy.join("prometheus/alerts.yml")).expect("alerts");
    for line in alerts.lines().filter(|l| !l.trim_start().starts_with('#')) {
        names.extend(metric_names(line));
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_the_alerts_query_only_metrics_keel_exports() {
    let app = spawn_app(&[]).await;
    // The receiver fails once: the failure metrics get their series.
    let outside = Outside::new(&app, vec![Respond::Status(500)]).await;
    let root = app.storage_root();
    let root = root.to_string_lossy();
    let mut env = outside.env(&root);
    env.push(("KEEL__SERVER__METRICS_ON_API_PORT", "true"));
    let keel = env!("CARGO_BIN_EXE_keel");
    let (_serve, base) = serve_process(keel, &app.database_url(), &env).await;
    let (_work, work) = work_process(keel, &app.database_url(), &env).await;
    outside.drive(&app.client, &base).await;
    // A statement cut off by its timeout: what keel_db_statement_timeouts_total counts
    // (and the rollback of its transaction).
    let mut conn = app.platform.pool.get().await.expect("conn");
    let timed_out = conn
        .transaction(async |conn| {
            diesel::sql_query("SET LOCAL statement_timeout = '50ms'")
                .execute(conn)
                .await?;
            diesel::sql_query("SELECT pg_sleep(1)").execute(conn).await
        })
        .await;
    assert!(timed_out.is_err());
    drop(conn);
    // Gauges refresh at scrape time; the reconciler passes every few seconds.
    eventually("a reconciler pass", Duration::from_secs(30), || async {
        let text = text(&app.client, &format!("{work}/metrics")).await;
        text.contains("keel_queue_reconciler_last_pass_timestamp_seconds")
    })
    .await;

    let exported = |texts: Vec<String>| -> BTreeSet<String> {
        texts
            .iter()
            .flat_map(|t| t.lines().filter(|l| !l.starts_with('#')))
            .flat_map(metric_names)
            .collect()
    };
    let processes = exported(vec![
        text(&app.client, &format!("{base}/metrics")).await,
        text(&app.client, &format!("{work}/metrics")).await,
    ]);
    // The statement timeout ran in this test's own process: its counter is there. This
    // process's recorder also holds what other tests recorded, so nothing else may come
    // from it.
    let here = exported(vec![
        text(&app.client, &format!("{}/metrics", app.operations)).await,
    ]);
    let timeouts = "keel_db_statement_timeouts_total";
    assert!(here.contains(timeouts), "the timeout was not counted");
    let queried = queried_metrics();
    assert!(queried.len() > 20, "{queried:?}");
    let missing: Vec<_> = queried
        .iter()
        .filter(|name| !processes.contains(*name) && name.as_str() != timeouts)
        .collect();
    assert!(missing.is_empty(), "queried but not exported: {missing:?}");
}
