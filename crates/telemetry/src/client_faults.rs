//! Keeps clients' protocol errors out of the error log.
//!
//! actix's HTTP/1 dispatcher ends a connection that failed with one `ERROR` event,
//! `stream error: <DispatchError>` (target `actix_http::h1::dispatcher`), whoever is at
//! fault: a request with a NUL byte in a header, a head too large, a client too slow to
//! send its request or gone mid-way is logged exactly like a broken response body. Any
//! client could fill the error log, and alerts on it, at will.
//!
//! A `tracing` event's level is fixed at its callsite, in actix, so it cannot be
//! re-levelled on its way through the subscriber. [`ClientFaults`] therefore disables
//! these events for every layer and counts them instead, in
//! `keel_http_connection_errors_total{kind}`: nothing is lost, as the dispatcher has
//! already logged the same error at `TRACE` on its target
//! (`RUST_LOG=actix_http::h1::dispatcher=trace` shows each). Its server-side errors
//! (`body error`, `service error`, `internal error`, ...) stay at `ERROR`; only the
//! dispatcher's `ERROR` events are looked into, so every other event passes untouched
//! after two comparisons.

use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where actix's HTTP/1 dispatcher logs.
const DISPATCHER: &str = "actix_http::h1::dispatcher";
/// How it introduces the error that ended a connection.
const STREAM_ERROR: &str = "stream error: ";

/// The layer that drops clients' faults from the log (see the module docs).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientFaults;

/// What a client did wrong, by the text of actix's `DispatchError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The request could not be parsed (answered 400) or its head was too large (431).
    Malformed,
    /// The request, or closing the connection, took too long (408).
    Timeout,
    /// Reading from or writing to the client's socket failed: it reset or went away.
    Io,
}

impl Fault {
    /// The fault `error` (a `DispatchError` as displayed) describes, `None` for a
    /// server-side error.
    fn of(error: &str) -> Option<Self> {
        if error.starts_with("request parse error: ") {
            Some(Self::Malformed)
        } else if error == "request did not complete within the specified timeout"
            || error == "connection shutdown timeout"
        {
            Some(Self::Timeout)
        } else if error.starts_with("I/O error: ") {
            Some(Self::Io)
        } else {
            None
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Timeout => "timeout",
            Self::Io => "io",
        }
    }
}

impl<S: Subscriber> Layer<S> for ClientFaults {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target() != DISPATCHER {
            return true;
        }
        let mut message = Message::default();
        event.record(&mut message);
        let fault = message.0.strip_prefix(STREAM_ERROR).and_then(Fault::of);
        match fault {
            Some(fault) => {
                metrics::counter!("keel_http_connection_errors_total", "kind" => fault.label())
                    .increment(1);
                false
            }
            None => true,
        }
    }
}

/// The `message` field of an event.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_faults_are_told_from_the_servers() {
        for (error, fault) in [
            (
                "request parse error: invalid Header provided",
                Some(Fault::Malformed),
            ),
            (
                "request parse error: message head is too large",
                Some(Fault::Malformed),
            ),
            (
                "request did not complete within the specified timeout",
                Some(Fault::Timeout),
            ),
            ("connection shutdown timeout", Some(Fault::Timeout)),
            ("I/O error: Connection reset by peer", Some(Fault::Io)),
            ("body error: the stream broke", None),
            ("service error", None),
            ("handler dropped payload before reading EOF", None),
            ("internal error", None),
        ] {
            assert_eq!(Fault::of(error), fault, "{error}");
        }
    }
}
