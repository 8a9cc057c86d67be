//! The requests to send, read from a file the benchmark scripts write: one request per
//! line, fields separated by tabs (shown as `→` here) —
//!
//! ```text
//! GET /api/v1/me→Authorization: Bearer k_123
//! POST /api/v1/orgs/…/invitations→Authorization: Bearer k_123→Content-Type: application/json→body={"email":"a@example.com"}
//! ```
//!
//! The first field is the method and the path, the others headers (`Name: value`) and at
//! most one body (`body=…`). Empty lines and lines starting with `#` are skipped. Request
//! number `i` of a run is line `i` modulo their number, so a file shuffled to the wanted
//! mix gives that mix over any count. `{n}` anywhere in a line becomes the request's
//! number and `{run}` an id of this run of keel-load (its start time and process id), so a
//! line sent many times, in many runs, can still be a new request each time (an
//! `Idempotency-Key: {run}-{n}`, an invited address).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};

/// One request of the file, ready to be sent again and again.
#[derive(Debug, Clone)]
pub struct Template {
    method: Method,
    path: String,
    headers: Vec<(HeaderName, String)>,
    body: String,
    /// Whether `{n}` or `{run}` appears in the path, a header value or the body.
    numbered: bool,
}

const NUMBER: &str = "{n}";
const RUN: &str = "{run}";

impl Template {
    /// Request number `n` of run `run`, for `host` (the `Host` header).
    pub fn request(
        &self,
        host: &HeaderValue,
        run: &str,
        n: u64,
    ) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let number = self.numbered.then(|| n.to_string());
        let text = |s: &str| match &number {
            Some(number) => s.replace(NUMBER, number).replace(RUN, run),
            None => s.to_owned(),
        };
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(text(&self.path))
            .header(hyper::header::HOST, host.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name.clone(), text(value));
        }
        builder.body(Full::new(Bytes::from(text(&self.body))))
    }
}

/// Reads the requests; an error names the line that is wrong.
pub fn parse(text: &str) -> Result<Vec<Template>, String> {
    let mut templates = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        templates.push(parse_line(line).map_err(|e| format!("line {}: {e}", number + 1))?);
    }
    if templates.is_empty() {
        return Err("no requests in the file".to_owned());
    }
    Ok(templates)
}

fn parse_line(line: &str) -> Result<Template, String> {
    let mut fields = line.split('\t');
    let first = fields.next().unwrap_or_default();
    let (method, path) = first
        .split_once(' ')
        .ok_or_else(|| format!("expected `METHOD /path`, got {first:?}"))?;
    if !path.starts_with('/') {
        return Err(format!("the path must start with `/`, got {path:?}"));
    }
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut headers = Vec::new();
    let mut body = String::new();
    for field in fields {
        if let Some(text) = field.strip_prefix("body=") {
            text.clone_into(&mut body);
            continue;
        }
        let (name, value) = field
            .split_once(':')
            .ok_or_else(|| format!("expected a `Name: value` header or `body=…`, got {field:?}"))?;
        let value = value.trim();
        HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        headers.push((
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| e.to_string())?,
            value.to_owned(),
        ));
    }
    Ok(Template {
        method,
        path: path.to_owned(),
        headers,
        body,
        numbered: line.contains(NUMBER) || line.contains(RUN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_gives_method_path_headers_and_body() {
        let plan = parse("# mix\n\nGET /me\tAuthorization: Bearer t\nPOST /x\tContent-Type: application/json\tbody={\"a\":1}\n")
            .expect("parses");
        assert_eq!(plan.len(), 2);
        let host = HeaderValue::from_static("127.0.0.1:1");
        let request = plan[1].request(&host, "r", 7).expect("request");
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "/x");
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(
            plan[0].request(&host, "r", 7).expect("request").headers()["authorization"],
            "Bearer t"
        );
    }

    #[test]
    fn the_request_number_replaces_n() {
        let plan =
            parse("POST /x/{n}\tIdempotency-Key: {run}-{n}\tbody={\"email\":\"a{n}@example.com\"}")
                .expect("parses");
        let host = HeaderValue::from_static("h");
        let request = plan[0].request(&host, "r1", 42).expect("request");
        assert_eq!(request.uri(), "/x/42");
        assert_eq!(request.headers()["idempotency-key"], "r1-42");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let body = runtime
            .block_on(http_body_util::BodyExt::collect(request.into_body()))
            .expect("body")
            .to_bytes();
        assert_eq!(body, "{\"email\":\"a42@example.com\"}");
    }

    #[test]
    fn a_wrong_line_is_named() {
        let err = parse("GET /ok\nGET nope\n").expect_err("refused");
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(parse("GET /a\tno colon").is_err());
        assert!(parse("# only comments\n").is_err());
    }
}
