//! Fetching Claude Code plugin marketplaces on the host for a `moat claude` run: a
//! `claude.marketplaces` entry, or a marketplace the host knows but has no files of, is
//! cloned with git through a proxy of moat's own that enforces the run's policy and
//! injects the run's grants (so the `github` grant reaches a private repository), into a
//! cache under `MOAT_HOME/plugins/marketplaces/`. The run then gets read-only copies
//! from there, as it does of what the host installed.
//!
//! The container never takes part: it gets no clone, no remote and no credential, only
//! the files. The cache is keyed by the source and ref, so a changed configuration is
//! fetched anew without `--rebuild`, and `--rebuild` fetches again what is cached.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use moat_home::MoatHome;
use moat_proxy::{NetworkEvent, Proxy, Secret};
use serde::{Deserialize, Serialize};

use crate::ui::UserError;

/// How long one marketplace's clone may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// The most a marketplace's files may hold (a run's seed holds at most 512 MiB anyway).
const MAX_BYTES: u64 = 512 * 1024 * 1024;
const MAX_ENTRIES: u64 = 100_000;
/// The most of git's standard output read (a listing of `MAX_ENTRIES` files fits).
const MAX_OUTPUT: usize = 32 * 1024 * 1024;

/// A marketplace to fetch: its git remote (https) and the ref, if one is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    pub url: String,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
}

impl Remote {
    /// The remote of a marketplace source as Claude Code records it (`{"source":
    /// "github", "repo": "owner/repo", "ref": ...}` or `{"source": "git", "url": ...}`).
    pub fn of_source(source: &serde_json::Value) -> Option<Remote> {
        let git_ref = source
            .get("ref")
            .and_then(|r| r.as_str())
            .map(str::to_owned);
        let url = match source.get("source")?.as_str()? {
            "github" => format!("https://github.com/{}.git", source.get("repo")?.as_str()?),
            "git" => source.get("url")?.as_str()?.to_owned(),
            _ => return None,
        };
        // A URL with `user:password@` is not fetched: its credential would be on git's
        // command line and in the cache; the run's grants add credentials instead.
        let authority = url.strip_prefix("https://")?.split('/').next()?;
        (!authority.contains('@')).then_some(Remote { url, git_ref })
    }
}

/// What the cache holds of one fetched marketplace (`KEY.json`, naming its directory).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fetched {
    pub remote: Remote,
    /// The grants the fetch had: what it could read is what they allowed.
    pub grants: Vec<String>,
    /// The commit the files are of.
    pub commit: String,
    pub fetched_at: jiff::Timestamp,
    /// How many requests the fetch made.
    pub requests: usize,
    /// The fetch's directory beside `KEY.json` (`KEY.RANDOM`, the files in its `tree/`):
    /// never changed once written, so what a run checked is what it copies; a new fetch
    /// makes a new one.
    pub checkout: String,
    #[serde(skip)]
    pub dir: PathBuf,
}

fn cache_root(home: &MoatHome) -> PathBuf {
    home.root().join("plugins").join("marketplaces")
}

/// The cache's name for `remote` fetched with `grants`: a private repository fetched
/// with a grant is not there for a run without it.
fn key(remote: &Remote, grants: &[String]) -> String {
    let text = serde_json::to_string(&(remote, grants)).expect("a remote serialises");
    let hash = moat_trust::content_hash(text.as_bytes());
    hash.trim_start_matches("sha256:").to_owned()
}

/// The names of the grants `rules` come from, sorted, once each.
pub fn grant_names(rules: &[moat_proxy::GrantRule]) -> Vec<String> {
    let mut names: Vec<String> = rules.iter().map(|r| r.grant().to_owned()).collect();
    names.sort();
    names.dedup();
    names
}

/// The cached fetch of `remote` with `grants`, if there is one.
pub fn cached(home: &MoatHome, remote: &Remote, grants: &[String]) -> Option<Fetched> {
    let root = cache_root(home);
    let key = key(remote, grants);
    let bytes = moat_home::read_bounded(
        &root.join(format!("{key}.json")),
        moat_home::FileKind::CLAUDE_SETTINGS,
    )
    .ok()?;
    let mut fetched: Fetched = serde_json::from_slice(&bytes).ok()?;
    let ours = fetched
        .checkout
        .strip_prefix(&format!("{key}."))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(['/', '.']));
    let dir = root.join(&fetched.checkout).join("tree");
    (ours && fetched.remote == *remote && fetched.grants == grants && dir.is_dir()).then(|| {
        fetched.dir = dir;
        fetched
    })
}

