//! Responses the proxy makes itself (refusals, blocks, unreachable upstreams), each
//! recorded in the trace and saying what happened.

use std::error::Error as StdError;

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

/// The answer when the upstream cannot be reached: 403 for a host-local destination,
/// 504 for a timeout, 502 otherwise, each saying why.
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
