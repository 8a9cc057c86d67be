//! `keel-ceiling`: the plaintext ceiling.
//!
//! A minimal actix-web "Hello, World!" server with no middleware, no state and no I/O
//! beyond the socket. On a given machine it is the fastest an actix-web handler can
//! answer, so `deploy/bench/bench.sh` runs it in the same session as Keel and reports
//! each Keel route as a ratio to it. Absolute requests per second swing with the
//! machine and whatever else it is doing; the ratio to this ceiling, measured
//! minutes apart on the same cores, is the number worth comparing between runs.
//!
//! Usage: `keel-ceiling [--port N] [--workers N]` (defaults: port 18080, one worker).
//! It listens on 127.0.0.1 and answers `GET /` and `GET /plaintext`.

use std::io;

use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, web};

const DEFAULT_PORT: u16 = 18080;
const DEFAULT_WORKERS: usize = 1;
const BODY: &str = "Hello, World!";
const USAGE: &str = "usage: keel-ceiling [--port N] [--workers N]";

/// Command-line options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    port: u16,
    workers: usize,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Serve(Options),
    Help,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{message}\n{USAGE}"))
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> io::Result<T> {
    let value = value.ok_or_else(|| invalid(format!("{flag} needs a value")))?;
    value
        .parse()
        .map_err(|_| invalid(format!("{flag}: not a valid number: {value:?}")))
}

/// Parses `--port N`, `--port=N`, `--workers N`, `--workers=N` and `--help`.
fn parse_args(args: impl IntoIterator<Item = String>) -> io::Result<Command> {
    let mut options = Options {
        port: DEFAULT_PORT,
        workers: DEFAULT_WORKERS,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            "--port" => {
                let value = inline.or_else(|| args.next());
                options.port = parse_number(&flag, value)?;
            }
            "--workers" => {
                let value = inline.or_else(|| args.next());
                options.workers = parse_number(&flag, value)?;
                if options.workers == 0 {
                    return Err(invalid("--workers must be at least 1".to_owned()));
                }
            }
            "-h" | "--help" => return Ok(Command::Help),
            _ => return Err(invalid(format!("unknown argument: {arg:?}"))),
        }
    }
    Ok(Command::Serve(options))
}

async fn plaintext() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("text/plain")))
        .body(BODY)
}

#[actix_web::main]
async fn main() -> io::Result<()> {
    let options = match parse_args(std::env::args().skip(1))? {
        Command::Serve(options) => options,
        Command::Help => {
            eprintln!("{USAGE}");
            return Ok(());
        }
    };
    eprintln!(
        "keel-ceiling listening on http://127.0.0.1:{} with {} worker(s)",
        options.port, options.workers
    );
    HttpServer::new(|| {
        App::new()
            .route("/", web::get().to(plaintext))
            .route("/plaintext", web::get().to(plaintext))
    })
    .workers(options.workers)
    .bind(("127.0.0.1", options.port))?
    .run()
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults() {
        assert_eq!(
            parse_args(args(&[])).ok(),
            Some(Command::Serve(Options {
                port: 18080,
                workers: 1
            }))
        );
    }

    #[test]
    fn port_and_workers_in_both_forms() {
        let expected = Some(Command::Serve(Options {
            port: 9000,
            workers: 2,
        }));
        assert_eq!(
            parse_args(args(&["--port", "9000", "--workers", "2"])).ok(),
            expected
        );
        assert_eq!(
            parse_args(args(&["--port=9000", "--workers=2"])).ok(),
            expected
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_args(args(&["--port"])).is_err());
        assert!(parse_args(args(&["--port", "x"])).is_err());
        assert!(parse_args(args(&["--workers", "0"])).is_err());
        assert!(parse_args(args(&["--verbose"])).is_err());
    }

    #[actix_web::test]
    async fn answers_plaintext() {
        use actix_web::test;
        let app = test::init_service(
            App::new()
                .route("/", web::get().to(plaintext))
                .route("/plaintext", web::get().to(plaintext)),
        )
        .await;
        for path in ["/", "/plaintext"] {
            let response =
                test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
            assert!(response.status().is_success());
            assert_eq!(
                response.headers().get(CONTENT_TYPE),
                Some(&HeaderValue::from_static("text/plain"))
            );
            let body = test::read_body(response).await;
            assert_eq!(body, BODY.as_bytes());
        }
    }
}
