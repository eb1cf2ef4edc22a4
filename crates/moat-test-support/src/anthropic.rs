//! A fake Anthropic API (`api.anthropic.com`) good enough for the real Claude Code CLI:
//! the start-up calls it makes, `POST /v1/messages` (streamed or not) answered with a
//! text the test chooses, and token counting. Every request is recorded; the
//! `/v1/messages` ones can be read back with their JSON bodies parsed.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::{FakeUpstream, Reply, SeenRequest};

/// The host name the fake's certificate is for.
pub const ANTHROPIC_HOST: &str = "api.anthropic.com";

/// The model named in replies when the request names none.
const DEFAULT_MODEL: &str = "claude-fake-model";

/// A running fake Anthropic API. Dropping it stops it.
///
/// It answers what Claude Code calls:
/// - `GET /api/claude_code/settings`: 404 (no managed settings);
/// - `GET /api/claude_code/policy_limits`: 200 `{"restrictions":{}}`;
/// - `HEAD` (or `GET`) `/api/hello`: 200 (the reachability probe made when
///   `ANTHROPIC_BASE_URL` is set);
/// - `POST /v1/messages` (any query, e.g. `?beta=true`): the reply text, as an SSE stream
///   when the body says `"stream": true`, as a JSON Message otherwise. Every call gets the
///   same text, including Claude Code's side requests (titles, topics) — except, with
///   [`FakeAnthropic::set_tool_calls`], a request that offers tools and holds fewer tool
///   results than there are commands: it gets a `Bash` tool call of the next command;
/// - `POST /v1/messages/count_tokens`: `{"input_tokens": N}`;
/// - anything else: 404 with an Anthropic-style JSON error.
///
/// Every answer carries a unique `request-id` header, as the real API's do (without it
/// Claude Code retries `policy_limits` for seconds).
pub struct FakeAnthropic {
    upstream: FakeUpstream,
    reply: Arc<Mutex<String>>,
    tool_calls: Arc<Mutex<Vec<String>>>,
}

impl FakeAnthropic {
    /// Serve `api.anthropic.com` on a free port of 127.0.0.1, answering every message
    /// request with `reply`.
    pub fn start(reply: &str) -> Self {
        Self::start_on(0, reply)
    }

    /// [`FakeAnthropic::start`] on port `port` of 127.0.0.1 (0: a free one; 443 lets a
    /// client reach it as `https://api.anthropic.com/` through `--add-host`).
    pub fn start_on(port: u16, reply: &str) -> Self {
        let reply = Arc::new(Mutex::new(reply.to_owned()));
        let tool_calls = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(AtomicU64::new(0));
        let handler_reply = reply.clone();
        let handler_tool_calls = tool_calls.clone();
        let upstream = FakeUpstream::start_on(port, &[ANTHROPIC_HOST], move |request| {
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let text = handler_reply.lock().expect("not poisoned").clone();
            let commands = handler_tool_calls.lock().expect("not poisoned").clone();
            let mut answer = answer(request, &text, &commands, n);
            answer
                .headers
                .push(("request-id".into(), format!("req_fake{n:08}")));
            answer
        });
        FakeAnthropic {
            upstream,
            reply,
            tool_calls,
        }
    }

    /// Make the agent run `commands` with its `Bash` tool, one a turn, before the reply
    /// text ends the conversation.
    pub fn set_tool_calls(&self, commands: &[&str]) {
        *self.tool_calls.lock().expect("not poisoned") =
            commands.iter().map(|c| (*c).to_owned()).collect();
    }

    /// Answer later message requests with `reply` instead.
    pub fn set_reply(&self, reply: &str) {
        *self.reply.lock().expect("not poisoned") = reply.to_owned();
    }

    pub fn port(&self) -> u16 {
        self.upstream.port()
    }

