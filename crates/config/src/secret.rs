//! A wrapper for values that must never reach a log line.

use serde::Deserialize;
use std::fmt;

/// A secret value (database URL with its password, tokens). `Debug` and `Display` print
/// `[redacted]`, so a `tracing::debug!(?settings)` or a panic message cannot leak it;
/// the value is reachable only through [`Secret::expose`], which is easy to grep for.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value. Call it only where the value is used, never to log it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Secret<String> {
    /// The value, or `None` when it is empty: how optional secrets (tokens that turn a
    /// feature on) are written in the configuration.
    pub fn non_empty(&self) -> Option<&str> {
        Some(self.0.as_str()).filter(|value| !value.is_empty())
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

impl From<&str> for Secret<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::from("postgres://u:hunter2@db/keel");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "postgres://u:hunter2@db/keel");
    }
}
