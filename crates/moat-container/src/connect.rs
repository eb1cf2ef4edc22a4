//! Finding and connecting to the Docker daemon.
//!
//! Order: `DOCKER_HOST`, then the current Docker context (`~/.docker/config.json`), then
//! `/var/run/docker.sock`. bollard reads only the first and the last; Colima, OrbStack and
//! Rancher Desktop users rely on the context.

use std::path::Path;
use std::time::Duration;

use sha2::Digest;

use crate::{Docker, RuntimeError};

/// Where the daemon is, as a `unix://` URL, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    pub host: String,
    pub source: &'static str,
}

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";
/// How long a ping may take before the daemon counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Request timeout for non-streaming calls; streams (build, logs, wait) are not cut.
const REQUEST_TIMEOUT_SECS: u64 = 300;

/// Work out which daemon to talk to, from the values the caller read from the environment.
pub fn resolve_endpoint(docker_host: Option<&str>, home: Option<&Path>) -> DockerEndpoint {
    if let Some(host) = docker_host.filter(|h| !h.is_empty()) {
        return DockerEndpoint {
            host: host.to_owned(),
            source: "DOCKER_HOST",
        };
    }
    if let Some(host) = home.and_then(context_host) {
        return DockerEndpoint {
            host,
            source: "docker context",
        };
    }
    DockerEndpoint {
        host: DEFAULT_SOCKET.to_owned(),
        source: "default",
    }
}

/// The endpoint of the current Docker context, unless it is `default` or unreadable.
fn context_host(home: &Path) -> Option<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&fs_err::read(home.join(".docker/config.json")).ok()?).ok()?;
    let name = config.get("currentContext")?.as_str()?;
    if name.is_empty() || name == "default" {
        return None;
    }
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta_path = home
        .join(".docker/contexts/meta")
        .join(digest)
        .join("meta.json");
    let meta: serde_json::Value = serde_json::from_slice(&fs_err::read(meta_path).ok()?).ok()?;
    Some(meta.pointer("/Endpoints/docker/Host")?.as_str()?.to_owned())
}

impl Docker {
    /// Connect, check the daemon answers, and agree on an API version with it.
    pub async fn connect(endpoint: DockerEndpoint) -> Result<Self, RuntimeError> {
        let unreachable = |reason: String| RuntimeError::Unreachable {
            endpoint: endpoint.host.clone(),
            reason,
        };
        if !endpoint.host.starts_with("unix://") {
            return Err(unreachable(
                "only unix sockets (`unix://PATH`) are supported".into(),
            ));
        }
        let api = bollard::Docker::connect_with_unix(
            &endpoint.host,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| match e {
            bollard::errors::Error::SocketNotFoundError(path) => {
                unreachable(format!("the socket `{path}` does not exist"))
            }
            other => unreachable(other.to_string()),
        })?;
        match tokio::time::timeout(PING_TIMEOUT, api.ping()).await {
            Err(_) => return Err(unreachable("the daemon did not answer within 5s".into())),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok(_)) => {}
        }
        let api = api
            .negotiate_version()
            .await
            .map_err(|e| unreachable(format!("API version negotiation failed: {e}")))?;
        Ok(Docker { api, endpoint })
    }

    pub fn endpoint(&self) -> &DockerEndpoint {
        &self.endpoint
    }

    /// The daemon's version string, e.g. `20.10.24+dfsg1`.
    pub async fn server_version(&self) -> Result<String, RuntimeError> {
        let v = self
            .api
            .version()
            .await
            .map_err(RuntimeError::api("reading the Docker version"))?;
        Ok(v.version.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_wins() {
        let e = resolve_endpoint(Some("unix:///x.sock"), None);
        assert_eq!(e.host, "unix:///x.sock");
        assert_eq!(e.source, "DOCKER_HOST");
        assert_eq!(resolve_endpoint(Some(""), None).host, DEFAULT_SOCKET);
    }

    #[test]
    fn reads_the_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_owned();
        let docker = home.join(".docker");
        fs_err::create_dir_all(&docker).unwrap();
        fs_err::write(docker.join("config.json"), r#"{"currentContext":"colima"}"#).unwrap();
        let digest = hex::encode(sha2::Sha256::digest(b"colima"));
        let meta = docker.join("contexts/meta").join(digest);
        fs_err::create_dir_all(&meta).unwrap();
        fs_err::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///c.sock"}}}"#,
        )
        .unwrap();
        let e = resolve_endpoint(None, Some(&home));
        assert_eq!(e.host, "unix:///c.sock");
        assert_eq!(e.source, "docker context");
    }
}
