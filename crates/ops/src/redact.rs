//! A job's payload as an operator may see it: values under keys that name secrets (or
//! end in `key`) are replaced, at any depth.

use serde_json::Value;

/// Key fragments (lower case) whose values are never shown.
const SECRET_KEYS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "authorization",
    "signature",
    "cookie",
    "credential",
    "private",
    // Verification, reset and invitation links carry the token that grants access.
    "link",
];

/// `payload` with every value under a secret-looking key replaced by `"[redacted]"`.
pub fn redact(payload: &Value) -> Value {
    match payload {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let hidden =
                        SECRET_KEYS.iter().any(|s| lower.contains(s)) || lower.ends_with("key");
                    let v = if hidden {
                        Value::String("[redacted]".to_owned())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_hidden_at_any_depth_and_the_rest_is_kept() {
        let payload = json!({
            "to": "someone@example.com",
            "vars": {"reset_token": "abc", "name": "Ada", "items": [{"Signature": "x"}], "link": "https://x/reset?t=1"},
            "Password": "hunter2",
            "signing_key": "k",
        });
        assert_eq!(
            redact(&payload),
            json!({
                "to": "someone@example.com",
                "vars": {"reset_token": "[redacted]", "name": "Ada", "items": [{"Signature": "[redacted]"}], "link": "[redacted]"},
                "Password": "[redacted]",
                "signing_key": "[redacted]",
            })
        );
    }
}
