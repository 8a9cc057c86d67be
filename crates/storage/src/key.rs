//! Object keys: built from identifiers Keel generates, never from a client's file name.

use object_store::path::Path;
use std::fmt;

/// Where an object lives in the store: `{org_id}/{area}/{id}/{name}`.
///
/// Every key starts with the organization, so a tenant's objects can be listed (and
/// removed) as one prefix, and the second segment names the domain that owns it
/// (`uploads`, `exports`), so each domain's sweeper knows its own objects.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(Path);

impl ObjectKey {
    /// A key from segments Keel made up itself (ids, fixed names). Each segment is
    /// percent-encoded where needed, so no segment can climb out of its folder.
    pub fn new<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ObjectKey(Path::from_iter(segments.into_iter().map(|s| {
            object_store::path::PathPart::from(s.as_ref())
                .as_ref()
                .to_owned()
        })))
    }

    /// A key Keel stored (a row's record of [`ObjectKey::as_str`]).
    pub fn stored(text: &str) -> Result<Self, crate::StorageError> {
        Path::parse(text)
            .map(ObjectKey)
            .map_err(|e| crate::StorageError::Invalid(format!("stored key {text:?}: {e}")))
    }

    /// A key as the store listed it.
    pub fn from_listed(path: Path) -> Self {
        ObjectKey(path)
    }

    /// The key's segments, for a sweeper to recognise its own keys.
    pub fn segments(&self) -> Vec<&str> {
        // Encoded segments never contain the delimiter.
        self.0
            .as_ref()
            .split(object_store::path::DELIMITER)
            .collect()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_ref())
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectKey;

    #[test]
    fn segments_cannot_escape() {
        let key = ObjectKey::new(["org", "uploads", "../../etc", "original"]);
        assert_eq!(key.segments().len(), 4);
        assert!(!key.as_str().contains("/../"));
    }
}
