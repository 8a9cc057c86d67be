//! Settings that are lists: a TOML list, or for an environment variable one text with
//! commas between the items (`KEEL__SERVER__TRUSTED_PROXIES=10.0.0.0/8,172.16.0.0/12`).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ListOrText {
    List(Vec<String>),
    Text(String),
}

impl ListOrText {
    /// The items, trimmed, without empty ones.
    pub(crate) fn items(self) -> Vec<String> {
        let items = match self {
            ListOrText::List(items) => items,
            ListOrText::Text(text) => text.split(',').map(str::to_owned).collect(),
        };
        items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    }
}
