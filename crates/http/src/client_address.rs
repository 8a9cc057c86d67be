//! The client's address: the TCP peer, unless the peer is one of the configured proxies
//! (`server.trusted_proxies`); then the right-most address of their forwarding header
//! that is not itself a trusted proxy.
//!
//! Anyone can send `X-Forwarded-For`. Only the hops Keel trusts wrote the right end of
//! it, so that end is read right to left and the first address no trusted proxy owns is
//! the client; whatever stands left of it was written by the client and is ignored.
//!
//! [`middleware`] resolves the address once per request and keeps it in the request's
//! extensions; login throttling, rate limits, audit events and the request span all
//! read it through [`of`]. Nothing else reads the peer address or a forwarding header
//! (an architecture test checks).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use keel_config::{ForwardedHeader, TrustedProxies};
use std::net::{IpAddr, SocketAddr};

/// How this deployment finds its clients' addresses; app data
/// (`web::Data<ClientAddresses>`). Without it the peer is the client.
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    proxies: TrustedProxies,
    header: ForwardedHeader,
}

/// The resolved address, kept in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClientAddr(IpAddr);

impl ClientAddresses {
    pub fn new(proxies: TrustedProxies, header: ForwardedHeader) -> Self {
        Self { proxies, header }
    }

    /// The client of a request from `peer` carrying `values` (the forwarding header's
    /// lines, in order).
    pub fn resolve(&self, peer: IpAddr, values: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.proxies.contains(peer) {
            return peer;
        }
        // Every hop so far is trusted; the nearest one vouches for the next address.
        let mut nearest = peer;
        for item in values.iter().rev().flat_map(|value| value.rsplit(',')) {
            let node = match self.header {
                ForwardedHeader::XForwardedFor => Some(item),
                ForwardedHeader::Forwarded => forwarded_for(item),
            };
            // `unknown`, an obfuscated name or garbage: nothing beyond it can be trusted.
            let Some(addr) = node.and_then(parse_node) else {
                return nearest;
            };
            if !self.proxies.contains(addr) {
                return addr;
            }
            nearest = addr;
        }
        nearest
    }

    fn header_name(&self) -> actix_web::http::header::HeaderName {
        match self.header {
            ForwardedHeader::XForwardedFor => {
                actix_web::http::header::HeaderName::from_static("x-forwarded-for")
            }
            ForwardedHeader::Forwarded => actix_web::http::header::FORWARDED,
        }
    }
}

/// The client's address (see the module docs), `None` only for a request without a
/// peer (a test request built in memory).
pub fn of(req: &HttpRequest) -> Option<IpAddr> {
    if let Some(ClientAddr(addr)) = req.extensions().get::<ClientAddr>() {
        return Some(*addr);
    }
    resolve(req)
}

fn resolve(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let Some(config) = req.app_data::<web::Data<ClientAddresses>>() else {
        return Some(peer.to_canonical());
    };
    if !config.proxies.contains(peer) {
        return Some(peer.to_canonical());
    }
    let values: Vec<&str> = req
        .headers()
        .get_all(config.header_name())
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(config.resolve(peer, &values))
}

/// Resolves the client's address once, for everything after it, and puts it on the
/// request's span (`client.address`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(addr) = resolve(req.request()) {
        req.extensions_mut().insert(ClientAddr(addr));
        tracing::Span::current().record("client.address", tracing::field::display(addr));
    }
    next.call(req).await
}

/// The `for=` node of one element of a `Forwarded` header (`for=192.0.2.60;proto=http`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then_some(value)
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally in quotes.
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')?
                .split(']')
                .next()?
                .parse::<IpAddr>()
                .ok()
        })
        .map(|addr| addr.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(proxies: &[&str], header: ForwardedHeader) -> ClientAddresses {
        let nets = proxies.iter().map(|p| p.parse().unwrap()).collect();
        ClientAddresses::new(TrustedProxies::new(nets), header)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = addresses(&[], ForwardedHeader::XForwardedFor);
        assert_eq!(
            none.resolve(ip("203.0.113.9"), &["198.51.100.99"]),
            ip("203.0.113.9")
        );
        let some = addresses(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(
            some.resolve(ip("203.0.113.9"), &["198.51.100.99"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let a = addresses(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client forged the first entry; the proxies appended the rest.
        let values = ["198.51.100.99, 203.0.113.9", "10.0.0.2"];
        assert_eq!(a.resolve(ip("10.0.0.1"), &values), ip("203.0.113.9"));
        assert_eq!(
            a.resolve(ip("10.0.0.1"), &["203.0.113.9:4711"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            a.resolve(ip("::ffff:10.0.0.1"), &["[2001:db8::7]:1"]),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn garbage_or_a_chain_of_proxies_stops_at_the_last_trusted_hop() {
        let a = addresses(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(
            a.resolve(ip("10.0.0.1"), &["203.0.113.9, unknown, 10.0.0.3"]),
            ip("10.0.0.3")
        );
        assert_eq!(a.resolve(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        assert_eq!(
            a.resolve(ip("10.0.0.1"), &["10.0.0.5, 10.0.0.6"]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_by_its_for_parameter() {
        let a = addresses(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let values = [r#"for=198.51.100.99, for="[2001:db8::7]:4711";proto=https, for=10.0.0.2"#];
        assert_eq!(a.resolve(ip("10.0.0.1"), &values), ip("2001:db8::7"));
        assert_eq!(a.resolve(ip("10.0.0.1"), &["for=_hidden"]), ip("10.0.0.1"));
    }
}
