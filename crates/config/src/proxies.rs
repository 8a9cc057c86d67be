//! Which proxies may tell Keel the client's address (`server.trusted_proxies`).

use crate::list::ListOrText;
use serde::Deserialize;
use std::net::IpAddr;

/// Addresses and networks (`10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`) of the proxies in
/// front of Keel. Only a request arriving from one of them has its forwarding header
/// read; anyone else could write any address into it. Empty (the default): the TCP peer
/// is the client.
///
/// Written as a TOML list or, for an environment variable, separated by commas
/// (`KEEL__SERVER__TRUSTED_PROXIES=10.0.0.0/8,172.16.0.0/12`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ListOrText")]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TryFrom<ListOrText> for TrustedProxies {
    type Error = String;

    fn try_from(value: ListOrText) -> Result<Self, String> {
        value
            .items()
            .iter()
            .map(|item| parse_net(item))
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

/// A network, or one address as the network of just that address.
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or CIDR network"))
}

impl TrustedProxies {
    pub fn new(nets: Vec<ipnet::IpNet>) -> Self {
        Self(nets)
    }

    /// Whether `addr` is one of the trusted proxies (an IPv4 address written as
    /// IPv6, `::ffff:10.0.0.1`, counts as the IPv4 one).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The header the trusted proxies write the client's address into.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, cloud load balancers, most
    /// Kubernetes ingresses).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (Envoy and HAProxy can write it).
    Forwarded,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(value: ListOrText) -> Result<TrustedProxies, String> {
        TrustedProxies::try_from(value)
    }

    #[test]
    fn addresses_and_networks_from_a_list_or_a_comma_separated_text() {
        let list = proxies(ListOrText::List(vec![
            "10.0.0.0/8".into(),
            "192.0.2.7".into(),
        ]))
        .unwrap();
        let text = proxies(ListOrText::Text(" 10.0.0.0/8, 192.0.2.7 ,".into())).unwrap();
        assert_eq!(list, text);
        assert!(list.contains("10.1.2.3".parse().unwrap()));
        assert!(list.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(list.contains("192.0.2.7".parse().unwrap()));
        assert!(!list.contains("192.0.2.8".parse().unwrap()));
        assert!(proxies(ListOrText::Text(String::new())).unwrap().is_empty());
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err = proxies(ListOrText::Text("10.0.0.0/8, example.com".into())).unwrap_err();
        assert!(err.contains("`example.com`"), "{err}");
    }
}