    /// The PEM file of the CA its certificate comes from (for `NODE_EXTRA_CA_CERTS`,
    /// `SSL_CERT_FILE` or `MOAT_EXTRA_CA_CERTS`).
    pub fn ca_file(&self) -> &Path {
        self.upstream.ca_file()
    }

    /// `https://api.anthropic.com:PORT`, for `ANTHROPIC_BASE_URL` when `api.anthropic.com`
    /// resolves to 127.0.0.1 (e.g. `docker run --network host --add-host
    /// api.anthropic.com:127.0.0.1`).
    pub fn base_url(&self) -> String {
        format!("https://{ANTHROPIC_HOST}:{}", self.port())
    }

    /// The underlying fake upstream.
    pub fn upstream(&self) -> &FakeUpstream {
        &self.upstream
    }

    /// Every request so far, in order, whatever its path.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.upstream.requests()
    }

    /// `METHOD PATH` of every request so far, in order: which endpoints were called.
    pub fn endpoints(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// The `POST /v1/messages` requests so far (not `count_tokens`), in order, with their
    /// bodies parsed.
    pub fn message_requests(&self) -> Vec<MessagesRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && path_only(&r.path) == "/v1/messages")
            .map(MessagesRequest::from)
            .collect()
    }

    /// The main conversation request: among the message requests, the one that offers
    /// tools (Claude Code's side requests for titles or topics offer none) and has the
    /// most messages; the latest of equals. `None` before any message request.
    pub fn main_request(&self) -> Option<MessagesRequest> {
        self.message_requests()
            .into_iter()
            .max_by_key(|r| (r.has_tools(), r.messages().len()))
    }
}

/// A recorded `POST /v1/messages` request.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesRequest {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names in lowercase; repeated headers joined with `, `.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as JSON (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl From<SeenRequest> for MessagesRequest {
    fn from(seen: SeenRequest) -> Self {
        MessagesRequest {
            body: serde_json::from_slice(&seen.body).unwrap_or(Value::Null),
            method: seen.method,
            path: seen.path,
            headers: seen.headers,
        }
    }
}

impl MessagesRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `anthropic-beta` values, split at commas.
    pub fn betas(&self) -> Vec<&str> {
        self.header("anthropic-beta")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|b| !b.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Claude Code's session id (its `x-claude-code-session-id` header), which is also
    /// the name of its transcript, `~/.claude/projects/<dir>/<id>.jsonl`.
    pub fn session_id(&self) -> Option<&str> {
        self.header("x-claude-code-session-id")
    }

    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool) == Some(true)
    }

    /// The names of the tools it offers the model (`Bash`, `mcp__SERVER__TOOL`, ...).
    pub fn tool_names(&self) -> Vec<&str> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether it offers the model any tool.
    pub fn has_tools(&self) -> bool {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty())
    }

    /// The `messages` array (empty if missing).
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every text of its messages, in order, as `(role, text)`: string contents and
    /// `text` blocks (not tool calls, tool results or the system prompt).
    pub fn message_texts(&self) -> Vec<(String, String)> {
        let mut texts = Vec::new();
        for message in self.messages() {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match message.get("content") {
                Some(Value::String(text)) => texts.push((role, text.clone())),
                Some(Value::Array(blocks)) => {
                    for block in blocks {
                        if block.get("type").and_then(Value::as_str) == Some("text")
                            && let Some(text) = block.get("text").and_then(Value::as_str)
                        {
                            texts.push((role.clone(), text.to_owned()));
                        }
                    }
                }
                _ => {}
            }
        }
        texts
    }

    /// Whether a message of `role` (`user`, `assistant`) has a text containing `needle`.
    pub fn has_message_text(&self, role: &str, needle: &str) -> bool {
        self.message_texts()
            .iter()
            .any(|(r, text)| r == role && text.contains(needle))
    }
}

