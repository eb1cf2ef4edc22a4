//! What each grant means: the providers moat knows (`anthropic`, `github`, `openai`, and
//! header-injecting providers defined in YAML, built in or the user's own), the proxy
//! rules and container placeholders a run's grants turn into, the hosts a strict network
//! policy must allow for them, and the requests that check a credential before it is
//! saved.
//!
//! A library: it takes values and returns values. It never prints, prompts or reads the
//! environment; the CLI does the menus and passes in the settings
//! ([`HttpOptions`] for `MOAT_EXTRA_CA_CERTS` and `MOAT_CONNECT_TO`).
//!
//! The run side calls [`grants_for_run`] once per run:
//!
//! ```no_run
//! # fn demo(store: &moat_credentials::CredentialStore, home: &std::path::Path)
//! #     -> Result<(), moat_providers::ProviderError> {
//! use moat_providers::{ProviderRegistry, grants_for_run};
//! let registry = ProviderRegistry::load(&home.join("providers"))?;
//! let grants = grants_for_run(
//!     store,
//!     &registry,
//!     &["anthropic".to_owned(), "github".to_owned()],
//!     "the run's proxy token",
//!     jiff::Timestamp::now(),
//! )?;
//! // grants.rules   -> ProxyConfig::rules
//! // grants.env     -> the container's environment (placeholders only)
//! // grants.hosts   -> added to NetworkPolicy::Strict's allow list and ProxyConfig::private_allow
//! // grants.warnings -> printed before the run starts
//! # let _ = grants;
//! # Ok(())
//! # }
//! ```

mod error;
mod grants;
mod mcp;
mod provider;
mod validate;
mod yaml;

pub use error::{DefinitionError, ProviderError};
pub use grants::{ANTHROPIC_OAUTH_BETA, RunGrants, grants_for_run};
pub use mcp::{
    MCP_GRANT_PREFIX, McpPlaceholder, McpServerAuth, RunMcp, grant_command, mcp_for_run,
    mcp_grant_name, url_host,
};
pub use provider::{
    Provider, ProviderKind, ProviderOrigin, ProviderRegistry, ProviderSummary,
    is_claude_oauth_token,
};
pub use validate::{HttpOptions, VALIDATION_TIMEOUT, Validated, can_validate, validate};
pub use yaml::{HeaderSpec, ValidateSpec, is_env_name, parse_definition};

/// The directory under `$MOAT_HOME` that holds the user's provider definitions.
pub const PROVIDERS_DIR_NAME: &str = "providers";
