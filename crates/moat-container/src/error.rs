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
            source => RuntimeError::Api { context, source },
        }
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
            RuntimeError::Build { .. } => Some(
                "fix the failing step (its output is above), then run again; \
                 `--rebuild` forces a fresh build"
                    .into(),
            ),
            _ => None,
        }
    }
}
