//! A list of accepted content types (`uploads.allowed_types`).

use crate::list::ListOrText;
use serde::Deserialize;

/// Media types (`application/pdf`) and families (`image/*`), lowercased; empty admits
/// every type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ListOrText")]
pub struct MediaTypes(Vec<String>);

impl TryFrom<ListOrText> for MediaTypes {
    type Error = String;

    fn try_from(value: ListOrText) -> Result<Self, String> {
        value
            .items()
            .into_iter()
            .map(|item| {
                let valid = item.split_once('/').is_some_and(|(t, s)| {
                    !t.is_empty() && !s.is_empty() && !item.contains(char::is_whitespace)
                });
                if valid {
                    Ok(item.to_ascii_lowercase())
                } else {
                    Err(format!(
                        "`{item}` is not a content type like image/png or image/*"
                    ))
                }
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl MediaTypes {
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_a_list_or_a_comma_separated_text() {
        let text =
            MediaTypes::try_from(ListOrText::Text("image/*, Application/PDF".into())).unwrap();
        assert_eq!(text.as_slice(), ["image/*", "application/pdf"]);
        assert!(MediaTypes::try_from(ListOrText::Text("pdf".into())).is_err());
        assert!(
            MediaTypes::try_from(ListOrText::Text(String::new()))
                .unwrap()
                .as_slice()
                .is_empty()
        );
    }
}
