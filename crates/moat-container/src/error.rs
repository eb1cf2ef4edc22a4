//! Errors from the container runtime, phrased for the person who must fix them.

/// What went wrong talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The daemon is not there: not installed, not running, or the socket is elsewhere.
    #[error("cannot connect to the Docker daemon at `{endpoint}`: {reason}")]
    Unreachable { endpoint: String, reason: String },

    /// A container or image that was expected is gone.
    #[error("{0} not found")]
    NotFound(String),

    /// An image build step failed. `output` holds the last lines the build printed.
    #[error("image build failed at {step}: {message}")]
    Build {
        step: String,
        message: String,
        output: Vec<String>,
    },

    /// The connection to the daemon broke (it stopped, restarted or crashed) while moat
    /// was waiting on it.
    #[error("lost the connection to the Docker daemon while {context}: {reason}")]
    Lost { context: String, reason: String },

    /// Any other answer from the Docker API.
    #[error("{context}: {source}")]
    Api {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl RuntimeError {
    pub(crate) fn api(context: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Self {
        let context = context.into();
        move |source| match source {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => RuntimeError::NotFound(context),
            source if is_transport(&source) => RuntimeError::Lost {
                context,
                reason: transport_reason(&source),
            },
            source => RuntimeError::Api { context, source },
        }
    }

    /// Whether the daemon itself went away (as opposed to answering with an error).
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            RuntimeError::Lost { .. } | RuntimeError::Unreachable { .. }
        )
    }

    /// A one-line suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            RuntimeError::Unreachable { .. } => Some(
                "start Docker (`sudo systemctl start docker`, or `sudo dockerd &`), \
                 install it with `sudo apt-get install docker.io` if it is missing, \
                 or point DOCKER_HOST at a running daemon"
                    .into(),
            ),
            RuntimeError::Lost { .. } => Some(
                "the daemon stopped or restarted; once it is back (`docker info`), \
                 `moat list` shows what became of the run"
                    .into(),
            ),
            RuntimeError::Build { .. } => Some(
                "fix the failing step (its output is above), then run again; \
                 `--rebuild` forces a fresh build"
                    .into(),
            ),
            _ => None,
        }
    }
}

/// Errors of the connection itself, not answers of the daemon.
fn is_transport(error: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        error,
        E::HyperLegacyError { .. }
            | E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HttpClientError { .. }
            | E::SocketNotFoundError(_)
            | E::RequestTimeoutError
    )
}

/// A transport error in plain words: the deepest cause (`connection reset by peer`),
/// not the HTTP client's wrapping of it.
fn transport_reason(error: &bollard::errors::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text.is_empty() || text.contains("hyper legacy client") {
        "the connection closed".to_owned()
    } else {
        text
    }
}
