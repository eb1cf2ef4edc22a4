//! A fake remote MCP server (the streamable HTTP transport, over TLS from the test CA):
//! enough for the real Claude Code to connect, list its one tool (`echo`) and call it.
//!
//! It wants a credential: a request without `header: token` gets 401, so a client that
//! reports the server connected has been given the real credential on the way.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::{FakeUpstream, Reply, SeenRequest};

/// The session ID the fake hands out on `initialize`.
pub const SESSION_ID: &str = "fake-mcp-session-1";

/// A running fake MCP server. Dropping it stops it.
///
/// - `POST PATH` with a JSON-RPC request: `initialize` (echoing the client's protocol
///   version, with `Mcp-Session-Id`), `tools/list` (one tool, `echo`), `tools/call`
///   (`echo` answers its `text`), `ping` and anything else with an empty result; a
///   notification (no `id`) gets 202;
/// - `GET PATH`: 405 (no server-initiated stream, as the transport allows);
/// - `DELETE PATH`: 200 (the session ends);
/// - without the expected credential header: 401.
pub struct FakeMcp {
    upstream: FakeUpstream,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeMcp {
    /// Serve `host` over TLS on a free port of 127.0.0.1, wanting `header: token` on
    /// every request.
    pub fn start(host: &str, header: &str, token: &str) -> Self {
        Self::start_with(Some(host), header, token)
    }

    /// A server on the user's machine: plain HTTP on a free port of 127.0.0.1.
    pub fn start_plain(header: &str, token: &str) -> Self {
        Self::start_with(None, header, token)
    }

    fn start_with(host: Option<&str>, header: &str, token: &str) -> Self {
        let header = header.to_ascii_lowercase();
        let token = token.to_owned();
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let handler_calls = calls.clone();
        let handler = move |request: &SeenRequest| {
            if request.header(&header) != Some(token.as_str()) {
                return Reply::json(
                    401,
                    r#"{"error":"unauthorized: missing or wrong credential"}"#,
                );
            }
            answer(request, &handler_calls)
        };
        let upstream = match host {
            Some(host) => FakeUpstream::start(&[host], handler),
            None => FakeUpstream::start_plain(handler),
        };
        FakeMcp { upstream, calls }
    }

    pub fn port(&self) -> u16 {
        self.upstream.port()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.upstream.requests()
    }

    /// The JSON-RPC methods it was asked, in order (`initialize`, `tools/list`, ...).
    pub fn methods(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

fn answer(request: &SeenRequest, calls: &Mutex<Vec<String>>) -> Reply {
    match request.method.as_str() {
        "GET" => return Reply::text(405, "no server-initiated stream"),
        "DELETE" => return Reply::text(200, ""),
        "POST" => {}
        _ => return Reply::text(405, "method not allowed"),
    }
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return Reply::json(
            400,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}})
                .to_string(),
        );
    };
    let method = body["method"].as_str().unwrap_or_default().to_owned();
    calls.lock().expect("not poisoned").push(method.clone());
    let Some(id) = body.get("id").cloned() else {
        // A notification (`notifications/initialized`): accepted, no body.
        return Reply {
            status: 202,
            headers: vec![],
            body: vec![],
        };
    };
    let result = match method.as_str() {
        "initialize" => json!({
            "protocolVersion": body["params"]["protocolVersion"].as_str().unwrap_or("2025-03-26"),
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "fake-mcp", "version": "1.0.0"},
        }),
        "tools/list" => json!({"tools": [{
            "name": "echo",
            "description": "Echo the text back.",
            "inputSchema": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        }]}),
        "tools/call" => json!({"content": [{
            "type": "text",
            "text": format!("echo: {}", body["params"]["arguments"]["text"].as_str().unwrap_or_default()),
        }]}),
        _ => json!({}),
    };
    let mut reply = Reply::json(
        200,
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    );
    if method == "initialize" {
        reply
            .headers
            .push(("mcp-session-id".into(), SESSION_ID.into()));
    }
    reply
}
