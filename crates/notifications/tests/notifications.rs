//! The notifications domain's tests, one binary: email against real PostgreSQL and
//! Redis and a real (tiny) SMTP server on localhost standing in for the relay (this
//! file), and the HTTP routes end to end on the whole app with webhook receivers on
//! localhost (`http`). Each test has its own database, Redis prefix and mail folder.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use keel_cache::Cache;
use keel_config::Settings;
use keel_notifications::{MailError, Mailer, Template};
use keel_persistence::AsyncConnection as _;
use keel_persistence::testing::TestDatabase;
use keel_persistence::{DbError, DbPool};
use keel_queue::{Enqueued, Queue, Registry, Workers};
use keel_testing::Mailbox;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use uuid::Uuid;

#[path = "notifications/http.rs"]
mod http;

// ---------------------------------------------------------------- harness

struct Harness {
    _db: TestDatabase,
    settings: Arc<Settings>,
    pool: DbPool,
    cache: Cache,
    queue: Queue,
    mailer: Mailer,
    dir: Mailbox,
}

async fn harness(overrides: &[(&str, &str)]) -> Harness {
    keel_telemetry::init_for_tests();
    let db = TestDatabase::new().await.expect("test database");
    let dir = Mailbox::new();
    let dir_var = dir.dir().to_string_lossy().into_owned();
    let loader = keel_config::testing::loader(db.url())
        .with_var("KEEL__MAIL__DIR", dir_var)
        .with_vars(overrides);
    let settings = Arc::new(keel_config::Loader::load(&loader).expect("settings"));
    let pool = DbPool::new(&settings.database).expect("pool");
    let redis = keel_cache::redis_pool(&settings.redis).expect("redis pool");
    let cache = Cache::new(&settings.cache, &settings.redis, redis).expect("cache");
    let queue = Queue::new(&settings, pool.clone()).expect("queue");
    let mailer = Mailer::new(&settings.mail, queue.clone()).expect("mailer");
    Harness {
        _db: db,
        settings,
        pool,
        cache,
        queue,
        mailer,
        dir,
    }
}

