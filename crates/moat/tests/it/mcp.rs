//! MCP servers in `moat claude`, with the real Claude Code: a remote server (streamable
//! HTTP over TLS, a fake on loopback reached through the run's proxy) whose credential the
//! proxy adds, and `moat grant mcp`.

use moat_test_support::FakeMcp;

use crate::claude::{Claude, container_holds};
use crate::harness::{Out, docker};

const API_KEY: &str = "sk-ant-api03-moatTestRealKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH";
/// The MCP server's real credential: only the host's store, the proxy and the fake see it.
const MCP_TOKEN: &str = "notes-REAL-mcp-token-5f1c2a9e0b7d";
const MCP_HOST: &str = "mcp.notes.test";

const AGENT_YAML: &str = "mcp:\n  - name: notes\n    url: https://mcp.notes.test/mcp\n    auth:\n      grant: mcp-notes\n      header: X-Notes-Key\n";

fn grant_mcp(claude: &Claude, name: &str, input: &str) -> Out {
    use std::io::Write;
    let mut child = claude
        .moat()
        .args(["grant", "mcp", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Out::from(child.wait_with_output().unwrap())
}

#[test]
fn a_remote_mcp_server_gets_the_real_credential_from_the_proxy_and_the_container_none() {
    let claude = Claude::new("MCP checked.");
    claude.grant(API_KEY);
    let mcp = FakeMcp::start(MCP_HOST, "X-Notes-Key", MCP_TOKEN);
    let granted = grant_mcp(&claude, "notes", &format!("{MCP_TOKEN}\n"));
    assert_eq!(granted.code, 0, "{granted:?}");
    assert!(
        granted
            .stdout
            .contains("MCP credential `mcp-notes` saved to"),
        "{granted:?}"
    );
    let listed = claude.run(&["grant", "list"]);
    assert!(listed.stdout.contains("mcp-notes"), "{listed:?}");
    assert!(!listed.stdout.contains(MCP_TOKEN));

    std::fs::write(claude.env.workspace().join("agent.yaml"), AGENT_YAML).unwrap();
    // Inside the run, the agent itself asks Claude Code for its MCP servers' health, and
    // copies every process's environment and command line.
    claude
        .fake
        .set_tool_calls(&["claude mcp list > mcp-list.txt 2>&1; \
         cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline > proc.txt 2>/dev/null; true"]);
    let out = Out::from(
        claude
            .moat_reaching(&[(MCP_HOST, mcp.port())])
            .args(["claude", "--keep", "--trust", "-p", "check the MCP server"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("MCP checked."), "{out:?}");

    // `claude mcp list` in the container reports the server connected: the fake answers
    // only requests with the real credential.
    let workspace = claude.env.workspace();
    let list = std::fs::read_to_string(workspace.join("mcp-list.txt")).unwrap();
    assert!(
        list.lines().any(|l| l.contains("notes")
            && l.contains("https://mcp.notes.test/mcp")
            && l.contains("Connected")),
        "{list}"
    );
    let methods = mcp.methods();
    assert!(methods.iter().any(|m| m == "initialize"), "{methods:?}");
    assert!(methods.iter().any(|m| m == "tools/list"), "{methods:?}");
    assert!(
        mcp.requests()
            .iter()
            .all(|r| r.header("x-notes-key") == Some(MCP_TOKEN)),
        "every request the fake saw carried the real credential"
    );
    // The container never held the credential: not in its processes' environments or
    // command lines, files, or configuration. Its Claude configuration has a placeholder.
    let proc = std::fs::read(workspace.join("proc.txt")).unwrap();
    assert!(!proc.is_empty());
    assert!(
        !proc
            .windows(MCP_TOKEN.len())
            .any(|w| w == MCP_TOKEN.as_bytes()),
        "a process in the container held the credential"
    );
    let run = &claude.env.list()[0];
    let container = run["container_id"].as_str().unwrap();
    assert!(!container_holds(container, MCP_TOKEN));
    assert!(container_holds(container, "moat-mcp-notes-"));
    docker(&["rm", "-f", container]);

    // The requests are in the trace, with the grant and the server's name.
    let trace = claude.run(&["trace", "--network"]);
    assert_eq!(trace.code, 0, "{trace:?}");
    assert!(
        trace
            .stdout
            .lines()
            .any(|l| l.contains("POST https://mcp.notes.test/mcp")
                && l.contains(" 200 ")
                && l.contains("[grant: mcp-notes]")
                && l.contains("[mcp: notes]")),
        "{trace:?}"
    );
    assert!(!trace.stdout.contains(MCP_TOKEN));
    let audit = claude.run(&["audit"]);
    assert!(!audit.stdout.contains(MCP_TOKEN), "{audit:?}");
}

#[test]
fn an_ungranted_mcp_server_stops_the_run_naming_the_server_and_the_grant() {
    let claude = Claude::new("unused");
    claude.grant(API_KEY);
    std::fs::write(claude.env.workspace().join("agent.yaml"), AGENT_YAML).unwrap();
    let out = claude.run(&["claude", "--trust", "-p", "hi"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(
            "error: MCP server `notes` needs the `mcp-notes` credential, which is not granted"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("hint: run `moat grant mcp notes`"),
        "{out:?}"
    );
    assert!(claude.env.run_dirs().is_empty());

    // `moat grant mcp` wants a name and a value.
    let empty = grant_mcp(&claude, "notes", "\n");
    assert_eq!(empty.code, 1, "{empty:?}");
    assert!(
        empty.stderr.contains("no credential was given"),
        "{empty:?}"
    );
    let nameless = claude.run(&["grant", "mcp"]);
    assert_eq!(nameless.code, 1, "{nameless:?}");
    assert!(
        nameless.stderr.contains("moat grant mcp notion"),
        "{nameless:?}"
    );
    let bad = grant_mcp(&claude, "Bad_Name", "x\n");
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.contains("cannot name an MCP credential"),
        "{bad:?}"
    );
}

/// A stdio MCP server of the workspace: JSON-RPC on stdin and stdout, answering
/// `initialize` and `tools/list`; on start it writes its working directory, arguments and
/// environment to `/workspace/stdio-started.json`.
const STDIO_SERVER: &str = r#"
const fs = require("fs");
fs.writeFileSync("/workspace/stdio-started.json", JSON.stringify({
  cwd: process.cwd(), argv: process.argv.slice(2), env: process.env }));
let buffer = "";
process.stdin.on("data", (chunk) => {
  buffer += chunk;
  let at;
  while ((at = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, at);
    buffer = buffer.slice(at + 1);
    if (!line.trim()) continue;
    const msg = JSON.parse(line);
    if (msg.id === undefined) continue;
    let result = {};
    if (msg.method === "initialize") {
      result = { protocolVersion: msg.params.protocolVersion,
                 capabilities: { tools: {} },
                 serverInfo: { name: "local-notes", version: "1.0.0" } };
    } else if (msg.method === "tools/list") {
      result = { tools: [{ name: "hello", description: "Say hello.",
                           inputSchema: { type: "object", properties: {} } }] };
    }
    process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }) + "\n");
  }
});
"#;

#[test]
fn a_stdio_server_from_claude_mcp_is_listed_and_starts_with_its_grants_placeholder() {
    const GITHUB_TOKEN: &str = "ghp_moatTestRealGithubToken0123456789abcd";
    let claude = Claude::new("Local checked.");
    claude.grant(API_KEY);
    let granted = Out::from(
        claude
            .moat()
            .env("GITHUB_TOKEN", GITHUB_TOKEN)
            .args(["grant", "github", "--no-validate"])
            .output()
            .unwrap(),
    );
    assert_eq!(granted.code, 0, "{granted:?}");
    let workspace = claude.env.workspace();
    std::fs::write(workspace.join("notes-server.cjs"), STDIO_SERVER).unwrap();
    // No `grants:`: the server's `grant` is enough.
    std::fs::write(
        workspace.join("agent.yaml"),
        "claude:\n  mcp:\n    local-notes:\n      command: node\n      \
         args: [/workspace/notes-server.cjs, --flag]\n      env: {NOTES_MODE: test}\n      \
         cwd: /tmp\n      grant: github\n",
    )
    .unwrap();
    claude
        .fake
        .set_tool_calls(&["claude mcp list > mcp-list.txt 2>&1; true"]);
    let out = claude.run(&["claude", "--trust", "-p", "check the local server"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Local checked."), "{out:?}");

    let list = std::fs::read_to_string(workspace.join("mcp-list.txt")).unwrap();
    assert!(
        list.lines()
            .any(|l| l.contains("local-notes") && l.contains("Connected")),
        "{list}"
    );
    let started: serde_json::Value =
        serde_json::from_slice(&std::fs::read(workspace.join("stdio-started.json")).unwrap())
            .unwrap();
    assert_eq!(started["cwd"], "/tmp", "{started}");
    assert_eq!(started["argv"], serde_json::json!(["--flag"]), "{started}");
    assert_eq!(started["env"]["NOTES_MODE"], "test", "{started}");
    let placeholder = started["env"]["GITHUB_TOKEN"].as_str().unwrap();
    assert!(placeholder.starts_with("ghp_"), "{started}");
    assert_ne!(placeholder, GITHUB_TOKEN);
    assert!(!started.to_string().contains(GITHUB_TOKEN));
}

#[test]
fn a_server_on_the_users_machine_is_reached_through_the_proxy_for_that_server_only() {
    const LOCAL_TOKEN: &str = "desk-REAL-local-token-77aa09";
    let claude = Claude::new("Desk checked.");
    claude.grant(API_KEY);
    // Plain HTTP on the host's loopback, which the container cannot reach by itself.
    let mcp = FakeMcp::start_plain("Authorization", &format!("Bearer {LOCAL_TOKEN}"));
    let granted = grant_mcp(&claude, "desk", &format!("Bearer {LOCAL_TOKEN}\n"));
    assert_eq!(granted.code, 0, "{granted:?}");
    let port = mcp.port();
    std::fs::write(
        claude.env.workspace().join("agent.yaml"),
        format!(
            "mcp:\n  - name: desk\n    url: http://localhost:{port}/mcp\n    auth:\n      \
             grant: mcp-desk\n      header: Authorization\n"
        ),
    )
    .unwrap();
    claude
        .fake
        .set_tool_calls(&["claude mcp list > mcp-list.txt 2>&1; true"]);
    let out = claude.run(&["claude", "--trust", "-p", "check the desk server"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list = std::fs::read_to_string(claude.env.workspace().join("mcp-list.txt")).unwrap();
    let url = format!("http://desk.mcp.moat.internal:{port}/mcp");
    assert!(
        list.lines()
            .any(|l| l.contains("desk") && l.contains(&url) && l.contains("Connected")),
        "{list}"
    );
    assert!(
        mcp.methods().iter().any(|m| m == "tools/list"),
        "{:?}",
        mcp.methods()
    );
    let trace = claude.run(&["trace", "--network"]);
    assert!(
        trace
            .stdout
            .lines()
            .any(|l| l.contains(&format!("POST {url}"))
                && l.contains("[grant: mcp-desk]")
                && l.contains("[mcp: desk]")),
        "{trace:?}"
    );
    assert!(!trace.stdout.contains(LOCAL_TOKEN));
}
