//! Proxy authentication: every client must present the run's token, so one run cannot
//! use another run's proxy (and its grants).

use base64::Engine as _;
use http::HeaderMap;
use http::header::PROXY_AUTHORIZATION;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// The user name in the proxy URL moat gives containers (`http://moat:TOKEN@host:port`).
pub const PROXY_USER: &str = "moat";

/// The credentials a client must send, as `Proxy-Authorization: Basic base64(moat:TOKEN)`.
pub(crate) struct ProxyAuth {
    expected: Secret,
}

impl ProxyAuth {
    pub fn new(token: &Secret) -> Self {
        ProxyAuth {
            expected: Secret::new(format!("{PROXY_USER}:{}", token.expose())),
        }
    }

    /// Whether the request carries the run's credentials. The comparison takes the same
    /// time wherever the first wrong byte is.
    pub fn check(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers.get(PROXY_AUTHORIZATION) else {
            return false;
        };
        let Ok(value) = value.to_str() else {
            return false;
        };
        let Some((scheme, encoded)) = value.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return false;
        }
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        decoded
            .as_slice()
            .ct_eq(self.expected.expose().as_bytes())
            .into()
    }
}

/// The proxy URL to give a container: `http://moat:TOKEN@HOST:PORT`. It holds the token,
/// so it is a [`Secret`] too.
pub fn proxy_url(addr: std::net::SocketAddr, token: &Secret) -> Secret {
    Secret::new(format!("http://{PROXY_USER}:{}@{addr}", token.expose()))
}

/// The body of the 407 answer.
pub(crate) const AUTH_REQUIRED_MESSAGE: &str = "moat: proxy authentication required\n\
\n\
This proxy serves one moat run. Requests must carry that run's proxy credentials\n\
(`Proxy-Authorization: Basic ...`); moat puts them in the run's container as\n\
`HTTPS_PROXY=http://moat:TOKEN@HOST:PORT`. A client in another run, or one that\n\
dropped the user and password from the proxy URL, gets this answer.\n";

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(PROXY_AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(credentials: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    #[test]
    fn accepts_only_the_runs_token() {
        let auth = ProxyAuth::new(&Secret::new("s3cret"));
        assert!(auth.check(&with(&basic("moat:s3cret"))));
        assert!(auth.check(&with(&format!("basic  {}", &basic("moat:s3cret")[6..]))));
        assert!(!auth.check(&HeaderMap::new()));
        assert!(!auth.check(&with(&basic("moat:s3cre"))));
        assert!(!auth.check(&with(&basic("moat:s3cret2"))));
        assert!(!auth.check(&with(&basic("other:s3cret"))));
        assert!(!auth.check(&with("Bearer s3cret")));
        assert!(!auth.check(&with("Basic !!!")));
        assert!(!auth.check(&with("Basic")));
    }

    #[test]
    fn proxy_url_carries_the_token_but_hides_it_from_debug() {
        let url = proxy_url("172.18.0.1:4567".parse().unwrap(), &Secret::new("tok"));
        assert_eq!(url.expose(), "http://moat:tok@172.18.0.1:4567");
        assert!(!format!("{url:?}").contains("tok"));
    }
}