/// The cached fetch of `remote` with whichever grants it was made (for showing what a
/// run got, `moat claude plugins list`): the latest.
pub fn cached_any(home: &MoatHome, remote: &Remote) -> Option<Fetched> {
    let root = cache_root(home);
    fs_err::read_dir(&root)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = name.strip_suffix(".json")?;
            let bytes =
                moat_home::read_bounded(&entry.path(), moat_home::FileKind::CLAUDE_SETTINGS)
                    .ok()?;
            let fetched: Fetched = serde_json::from_slice(&bytes).ok()?;
            (fetched.remote == *remote && self::key(remote, &fetched.grants) == key)
                .then(|| cached(home, remote, &fetched.grants))?
        })
        .max_by_key(|f| f.fetched_at)
}

/// Clone `remote` for marketplace `name` into the cache (replacing what was there),
/// through a proxy enforcing `egress` with `rules`. Blocks: it runs its own small
/// runtime on a thread, so it can be called from the settings' resolution.
pub fn fetch(
    home: &MoatHome,
    name: &str,
    remote: &Remote,
    egress: &moat_run::EgressSettings,
    rules: &[moat_proxy::GrantRule],
    path: Option<&OsStr>,
) -> Result<Fetched> {
    let root = cache_root(home);
    moat_home::MoatHome::create_private_dir(&root)
        .with_context(|| format!("making `{}`", root.display()))?;
    let grants = grant_names(rules);
    let key = key(remote, &grants);
    // Into a fresh directory of its own, never changed afterwards; `KEY.json` names it
    // only once it is complete, so a failed or interrupted fetch leaves no half of a
    // marketplace that a run would use.
    let staging = tempfile::Builder::new()
        .prefix(&format!("{key}."))
        .rand_bytes(8)
        .tempdir_in(&root)
        .with_context(|| format!("making a directory in `{}`", root.display()))?;
    let config = moat_run::proxy_config(home, egress, Secret::random_token()?, rules.to_vec())?;
    let checkout = staging.path().join("tree");
    let (commit, events) = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<(String, Vec<NetworkEvent>)> {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("starting the fetch's runtime")?
                    .block_on(clone_through_proxy(config, remote, &checkout, path))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
    .map_err(|e| fetch_failed(name, remote, e))?;
    let previous = cached(home, remote, &grants);
    let dir = staging.keep();
    let checkout_name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("a cache directory name that is not UTF-8")?
        .to_owned();
    let fetched = Fetched {
        remote: remote.clone(),
        grants,
        commit,
        fetched_at: jiff::Timestamp::now(),
        requests: events.len(),
        checkout: checkout_name,
        dir: dir.join("tree"),
    };
    let written = moat_home::write_private_atomic(
        &root.join(format!("{key}.json")),
        &serde_json::to_vec_pretty(&fetched)?,
    );
    if let Err(e) = written {
        let _ = fs_err::remove_dir_all(&dir);
        return Err(e.into());
    }
    // The previous checkout goes once nothing names it (a run copying from it right now
    // fails with an error rather than copying something else).
    if let Some(previous) = previous
        && let Some(old) = previous.dir.parent()
    {
        let _ = fs_err::remove_dir_all(old);
    }
    Ok(fetched)
}

fn fetch_failed(name: &str, remote: &Remote, e: anyhow::Error) -> anyhow::Error {
    let private = remote.url.starts_with("https://github.com/");
    UserError::new(format!(
        "cannot fetch plugin marketplace `{name}` from {}: {e:#}",
        remote.url
    ))
    .hint(if private {
        "check the repository and `ref`; a private repository needs the `github` grant in the run (`moat grant github`, then `grants: [github]` or `-g github`)"
    } else {
        "check the URL and `ref`; a repository that needs a credential needs a grant for its host in the run"
    })
    .into()
}

/// Start a proxy on loopback, clone through it, stop it: the commit checked out, and the
/// requests the proxy saw.
async fn clone_through_proxy(
    config: moat_proxy::ProxyConfig,
    remote: &Remote,
    checkout: &Path,
    path: Option<&OsStr>,
) -> Result<(String, Vec<NetworkEvent>)> {
    let token = config.auth_token.clone();
    let ca_pem = config.ca.cert_pem().to_owned();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<NetworkEvent>();
    let proxy = Proxy::start(config, ([127, 0, 0, 1], 0).into(), tx)
        .await
        .context("starting the fetch's proxy")?;
    let proxy_url = moat_proxy::proxy_url(proxy.local_addr(), &token);
    let ca_file = checkout.with_file_name("moat-ca.pem");
    fs_err::write(&ca_file, ca_pem)?;
    let result = tokio::time::timeout(
        FETCH_TIMEOUT,
        git_clone(remote, checkout, proxy_url.expose(), &ca_file, path),
    )
    .await
    .unwrap_or_else(|_| Err(anyhow::anyhow!("it took longer than {FETCH_TIMEOUT:?}")));
    proxy.shutdown().await;
    let mut events = Vec::new();
    while let Ok(event) = rx.try_recv() {
        events.push(event);
    }
    let commit = match result {
        Ok(commit) => commit,
        Err(e) => {
            // What the proxy said is what the user can act on (a refused host, a 401).
            let refused = events
                .iter()
                .find(|e| e.blocked || e.status >= 400 || e.error.is_some())
                .map(|e| {
                    format!(
                        " ({} {} answered {}{})",
                        e.method,
                        e.url,
                        e.status,
                        e.error
                            .as_deref()
                            .map(|x| format!(": {x}"))
                            .unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            return Err(anyhow::anyhow!("{e:#}{refused}"));
        }
    };
    Ok((commit, events))
}

/// `git` with nothing of the user's or the system's configuration, no prompts, no hooks,
/// and the proxy (its token in the environment, never on a command line).
fn git(proxy_url: &str, ca_file: &Path, path: Option<&OsStr>) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("git");
    command
        .env_clear()
        .envs(path.map(|p| ("PATH", p)))
        .env("HOME", "/nonexistent")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env("GIT_CONFIG_COUNT", "5")
        .env("GIT_CONFIG_KEY_0", "http.proxy")
        .env("GIT_CONFIG_VALUE_0", proxy_url)
        .env("GIT_CONFIG_KEY_1", "http.sslCAInfo")
        .env("GIT_CONFIG_VALUE_1", ca_file)
        .env("GIT_CONFIG_KEY_2", "core.hooksPath")
        .env("GIT_CONFIG_VALUE_2", "/dev/null")
        .env("GIT_CONFIG_KEY_3", "credential.helper")
        .env("GIT_CONFIG_VALUE_3", "")
        .env("GIT_CONFIG_KEY_4", "protocol.allow")
        .env("GIT_CONFIG_VALUE_4", "never")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// Fetch `remote` (its `ref`, or its default branch) at depth 1 into `checkout` and check
/// it out; the commit.
async fn git_clone(
    remote: &Remote,
    checkout: &Path,
    proxy_url: &str,
    ca_file: &Path,
    path: Option<&OsStr>,
) -> Result<String> {
    let run = |args: Vec<&str>| {
        let mut command = git(proxy_url, ca_file, path);
        // https only, and only for this one remote; run from the fetch's own directory,
        // never from where the user stands (a repository there has its own config).
        command
            .current_dir(checkout.parent().unwrap_or(checkout))
            .args(["-c", "protocol.https.allow=always"])
            .args(args);
        async move {
            // Its own process group, killed whole if the fetch is cut short (git leaves
            // `git-remote-https` and `index-pack` running otherwise); only the end of what
            // it says is kept (a server's `remote:` lines need not end).
            command
                .process_group(0)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = command.spawn().context("running git")?;
            let kill = KillGroup(
                child
                    .id()
                    .and_then(|id| i32::try_from(id).ok())
                    .map(nix::unistd::Pid::from_raw),
            );
            let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
            let (stdout, stderr, status) =
                tokio::join!(head(stdout, MAX_OUTPUT), tail(stderr, 4096), child.wait());
            kill.disarm();
            let status = status.context("waiting for git")?;
            if status.success() {
                let stdout = stdout.context("git said more than moat reads")?;
                Ok(String::from_utf8_lossy(&stdout).trim().to_owned())
            } else {
                let stderr = String::from_utf8_lossy(&stderr);
                let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
                let last = moat_text::plain(last.trim());
                Err(anyhow::anyhow!("git says: {last}"))
            }
        }
    };
    let dir = checkout
        .to_str()
        .context("a fetch directory that is not UTF-8")?;
    run(vec!["init", "-q", dir]).await?;
    let wanted = remote.git_ref.as_deref().unwrap_or("HEAD");
    run(vec![
        "-C",
        dir,
        "fetch",
        "-q",
        "--depth",
        "1",
        "--no-tags",
        "--end-of-options",
        &remote.url,
        wanted,
    ])
    .await?;
    // What the checkout would write, before it writes it: a small pack can hold a tree
    // of a hundred gigabytes (one blob named a thousand times).
    let listing = run(vec!["-C", dir, "ls-tree", "-r", "-l", "-z", "FETCH_HEAD"]).await?;
    let (entries, bytes) = listing.split('\0').filter(|line| !line.is_empty()).fold(
        (0u64, 0u64),
        |(n, total), line| {
            let size = line
                .split_whitespace()
                .nth(3)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
            (n + 1, total.saturating_add(size))
        },
    );
    if entries > MAX_ENTRIES || bytes > MAX_BYTES {
        anyhow::bail!(
            "its files are too big for a marketplace ({entries} files, {} MiB; at most {MAX_ENTRIES} files and {} MiB)",
            bytes / (1024 * 1024),
            MAX_BYTES / (1024 * 1024)
        );
    }
    run(vec!["-C", dir, "checkout", "-q", "--detach", "FETCH_HEAD"]).await?;
    run(vec!["-C", dir, "rev-parse", "HEAD"]).await
}

/// Kills a process group when dropped: git's helpers with it, when a fetch is cut short.
struct KillGroup(Option<nix::unistd::Pid>);

impl KillGroup {
    /// The process was waited for: nothing to kill (and its id may be reused).
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0 {
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Everything `reader` gives until it ends, or `None` past `max` bytes (the rest is read
/// and dropped, so the writer is never left blocked).
async fn head(reader: Option<impl tokio::io::AsyncRead + Unpin>, max: usize) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut reader = reader?;
    let mut kept = Vec::new();
    let mut over = false;
    let mut chunk = vec![0u8; 8192];
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        if !over && kept.len() + n <= max {
            kept.extend_from_slice(&chunk[..n]);
        } else {
            over = true;
        }
    }
    (!over).then_some(kept)
}

/// Everything `reader` gives until it ends, keeping only the last `keep` bytes.
async fn tail(reader: Option<impl tokio::io::AsyncRead + Unpin>, keep: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 8192];
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > keep {
            kept.drain(..kept.len() - keep);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_https_remote() {
        let github = serde_json::json!({"source": "github", "repo": "acme/tools", "ref": "v1"});
        assert_eq!(
            Remote::of_source(&github),
            Some(Remote {
                url: "https://github.com/acme/tools.git".into(),
                git_ref: Some("v1".into())
            })
        );
        let ssh = serde_json::json!({"source": "git", "url": "git@github.com:a/b.git"});
        assert_eq!(Remote::of_source(&ssh), None);
        let dir = serde_json::json!({"source": "directory", "path": "/x"});
        assert_eq!(Remote::of_source(&dir), None);
        let token = serde_json::json!({"source": "git", "url": "https://u:tok@h/r.git"});
        assert_eq!(
            Remote::of_source(&token),
            None,
            "a credential in a URL is not used"
        );
        let a = Remote::of_source(&github).unwrap();
        let mut b = a.clone();
        b.git_ref = Some("v2".into());
        assert_ne!(key(&a, &[]), key(&b, &[]), "another ref is another fetch");
        assert_ne!(
            key(&a, &[]),
            key(&a, &["github".to_owned()]),
            "what a grant fetched is not there without it"
        );
        assert_eq!(key(&a, &[]).len(), 64);
    }
}
