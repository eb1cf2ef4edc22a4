//! The network trace: one `NetworkEvent` per request, with credentials redacted, handed
//! to an `EventSink` once the exchange is over.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::header::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How many bytes of a text body an event keeps.
pub const BODY_SAMPLE_LIMIT: usize = 8 * 1024;

/// What the trace shows instead of a credential.
pub const REDACTED: &str = "[REDACTED]";

/// Headers whose values are credentials wherever they appear.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "private-token",
    "x-auth-token",
    "cookie",
    "set-cookie",
];

/// One request through the proxy, as recorded in `network.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEvent {
    /// When the request arrived.
    pub ts: jiff::Timestamp,
    pub method: String,
    /// The full URL (as the client sent it, before any placeholder was replaced);
    /// `host:port` for a tunnel.
    pub url: String,
    /// The status the client got (for a blocked request, the proxy's own 403).
    pub status: u16,
    /// From the request's arrival to the end of the response body.
    pub duration_ms: u64,
    /// Body bytes (or, for a tunnel or upgraded connection, stream bytes) each way.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// The grant whose credential went into the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// The headers the grant's credential went into (names only; the audit log records
    /// them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub injected_headers: Vec<String>,
    /// Whether the network policy blocked the request.
    pub blocked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The client's headers as sent, credentials shown as `[REDACTED]`.
    pub request_headers: BTreeMap<String, String>,
    /// The response headers, credentials shown as `[REDACTED]`.
    pub response_headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BodySample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<BodySample>,
}

/// The start of a text body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodySample {
    /// At most [`BODY_SAMPLE_LIMIT`] bytes, cut at a character boundary.
    pub text: String,
    /// Whether the body was longer than what `text` holds.
    pub truncated: bool,
}

/// Where the proxy delivers events. Called on the request path, so it must not block.
pub trait EventSink: Send + Sync + 'static {
    fn record(&self, event: NetworkEvent);
}

/// A bounded channel: events are queued without waiting; when the channel is full they
/// wait in a task rather than delaying traffic. Events for a closed channel are dropped.
impl EventSink for mpsc::Sender<NetworkEvent> {
    fn record(&self, event: NetworkEvent) {
        match self.try_send(event) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let sender = self.clone();
                    runtime.spawn(async move {
                        let _ = sender.send(event).await;
                    });
                }
            }
        }
    }
}

impl EventSink for mpsc::UnboundedSender<NetworkEvent> {
    fn record(&self, event: NetworkEvent) {
        let _ = self.send(event);
    }
}

/// Headers as the trace shows them: one entry per name (values joined with `, `),
/// credentials and the headers in `secret` replaced by `[REDACTED]`.
pub(crate) fn redacted_headers(
    headers: &HeaderMap,
    secret: &[HeaderName],
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let hidden = CREDENTIAL_HEADERS.contains(&name.as_str()) || secret.contains(name);
        let shown = if hidden {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                if !hidden {
                    v.push_str(", ");
                    v.push_str(&shown);
                }
            })
            .or_insert(shown);
    }
    out
}

/// The sample a body keeps as it streams past: a byte count, and the first 8 KiB if the
/// body is uncompressed text.
#[derive(Debug)]
pub(crate) struct Capture {
    text: bool,
    bytes: u64,
    sample: Vec<u8>,
    truncated: bool,
}

impl Capture {
    pub fn for_headers(headers: &HeaderMap) -> Self {
        Capture {
            text: is_text(headers),
            bytes: 0,
            sample: Vec::new(),
            truncated: false,
        }
    }

