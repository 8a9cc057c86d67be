//! SSRF guard: webhook URLs are chosen by customers, so without it anyone could make our
//! servers POST to our own private network, to localhost admin ports, or to a cloud
//! metadata service that hands out credentials.
//!
//! Two checks, because neither is enough alone:
//! - [`UrlPolicy::check_url`] / [`UrlPolicy::check_resolved`] when an endpoint is saved,
//!   so a customer gets a clear 422 instead of deliveries that silently fail;
//! - [`GuardedResolver`] on every request, because DNS answers change: a name that
//!   resolved to a public address when it was saved may resolve to `127.0.0.1` later
//!   (DNS rebinding). The addresses it checks are the very ones reqwest connects to.
//!   reqwest skips the resolver for IP-literal hosts, so the sender also runs
//!   `check_url` before each request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest URL accepted: longer ones are almost always abuse, and they end up in logs.
const MAX_URL_LEN: usize = 2048;

/// How long [`UrlPolicy::check_resolved`] waits for DNS: it runs inside an API request.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses that hand out cloud credentials. Never allowed, not even on networks where
/// private targets are (self-hosted, tests): one request there can leak the host's role.
const CLOUD_METADATA: &[IpAddr] = &[
    // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean, ...
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS ECS task credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // AWS EKS Pod Identity agent.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    // Alibaba Cloud.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // AWS IMDS and EKS Pod Identity over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
];

/// IPv4 ranges that are not the public internet; first match names the reason.
const V4_RULES: &[(Ipv4Net, &str)] = &[
    (v4(255, 255, 255, 255, 32), "broadcast"),
    (v4(0, 0, 0, 0, 8), "unspecified"),
    (v4(10, 0, 0, 0, 8), "private"),
    (v4(100, 64, 0, 0, 10), "shared (CGNAT)"),
    (v4(127, 0, 0, 0, 8), "loopback"),
    (v4(169, 254, 0, 0, 16), "link-local"),
    (v4(172, 16, 0, 0, 12), "private"),
    (v4(192, 0, 0, 0, 24), "reserved for protocols"),
    (v4(192, 0, 2, 0, 24), "documentation"),
    (v4(192, 88, 99, 0, 24), "6to4 relay"),
    (v4(192, 168, 0, 0, 16), "private"),
    (v4(198, 18, 0, 0, 15), "benchmarking"),
    (v4(198, 51, 100, 0, 24), "documentation"),
    (v4(203, 0, 113, 0, 24), "documentation"),
    (v4(224, 0, 0, 0, 4), "multicast"),
    (v4(240, 0, 0, 0, 4), "reserved"),
];

/// IPv6 ranges that are not the public internet (after unwrapping embedded IPv4).
const V6_RULES: &[(Ipv6Net, &str)] = &[
    (
        Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128),
        "unspecified",
    ),
    (Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128), "loopback"),
    (v6(0xfc00, 7), "private"),
    (v6(0xfe80, 10), "link-local"),
    // Deprecated, but some old networks still route it internally.
    (v6(0xfec0, 10), "site-local"),
    (v6(0xff00, 8), "multicast"),
    // Tunnels and translators that carry an IPv4 address somewhere the guard does not
    // unwrap: refused whole rather than judged by a guess.
    (v6(0x2002, 16), "6to4 (embeds an IPv4 address)"),
    (v6(0x2001, 32), "Teredo (embeds an IPv4 address)"),
    (
        Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48),
        "NAT64 (local use)",
    ),
    (
        Ipv6Net::new_assert(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),
        "discard-only",
    ),
    (
        Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
        "documentation",
    ),
];

/// `::a.b.c.d`, the deprecated IPv4-compatible form (`::` and `::1` excluded).
const IPV4_COMPATIBLE: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 96);
/// NAT64 well-known prefix: a NAT64 gateway forwards `64:ff9b::a.b.c.d` to `a.b.c.d`.
const NAT64: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(first_segment: u16, prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(first_segment, 0, 0, 0, 0, 0, 0, 0), prefix)
}

/// Which addresses webhooks may target.
#[derive(Debug, Clone, Copy)]
pub struct UrlPolicy {
    /// Allow loopback, private, link-local, ... targets: for self-hosted installations
    /// whose receivers live on the same network, and for tests. Cloud metadata
    /// addresses stay forbidden regardless.
    pub allow_private_networks: bool,
}

/// Why a URL was refused, kept structured so the sender can tell a blocked address
/// (kind `blocked`) from a malformed URL (kind `invalid_url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlProblem {
    Invalid(String),
    Forbidden { ip: IpAddr, reason: &'static str },
}

