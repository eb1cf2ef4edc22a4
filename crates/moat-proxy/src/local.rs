//! Responses the proxy makes itself (refusals, blocks, unreachable upstreams), each
//! recorded in the trace and saying what happened.

use std::error::Error as StdError;
use std::net::IpAddr;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::events::{Exchange, redacted_headers};
use crate::policy::blocked_message;
use crate::serve::{Shared, Target};
use crate::upstream::ConnectError;

/// The header that marks a response the proxy made to refuse a request.
pub const BLOCKED_HEADER: &str = "x-moat-blocked";

/// A plain-text answer of the proxy's own, never cached.
pub(crate) fn text_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::Text(Some(Bytes::from(body))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Record a response the proxy made itself and return it.
pub(crate) fn finish_local(
    exchange: &Exchange,
    response: Response<ProxyBody>,
    blocked: bool,
    error: Option<String>,
) -> Response<ProxyBody> {
    use http_body::Body as _;
    let status = response.status().as_u16();
    exchange.respond(status, redacted_headers(response.headers(), &[]));
    let len = response.body().size_hint().exact().unwrap_or(0);
    exchange.local_response(
        status,
        usize::try_from(len).unwrap_or(usize::MAX),
        blocked,
        error,
    );
    response
}

/// Why the proxy will not make a request now (a 503 that says so).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unavailable {
    /// The run's records cannot be written: nothing is forwarded unrecorded.
    RecordsUnwritable,
    /// The run has as many tunnels and protocol switches open as it may.
    TooManyTunnels,
}

/// 503 for `exchange`, saying why.
pub(crate) fn unavailable(exchange: &Exchange, why: Unavailable) -> Response<ProxyBody> {
    let (message, error) = match why {
        Unavailable::RecordsUnwritable => (
            "moat: this run's records cannot be written (is the disk full?); moat forwards \
             no request it cannot record, until it can again\n",
            "the run's records cannot be written",
        ),
        Unavailable::TooManyTunnels => (
            "moat: this run has too many tunnels open; close some and try again\n",
            "too many tunnels open",
        ),
    };
    finish_local(
        exchange,
        text_response(StatusCode::SERVICE_UNAVAILABLE, message.to_owned()),
        true,
        Some(error.to_owned()),
    )
}

/// 405 for a `TRACE` (or `TRACK`) that would carry a grant's credential: the server
/// answers with the request it got, credential and all.
pub(crate) fn echo_refused(exchange: &Exchange, method: &str, grant: &str) -> Response<ProxyBody> {
    guard_refusal(
        exchange,
        StatusCode::METHOD_NOT_ALLOWED,
        "echo-method",
        format!(
            "moat: request blocked\n\nA {method} request is answered with the request itself, so \
             moat does not send one with the `{grant}` grant's credential.\nhint: use another method; \
             to a host no grant covers, a {method} goes out as it is\n"
        ),
        format!("a {method} request would echo the credential"),
    )
}

/// A protocol switch on a host a grant covers that moat could not search for the
/// credential: another protocol than a plain WebSocket (`upgrade` names it), or a
/// WebSocket extension the server chose (compression would hide the credential).
pub(crate) fn switch_refused(
    exchange: &Exchange,
    status: StatusCode,
    what: &str,
) -> Response<ProxyBody> {
    guard_refusal(
        exchange,
        status,
        "protocol-switch",
        format!(
            "moat: request blocked\n\n{what}: on a host a grant covers, moat searches what the \
             server says for the credential, and can do so only in a WebSocket without \
             extensions.\nhint: switch to a WebSocket without `Sec-WebSocket-Extensions`, or to a \
             host no grant covers\n"
        ),
        what.to_owned(),
    )
}

fn guard_refusal(
    exchange: &Exchange,
    status: StatusCode,
    tag: &'static str,
    message: String,
    error: String,
) -> Response<ProxyBody> {
    let mut response = text_response(status, message);
    response
        .headers_mut()
        .insert(BLOCKED_HEADER, HeaderValue::from_static(tag));
    finish_local(exchange, response, true, Some(error))
}

/// 400 for a request the proxy cannot make sense of.
pub(crate) fn bad_request(
    shared: &Shared,
    req: &Request<Incoming>,
    message: String,
) -> Response<ProxyBody> {
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        req.uri().to_string(),
        redacted_headers(req.headers(), &[]),
    );
    finish_local(
        &exchange,
        text_response(StatusCode::BAD_REQUEST, message),
        false,
        None,
    )
}

/// 403 for a host the network policy does not allow, with the line to add.
pub(crate) fn blocked(
    shared: &Shared,
    req: &Request<Incoming>,
    url: String,
    target: &Target,
) -> Response<ProxyBody> {
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        url,
        redacted_headers(req.headers(), &[]),
    );
    let mut response = text_response(
        StatusCode::FORBIDDEN,
        blocked_message(&target.host, target.port),
    );
    response
        .headers_mut()
        .insert(BLOCKED_HEADER, HeaderValue::from_static("network-policy"));
    finish_local(&exchange, response, true, None)
}