/// The overrides that send through `sink` in plain text.
fn smtp_vars(sink: &Sink) -> [(&'static str, String); 4] {
    [
        ("KEEL__MAIL__TRANSPORT", "smtp".to_owned()),
        ("KEEL__MAIL__SMTP_HOST", "127.0.0.1".to_owned()),
        ("KEEL__MAIL__SMTP_PORT", sink.port.to_string()),
        ("KEEL__MAIL__SMTP_TLS", "none".to_owned()),
    ]
}

impl Harness {
    fn workers(&self) -> Workers {
        let mut registry = Registry::new();
        keel_notifications::jobs::register(&mut registry, self.mailer.clone()).expect("register");
        Workers::start(
            self.settings.clone(),
            self.queue.clone(),
            self.cache.clone(),
            registry,
        )
    }

    /// Enqueues in a committed transaction of its own and rings, as a request would.
    async fn send(&self, to: &str, template: Template, vars: serde_json::Value) -> Uuid {
        let enqueued: Enqueued = self
            .pool
            .get()
            .await
            .expect("connection")
            .transaction(async |conn| self.mailer.enqueue(conn, to, template, vars).await)
            .await
            .expect("enqueue");
        let id = enqueued.id;
        self.queue.ring([enqueued]).await;
        id
    }

    async fn wait_state(&self, id: Uuid, state: &str, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            let status = self
                .queue
                .status(id)
                .await
                .expect("status")
                .expect("job exists");
            if status.state.as_str() == state {
                return status.attempts;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach {state} within {within:?}: {} after {} attempts ({:?})",
                status.state,
                status.attempts,
                status.last_error
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn job_rows(&self) -> i64 {
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.expect("conn");
        let count: Count = diesel::sql_query("SELECT count(*) AS n FROM queue_jobs")
            .get_result(&mut conn)
            .await
            .expect("count");
        count.n
    }
}

fn verify_vars(name: &str) -> serde_json::Value {
    json!({ "name": name, "link": "https://keel.test/verify?token=abc123" })
}

fn sample_vars(template: Template) -> serde_json::Value {
    match template {
        Template::VerifyEmail | Template::PasswordReset => {
            json!({ "name": "Ada", "link": "https://keel.test/l/abc" })
        }
        Template::SignupAttempt => {
            json!({ "name": "Ada", "reset_link": "https://keel.test/r/abc" })
        }
        Template::Invitation => json!({
            "inviter_name": "Grace",
            "organization_name": "Analytical Engines",
            "role": "admin",
            "link": "https://keel.test/i/abc",
        }),
        Template::PasswordChanged => json!({ "name": "Ada" }),
        Template::Notification => json!({
            "name": "Ada",
            "title": "Your export is ready",
            "body": "The export of March has finished.",
            "link": "https://keel.test/exports/1",
            "unsubscribe_link": "https://keel.test/api/v1/unsubscribe?token=abc",
        }),
    }
}

/// The message with quoted-printable soft breaks joined and `=XX` decoded, good enough
/// to look for text in either part.
fn decoded(eml: &str) -> String {
    let joined = eml.replace("=\r\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn header<'a>(eml: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    eml.split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(prefix.as_str()))
}

// ---------------------------------------------------------------- a fake relay

/// What the relay answers `RCPT TO` for the next messages; once empty, 250.
#[derive(Clone, Default)]
struct Faults(Arc<Mutex<VecDeque<u16>>>);

#[derive(Debug, Clone)]
struct Received {
    rcpt: Vec<String>,
    data: String,
}

/// A real SMTP server on localhost speaking just enough of RFC 5321 for lettre.
struct Sink {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<u32>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Answers `code` to `RCPT TO` for each of the first messages, in order.
    async fn start(faults: &[u16]) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let port = listener.local_addr().expect("addr").port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let refused: Arc<Mutex<u32>> = Arc::default();
        let faults = Faults(Arc::new(Mutex::new(faults.iter().copied().collect())));
        let (got, no) = (received.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (got, no, faults) = (got.clone(), no.clone(), faults.clone());
                tokio::spawn(async move {
                    let _ = session(stream, got, no, faults).await;
                });
            }
        });
        Sink {
            port,
            received,
            refused,
            task,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    fn refused(&self) -> u32 {
        *self.refused.lock().expect("lock")
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<u32>>,
    faults: Faults,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if command.starts_with("MAIL FROM") {
            rcpt.clear();
            b"250 2.1.0 ok\r\n"
        } else if command.starts_with("RCPT TO") {
            let fault = faults.0.lock().expect("lock").pop_front();
            match fault {
                Some(code) => {
                    *refused.lock().expect("lock") += 1;
                    let reply = if code < 500 {
                        format!("{code} 4.7.1 greylisted, try again later\r\n")
                    } else {
                        format!("{code} 5.1.1 mailbox unavailable\r\n")
                    };
                    write.write_all(reply.as_bytes()).await?;
                    continue;
                }
                None => {
                    rcpt.push(line.trim_end()["RCPT TO:".len()..].trim().to_owned());
                    b"250 2.1.5 ok\r\n"
                }
            }
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if read.read_line(&mut l).await? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                // Undo dot-stuffing.
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            received.lock().expect("lock").push(Received {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 2.0.0 queued\r\n"
        } else if command == "RSET" || command == "NOOP" {
            b"250 2.0.0 ok\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 5.5.2 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

// ---------------------------------------------------------------- rendering

#[tokio::test(flavor = "multi_thread")]
async fn every_template_renders_html_and_text_with_its_vars() {
    let h = harness(&[]).await;
    for template in Template::ALL {
        let vars = sample_vars(template);
        let msg = h
            .mailer
            .render("Ada <ada@example.com>", template, &vars)
            .unwrap_or_else(|e| panic!("{template}: {e}"));
        assert!(!msg.subject.is_empty(), "{template}: empty subject");
        assert!(msg.html.starts_with("<!DOCTYPE html>"), "{template}");
        for (name, value) in vars.as_object().expect("object") {
            let value = value.as_str().expect("string var");
            let shown = |body: &str| body.contains(value) || msg.subject.contains(value);
            assert!(shown(&msg.html), "{template}: html lacks {name}");
            assert!(shown(&msg.text), "{template}: text lacks {name}");
        }
        assert!(
            !msg.text.contains('<'),
            "{template}: markup in the text part"
        );
        assert!(
            msg.text.contains("Keel"),
            "{template}: text lacks the footer"
        );
    }
    let invite = h
        .mailer
        .render(
            "x@example.com",
            Template::Invitation,
            &sample_vars(Template::Invitation),
        )
        .expect("invitation");
    assert_eq!(
        invite.subject,
        "Grace invited you to join Analytical Engines"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn html_escapes_injected_markup_and_text_keeps_it_verbatim() {
    let h = harness(&[]).await;
    let evil = r#"<script>alert("x")</script>"#;
    let msg = h
        .mailer
        .render("ada@example.com", Template::VerifyEmail, &verify_vars(evil))
        .expect("render");
    assert!(!msg.html.contains("<script>"), "{}", msg.html);
    assert!(msg.html.contains("&lt;script&gt;"), "{}", msg.html);
    assert!(msg.text.contains(evil));

    let invite = h
        .mailer
        .render(
            "ada@example.com",
            Template::Invitation,
            &json!({
                "inviter_name": "<b>Mallory</b>",
                "organization_name": "O\"rg",
                "role": "member",
                "link": "https://keel.test/i/\"onmouseover=\"x",
            }),
        )
        .expect("render");
    assert!(
        !invite.html.contains("<b>Mallory</b>"),
        "subject in <title>"
    );
    assert!(!invite.html.contains(r#""onmouseover"#), "{}", invite.html);
    assert_eq!(invite.subject, "<b>Mallory</b> invited you to join O\"rg");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_null_or_unexpected_var_is_an_error() {
    let h = harness(&[]).await;
    let render = |vars: serde_json::Value| {
        h.mailer
            .render("ada@example.com", Template::VerifyEmail, &vars)
    };
    for (case, vars) in [
        ("missing", json!({ "name": "Ada" })),
        ("null", json!({ "name": "Ada", "link": null })),
        (
            "unexpected",
            json!({ "name": "Ada", "link": "https://x", "lnk": "y" }),
        ),
        ("not an object", json!(["Ada", "https://x"])),
    ] {
        let err = render(vars).expect_err(case);
        assert!(matches!(err, MailError::Vars { .. }), "{case}: {err}");
        assert!(err.to_string().contains("verify_email"), "{case}: {err}");
    }
    let err = h
        .mailer
        .render("not an address", Template::VerifyEmail, &verify_vars("Ada"))
        .expect_err("bad address");
    assert!(matches!(err, MailError::Address(_)), "{err}");
    assert!(
        matches!(
            "welcome_back".parse::<Template>(),
            Err(MailError::UnknownTemplate(_))
        ),
        "an unknown template name is an error"
    );
}

// ---------------------------------------------------------------- file transport

#[tokio::test(flavor = "multi_thread")]
async fn a_committed_email_job_is_written_as_one_eml_file_named_by_its_job_id() {
    let h = harness(&[]).await;
    let workers = h.workers();
    let id = h
        .send(
            "Ada Lovelace <ada@example.com>",
            Template::VerifyEmail,
            verify_vars("Ada"),
        )
        .await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(attempts, 1);
    assert_eq!(h.dir.files(), [format!("{id}.eml")]);

    let eml = h.dir.read(id);
    assert_eq!(
        header(&eml, "To"),
        Some("\"Ada Lovelace\" <ada@example.com>"),
        "{eml}"
    );
    assert_eq!(header(&eml, "From"), Some("Keel <no-reply@keel.localhost>"));
    assert_eq!(header(&eml, "Subject"), Some("Confirm your email address"));
    assert_eq!(
        header(&eml, "Message-ID"),
        Some(format!("<{id}@keel.localhost>").as_str())
    );
    assert!(eml.contains("multipart/alternative"), "{eml}");
    assert!(eml.contains("Content-Type: text/plain"), "{eml}");
    assert!(eml.contains("Content-Type: text/html"), "{eml}");
    let body = decoded(&eml);
    assert!(
        body.contains("https://keel.test/verify?token=abc123"),
        "{body}"
    );
    assert!(body.contains("Hi Ada,"), "{body}");

    // A second delivery of the same job (at least once) replaces the file.
    let msg = h
        .mailer
        .render(
            "ada@example.com",
            Template::VerifyEmail,
            &verify_vars("Ada"),
        )
        .expect("render");
    h.mailer.send_now(id, &msg).await.expect("send again");
    assert_eq!(h.dir.files(), [format!("{id}.eml")]);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_enqueued_in_a_rolled_back_transaction_is_never_sent() {
    let h = harness(&[]).await;
    let workers = h.workers();
    let leaked: Arc<Mutex<Option<Enqueued>>> = Arc::default();
    let result: Result<(), DbError> = h
        .pool
        .get()
        .await
        .expect("connection")
        .transaction(async |conn| {
            let e = h
                .mailer
                .enqueue(
                    conn,
                    "ada@example.com",
                    Template::PasswordReset,
                    json!({ "name": "Ada", "link": "https://keel.test/r" }),
                )
                .await?;
            *leaked.lock().expect("lock") = Some(e);
            Err(DbError::NotFound) // the request failed after enqueueing
        })
        .await;
    assert!(result.is_err());
    let ghost = leaked
        .lock()
        .expect("lock")
        .take()
        .expect("enqueued inside");
    let ghost_id = ghost.id;
    h.queue.ring([ghost]).await; // even a doorbell rung by mistake sends nothing

    let committed = h
        .send(
            "grace@example.com",
            Template::PasswordChanged,
            json!({ "name": "Grace" }),
        )
        .await;
    h.wait_state(committed, "succeeded", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.queue.status(ghost_id).await.expect("status").is_none());
    assert_eq!(h.dir.files(), [format!("{committed}.eml")]);
    workers.shutdown().await;
}

// ---------------------------------------------------------------- smtp transport

#[tokio::test(flavor = "multi_thread")]
async fn smtp_delivers_the_email_to_the_relay() {
    let sink = Sink::start(&[]).await;
    let vars = smtp_vars(&sink);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = harness(&vars).await;
    assert_eq!(h.mailer.transport_name(), "smtp");
    let workers = h.workers();
    let id = h
        .send(
            "Ada <ada@example.com>",
            Template::Invitation,
            sample_vars(Template::Invitation),
        )
        .await;
    assert_eq!(
        h.wait_state(id, "succeeded", Duration::from_secs(10)).await,
        1
    );
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt, ["<ada@example.com>"]);
    let data = &received[0].data;
    assert_eq!(
        header(data, "Subject"),
        Some("Grace invited you to join Analytical Engines"),
        "{data}"
    );
    assert_eq!(
        header(data, "Message-ID"),
        Some(format!("<{id}@keel.localhost>").as_str())
    );
    assert!(decoded(data).contains("https://keel.test/i/abc"));
    assert!(h.dir.files().is_empty(), "smtp wrote files");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_answering_451_twice_gets_the_email_once_on_the_third_attempt() {
    let sink = Sink::start(&[451, 451]).await;
    let mut vars: Vec<(&str, String)> = smtp_vars(&sink).into();
    vars.push(("KEEL__QUEUE__BACKOFF_BASE_MS", "50".to_owned()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = harness(&vars).await;
    let workers = h.workers();
    let id = h
        .send(
            "ada@example.com",
            Template::PasswordReset,
            sample_vars(Template::PasswordReset),
        )
        .await;
    let attempts = h.wait_state(id, "succeeded", Duration::from_secs(15)).await;
    assert_eq!(attempts, 3);
    assert_eq!(sink.refused(), 2);
    assert_eq!(sink.received().len(), 1, "delivered exactly once");
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_refusing_with_550_makes_the_job_dead_after_one_attempt() {
    let sink = Sink::start(&[550, 550, 550]).await;
    let mut vars: Vec<(&str, String)> = smtp_vars(&sink).into();
    vars.push(("KEEL__QUEUE__BACKOFF_BASE_MS", "50".to_owned()));
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = harness(&vars).await;
    let workers = h.workers();
    let id = h
        .send(
            "nobody@example.com",
            Template::VerifyEmail,
            verify_vars("Nobody"),
        )
        .await;
    let attempts = h.wait_state(id, "dead", Duration::from_secs(10)).await;
    assert_eq!(attempts, 1, "a permanent refusal is not retried");
    let status = h.queue.status(id).await.expect("status").expect("exists");
    let error = status.last_error.expect("an error is recorded");
    assert!(
        error.contains("refused") && error.contains("550"),
        "{error}"
    );
    assert!(!error.contains("nobody@"), "the address leaked: {error}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.refused(), 1);
    assert!(sink.received().is_empty());
    workers.shutdown().await;
}

// ---------------------------------------------------------------- producers

#[tokio::test(flavor = "multi_thread")]
async fn enqueue_with_wrong_vars_fails_at_once_and_writes_no_job() {
    let h = harness(&[]).await;
    let mut conn = h.pool.get().await.expect("conn");
    let cases = [
        (
            "ada@example.com",
            Template::VerifyEmail,
            json!({ "name": "Ada" }),
        ),
        (
            "ada@example.com",
            Template::PasswordChanged,
            json!({ "name": "Ada", "link": "https://keel.test" }),
        ),
        (
            "ada@example.com",
            Template::Invitation,
            sample_vars(Template::VerifyEmail),
        ),
        ("ada", Template::PasswordChanged, json!({ "name": "Ada" })),
    ];
    for (to, template, vars) in cases {
        let err = h
            .mailer
            .enqueue(&mut conn, to, template, vars.clone())
            .await
            .expect_err("a bad call fails");
        assert!(
            matches!(err, DbError::Internal { .. }),
            "{template} {vars}: {err}"
        );
        assert!(!err.is_transient());
    }
    assert_eq!(h.job_rows().await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn enqueue_once_writes_one_job_per_key() {
    let h = harness(&[]).await;
    let mut conn = h.pool.get().await.expect("conn");
    let mut first = None;
    for _ in 0..2 {
        let e = h
            .mailer
            .enqueue_once(
                &mut conn,
                "verify:42",
                "ada@example.com",
                Template::VerifyEmail,
                verify_vars("Ada"),
            )
            .await
            .expect("enqueue");
        if first.is_none() {
            first = Some(e.expect("the first call enqueues"));
        } else {
            assert!(e.is_none(), "the second call enqueues nothing");
        }
    }
    assert_eq!(h.job_rows().await, 1);
}