impl std::error::Error for UrlProblem {}

/// Why a URL's host may not be delivered to: it does not resolve (in time), or resolves
/// to an address the policy refuses. The message is meant for a 422 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(String);

impl std::fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(problem) => f.write_str(problem),
            Self::Forbidden { ip, reason } => write!(
                f,
                "the address {ip} is {reason}; webhooks may only target public addresses"
            ),
        }
    }
}

/// A failed, guarded DNS resolution. The sender finds it in reqwest's error chain to
/// report a blocked address as such rather than as a generic connect error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("could not resolve {host}: {source}")]
    Lookup {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{host} did not resolve to any address")]
    NoAddresses { host: String },
    #[error("{host} resolves to {ip}, which is {reason}")]
    Blocked {
        host: String,
        ip: IpAddr,
        reason: &'static str,
    },
}

impl UrlPolicy {
    /// Syntax check for a URL a customer submits: http or https, a host, no userinfo
    /// (credentials would end up in our logs and database), at most 2048 characters,
    /// no fragment (never sent over the wire, so it can only confuse). An IP-literal
    /// host must pass [`Self::forbidden_reason`]. The error says what is wrong, for a
    /// 422 response, and is structured so the sender can count a blocked address apart.
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlProblem> {
        let invalid = |problem: &str| UrlProblem::Invalid(problem.to_owned());
        let too_long =
            || UrlProblem::Invalid(format!("the URL is longer than {MAX_URL_LEN} characters"));
        // Checked before parsing too, so a megabyte of input is not parsed first.
        if raw.len() > MAX_URL_LEN {
            return Err(too_long());
        }
        let url =
            Url::parse(raw).map_err(|e| UrlProblem::Invalid(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the URL must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("the URL must not contain a user name or password"));
        }
        if url.fragment().is_some() {
            return Err(invalid("the URL must not contain a fragment (#...)"));
        }
        // Percent-encoding can make the stored form longer than the input.
        if url.as_str().len() > MAX_URL_LEN {
            return Err(too_long());
        }
        if let Some(ip) = literal_ip(&url)
            && let Some(reason) = self.forbidden_reason(ip)
        {
            return Err(UrlProblem::Forbidden { ip, reason });
        }
        Ok(url)
    }

    /// Resolves the URL's host and checks every address, so a customer saving an
    /// endpoint learns at once that it points somewhere we will not deliver to.
    /// Every address must pass, not just one: which one gets connected to is up to
    /// the resolver and the network, so a mixed answer would fail at random.
    pub async fn check_resolved(&self, url: &Url) -> Result<(), Unreachable> {
        let Some(host) = url.host_str() else {
            return Err(Unreachable("the URL has no host".to_owned()));
        };
        if let Some(ip) = literal_ip(url) {
            return match self.forbidden_reason(ip) {
                Some(reason) => Err(Unreachable(
                    UrlProblem::Forbidden { ip, reason }.to_string(),
                )),
                None => Ok(()),
            };
        }
        let port = url.port_or_known_default().unwrap_or(0);
        match tokio::time::timeout(DNS_TIMEOUT, resolve_checked(*self, host, port)).await {
            Err(_elapsed) => Err(Unreachable(format!("could not resolve {host}: timed out"))),
            Ok(Err(e @ ResolveError::Blocked { .. })) => Err(Unreachable(format!(
                "{e}; webhooks may only target public addresses"
            ))),
            Ok(Err(e)) => Err(Unreachable(e.to_string())),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Why `ip` may not be contacted, or `None` when it may. IPv4 addresses embedded in
    /// IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`)
    /// are judged as the IPv4 address they reach.
    pub fn forbidden_reason(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => embedded_ipv4(v6).map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if CLOUD_METADATA.contains(&ip) {
            return Some("cloud metadata");
        }
        if self.allow_private_networks {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => V4_RULES
                .iter()
                .find(|(net, _)| net.contains(&v4))
                .map(|(_, reason)| *reason),
            IpAddr::V6(v6) => V6_RULES
                .iter()
                .find(|(net, _)| net.contains(&v6))
                .map(|(_, reason)| *reason),
        }
    }
}

/// The IPv4 address an IPv6 address stands for, if it embeds one.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let compatible =
        IPV4_COMPATIBLE.contains(&ip) && ip != Ipv6Addr::UNSPECIFIED && ip != Ipv6Addr::LOCALHOST;
    if !compatible && !NAT64.contains(&ip) {
        return None;
    }
    let [.., a, b, c, d] = ip.octets();
    Some(Ipv4Addr::new(a, b, c, d))
}

/// The URL's host as an IP address, when it is a literal (`[...]` for IPv6). The URL
/// parser has already normalised forms like `0x7f.1` or `2130706433` to dotted quads.
fn literal_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Resolves `host` and fails when nothing resolves or any address is forbidden.
async fn resolve_checked(
    policy: UrlPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ResolveError::Lookup {
            host: host.to_owned(),
            source,
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ResolveError::NoAddresses {
            host: host.to_owned(),
        });
    }
    for addr in &addrs {
        if let Some(reason) = policy.forbidden_reason(addr.ip()) {
            return Err(ResolveError::Blocked {
                host: host.to_owned(),
                ip: addr.ip(),
                reason,
            });
        }
    }
    Ok(addrs)
}

