//! The order of processing: inspection, the type policy, then each processor.

use super::inspect::inspect;
use super::{Content, FileFacts, ProcessError, Processor, Verdict};
use crate::model::{Results, UploadState};
use crate::sniff;
use keel_config::{TypeMismatch, UploadsSettings};
use std::sync::Arc;

/// What processing decided about one upload.
#[derive(Debug)]
pub(crate) struct Decision {
    pub state: UploadState,
    pub facts: FileFacts,
    pub reason: Option<String>,
    pub results: Results,
}

pub(crate) async fn run(
    settings: &UploadsSettings,
    processors: &[Arc<dyn Processor>],
    mut facts: FileFacts,
    content: &Content<'_>,
) -> Result<Decision, ProcessError> {
    let inspected = inspect(content).await?;
    facts.size = inspected.size;
    facts.sha256 = inspected.sha256;
    facts.detected_type = sniff::detect(&inspected.head, &facts.declared_type, &facts.file_name);

    let mismatch = sniff::contradiction(&facts.declared_type, &facts.detected_type)
        .filter(|_| settings.type_mismatch == TypeMismatch::Reject);
    if let Some(reason) = mismatch
        .or_else(|| sniff::disallowed(settings.allowed_types.as_slice(), &facts.detected_type))
    {
        return Ok(rejected(facts, reason, Results::default()));
    }

    let mut found = serde_json::Map::new();
    for processor in processors
        .iter()
        .filter(|p| !p.deferred() && p.accepts(&facts))
    {
        match processor.process(&facts, content).await? {
            Verdict::Accept(Some(value)) => {
                found.insert(processor.name().to_owned(), value);
            }
            Verdict::Accept(None) => {}
            Verdict::Reject(reason) => {
                return Ok(rejected(facts, reason, results(found)));
            }
        }
    }
    Ok(Decision {
        state: UploadState::Ready,
        facts,
        reason: None,
        results: results(found),
    })
}

fn rejected(facts: FileFacts, reason: String, results: Results) -> Decision {
    Decision {
        state: UploadState::Rejected,
        facts,
        reason: Some(reason),
        results,
    }
}

/// The built-in processors' results land in their typed fields (`image`, `table`),
/// everyone else's under `processors`.
fn results(found: serde_json::Map<String, serde_json::Value>) -> Results {
    let mut results = Results::default();
    for (name, value) in found {
        match name.as_str() {
            "image" => results.image = serde_json::from_value(value).ok(),
            "table" => results.table = serde_json::from_value(value).ok(),
            _ => {
                results.processors.insert(name, value);
            }
        }
    }
    results
}
