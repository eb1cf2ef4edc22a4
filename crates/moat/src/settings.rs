//! Settings, resolved once at the top: the environment is read here and nowhere else,
//! and command-line flags are checked and turned into the values the libraries take.

use std::path::PathBuf;

use anyhow::Result;
use moat_container::{Docker, DockerEndpoint};
use moat_home::MoatHome;
use moat_run::{RunRequest, RunStore};

use crate::cli::ExecArgs;
use crate::ui::UserError;

/// The variables of the host environment moat reads.
#[derive(Debug, Clone)]
pub struct Environment {
    pub moat_home: Option<String>,
    pub docker_host: Option<String>,
    pub home: Option<PathBuf>,
    pub term: Option<String>,
    pub base_image: Option<String>,
    pub build_network: Option<String>,
}

impl Environment {
    pub fn read() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Environment {
            moat_home: var("MOAT_HOME"),
            docker_host: var("DOCKER_HOST"),
            home: std::env::home_dir(),
            term: var("TERM"),
            base_image: var("MOAT_BASE_IMAGE"),
            build_network: var("MOAT_BUILD_NETWORK"),
        }
    }
}

/// What every command works with.
#[derive(Debug, Clone)]
pub struct Context {
    pub store: RunStore,
    pub endpoint: DockerEndpoint,
    pub term: Option<String>,
    pub base_image: Option<String>,
    pub build_network: Option<String>,
}

impl Context {
    pub fn new(env: &Environment) -> Result<Self> {
        let home = MoatHome::resolve(env.moat_home.as_deref())?;
        Ok(Context {
            store: RunStore::new(home),
            endpoint: moat_container::resolve_endpoint(
                env.docker_host.as_deref(),
                env.home.as_deref(),
            ),
            term: env.term.clone(),
            base_image: env.base_image.clone(),
            build_network: env.build_network.clone(),
        })
    }

    pub async fn docker(&self) -> Result<Docker> {
        Ok(Docker::connect(self.endpoint.clone()).await?)
    }
}

/// Turn `moat run` flags into a [`RunRequest`], rejecting bad input before anything starts.
pub fn run_request(
    ctx: &Context,
    path: Option<PathBuf>,
    exec: &ExecArgs,
    command: Vec<String>,
) -> Result<RunRequest> {
    let workspace = match path {
        Some(path) => path,
        None => std::env::current_dir()?,
    };
    let env = exec
        .env
        .iter()
        .map(|pair| parse_env(pair))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunRequest {
        workspace,
        command,
        name: exec.name.clone(),
        env,
        interactive: exec.interactive,
        detach: exec.detach,
        keep: exec.keep,
        rebuild: exec.rebuild,
        term: ctx.term.clone(),
        base_image: ctx.base_image.clone(),
        build_network: ctx.build_network.clone(),
    })
}

/// `KEY=VALUE` with a POSIX variable name.
pub fn parse_env(pair: &str) -> Result<(String, String), UserError> {
    let Some((key, value)) = pair.split_once('=') else {
        return Err(UserError::new(format!(
            "invalid --env `{}`: expected KEY=VALUE",
            redact_env(pair)
        ))
        .hint("for example `-e DEBUG=1`"));
    };
    let valid = key
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(UserError::new(format!(
            "invalid --env key `{key}`: not a valid variable name"
        ))
        .hint("names are letters, digits and `_`, not starting with a digit, e.g. `MY_VAR=1`"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// A malformed `--env` may hold a secret; show only enough to recognise it.
fn redact_env(pair: &str) -> String {
    let shown: String = pair.chars().take(3).collect();
    if pair.chars().count() > 3 {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("A=1").unwrap(), ("A".into(), "1".into()));
        assert_eq!(parse_env("_x=a=b").unwrap(), ("_x".into(), "a=b".into()));
        assert_eq!(parse_env("EMPTY=").unwrap(), ("EMPTY".into(), "".into()));
        for bad in ["NOVALUE", "1A=x", "A-B=x", "=x", "A B=x"] {
            assert!(parse_env(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_env_never_echoes_its_value() {
        let e = parse_env("sk-ant-secret-token").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
