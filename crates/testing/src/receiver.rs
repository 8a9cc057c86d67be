//! A real webhook receiver on localhost: records what it is sent and answers as planned.

use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the receiver answers to its n-th request (0-based); later ones get 200.
#[derive(Debug, Clone, Copy)]
pub enum Respond {
    Status(u16),
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub delivery_id: String,
    pub signature: String,
    /// The W3C `traceparent` the sender joined its trace with ("" when absent).
    pub traceparent: String,
    pub body: Vec<u8>,
}

/// The receiver; `url` is where to point an endpoint.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    planned: usize,
}

type State = (Arc<Mutex<Vec<Received>>>, Arc<Vec<Respond>>);

impl Receiver {
    /// Starts one answering `plan`, then 200s.
    pub fn start(plan: Vec<Respond>) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let planned = plan.len();
        let state: State = (seen.clone(), Arc::new(plan));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(web::Data::new(state.clone()))
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { url, seen, planned }
    }

    /// How many requests get a planned answer before the 200s.
    pub fn planned(&self) -> usize {
        self.planned
    }

    /// Everything received so far, in order.
    pub fn seen(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn receive(state: web::Data<State>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| header(&req, name);
    let n = {
        let mut seen = state.0.lock().expect("lock");
        seen.push(Received {
            at: Instant::now(),
            delivery_id: header("keel-delivery-id"),
            signature: header("keel-signature"),
            traceparent: header("traceparent"),
            body: body.to_vec(),
        });
        seen.len() - 1
    };
    match state.1.get(n).copied() {
        Some(Respond::Status(code)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status"))
                .body("receiver says no")
        }
        Some(Respond::Hang(d)) => {
            tokio::time::sleep(d).await;
            HttpResponse::Ok().finish()
        }
        None => HttpResponse::Ok().body("thanks"),
    }
}

/// Header `name` of `req` as text, "" when absent or not text: what the fake third
/// parties record of each request.
pub(crate) fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
