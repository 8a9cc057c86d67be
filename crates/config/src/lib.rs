//! Keel's typed, layered configuration.
//!
//! Layers, later ones winning: `config/default.toml` (compiled in), then
//! `config/$KEEL_ENV.toml` (optional, read from the config directory), then environment
//! variables `KEEL__SECTION__KEY`. The result is validated once at start-up; any problem
//! becomes a [`ConfigError`] whose message names the key.

mod link_keys;
mod list;
mod media_types;
mod proxies;
mod secret;
mod settings;
pub mod testing;
mod validate;

pub use link_keys::{LinkKey, LinkKeys};
pub use media_types::MediaTypes;
pub use proxies::{ForwardedHeader, TrustedProxies};
pub use secret::Secret;
pub use settings::*;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is present but unacceptable.
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: String, reason: String },
    /// A layer could not be read or a value has the wrong type (the `config` crate's
    /// message names the key).
    #[error("invalid configuration: {0}")]
    Load(#[from] config::ConfigError),
}

/// Where to load settings from. [`Loader::from_process`] is what the binary uses; tests
/// build one with their own variables instead of touching the process environment.
#[derive(Debug, Clone)]
pub struct Loader {
    dir: PathBuf,
    env_name: String,
    vars: HashMap<String, String>,
}

impl Loader {
    /// Reads `KEEL_ENV` (default `development`), `KEEL_CONFIG_DIR` (default `config`)
    /// and every `KEEL__*` variable of the process.
    pub fn from_process() -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let env_name = vars
            .get("KEEL_ENV")
            .cloned()
            .unwrap_or_else(|| "development".to_owned());
        let dir = vars
            .get("KEEL_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("config"));
        Self::new(dir, env_name, vars)
    }

    pub fn new(
        dir: impl AsRef<Path>,
        env_name: impl Into<String>,
        vars: HashMap<String, String>,
    ) -> Self {
        Self {
            dir: dir.as_ref().to_owned(),
            env_name: env_name.into(),
            vars: vars
                .into_iter()
                .filter(|(k, _)| k.starts_with("KEEL__"))
                .collect(),
        }
    }

    /// Adds or replaces one `KEEL__...` variable (used by tests and by the binary's flags).
    pub fn with_var(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.insert(key.to_owned(), value.into());
        self
    }

    /// [`Loader::with_var`] for each pair.
    pub fn with_vars(self, vars: &[(&str, &str)]) -> Self {
        vars.iter()
            .fold(self, |loader, (k, v)| loader.with_var(k, *v))
    }

    pub fn load(&self) -> Result<Settings, ConfigError> {
        let env_file = self.dir.join(format!("{}.toml", self.env_name));
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .add_source(config::File::from(env_file).required(false))
            .add_source(
                config::Environment::with_prefix("KEEL")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(self.vars.clone().into_iter().collect())),
            )
            .set_override("env", self.env_name.clone())?
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }
}

impl Settings {
    /// Loads the settings the way the binary does (see [`Loader::from_process`]).
    pub fn load() -> Result<Self, ConfigError> {
        Loader::from_process().load()
    }
}