    pub fn observe(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.text {
            let room = BODY_SAMPLE_LIMIT - self.sample.len();
            if data.len() > room {
                self.truncated = true;
            }
            self.sample.extend_from_slice(&data[..data.len().min(room)]);
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    fn body_sample(&self) -> Option<BodySample> {
        if !self.text || self.bytes == 0 {
            return None;
        }
        let mut end = self.sample.len();
        if let Err(e) = std::str::from_utf8(&self.sample) {
            // A character cut by the 8 KiB limit is dropped, not shown as garbage.
            if e.error_len().is_none() {
                end = e.valid_up_to();
            }
        }
        Some(BodySample {
            text: String::from_utf8_lossy(&self.sample[..end]).into_owned(),
            truncated: self.truncated,
        })
    }
}

fn is_text(headers: &HeaderMap) -> bool {
    let encoded = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().eq_ignore_ascii_case("identity"));
    if encoded {
        return false;
    }
    let Some(content_type) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let content_type = content_type.to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || ["json", "xml", "x-www-form-urlencoded", "javascript"]
            .iter()
            .any(|kind| essence.contains(kind))
        || content_type.contains("charset=utf-8")
}

/// One request on its way through the proxy: collects what the event needs and hands
/// the event to the sink exactly once, when both bodies are finished (or dropped).
pub(crate) struct Exchange {
    sink: Arc<dyn EventSink>,
    started: Instant,
    state: Mutex<ExchangeState>,
}

struct ExchangeState {
    event: Option<NetworkEvent>,
    request_open: bool,
    response_open: bool,
}

/// Which body of an exchange a capture belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

impl Exchange {
    pub fn new(
        sink: Arc<dyn EventSink>,
        method: &str,
        url: String,
        request_headers: BTreeMap<String, String>,
    ) -> Arc<Self> {
        Arc::new(Exchange {
            sink,
            started: Instant::now(),
            state: Mutex::new(ExchangeState {
                event: Some(NetworkEvent {
                    ts: jiff::Timestamp::now(),
                    method: method.to_owned(),
                    url,
                    status: 0,
                    duration_ms: 0,
                    request_bytes: 0,
                    response_bytes: 0,
                    grant: None,
                    injected_headers: Vec::new(),
                    blocked: false,
                    error: None,
                    request_headers,
                    response_headers: BTreeMap::new(),
                    request_body: None,
                    response_body: None,
                }),
                request_open: false,
                response_open: true,
            }),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut ExchangeState) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    fn with_event(&self, f: impl FnOnce(&mut NetworkEvent)) {
        self.with(|s| {
            if let Some(event) = s.event.as_mut() {
                f(event);
            }
        });
    }

    pub fn set_request_headers(&self, headers: BTreeMap<String, String>) {
        self.with_event(|e| e.request_headers = headers);
    }

    pub fn set_grant(&self, grant: Option<String>, headers: &[http::HeaderName]) {
        let headers: Vec<String> = headers.iter().map(|h| h.as_str().to_owned()).collect();
        self.with_event(|e| {
            e.grant = grant;
            e.injected_headers = headers;
        });
    }

    /// The request body now streams upstream; the event waits for it to finish.
    pub fn request_streaming(&self) {
        self.with(|s| s.request_open = true);
    }

    /// The response head is known; its body follows.
    pub fn respond(&self, status: u16, headers: BTreeMap<String, String>) {
        self.with_event(|e| {
            e.status = status;
            e.response_headers = headers;
        });
    }

    pub fn note_error(&self, error: String) {
        self.with_event(|e| {
            e.error.get_or_insert(error);
        });
    }

    /// The exchange ends with a response the proxy made itself (blocked, refused,
    /// upstream unreachable).
    pub fn local_response(
        &self,
        status: u16,
        body_len: usize,
        blocked: bool,
        error: Option<String>,
    ) {
        self.with_event(|e| {
            e.status = status;
            e.response_bytes = body_len as u64;
            e.blocked = blocked;
            if e.error.is_none() {
                e.error = error;
            }
        });
        self.finish(Side::Response, None);
    }

    /// A tunnel or upgraded connection closed after moving these bytes.
    pub fn stream_closed(&self, to_upstream: u64, to_client: u64) {
        self.with_event(|e| {
            e.request_bytes += to_upstream;
            e.response_bytes += to_client;
        });
        self.finish(Side::Response, None);
    }

    /// One body is finished or was dropped.
    pub fn finish(&self, side: Side, capture: Option<&Capture>) {
        let ready = self.with(|s| {
            if let (Some(event), Some(capture)) = (s.event.as_mut(), capture) {
                match side {
                    Side::Request => {
                        event.request_bytes = capture.bytes();
                        event.request_body = capture.body_sample();
                    }
                    Side::Response => {
                        event.response_bytes = capture.bytes();
                        event.response_body = capture.body_sample();
                    }
                }
            }
            match side {
                Side::Request => s.request_open = false,
                Side::Response => {
                    s.response_open = false;
                    if let Some(event) = s.event.as_mut() {
                        event.duration_ms =
                            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    }
                }
            }
            if s.request_open || s.response_open {
                None
            } else {
                s.event.take()
            }
        });
        if let Some(event) = ready {
            self.sink.record(event);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // A path that forgot to finish still leaves a trace.
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut event) = state.event.take() {
            event.duration_ms =
                u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.sink.record(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn credentials_and_injected_headers_are_redacted() {
        let map = headers(&[
            ("authorization", "Bearer ghp_REAL"),
            ("proxy-authorization", "Basic abc"),
            ("x-api-key", "sk-ant"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x-custom-token", "tok"),
            ("accept", "text/html"),
            ("accept", "application/json"),
        ]);
        let shown = redacted_headers(&map, &[HeaderName::from_static("x-custom-token")]);
        for name in [
            "authorization",
            "proxy-authorization",
            "x-api-key",
            "cookie",
            "x-custom-token",
        ] {
            assert_eq!(shown[name], REDACTED, "{name}");
        }
        assert_eq!(shown["accept"], "text/html, application/json");
        let json = serde_json::to_string(&shown).unwrap();
        assert!(
            !json.contains("ghp_REAL") && !json.contains("sk-ant"),
            "{json}"
        );
    }

    #[test]
    fn text_bodies_are_sampled_up_to_8_kib_with_a_correct_truncated_flag() {
        let json = headers(&[("content-type", "application/json")]);
        let mut exact = Capture::for_headers(&json);
        exact.observe(&[b'a'; BODY_SAMPLE_LIMIT]);
        let sample = exact.body_sample().unwrap();
        assert_eq!(sample.text.len(), BODY_SAMPLE_LIMIT);
        assert!(!sample.truncated, "exactly 8 KiB is not truncated");

        let mut over = Capture::for_headers(&json);
        over.observe(&[b'a'; 5000]);
        over.observe(&[b'b'; 5000]);
        let sample = over.body_sample().unwrap();
        assert_eq!(sample.text.len(), BODY_SAMPLE_LIMIT);
        assert!(sample.truncated);
        assert_eq!(over.bytes(), 10_000);
    }

    #[test]
    fn a_character_cut_by_the_limit_is_dropped() {
        let text = headers(&[("content-type", "text/plain; charset=utf-8")]);
        let mut capture = Capture::for_headers(&text);
        let mut body = vec![b'a'; BODY_SAMPLE_LIMIT - 1];
        body.extend_from_slice("é".as_bytes());
        capture.observe(&body);
        let sample = capture.body_sample().unwrap();
        assert_eq!(sample.text.len(), BODY_SAMPLE_LIMIT - 1);
        assert!(sample.truncated);
    }

    #[test]
    fn only_uncompressed_text_is_sampled() {
        for (pairs, text) in [
            (vec![("content-type", "text/event-stream")], true),
            (vec![("content-type", "application/vnd.api+json")], true),
            (
                vec![("content-type", "application/x-www-form-urlencoded")],
                true,
            ),
            (vec![("content-type", "application/octet-stream")], false),
            (vec![("content-type", "image/png")], false),
            (vec![], false),
            (
                vec![
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                false,
            ),
        ] {
            let mut capture = Capture::for_headers(&headers(&pairs));
            capture.observe(b"hello");
            assert_eq!(capture.body_sample().is_some(), text, "{pairs:?}");
            assert_eq!(capture.bytes(), 5);
        }
    }

    #[test]
    fn the_event_is_emitted_once_both_bodies_are_finished() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let exchange = Exchange::new(
            Arc::new(tx),
            "POST",
            "https://api.test/v1".into(),
            BTreeMap::new(),
        );
        exchange.request_streaming();
        exchange.respond(200, BTreeMap::new());
        let mut response = Capture::for_headers(&headers(&[("content-type", "text/plain")]));
        response.observe(b"ok");
        exchange.finish(Side::Response, Some(&response));
        assert!(rx.try_recv().is_err(), "request body still open");
        let mut request = Capture::for_headers(&HeaderMap::new());
        request.observe(b"12345");
        exchange.finish(Side::Request, Some(&request));
        let event = rx.try_recv().unwrap();
        assert_eq!(event.status, 200);
        assert_eq!(event.request_bytes, 5);
        assert_eq!(event.response_bytes, 2);
        assert_eq!(event.response_body.unwrap().text, "ok");
        assert!(event.request_body.is_none(), "no content type, no sample");
        drop(exchange);
        assert!(rx.try_recv().is_err(), "exactly once");
    }

    #[test]
    fn events_serialize_as_one_json_line() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let exchange = Exchange::new(
            Arc::new(tx),
            "GET",
            "https://x.test/".into(),
            BTreeMap::new(),
        );
        exchange.local_response(403, 10, true, None);
        let event = rx.try_recv().unwrap();
        let line = serde_json::to_string(&event).unwrap();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["blocked"], true);
        assert_eq!(value["status"], 403);
        assert_eq!(value["method"], "GET");
        assert!(value.get("grant").is_none());
        let back: NetworkEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[tokio::test]
    async fn a_full_channel_does_not_lose_events() {
        let (tx, mut rx) = mpsc::channel(1);
        let sink: Arc<dyn EventSink> = Arc::new(tx);
        for i in 0..3 {
            let exchange = Exchange::new(
                sink.clone(),
                "GET",
                format!("https://x.test/{i}"),
                BTreeMap::new(),
            );
            exchange.local_response(200, 0, false, None);
        }
        let mut urls = Vec::new();
        for _ in 0..3 {
            urls.push(rx.recv().await.unwrap().url);
        }
        urls.sort();
        assert_eq!(
            urls,
            ["https://x.test/0", "https://x.test/1", "https://x.test/2"]
        );
    }
}
