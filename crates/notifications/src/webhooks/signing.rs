//! HMAC-SHA256 signatures for webhook deliveries.
//!
//! Receivers must be able to tell that a request comes from us and was not replayed
//! later, so every delivery carries a [`SIGNATURE_HEADER`] of the form
//! `t=<unix seconds>,v1=<hex>`: the timestamp is part of the signed message, which lets
//! a receiver reject old deliveries (see [`verify`]) without a nonce store.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`.
pub const SIGNATURE_HEADER: &str = "keel-signature";
/// Header carrying the delivery's id, stable across retries so receivers can deduplicate.
pub const DELIVERY_ID_HEADER: &str = "keel-delivery-id";
/// Header carrying the event type, so receivers can route before parsing the body.
pub const EVENT_TYPE_HEADER: &str = "keel-event-type";

/// Prefix of every secret: makes a leaked secret recognisable (e.g. by secret scanners).
const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// New signing secret: `"whsec_"` + 32 random bytes, base64url without padding.
///
/// 32 bytes match SHA-256's output size, the most an HMAC-SHA256 key usefully holds.
/// `rand::random` draws from the thread-local generator, a CSPRNG seeded from the OS.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `hex(HMAC-SHA256(key = secret, message = "{timestamp}.{body}"))`.
///
/// The key is the whole secret string as UTF-8, prefix included, so receivers can use
/// the string they were shown as-is, without decoding anything.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// `"t=<unix seconds>,v1=<hex>[,v1=<hex>...]"`, one `v1` per secret.
///
/// During secret rotation both the new and the previous secret sign, so receivers can
/// switch to the new secret at their own pace. With no secrets, only `t=` is written.
pub fn signature_header(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&sign(secret, timestamp, body));
    }
    header
}

/// Receiver-side verification, as we document it for customers (and use in tests).
///
/// Rejects a header without exactly one `t=` or without any `v1=`, and a timestamp
/// further than `tolerance_secs` from `now` (either way: a replayed delivery, or a
/// clock far off). Accepts when any `v1` matches; the comparison is constant-time so
/// that response timing does not reveal how much of a forged signature was right.
/// Unknown schemes (e.g. a future `v2=`) are ignored so they can be added compatibly.
pub fn verify(header: &str, secret: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return false;
        };
        match key {
            "t" => {
                let Ok(t) = value.parse::<i64>() else {
                    return false;
                };
                if timestamp.replace(t).is_some() {
                    return false;
                }
            }
            "v1" => {
                if let Ok(signature) = hex::decode(value) {
                    candidates.push(signature);
                }
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    let tolerance = u64::try_from(tolerance_secs).unwrap_or(0);
    if now.abs_diff(timestamp) > tolerance {
        return false;
    }
    let expected = mac(secret, timestamp, body);
    candidates
        .iter()
        .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
}

/// The MAC state after absorbing `"{timestamp}.{body}"`.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC hashes long keys and pads short ones: every key length is valid.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"ping"}"#;
    const T: i64 = 1_700_000_000;
    /// Computed independently:
    /// `hmac.new(b"whsec_test", b'1700000000.{"id":"evt_1","type":"ping"}', hashlib.sha256).hexdigest()`
    const KNOWN_TEST: &str = "33ff6664879612e191c4e01184f3da32597a3c9b33ca2655fac317d01c5abc3f";
    /// Same with key `b"whsec_old"`.
    const KNOWN_OLD: &str = "c85ace7651c98070cdf1a41664c68ebc94f6ea4a5413a569964c8b9caf496ba2";

    #[test]
    fn sign_matches_a_known_vector() {
        assert_eq!(sign("whsec_test", T, BODY), KNOWN_TEST);
        assert_eq!(sign("whsec_old", T, BODY), KNOWN_OLD);
    }

    #[test]
    fn header_has_one_v1_per_secret_in_order() {
        assert_eq!(
            signature_header(&["whsec_test", "whsec_old"], T, BODY),
            format!("t={T},v1={KNOWN_TEST},v1={KNOWN_OLD}")
        );
        assert_eq!(signature_header(&[], T, BODY), format!("t={T}"));
    }

    #[test]
    fn new_secrets_are_prefixed_random_32_bytes() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        let encoded = a.strip_prefix("whsec_").expect("prefix");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(encoded).expect("base64url").len(),
            32
        );
        assert!(!a.contains('='), "no padding: {a}");
    }

    #[test]
    fn verify_accepts_any_matching_signature_within_tolerance() {
        let header = signature_header(&["whsec_new", "whsec_test"], T, BODY);
        assert!(verify(&header, "whsec_test", BODY, T, 300));
        assert!(verify(&header, "whsec_new", BODY, T + 300, 300));
        assert!(verify(&header, "whsec_new", BODY, T - 300, 300));
        // Spaces after commas and unknown schemes are tolerated.
        let spaced = format!("t={T}, v2=zz, v1={KNOWN_TEST}");
        assert!(verify(&spaced, "whsec_test", BODY, T, 0));
    }

    #[test]
    fn verify_rejects_forgeries_replays_and_malformed_headers() {
        let header = signature_header(&["whsec_test"], T, BODY);
        let cases: &[(&str, &str, &[u8], i64)] = &[
            (&header, "whsec_other", BODY, T),
            (&header, "whsec_test", b"{}", T),
            (&header, "whsec_test", BODY, T + 301),
            (&header, "whsec_test", BODY, T - 301),
            (&header, "whsec_test", BODY, i64::MIN),
        ];
        for (i, (header, secret, body, now)) in cases.iter().enumerate() {
            assert!(!verify(header, secret, body, *now, 300), "case {i}");
        }
        let malformed = [
            String::new(),
            format!("v1={KNOWN_TEST}"),
            format!("t={T}"),
            format!("t=soon,v1={KNOWN_TEST}"),
            format!("t={T},t={T},v1={KNOWN_TEST}"),
            format!("t={T},v1={}", &KNOWN_TEST[..63]),
            format!("t={T},v1={}", &KNOWN_TEST[..62]),
            format!("t={T},garbage,v1={KNOWN_TEST}"),
        ];
        for header in &malformed {
            assert!(!verify(header, "whsec_test", BODY, T, 300), "{header:?}");
        }
    }

    #[test]
    fn negative_tolerance_only_accepts_the_exact_second() {
        let header = signature_header(&["whsec_test"], T, BODY);
        assert!(verify(&header, "whsec_test", BODY, T, -5));
        assert!(!verify(&header, "whsec_test", BODY, T + 1, -5));
    }
}
