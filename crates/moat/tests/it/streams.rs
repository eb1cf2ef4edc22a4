//! Long-lived responses through a run's proxy: a Server-Sent Events stream arrives event by
//! event (not buffered to the end), and a WebSocket upgrade carries messages both ways. Both
//! show up in the network trace.

use std::time::Duration;

use moat_test_support::{Answer, FakeUpstream, Reply};

use crate::harness::{Out, TestEnv};

const HOST: &str = "live.example.test";
/// The fake's pause between events; the container must see the same rhythm.
const GAP: Duration = Duration::from_millis(300);
const EVENTS: usize = 5;

/// A WebSocket client on the Python standard library alone (no WebSocket tool ships in
/// Debian bookworm, and its curl has no `ws:` support): CONNECT through `HTTPS_PROXY` with
/// the run's token, TLS with the image's trust store, the upgrade, masked frames out.
const WS_CLIENT: &str = r#"
import base64, hashlib, os, socket, ssl, struct, sys
from urllib.parse import urlsplit, unquote

host = sys.argv[1]
proxy = urlsplit(os.environ["HTTPS_PROXY"])
sock = socket.create_connection((proxy.hostname, proxy.port), timeout=30)
auth = base64.b64encode(f"{unquote(proxy.username)}:{unquote(proxy.password)}".encode()).decode()
sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\nProxy-Authorization: Basic {auth}\r\n\r\n".encode())

def head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        byte = s.recv(1)
        if not byte:
            sys.exit("closed in the headers: %r" % data)
        data += byte
    return data.decode().split("\r\n")

print("connect:", head(sock)[0])
tls = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
key = base64.b64encode(os.urandom(16)).decode()
tls.sendall((f"GET /echo HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
lines = head(tls)
print("upgrade:", lines[0])
headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
expected = base64.b64encode(hashlib.sha1((key + guid).encode()).digest()).decode()
print("accept:", headers.get("sec-websocket-accept") == expected)

def send(opcode, payload):
    mask = os.urandom(4)
    n = len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    tls.sendall(bytes([0x80 | opcode]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def exact(n):
    data = b""
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        if not chunk:
            sys.exit("closed in a frame")
        data += chunk
    return data

def receive():
    first, second = exact(2)
    n = second & 0x7f
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", exact(8))[0]
    return first & 0x0f, exact(n)

for message in ["hello through moat", "x" * 300]:
    send(1, message.encode())
    opcode, payload = receive()
    print("echo:", opcode, len(payload), payload.decode() == message)
send(8, struct.pack("!H", 1000))
print("close:", receive()[0])
"#;

#[test]
fn sse_streams_and_websockets_pass_through_the_proxy() {
    let env = TestEnv::new();
    let upstream = FakeUpstream::start(&[HOST], |r| match r.path.as_str() {
        "/events" => Answer::sse((1..=EVENTS).map(|i| format!("event {i}")), GAP),
        "/echo" => Answer::WebSocketEcho,
        _ => Reply::text(404, "no such route").into(),
    });
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [curl, python]\n",
    )
    .unwrap();
    std::fs::write(env.workspace().join("ws_client.py"), WS_CLIENT).unwrap();
    // Each SSE line is stamped (ms) as it comes out of curl; `-N` turns curl's own
    // buffering off, so any batching would be the proxy's.
    let script = format!(
        "curl -sSN https://{HOST}/events | while IFS= read -r line; do \
           [ -n \"$line\" ] && echo \"sse $(date +%s%3N) $line\"; done; \
         python3 /workspace/ws_client.py {HOST}"
    );
    let out = Out::from(
        env.moat()
            .env(
                "MOAT_CONNECT_TO",
                format!("{HOST}:443:127.0.0.1:{}", upstream.port()),
            )
            .env("MOAT_EXTRA_CA_CERTS", upstream.ca_file())
            .args(["run", "--trust", "--", "sh", "-c", &script])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");

    // SSE: every event, in order, with the server's rhythm rather than all at the end.
    let sse: Vec<(u64, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("sse "))
        .map(|l| {
            let (at, data) = l.split_once(' ').unwrap();
            (at.parse().unwrap(), data)
        })
        .collect();
    let data: Vec<&str> = sse.iter().map(|(_, d)| *d).collect();
    let expected: Vec<String> = (1..=EVENTS).map(|i| format!("data: event {i}")).collect();
    assert_eq!(data, expected, "{out:?}");
    let gap = GAP.as_millis() as u64;
    for pair in sse.windows(2) {
        assert!(
            pair[1].0 - pair[0].0 >= gap / 3,
            "events arrived together, not as they were sent: {sse:?}"
        );
    }
    let span = sse[EVENTS - 1].0 - sse[0].0;
    assert!(
        span >= gap * (EVENTS as u64 - 1) / 2,
        "the stream was buffered: {sse:?}"
    );

    // WebSocket: the upgrade, the handshake's proof, two echoes and a clean close.
    let ws: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("sse "))
        .collect();
    assert_eq!(
        ws,
        [
            "connect: HTTP/1.1 200 OK",
            "upgrade: HTTP/1.1 101 Switching Protocols",
            "accept: True",
            "echo: 1 18 True",
            "echo: 1 300 True",
            "close: 8",
        ],
        "{out:?}"
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].header("upgrade"), Some("websocket"));

    // The trace has both: the stream with its body sample, the upgrade as a 101.
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["trace", "--network", "--json"]).stdout).unwrap();
    let events = json.as_array().unwrap();
    let find = |url: &str| {
        events
            .iter()
            .find(|e| e["url"] == url)
            .unwrap_or_else(|| panic!("no {url} in {json}"))
    };
    let stream = find(&format!("https://{HOST}/events"));
    assert_eq!(stream["status"], 200);
    assert!(
        stream["response_body"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("data: event 1") && t.contains("data: event 5")),
        "{stream}"
    );
    let socket = find(&format!("https://{HOST}/echo"));
    assert_eq!(socket["status"], 101);
    assert_eq!(socket["blocked"], false);
}
