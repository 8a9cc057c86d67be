//! The job handlers of every domain, composed for `keel work` / `keel all`.
//!
//! Each domain crate exposes `jobs::register(&mut Registry, deps)`; add its call here when
//! the domain lands.

use crate::platform::Platform;
use keel_queue::Registry;

pub fn registry(_platform: &Platform) -> anyhow::Result<Registry> {
    let registry = Registry::new();
    Ok(registry)
}