/// The answer to one request; `n` numbers the requests (for ids).
fn answer(request: &SeenRequest, reply: &str, commands: &[String], n: u64) -> Reply {
    let method = request.method.as_str();
    match (method, path_only(&request.path)) {
        ("GET", "/api/claude_code/settings") => {
            error(404, "not_found_error", "no managed settings")
        }
        ("GET", "/api/claude_code/policy_limits") => {
            Reply::json(200, json!({"restrictions": {}}).to_string())
        }
        ("HEAD" | "GET", "/api/hello") => Reply::json(200, "{}"),
        ("POST", "/v1/messages") => messages(request, reply, commands, n),
        ("POST", "/v1/messages/count_tokens") => match body_json(request) {
            Ok(body) => Reply::json(
                200,
                json!({"input_tokens": estimate_tokens(&body.to_string())}).to_string(),
            ),
            Err(reply) => reply,
        },
        (_, path) => error(
            404,
            "not_found_error",
            &format!("the fake Anthropic API has no {method} {path}"),
        ),
    }
}

/// The tool results a conversation holds so far.
fn tool_results(body: &Value) -> usize {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
        .count()
}

/// `POST /v1/messages`: an SSE stream or a JSON Message whose only content is `reply`, or
/// the next of `commands` as a `Bash` tool call.
fn messages(request: &SeenRequest, reply: &str, commands: &[String], n: u64) -> Reply {
    let body = match body_json(request) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let offers_tools = body
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    if offers_tools && let Some(command) = commands.get(tool_results(&body)) {
        return tool_call(&body, command, n);
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL);
    let id = format!("msg_fake{n:08}");
    let input_tokens = estimate_tokens(&body.to_string());
    let output_tokens = estimate_tokens(reply);
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let message = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": reply}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": usage(input_tokens, output_tokens),
        });
        return Reply::json(200, message.to_string());
    }
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": usage(input_tokens, 1),
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
    ];
    // A few deltas rather than one, so that clients must put the text together.
    for piece in reply.split_inclusive(' ') {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.extend([
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"output_tokens": output_tokens}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let stream: String = events
        .iter()
        .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
        .collect();
    let mut answer = Reply::with_type(200, "text/event-stream", stream.into_bytes());
    answer
        .headers
        .push(("cache-control".into(), "no-cache".into()));
    answer
}

/// A Message whose only content is a `Bash` tool call of `command`.
fn tool_call(body: &Value, command: &str, n: u64) -> Reply {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_MODEL);
    let id = format!("msg_fake{n:08}");
    let input = json!({"command": command, "description": "run a command"});
    let tool_use = json!({"type": "tool_use", "id": format!("toolu_fake{n:08}"),
                          "name": "Bash", "input": input});
    let input_tokens = estimate_tokens(&body.to_string());
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [tool_use], "stop_reason": "tool_use", "stop_sequence": null,
            "usage": usage(input_tokens, 10),
        });
        return Reply::json(200, message.to_string());
    }
    let mut start = tool_use.clone();
    start["input"] = json!({});
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage(input_tokens, 1),
            }}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": start}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                   "usage": {"output_tokens": 10}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let stream: String = events
        .iter()
        .map(|(event, data)| format!("event: {event}\ndata: {data}\n\n"))
        .collect();
    let mut answer = Reply::with_type(200, "text/event-stream", stream.into_bytes());
    answer
        .headers
        .push(("cache-control".into(), "no-cache".into()));
    answer
}

fn usage(input_tokens: u64, output_tokens: u64) -> Value {
    json!({
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

/// The request body as a JSON object, or a 400 answer saying why not.
fn body_json(request: &SeenRequest) -> Result<Value, Reply> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(body) if body.is_object() => Ok(body),
        _ => Err(error(
            400,
            "invalid_request_error",
            "the body is not a JSON object",
        )),
    }
}

/// About four characters a token, at least one.
fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4).max(1)
}

/// An Anthropic-style error answer.
fn error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
    )
}

fn path_only(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}
