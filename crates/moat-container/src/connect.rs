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
        let socket = endpoint.host.trim_start_matches("unix://");
        let server_api = match tokio::time::timeout(PING_TIMEOUT, ping(Path::new(socket))).await {
            Err(_) => return Err(unreachable("the daemon did not answer within 5s".into())),
            Ok(Err(e)) => return Err(unreachable(e)),
            Ok(Ok(version)) => version,
        };
        let api = match server_api {
            // What the Docker CLI does: the API version from the ping's `Api-Version`
            // header, capped at bollard's own. `/version` (bollard's way) costs the daemon
            // ~10 ms of asking containerd and runc for theirs, on every run's start.
            Some(server) => {
                let client = bollard::API_DEFAULT_VERSION;
                let agreed = if server < *client { server } else { *client };
                bollard::Docker::connect_with_unix(&endpoint.host, REQUEST_TIMEOUT_SECS, &agreed)
                    .map_err(|e| unreachable(e.to_string()))?
            }
            None => api
                .negotiate_version()
                .await
                .map_err(|e| unreachable(format!("API version negotiation failed: {e}")))?,
        };
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

/// `GET /_ping` on the daemon's socket: `Ok` when it answers 200, with the API version
/// its `Api-Version` header names (absent on very old daemons). Spoken by hand because
/// bollard's ping does not return headers.
async fn ping(socket: &Path) -> Result<Option<bollard::ClientVersion>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("the socket `{}` does not exist", socket.display())
        } else {
            format!("cannot connect to `{}`: {e}", socket.display())
        }
    })?;
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("the ping could not be sent: {e}"))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("the ping's answer could not be read: {e}"))?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err("the daemon closed the connection without answering the ping".into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    parse_ping_head(&String::from_utf8_lossy(&head))
}

/// The status and `Api-Version` of a ping's response head.
fn parse_ping_head(head: &str) -> Result<Option<bollard::ClientVersion>, String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if status.split(' ').nth(1) != Some("200") {
        return Err(format!("the ping was answered with `{}`", status.trim()));
    }
    Ok(lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("api-version"))
        .and_then(|(_, value)| {
            let (major, minor) = value.trim().split_once('.')?;
            Some(bollard::ClientVersion {
                major_version: major.parse().ok()?,
                minor_version: minor.parse().ok()?,
            })
        }))
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

    #[test]
    fn the_ping_names_the_api_version() {
        let v = parse_ping_head(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(
            parse_ping_head("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n")
                .unwrap()
                .is_none()
        );
        let refused = parse_ping_head("HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err();
        assert!(refused.contains("403 Forbidden"), "{refused}");
    }

    #[tokio::test]
    async fn a_missing_socket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("docker.sock");
        let e = ping(&missing).await.unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
    }
}
