//! moat's configuration: the workspace file (`agent.yaml` or `moat.yaml`), the global
//! `$MOAT_HOME/config.yaml`, and command-line overrides, loaded, checked and merged.
//!
//! Pure: it reads only the files it is pointed at (and checks that mount sources and the
//! CA file exist), never the environment, and never prints. Every problem is a
//! [`ConfigError`] naming the file, line and column, with a hint.
//!
//! ```no_run
//! # use std::path::Path;
//! let cli = moat_config::CliOverrides {
//!     grants: vec!["github".into()],
//!     ..Default::default()
//! };
//! match moat_config::load(Path::new("."), Path::new("/home/me/.moat/config.yaml"), &cli) {
//!     Ok(loaded) => print!("{}", loaded.config.render()),
//!     Err(errors) => eprintln!("error: {errors}"),
//! }
//! ```
//!
//! Layers, highest first: [`CliOverrides`] (flags and moat's environment variables), the
//! workspace file, the global file, defaults. [`resolve`] is the one place that merges them.

mod error;
mod global;
mod network;
mod resolve;
mod settings;
mod suggest;
mod values;
mod workspace;
mod yaml;

use std::path::Path;

pub use error::{ConfigError, ConfigErrors, SourceLocation};
pub use global::{GlobalConfig, load_global, parse_global};
pub use network::{ConnectTo, HostPattern, NetworkPolicy};
pub use resolve::{
    CliOverrides, ConfigFiles, DEFAULT_BASE_IMAGE, HostSettings, Network, ResolvedConfig, resolve,
    resolve_host,
};
pub use settings::{
    ClaudeFile, ClaudeSettings, Command, ContainerLimits, ContainerSettings, DebugSettings,
    DependencySpec, EnvVars, Hooks, KeyringMode, LocalMcpServer, Marketplace, MarketplaceSource,
    McpAuth, Mirrors, Mount, NetworkSection, ProxySettings, RemoteMcpServer, SnapshotExclude,
    SnapshotRetention, SnapshotSettings, SnapshotTriggers, looks_secret,
};
pub use values::{Invalid, LocalUrl, check_grant, is_env_name, local_mcp_url};
pub use workspace::{
    WORKSPACE_FILE_NAMES, WorkspaceConfig, WorkspaceFile, find_workspace_file, load_workspace,
    parse_workspace, read_workspace,
};

/// What [`load`] read and resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: ResolvedConfig,
    /// The workspace file, with the exact text its settings came from (what workspace
    /// trust approves), if there is one.
    pub workspace_file: Option<WorkspaceFile>,
}

/// Load both files and resolve them with `cli`: the whole job for `moat run` and
/// `moat config`.
///
/// `global_file` is `$MOAT_HOME/config.yaml`; it may be missing. Problems in both files
/// are reported together. The workspace file is read once: the settings and the text
/// returned with them are the same bytes.
pub fn load(
    workspace: &Path,
    global_file: &Path,
    cli: &CliOverrides,
) -> Result<Loaded, ConfigErrors> {
    let global = load_global(global_file);
    let file = read_workspace(workspace);
    match (global, file) {
        (Ok(global), Ok(file)) => Ok(Loaded {
            config: resolve(
                workspace,
                file.as_ref().map(|f| &f.config),
                global.as_ref(),
                cli,
            )?,
            workspace_file: file,
        }),
        (Err(errors), Ok(_)) | (Ok(_), Err(errors)) => Err(errors),
        (Err(global), Err(file)) => Err(global.merge(file)),
    }
}

/// Load the global file and resolve the machine settings with `cli` (moat's environment
/// variables): the job for commands that have no workspace, such as `moat grant`.
pub fn load_host(global_file: &Path, cli: &CliOverrides) -> Result<HostSettings, ConfigErrors> {
    resolve_host(load_global(global_file)?.as_ref(), cli)
}

/// Read a configuration file as text, naming it in the error: a regular file of at most
/// the kind's limit, read without waiting on a pipe or device (`moat_home::read_bounded`).
fn read_config_file(path: &Path, kind: moat_home::FileKind) -> Result<String, ConfigError> {
    let bytes = moat_home::read_bounded(path, kind).map_err(|error| {
        let problem = ConfigError::in_file(path, error.problem());
        match error.hint() {
            Some(hint) => problem.with_hint(hint),
            None => problem,
        }
    })?;
    String::from_utf8(bytes).map_err(|_| {
        ConfigError::in_file(path, "the file is not valid UTF-8").with_hint("save it as UTF-8 text")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The YAML examples of `docs/configuration.md`, in order.
    fn doc_examples() -> Vec<String> {
        let doc = include_str!("../../../docs/configuration.md");
        doc.split("```yaml\n")
            .skip(1)
            .map(|block| block.split("```").next().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn the_documented_examples_parse() {
        let examples = doc_examples();
        assert_eq!(examples.len(), 2);

        let workspace = tempfile::tempdir().unwrap();
        fs_err::create_dir(workspace.path().join("fixtures")).unwrap();
        let file = parse_workspace(Path::new("moat.yaml"), &examples[0], workspace.path())
            .unwrap_or_else(|errors| panic!("{errors}"));
        assert_eq!(file.name.as_deref(), Some("code-review"));
        assert_eq!(file.mcp.len(), 1);
        assert_eq!(
            file.network.allow.len(),
            3,
            "a host, a wildcard and a range"
        );

        let home = tempfile::tempdir().unwrap();
        let pem = home.path().join("corp.crt");
        fs_err::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let text = examples[1].replace(
            "/usr/local/share/ca-certificates/corp.crt",
            &pem.display().to_string(),
        );
        let global = parse_global(&home.path().join("config.yaml"), &text)
            .unwrap_or_else(|errors| panic!("{errors}"));
        assert_eq!(global.keyring, KeyringMode::File);
        assert_eq!(global.connect_to.len(), 1);
    }
}
