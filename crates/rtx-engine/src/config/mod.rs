//! Configuration: a TOML file (`RTX_CONFIG`), `RTX_*` environment variables and flags, in that
//! order of precedence (flags win). Every setting has a default, so the engine starts with none.
//!
//! `schema` owns what can be written (the command line, the variables, the file's tables);
//! `resolve` owns turning that into one checked [`Config`] or a [`ConfigError`] naming the key;
//! `secret` owns the credential types, which never print their value. Nothing here starts,
//! connects to or logs anything: the server does that with the resolved [`Config`].

mod resolve;
mod schema;
mod secret;

pub use resolve::Config;
pub use schema::{Cli, Command};
pub use secret::Secret;
// The rest of the surface, so that `crate::config::…` names every public type whether or not the
// engine names it today (a binary crate warns on a re-export it does not use).
#[allow(unused_imports)]
pub use {
    resolve::{parse_duration, ConfigError, HttpConfig, DEFAULT_DATABASE_URL},
    schema::{AlertsConfig, HealthConfig, LoggingConfig, Settings, ShutdownConfig},
    secret::SecretUrl,
};
