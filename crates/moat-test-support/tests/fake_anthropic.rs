//! The fake Anthropic API, checked over real HTTPS with reqwest: the start-up endpoints
//! Claude Code calls, a parsable SSE stream and JSON Message, `request-id` on every
//! answer, and the recorded message requests. (Against the real Claude Code it was
//! checked by hand; that needs Docker and the npm package, so it is not a test here.)

#![allow(clippy::disallowed_methods)] // test code may read the environment it was given

use std::net::SocketAddr;

use moat_test_support::FakeAnthropic;
use moat_test_support::anthropic::ANTHROPIC_HOST;
use serde_json::{Value, json};

/// A client that trusts only the fake's CA and finds `api.anthropic.com` on its port.
fn client(fake: &FakeAnthropic) -> reqwest::Client {
    let pem = std::fs::read(fake.ca_file()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .resolve(
            ANTHROPIC_HOST,
            SocketAddr::from(([127, 0, 0, 1], fake.port())),
        )
        .no_proxy()
        .build()
        .unwrap()
}

/// A `/v1/messages` body much like Claude Code's.
fn conversation(messages: Value, stream: bool) -> Value {
    json!({
        "model": "claude-test-1",
        "max_tokens": 1024,
        "stream": stream,
        "system": [{"type": "text", "text": "You are a test."}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        "messages": messages,
    })
}

/// The events of an SSE body, as `(event, data as JSON)`.
fn parse_sse(body: &str) -> Vec<(String, Value)> {
    assert!(
        body.ends_with("\n\n"),
        "events end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                match line.split_once(": ") {
                    Some(("event", value)) => event = Some(value.to_owned()),
                    Some(("data", value)) => data = Some(serde_json::from_str(value).unwrap()),
                    _ => panic!("unexpected SSE line {line:?}"),
                }
            }
            let (event, data): (String, Value) = (event.unwrap(), data.unwrap());
            assert_eq!(data["type"], event.as_str(), "data.type names the event");
            (event, data)
        })
        .collect()
}

fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("request-id")
        .expect("a request-id header")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn start_up_endpoints_and_unknown_paths_answer_like_the_real_api() {
    let fake = FakeAnthropic::start("unused");
    let client = client(&fake);
    let base = fake.base_url();
    let mut ids = Vec::new();

    let hello = client
        .head(format!("{base}/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    ids.push(request_id(&hello));

    let settings = client
        .get(format!("{base}/api/claude_code/settings"))
        .send()
        .await
        .unwrap();
    assert_eq!(settings.status(), 404);
    ids.push(request_id(&settings));

    let limits = client
        .get(format!("{base}/api/claude_code/policy_limits"))
        .send()
        .await
        .unwrap();
    assert_eq!(limits.status(), 200);
    ids.push(request_id(&limits));
    assert_eq!(
        limits.json::<Value>().await.unwrap(),
        json!({"restrictions": {}})
    );

    let other = client
        .post(format!("{base}/api/event_logging/v2/batch"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    ids.push(request_id(&other));
    let error: Value = other.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "not_found_error");

    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "request ids are unique: {ids:?}");
    assert_eq!(
        fake.endpoints(),
        [
            "HEAD /api/hello",
            "GET /api/claude_code/settings",
            "GET /api/claude_code/policy_limits",
            "POST /api/event_logging/v2/batch",
        ]
    );
}

#[tokio::test]
async fn a_streamed_message_is_a_well_formed_sse_stream_of_the_reply() {
    let reply = "The fake says hello, twice over.";
    let fake = FakeAnthropic::start(reply);
    let response = client(&fake)
        .post(format!("{}/v1/messages?beta=true", fake.base_url()))
        .header("x-api-key", "sk-ant-api03-test")
        .json(&conversation(
            json!([{"role": "user", "content": "hi"}]),
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    assert!(!request_id(&response).is_empty());
    let events = parse_sse(&response.text().await.unwrap());

    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    let deltas = names
        .iter()
        .filter(|n| **n == "content_block_delta")
        .count();
    assert!(deltas >= 2, "the text comes in pieces: {names:?}");
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);

    let start = &events[0].1["message"];
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "claude-test-1", "the request's model");
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(events[1].1["content_block"]["type"], "text");
    let text: String = events
        .iter()
        .filter(|(e, _)| e == "content_block_delta")
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, reply);
    let delta = &events[names.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_plain_message_token_counts_and_bad_bodies() {
    let fake = FakeAnthropic::start("first reply");
    let client = client(&fake);
    let base = fake.base_url();
    let body = conversation(json!([{"role": "user", "content": "hi"}]), false);

    let message: Value = client
        .post(format!("{base}/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "first reply"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");

    fake.set_reply("second reply");
    let message: Value = client
        .post(format!("{base}/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message["content"][0]["text"], "second reply");

    let count = client
        .post(format!("{base}/v1/messages/count_tokens?beta=true"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    assert!(!request_id(&count).is_empty());
    let count: Value = count.json().await.unwrap();
    assert!(count["input_tokens"].as_u64().unwrap() > 0, "{count}");

    let bad = client
        .post(format!("{base}/v1/messages"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(
        fake.message_requests().len(),
        3,
        "count_tokens is not a message request"
    );
}

#[tokio::test]
async fn recorded_requests_show_credentials_and_the_main_conversation() {
    let fake = FakeAnthropic::start("Noted.");
    let client = client(&fake);
    let url = format!("{}/v1/messages?beta=true", fake.base_url());
    assert!(fake.main_request().is_none());

    // The conversation, continued: its second request carries the first exchange.
    let first = json!([{"role": "user", "content": "remember the word kumquat"}]);
    client
        .post(&url)
        .header("authorization", "Bearer sk-ant-oat01-test")
        .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
        .header(
            "x-claude-code-session-id",
            "11111111-2222-4333-8444-555555555555",
        )
        .json(&conversation(first, true))
        .send()
        .await
        .unwrap();
    let second = json!([
        {"role": "user", "content": [{"type": "text", "text": "remember the word kumquat"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Noted."}]},
        {"role": "user", "content": "which word?"},
    ]);
    client
        .post(&url)
        .header("authorization", "Bearer sk-ant-oat01-test")
        .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
        .json(&conversation(second, true))
        .send()
        .await
        .unwrap();
    // A side request (a title), with a small model and no tools, comes last.
    client
        .post(&url)
        .header("x-api-key", "sk-ant-api03-test")
        .json(&json!({
            "model": "claude-small",
            "max_tokens": 32,
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ],
        }))
        .send()
        .await
        .unwrap();

    let requests = fake.message_requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.method == "POST"));
    assert_eq!(requests[0].path, "/v1/messages?beta=true");
    assert_eq!(
        requests[0].header("Authorization"),
        Some("Bearer sk-ant-oat01-test")
    );
    assert_eq!(requests[0].header("x-api-key"), None);
    assert_eq!(
        requests[0].betas(),
        ["claude-code-20250219", "oauth-2025-04-20"]
    );
    assert_eq!(
        requests[0].session_id(),
        Some("11111111-2222-4333-8444-555555555555")
    );
    assert_eq!(requests[2].header("x-api-key"), Some("sk-ant-api03-test"));
    assert_eq!(requests[2].model(), Some("claude-small"));
    assert!(requests[0].is_stream() && !requests[2].is_stream());

    let main = fake.main_request().expect("a main request");
    assert_eq!(main, requests[1], "tools first, then the most messages");
    assert!(main.has_tools());
    assert_eq!(main.messages().len(), 3);
    assert!(main.has_message_text("user", "kumquat"));
    assert!(main.has_message_text("assistant", "Noted."));
    assert!(!main.has_message_text("assistant", "kumquat"));
    assert_eq!(
        main.message_texts().last().unwrap(),
        &("user".to_owned(), "which word?".to_owned())
    );
}