/// reqwest DNS resolver that fails the request when any resolved address is forbidden.
/// Checking here, rather than only when the endpoint is saved, closes DNS rebinding:
/// the addresses checked are exactly those reqwest connects to.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    policy: UrlPolicy,
}

impl GuardedResolver {
    pub fn new(policy: UrlPolicy) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let addrs = resolve_checked(policy, name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The two policies, for tests here and in the sender.
#[cfg(test)]
pub(crate) const STRICT: UrlPolicy = UrlPolicy {
    allow_private_networks: false,
};
#[cfg(test)]
pub(crate) const LAX: UrlPolicy = UrlPolicy {
    allow_private_networks: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_reasons_by_address() {
        const META: Option<&str> = Some("cloud metadata");
        // (address, reason when private networks are forbidden, reason when allowed)
        let table: &[(&str, Option<&str>, Option<&str>)] = &[
            ("8.8.8.8", None, None),
            ("1.1.1.1", None, None),
            ("2606:4700:4700::1111", None, None),
            ("127.0.0.1", Some("loopback"), None),
            ("127.255.0.9", Some("loopback"), None),
            ("::1", Some("loopback"), None),
            ("10.1.2.3", Some("private"), None),
            ("172.16.0.1", Some("private"), None),
            ("172.31.255.255", Some("private"), None),
            ("172.15.255.255", None, None),
            ("172.32.0.0", None, None),
            ("192.168.1.1", Some("private"), None),
            ("fc00::1", Some("private"), None),
            ("fd12:3456::1", Some("private"), None),
            ("169.254.1.1", Some("link-local"), None),
            ("fe80::1", Some("link-local"), None),
            ("fec0::1", Some("site-local"), None),
            ("0.0.0.0", Some("unspecified"), None),
            ("0.1.2.3", Some("unspecified"), None),
            ("::", Some("unspecified"), None),
            ("100.64.0.1", Some("shared (CGNAT)"), None),
            ("100.127.255.255", Some("shared (CGNAT)"), None),
            ("100.63.255.255", None, None),
            ("100.128.0.0", None, None),
            ("224.0.0.1", Some("multicast"), None),
            ("ff02::1", Some("multicast"), None),
            ("255.255.255.255", Some("broadcast"), None),
            ("240.0.0.1", Some("reserved"), None),
            ("198.18.0.1", Some("benchmarking"), None),
            ("198.19.255.255", Some("benchmarking"), None),
            ("198.20.0.0", None, None),
            ("192.0.0.8", Some("reserved for protocols"), None),
            ("192.0.2.1", Some("documentation"), None),
            ("203.0.113.9", Some("documentation"), None),
            ("192.88.99.1", Some("6to4 relay"), None),
            (
                "2002:7f00:1::1",
                Some("6to4 (embeds an IPv4 address)"),
                None,
            ),
            (
                "2001:0:4136:e378::1",
                Some("Teredo (embeds an IPv4 address)"),
                None,
            ),
            ("2001:4860:4860::8888", None, None),
            ("64:ff9b:1::a00:1", Some("NAT64 (local use)"), None),
            ("100::1", Some("discard-only"), None),
            ("2001:db8::1", Some("documentation"), None),
            // Embedded IPv4 is judged as IPv4.
            ("::ffff:127.0.0.1", Some("loopback"), None),
            ("::ffff:10.0.0.1", Some("private"), None),
            ("::ffff:8.8.8.8", None, None),
            ("::127.0.0.1", Some("loopback"), None),
            ("::192.168.0.1", Some("private"), None),
            ("64:ff9b::7f00:1", Some("loopback"), None),
            ("64:ff9b::8.8.8.8", None, None),
            // Cloud metadata: always forbidden.
            ("169.254.169.254", META, META),
            ("169.254.170.2", META, META),
            ("169.254.170.23", META, META),
            ("100.100.100.200", META, META),
            ("fd00:ec2::254", META, META),
            ("fd00:ec2::23", META, META),
            ("::ffff:169.254.169.254", META, META),
            ("::ffff:100.100.100.200", META, META),
            ("64:ff9b::a9fe:a9fe", META, META),
            ("169.254.169.253", Some("link-local"), None),
        ];
        for (addr, strict, lax) in table {
            let ip: IpAddr = addr.parse().expect(addr);
            assert_eq!(STRICT.forbidden_reason(ip), *strict, "{addr} (strict)");
            assert_eq!(LAX.forbidden_reason(ip), *lax, "{addr} (private allowed)");
        }
    }

    #[test]
    fn check_url_accepts_public_http_urls() {
        for raw in [
            "https://example.com/hooks?x=1",
            "http://example.com:8080/",
            "https://8.8.8.8/hook",
            "https://[2606:4700:4700::1111]/",
        ] {
            assert_eq!(STRICT.check_url(raw).expect(raw).as_str(), raw);
        }
        let longest = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(longest.len(), MAX_URL_LEN);
        assert!(STRICT.check_url(&longest).is_ok());
    }

    #[test]
    fn check_url_explains_what_is_wrong() {
        let too_long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        let cases: &[(&str, &str)] = &[
            ("ftp://example.com/", "must start with http:// or https://"),
            ("javascript:alert(1)", "must start with http:// or https://"),
            ("example.com/hook", "not a valid URL"),
            ("http://", "not a valid URL"),
            ("https://user:pw@example.com/", "user name or password"),
            ("https://user@example.com/", "user name or password"),
            ("https://example.com/#top", "fragment"),
            (&too_long, "longer than 2048 characters"),
            ("http://10.0.0.1/", "the address 10.0.0.1 is private;"),
            ("http://0x7f.1/", "the address 127.0.0.1 is loopback;"),
            ("http://2130706433/", "the address 127.0.0.1 is loopback;"),
            (
                "http://[::ffff:127.0.0.1]/",
                "the address ::ffff:127.0.0.1 is loopback;",
            ),
        ];
        for (raw, expected) in cases {
            let problem = STRICT.check_url(raw).expect_err(raw).to_string();
            assert!(problem.contains(expected), "{raw}: {problem}");
        }
        assert_eq!(
            STRICT
                .check_url("http://127.0.0.1:8080/x")
                .expect_err("loopback")
                .to_string(),
            "the address 127.0.0.1 is loopback; webhooks may only target public addresses"
        );
    }

    #[test]
    fn private_literals_pass_only_when_allowed_and_metadata_never() {
        assert!(LAX.check_url("http://10.0.0.1/").is_ok());
        assert!(LAX.check_url("http://[::1]:3000/").is_ok());
        assert_eq!(
            LAX.check_url("http://169.254.169.254/latest/meta-data/"),
            Err(UrlProblem::Forbidden {
                ip: "169.254.169.254".parse().expect("ip"),
                reason: "cloud metadata"
            })
        );
        assert!(LAX.check_url("http://[fd00:ec2::254]/").is_err());
    }

    #[tokio::test]
    async fn check_resolved_checks_resolved_and_literal_addresses() {
        let localhost = Url::parse("http://localhost:8080/").expect("url");
        let problem = STRICT
            .check_resolved(&localhost)
            .await
            .expect_err("localhost")
            .to_string();
        assert!(
            problem.starts_with("localhost resolves to ") && problem.contains("loopback"),
            "{problem}"
        );
        assert!(problem.ends_with("webhooks may only target public addresses"));
        LAX.check_resolved(&localhost).await.expect("allowed");

        let metadata = Url::parse("http://169.254.169.254/").expect("url");
        assert!(LAX.check_resolved(&metadata).await.is_err());
        let public = Url::parse("http://8.8.8.8/").expect("url");
        LAX.check_resolved(&public).await.expect("public literal");
        STRICT
            .check_resolved(&public)
            .await
            .expect("public literal");
    }

    #[tokio::test]
    async fn resolver_fails_on_forbidden_addresses() {
        let name = || "localhost".parse::<Name>().expect("name");
        let err = GuardedResolver::new(STRICT)
            .resolve(name())
            .await
            .err()
            .expect("blocked");
        assert!(
            matches!(
                err.downcast_ref::<ResolveError>(),
                Some(ResolveError::Blocked {
                    reason: "loopback",
                    ..
                })
            ),
            "{err:?}"
        );

        let addrs: Vec<SocketAddr> = GuardedResolver::new(LAX)
            .resolve(name())
            .await
            .expect("allowed")
            .collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
