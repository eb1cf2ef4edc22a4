//! Forwarding one request upstream: hop-by-hop headers dropped, the grant's rule
//! applied, bodies streamed and sampled, protocol upgrades relayed.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::header::{
    ACCEPT_ENCODING, HOST, HeaderValue, IF_RANGE, RANGE, SEC_WEBSOCKET_EXTENSIONS, UPGRADE,
};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use crate::body::{CaptureBody, ProxyBody};
use crate::events::{Capture, Exchange, Side, redacted_headers};
use crate::headers::{is_upgrade_request, strip_hop_by_hop};
use crate::io::Counted;
use crate::local::{
    Unavailable, echo_refused, error_chain, find_source, finish_local, switch_refused,
    text_response, unavailable, upstream_failure,
};
use crate::rules::{self, Injected};
use crate::scrub::{Scrubbed, Scrubber};
use crate::serve::{Scheme, Shared, Target};
use crate::upstream::ConnectError;

/// The path and query of a request target (`/` when there is none).
pub(crate) fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Send a request upstream and stream the answer back: hop-by-hop headers dropped, the
/// grant's rule applied (only over TLS), bodies sampled for the trace as they pass.
pub(crate) async fn forward(
    shared: Arc<Shared>,
    scheme: Scheme,
    target: Target,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let path = path_of(req.uri()).to_owned();
    let url = format!("{}://{}{}", scheme.as_str(), target.authority(scheme), path);
    if shared.records_unwritable() {
        let exchange = Exchange::new(
            shared.sink.clone(),
            req.method().as_str(),
            url,
            BTreeMap::new(),
        );
        return unavailable(&exchange, Unavailable::RecordsUnwritable);
    }
    if let Some(wait) = shared
        .request_gate
        .as_ref()
        .and_then(|gate| gate.before_forward(req.method().as_str(), &url))
    {
        wait.await;
    }
    let exchange = Exchange::new(
        shared.sink.clone(),
        req.method().as_str(),
        url.clone(),
        BTreeMap::new(),
    );
    let client_headers = req.headers().clone();
    let upgrade = is_upgrade_request(&req);
    // A protocol switch (a WebSocket) outlives the connection that asked for it, as a
    // tunnel does, and holds a tunnel's permit while it lasts (see `Shared::tunnels`).
    let tunnel = if upgrade {
        match shared.tunnels.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => return unavailable(&exchange, Unavailable::TooManyTunnels),
        }
    } else {
        None
    };
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, upgrade);
    // The upstream client writes `Host` (HTTP/1.1) or `:authority` (HTTP/2) from the URI.
    parts.headers.remove(HOST);
    // Credentials travel only over TLS to the upstream, or to a server on the host's own
    // loopback that the configuration routes to (the cleartext never leaves the machine).
    let local = shared
        .cleartext_local
        .iter()
        .any(|p| p.matches_normalized(&target.host, target.port));
    let injected = match scheme {
        Scheme::Http if !local => Injected::default(),
        Scheme::Https | Scheme::Http => {
            rules::select(&shared.rules, &target.host, target.port, &parts.headers)
                .map(|rule| rule.apply(&mut parts.headers))
                .unwrap_or_default()
        }
    };
    exchange.set_request_headers(redacted_headers(&client_headers, &injected.secret_headers));
    if !injected.secret_headers.is_empty() {
        let method = parts.method.as_str();
        if method.eq_ignore_ascii_case("TRACE") || method.eq_ignore_ascii_case("TRACK") {
            // Refused before it went: no credential was used.
            let grant = injected.grant.unwrap_or_default();
            return echo_refused(&exchange, method, &grant);
        }
    }
    // What a server says back is searched for the credentials of every grant on the host,
    // also in the answer to a request without one (a server may keep what an earlier
    // request carried and show it later).
    let needles = rules::needles_for(&shared.rules, &target.host, target.port);
    if needles.is_some() {
        // Asked for in a form it can be searched in: uncompressed, and whole (a range
        // could cut a credential into pieces that are each not one).
        parts
            .headers
            .insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        parts.headers.remove(RANGE);
        parts.headers.remove(IF_RANGE);
        if upgrade {
            // Every `Upgrade` line counts: one saying `websocket` and one more would let
            // the server pick the other.
            if !only_websocket(&parts.headers) {
                let asked: Vec<&str> = parts
                    .headers
                    .get_all(UPGRADE)
                    .iter()
                    .map(|v| v.to_str().unwrap_or("?"))
                    .collect();
                return switch_refused(
                    &exchange,
                    StatusCode::FORBIDDEN,
                    &format!("a switch to `{}`", asked.join(", ")),
                );
            }
            parts.headers.remove(SEC_WEBSOCKET_EXTENSIONS);
        }
    }
    exchange.set_grant(injected.grant, &injected.secret_headers);

    let Ok(uri) =
        format!("{}://{}{}", scheme.as_str(), target.authority(scheme), path).parse::<Uri>()
    else {
        let response = text_response(
            StatusCode::BAD_REQUEST,
            "moat: invalid request URL\n".into(),
        );
        return finish_local(&exchange, response, false, None);
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    let capture = Capture::for_headers(&parts.headers);
    let body = CaptureBody::new(body, capture, exchange.clone(), Side::Request);
    let client = if upgrade {
        &shared.upstream.upgrade_client
    } else {
        &shared.upstream.client
    };

    let mut response = match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => {
            let connect = find_source::<ConnectError>(&e);
            return upstream_failure(&exchange, &url, &error_chain(&e), connect);
        }
    };

    let status = response.status();
    if let (Some(client_upgrade), StatusCode::SWITCHING_PROTOCOLS) = (client_upgrade, status) {
        if needles.is_some() {
            if response.headers().contains_key(SEC_WEBSOCKET_EXTENSIONS) {
                return switch_refused(
                    &exchange,
                    StatusCode::BAD_GATEWAY,
                    "the server chose a WebSocket extension no one asked for",
                );
            }
            if !only_websocket(response.headers()) {
                return switch_refused(
                    &exchange,
                    StatusCode::BAD_GATEWAY,
                    "the server switched to another protocol than a WebSocket",
                );
            }
        }
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let (mut parts, _) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers, true);
        if let Some(needles) = &needles {
            needles.blank_headers(&mut parts.headers);
            parts.extensions.remove::<hyper::ext::ReasonPhrase>();
        }
        parts.version = Version::HTTP_11;
        exchange.respond(status.as_u16(), redacted_headers(&parts.headers, &[]));
        let stop = shared.lifecycle.stop.clone();
        shared.lifecycle.spawn(async move {
            let _tunnel = tunnel;
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let (client, upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                    match needles {
                        Some(needles) => {
                            let upstream = Scrubbed::new(upstream, needles);
                            relay(client, upstream, &exchange, &stop).await;
                        }
                        None => relay(client, upstream, &exchange, &stop).await,
                    }
                }
                Err(e) => {
                    exchange.note_error(format!("the protocol switch failed: {e}"));
                    exchange.stream_closed(0, 0);
                }
            }
        });
        return Response::from_parts(parts, ProxyBody::Empty);
    }

    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    if let Some(needles) = &needles {
        needles.blank_headers(&mut parts.headers);
        // An HTTP/1 status line's own words ("401 bad token …") would pass on as they are.
        parts.extensions.remove::<hyper::ext::ReasonPhrase>();
    }
    parts.version = Version::HTTP_11;
    exchange.respond(status.as_u16(), redacted_headers(&parts.headers, &[]));
    let capture = Capture::for_headers(&parts.headers);
    let mut body = CaptureBody::new(body, capture, exchange, Side::Response);
    if let Some(needles) = needles {
        body.scrub_with(Scrubber::new(needles));
    }
    Response::from_parts(parts, ProxyBody::Upstream(body))
}

/// Whether `headers` name one protocol to switch to, and it is a WebSocket.
fn only_websocket(headers: &http::HeaderMap) -> bool {
    let mut protocols = headers
        .get_all(UPGRADE)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty());
    protocols
        .next()
        .is_some_and(|p| p.eq_ignore_ascii_case("websocket"))
        && protocols.next().is_none()
}

/// Copy bytes both ways until either side closes (or the proxy stops), then record
/// how many went each way.
pub(crate) async fn relay<A, B>(
    client: A,
    mut upstream: B,
    exchange: &Exchange,
    stop: &CancellationToken,
) where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Counted::new(client);
    let result = tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => result.map(|_| ()),
        () = stop.cancelled() => Err(std::io::Error::other("closed because the proxy stopped")),
    };
    if let Err(e) = result {
        use std::io::ErrorKind::*;
        if !matches!(
            e.kind(),
            ConnectionReset | BrokenPipe | UnexpectedEof | NotConnected
        ) {
            exchange.note_error(e.to_string());
        }
    }
    exchange.stream_closed(client.read, client.written);
}