/// The answer to a passthrough CONNECT whose upstream cannot be reached.
pub(crate) fn connect_failure(
    exchange: &Exchange,
    label: &str,
    error: &ConnectError,
) -> Response<ProxyBody> {
    upstream_failure(exchange, label, &error_chain(error), Some(error))
}

/// The answer when the upstream cannot be reached: 403 for a host-local or a private
/// destination, 504 for a timeout, 502 otherwise, each saying why.
pub(crate) fn upstream_failure(
    exchange: &Exchange,
    url: &str,
    chain: &str,
    connect: Option<&ConnectError>,
) -> Response<ProxyBody> {
    match connect {
        Some(e @ ConnectError::HostLocal { .. }) => {
            let mut response = text_response(
                StatusCode::FORBIDDEN,
                format!(
                    "moat: request blocked\n\n{e}.\nThe proxy does not reach services on its own host \
                     (loopback, link-local and its listening address).\n"
                ),
            );
            response
                .headers_mut()
                .insert(BLOCKED_HEADER, HeaderValue::from_static("host-local"));
            finish_local(exchange, response, true, Some(e.to_string()))
        }
        Some(e @ ConnectError::Private { ip, port, .. }) => {
            let mut response = text_response(StatusCode::FORBIDDEN, private_body(e, *ip, *port));
            response
                .headers_mut()
                .insert(BLOCKED_HEADER, HeaderValue::from_static("private-address"));
            finish_local(exchange, response, true, Some(e.to_string()))
        }
        Some(ConnectError::Timeout { .. }) => {
            let response = text_response(
                StatusCode::GATEWAY_TIMEOUT,
                format!("moat: {url} did not answer in time: {chain}\n"),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
        Some(ConnectError::Tls { .. }) => {
            let response = text_response(
                StatusCode::BAD_GATEWAY,
                format!(
                    "moat: cannot reach {url}: {chain}\n\nIf this network inspects TLS with its own CA, \
                     give that CA to moat in `MOAT_EXTRA_CA_CERTS`.\n"
                ),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
        _ => {
            let response = text_response(
                StatusCode::BAD_GATEWAY,
                format!("moat: cannot reach {url}: {chain}\n"),
            );
            finish_local(exchange, response, false, Some(chain.to_owned()))
        }
    }
}

/// The body of a refusal to connect to a private address: why, and the `network.allow`
/// entry for the address (with its port unless it is 80 or 443, which an entry without a
/// port covers).
fn private_body(error: &ConnectError, ip: IpAddr, port: u16) -> String {
    let address = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let entry = if port == 80 || port == 443 {
        address
    } else {
        format!("{address}:{port}")
    };
    format!(
        "moat: request blocked\n\
         \n\
         {error}.\n\
         To allow it, add the host or the address to `network.allow` in moat.yaml:\n\
         \n\
         network:\n  \
           allow:\n    \
             - \"{entry}\"\n"
    )
}

/// The first error of type `T` in `error`'s chain of sources.
pub(crate) fn find_source<'a, T: StdError + 'static>(
    error: &'a (dyn StdError + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line, without repeating a cause a message already
/// quotes.
pub(crate) fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_refusal_says_why_and_gives_the_entry_to_add() {
        let private = |host: &str, ip: &str, port| ConnectError::Private {
            host: host.into(),
            port,
            ip: ip.parse().unwrap(),
            range_name: "RFC 1918",
            via: None,
        };
        let e = private("api.corp.test", "10.1.2.3", 443);
        assert_eq!(
            private_body(&e, "10.1.2.3".parse().unwrap(), 443),
            "moat: request blocked\n\n\
             `api.corp.test` is at 10.1.2.3, a private address (RFC 1918); moat does not connect \
             to private networks unless allowed.\n\
             To allow it, add the host or the address to `network.allow` in moat.yaml:\n\n\
             network:\n  allow:\n    - \"10.1.2.3\"\n"
        );
        let e = private("172.18.0.2", "172.18.0.2", 8000);
        assert!(
            private_body(&e, "172.18.0.2".parse().unwrap(), 8000)
                .ends_with("    - \"172.18.0.2:8000\"\n")
        );
        let e = private("registry.test", "fd00::5", 5000);
        assert!(
            private_body(&e, "fd00::5".parse().unwrap(), 5000)
                .ends_with("    - \"[fd00::5]:5000\"\n")
        );
    }

    #[test]
    fn error_chain_does_not_repeat_causes() {
        let inner = std::io::Error::other("connection refused");
        let outer = ConnectError::Connect {
            addr: "127.0.0.1:1".parse().unwrap(),
            source: inner,
        };
        assert_eq!(
            error_chain(&outer),
            "cannot connect to `127.0.0.1:1`: connection refused"
        );
    }
}
