//! The checks of `moat doctor` that need no Docker, each a function from what it looks at
//! (a path, a setting's text, a credential listing, the time) to a [`Finding`], so that
//! they can be tested on temp directories and fixed clocks.
//!
//! Nothing here creates anything: no moat home, no encryption key, no proxy CA. No
//! finding ever holds a secret; credentials are described by kind, source and expiry.

use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use moat_credentials::{
    ChainKeySource, CredentialError, CredentialSummary, EncryptionKey, ExpiryStatus, KeyOrigin,
    KeySource, classify_expiry,
};
use serde::Serialize;

/// A credential that expires within this long is a warning.
pub const CREDENTIAL_WARN_WITHIN: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// A proxy CA that expires within this long is a warning.
pub const CA_WARN_WITHIN: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    /// The mark at the start of the check's line.
    pub fn mark(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
            Status::Skip => "-",
        }
    }
}

/// One line of the report: what was checked, how it came out, what was found, and for a
/// problem, what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: String,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Finding {
    pub fn new(check: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Ok, detail)
    }

    pub fn warn(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, detail)
    }

    pub fn fail(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, detail)
    }

    pub fn skip(check: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Skip, detail)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    /// A failed check from an error: its message (causes included) and its hint.
    pub fn from_error(check: impl Into<String>, err: &anyhow::Error) -> Self {
        Self::fail(check, crate::ui::error_message(err)).maybe_hint(crate::ui::error_hint(err))
    }
}

/// The report as a person reads it: one line per check, hints indented below, a summary.
pub fn render(findings: &[Finding]) -> String {
    let width = findings
        .iter()
        .map(|f| f.check.chars().count())
        .max()
        .unwrap_or(0);
    let indent = " ".repeat(width + 3);
    let mut text = String::new();
    for f in findings {
        let mut lines = f.detail.lines();
        let first = lines.next().unwrap_or_default();
        text.push_str(&format!(
            "{} {:<width$} {first}\n",
            f.status.mark(),
            f.check
        ));
        for line in lines {
            text.push_str(&format!("{indent}{line}\n"));
        }
        if let Some(hint) = &f.hint {
            text.push_str(&format!("{indent}hint: {hint}\n"));
        }
    }
    text.push('\n');
    text.push_str(&summary(findings));
    text.push('\n');
    text
}

/// "Everything is in place." or how many checks failed and warned.
pub fn summary(findings: &[Finding]) -> String {
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    let (failed, warned) = (count(Status::Fail), count(Status::Warn));
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match (failed, warned) {
        (0, 0) => "Everything moat needs is in place.".to_owned(),
        (0, w) => format!("No problems; {}.", plural(w, "warning", "warnings")),
        (f, 0) => format!("{}.", plural(f, "problem to fix", "problems to fix")),
        (f, w) => format!(
            "{}, {}.",
            plural(f, "problem to fix", "problems to fix"),
            plural(w, "warning", "warnings")
        ),
    }
}

/// 0 when nothing failed (warnings allowed), 1 otherwise.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.status == Status::Fail))
}

/// `2026-03-01 12:00 UTC`.
pub fn short_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `3 days`, `5 hours`, `12 minutes`, `less than a minute`.
pub fn rough_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 2 * 3_600 {
        (secs / 3_600, "hour")
    } else if secs >= 60 {
        (secs / 60, "minute")
    } else {
        return "less than a minute".to_owned();
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Whether `$MOAT_HOME` can be written: an existing directory by writing (and removing) a
/// probe file in it, a missing one by whether its nearest existing parent lets it be made.
pub fn home_writable(root: &Path) -> Finding {
    const CHECK: &str = "moat home";
    let elsewhere = "or set MOAT_HOME to a directory you can write";
    match fs_err::metadata(root) {
        Ok(meta) if !meta.is_dir() => {
            Finding::fail(CHECK, format!("`{}` is not a directory", root.display()))
                .hint(format!("move it out of the way, {elsewhere}"))
        }
        Ok(_) => {
            let probe = root.join(format!(".doctor-probe-{}", std::process::id()));
            let written = fs_err::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe);
            match written {
                Ok(_) => {
                    let _ = fs_err::remove_file(&probe);
                    Finding::ok(CHECK, format!("`{}` is writable", root.display()))
                }
                Err(e) => {
                    Finding::fail(CHECK, format!("cannot write to `{}`: {e}", root.display())).hint(
                        format!(
                            "fix its owner and permissions (`ls -ld {}`), {elsewhere}",
                            root.display()
                        ),
                    )
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let Some(parent) = root.ancestors().skip(1).find(|p| p.exists()) else {
                return Finding::fail(CHECK, format!("`{}` cannot be created", root.display()))
                    .hint(elsewhere);
            };
            let flags = nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK;
            match nix::unistd::access(parent, flags) {
                Ok(()) if parent.is_dir() => Finding::ok(
                    CHECK,
                    format!(
                        "`{}` does not exist yet; the first command creates it",
                        root.display()
                    ),
                ),
                _ => Finding::fail(
                    CHECK,
                    format!(
                        "`{}` does not exist and `{}` does not let it be made",
                        root.display(),
                        parent.display()
                    ),
                )
                .hint(format!(
                    "create it yourself (`mkdir -p {}`), {elsewhere}",
                    root.display()
                )),
            }
        }
        Err(e) => {
            Finding::fail(CHECK, format!("cannot read `{}`: {e}", root.display())).hint(elsewhere)
        }
    }
}

/// Whether a credential file (`*.enc`) is stored in `dir`.
pub fn has_stored_credentials(dir: &Path) -> bool {
    fs_err::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".enc")
        })
    })
}

/// The store's key, looked up without making one. A missing key is fine while nothing is
/// stored; with credentials stored it means they cannot be read.
pub fn credential_key(
    keys: &ChainKeySource,
    has_credentials: bool,
) -> (Finding, Option<EncryptionKey>) {
    const CHECK: &str = "credential key";
    match keys.find() {
        Ok(Some((key, origin))) => {
            let place = match origin {
                KeyOrigin::Keyring => "in the OS keyring".to_owned(),
                _ => format!("in the key file {}", describe_file(keys)),
            };
            (Finding::ok(CHECK, place), Some(key))
        }
        Ok(None) if !has_credentials => (
            Finding::ok(
                CHECK,
                format!(
                    "none yet; made when you first grant a credential ({})",
                    keys.describe()
                ),
            ),
            None,
        ),
        Ok(None) => (
            Finding::fail(
                CHECK,
                format!(
                    "credentials are stored but their encryption key is missing (looked in {})",
                    keys.describe()
                ),
            )
            .hint(
                "restore the key file (or the OS keyring entry) from a backup; or start over: \
                 `moat revoke <provider>` for each stored credential, then `moat grant <provider>`",
            ),
            None,
        ),
        Err(e) => (
            Finding::fail(CHECK, e.to_string()).maybe_hint(e.hint()),
            None,
        ),
    }
}

/// The key file's part of a chain's description (the last alternative).
fn describe_file(keys: &ChainKeySource) -> String {
    let described = keys.describe();
    match described.rsplit_once(", else ") {
        Some((_, file)) => file.to_owned(),
        None => described,
    }
}

/// The Anthropic credential: what `moat claude` needs.
pub fn anthropic(
    summary: Option<&CredentialSummary>,
    env_key_set: bool,
    now: Timestamp,
) -> Finding {
    const CHECK: &str = "anthropic";
    match summary {
        Some(summary) => credential(CHECK, summary, now, Status::Fail),
        None if env_key_set => Finding::fail(CHECK, "no Anthropic credential")
            .hint("ANTHROPIC_API_KEY is set: run `moat grant anthropic` to store it for runs"),
        None => Finding::fail(CHECK, "no Anthropic credential").hint(
            "run `moat grant anthropic` (a Claude subscription, an API key, or your Claude \
                 Code login; it uses ANTHROPIC_API_KEY when that is set)",
        ),
    }
}

/// A credential besides Anthropic: listed, and a warning when it expired or soon will.
pub fn other_credential(summary: &CredentialSummary, now: Timestamp) -> Finding {
    credential(
        format!("{} credential", summary.provider),
        summary,
        now,
        Status::Warn,
    )
}

/// A stored credential that cannot be decrypted or parsed.
pub fn unreadable_credential(
    check: impl Into<String>,
    error: &CredentialError,
    status: Status,
) -> Finding {
    Finding::new(check, status, error.to_string()).maybe_hint(error.hint())
}

/// Kind, source and expiry of one credential; `expired` is the status of an expired one.
fn credential(
    check: impl Into<String>,
    summary: &CredentialSummary,
    now: Timestamp,
    expired: Status,
) -> Finding {
    let kind = match &summary.subscription_type {
        Some(plan) => format!("{} ({plan})", summary.kind),
        None => summary.kind.to_string(),
    };
    let what = format!("{kind} from {}", summary.source);
    let renew = format!("run `moat grant {}`", summary.provider);
    match (
        summary.expires_at,
        classify_expiry(summary.expires_at, now, CREDENTIAL_WARN_WITHIN),
    ) {
        (Some(at), ExpiryStatus::Expired) => Finding::new(
            check,
            expired,
            format!("Credential expired at {} ({what})", short_time(at)),
        )
        .hint(renew),
        (Some(at), ExpiryStatus::ExpiresSoon(left)) => Finding::warn(
            check,
            format!(
                "{what}, expires at {} (in {})",
                short_time(at),
                rough_duration(left)
            ),
        )
        .hint(format!("renew it before then: {renew}")),
        (Some(at), _) => Finding::ok(check, format!("{what}, expires at {}", short_time(at))),
        (None, _) => Finding::ok(check, format!("{what}, no expiry")),
    }
}

/// The proxy's CA in `dir`: absent is fine (the first run makes it); present, its key must
/// be private and its certificate valid.
pub fn proxy_ca(dir: &Path, now: Timestamp) -> Finding {
    const CHECK: &str = "proxy CA";
    let renew = format!(
        "remove `{}`; the next run makes a new CA (and rebuilds its image)",
        dir.display()
    );
    match moat_proxy::CertificateAuthority::inspect(dir) {
        Ok(None) => Finding::ok(
            CHECK,
            format!("not made yet; created on first run in `{}`", dir.display()),
        ),
        Ok(Some(info)) => match classify_expiry(Some(info.not_after), now, CA_WARN_WITHIN) {
            ExpiryStatus::Expired => Finding::fail(
                CHECK,
                format!(
                    "the certificate `{}` expired at {}",
                    info.cert_path.display(),
                    short_time(info.not_after)
                ),
            )
            .hint(renew),
            ExpiryStatus::ExpiresSoon(left) => Finding::warn(
                CHECK,
                format!(
                    "the certificate `{}` expires in {}",
                    info.cert_path.display(),
                    rough_duration(left)
                ),
            )
            .hint(renew),
            ExpiryStatus::Fresh => Finding::ok(
                CHECK,
                format!(
                    "`{}`, key private, valid until {}",
                    info.cert_path.display(),
                    short_time(info.not_after)
                ),
            ),
        },
        Err(e) => Finding::fail(CHECK, e.to_string()).maybe_hint(e.hint()),
    }
}

/// `MOAT_EXTRA_CA_CERTS`: a readable PEM file with at least one certificate.
pub fn extra_ca_certs(path: &Path) -> Finding {
    const CHECK: &str = "MOAT_EXTRA_CA_CERTS";
    let pem = match moat_home::read_bounded(path, moat_home::FileKind::CA_CERTIFICATES) {
        Ok(pem) => pem,
        Err(e) => {
            return Finding::fail(CHECK, e.to_string()).hint(e.hint().unwrap_or_else(|| {
                "point MOAT_EXTRA_CA_CERTS at a readable PEM file, or unset it".into()
            }));
        }
    };
    match moat_image::ExtraCa::from_pem(&pem) {
        Ok(ca) => {
            let n = ca.certificates().len();
            Finding::ok(
                CHECK,
                format!(
                    "`{}`: {n} certificate{}",
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ),
            )
        }
        Err(e) => Finding::fail(CHECK, format!("`{}`: {e}", path.display())).maybe_hint(e.hint()),
    }
}

/// `MOAT_CONNECT_TO`: a comma-separated list of `HOST1:PORT1:HOST2:PORT2` rules.
pub fn connect_to(text: &str) -> Finding {
    const CHECK: &str = "MOAT_CONNECT_TO";
    match moat_proxy::ConnectTo::parse_list(text) {
        Ok(rules) => {
            let n = rules.len();
            Finding::ok(CHECK, format!("{n} rule{}", if n == 1 { "" } else { "s" }))
        }
        Err(e) => Finding::fail(CHECK, e.to_string()).maybe_hint(e.hint()),
    }
}

/// The global `config.yaml`: absent (defaults apply) or valid.
pub fn global_config(path: &Path) -> (Finding, Option<moat_config::GlobalConfig>) {
    const CHECK: &str = "config.yaml";
    match moat_config::load_global(path) {
        Ok(None) => (
            Finding::ok(
                CHECK,
                format!("`{}` does not exist; defaults apply", path.display()),
            ),
            None,
        ),
        Ok(Some(config)) => (
            Finding::ok(CHECK, format!("`{}` is valid", path.display())),
            Some(config),
        ),
        Err(e) => (
            Finding::fail(CHECK, e.to_string()).maybe_hint(e.hint().map(str::to_owned)),
            None,
        ),
    }
}

/// The user's SSH agent, when there are `ssh:` grants: it must be reachable (`socket` is
/// `SSH_AUTH_SOCK`; `held` what listing it gave) and hold each granted key.
pub fn ssh_agent(
    grants: &[moat_credentials::SshGrant],
    socket: Option<&Path>,
    held: Result<Vec<moat_ssh::Identity>, String>,
) -> Vec<Finding> {
    const CHECK: &str = "ssh agent";
    let Some(socket) = socket else {
        return vec![
            Finding::fail(
                CHECK,
                format!(
                    "SSH_AUTH_SOCK not set; the SSH grants ({}) need your SSH agent",
                    names(grants)
                ),
            )
            .hint("start one and add your key: `eval \"$(ssh-agent -s)\" && ssh-add`"),
        ];
    };
    let held = match held {
        Ok(held) => held,
        Err(e) => {
            return vec![Finding::fail(CHECK, e).hint(
                "check that the agent runs (`ssh-add -l`), or start one: `eval \"$(ssh-agent -s)\" && ssh-add`",
            )];
        }
    };
    let mut findings = vec![Finding::ok(
        CHECK,
        format!("{} key(s) in `{}`", held.len(), socket.display()),
    )];
    for grant in grants {
        let wanted = moat_ssh::PublicKey::from_openssh(&grant.key)
            .map(|(k, _)| k.blob().to_vec())
            .unwrap_or_default();
        let pinned = grant.host_keys.len();
        findings.push(if held.iter().any(|id| id.key == wanted) {
            Finding::ok(
                grant.name(),
                format!(
                    "{} ({}) is in the agent; {pinned} host key(s) pinned from {}",
                    grant.comment, grant.fingerprint, grant.host_keys_from
                ),
            )
        } else {
            Finding::fail(
                grant.name(),
                format!(
                    "the granted key {} is not in your SSH agent",
                    grant.fingerprint
                ),
            )
            .hint(format!(
                "add it with `ssh-add`, or grant another with `moat grant ssh --host {}`",
                grant.name().trim_start_matches("ssh:")
            ))
        });
    }
    findings
}

fn names(grants: &[moat_credentials::SshGrant]) -> String {
    grants
        .iter()
        .map(|g| format!("`{}`", g.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use moat_credentials::{
        CredentialSource, FileKeySource, KEY_FILE_NAME, KindLabel, ProviderName,
    };

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-03-01T12:00:00Z";

    fn cred(kind: KindLabel, expires_at: Option<&str>) -> CredentialSummary {
        CredentialSummary {
            provider: ProviderName::anthropic(),
            kind,
            subscription_type: None,
            source: CredentialSource::Env {
                var: "ANTHROPIC_API_KEY".into(),
            },
            expires_at: expires_at.map(ts),
            granted_at: ts("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn anthropic_expiry_is_classified_against_a_seven_day_window() {
        let now = ts(NOW);
        let api_key = anthropic(Some(&cred(KindLabel::ApiKey, None)), false, now);
        assert_eq!(api_key.status, Status::Ok);
        assert_eq!(
            api_key.detail,
            "API key from env:ANTHROPIC_API_KEY, no expiry"
        );

        let fresh = cred(KindLabel::OAuthToken, Some("2026-03-20T12:00:00Z"));
        let f = anthropic(Some(&fresh), false, now);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(
            f.detail.contains("expires at 2026-03-20 12:00 UTC"),
            "{f:?}"
        );

        let soon = cred(KindLabel::OAuthToken, Some("2026-03-04T12:00:00Z"));
        let f = anthropic(Some(&soon), false, now);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.detail.ends_with("(in 3 days)"), "{f:?}");
        assert!(f.hint.unwrap().contains("`moat grant anthropic`"));

        let expired = cred(KindLabel::OAuthToken, Some("2026-03-01T11:00:00Z"));
        let f = anthropic(Some(&expired), false, now);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert_eq!(
            f.detail,
            "Credential expired at 2026-03-01 11:00 UTC (OAuth token from env:ANTHROPIC_API_KEY)"
        );
        assert_eq!(f.hint.as_deref(), Some("run `moat grant anthropic`"));

        // Expiring exactly now is expired.
        let at_now = cred(KindLabel::OAuthToken, Some(NOW));
        assert_eq!(anthropic(Some(&at_now), false, now).status, Status::Fail);
    }

    #[test]
    fn a_missing_anthropic_credential_says_how_to_get_one() {
        let f = anthropic(None, false, ts(NOW));
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.detail, "no Anthropic credential");
        assert_eq!(
            f.hint.as_deref(),
            Some(
                "run `moat grant anthropic` (a Claude subscription, an API key, or your \
                 Claude Code login; it uses ANTHROPIC_API_KEY when that is set)"
            )
        );
        let f = anthropic(None, true, ts(NOW));
        assert!(f.hint.unwrap().contains("ANTHROPIC_API_KEY is set"));
    }

    #[test]
    fn other_expired_credentials_only_warn() {
        let mut github = cred(KindLabel::OAuthToken, Some("2026-02-01T00:00:00Z"));
        github.provider = ProviderName::parse("github").unwrap();
        let f = other_credential(&github, ts(NOW));
        assert_eq!(f.check, "github credential");
        assert_eq!(f.status, Status::Warn);
        assert_eq!(f.hint.as_deref(), Some("run `moat grant github`"));
    }

    #[test]
    fn durations_read_roughly() {
        let d = |s| rough_duration(Duration::from_secs(s));
        assert_eq!(d(30), "less than a minute");
        assert_eq!(d(60), "1 minute");
        assert_eq!(d(3 * 3600 + 5), "3 hours");
        assert_eq!(d(36 * 3600), "36 hours");
        assert_eq!(d(3 * 86_400 + 10), "3 days");
    }

    #[test]
    fn a_writable_home_is_probed_and_left_clean() {
        let tmp = tempfile::tempdir().unwrap();
        let f = home_writable(tmp.path());
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert_eq!(fs_err::read_dir(tmp.path()).unwrap().count(), 0);

        let missing = tmp.path().join("a/b/.moat");
        let f = home_writable(&missing);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.detail.contains("does not exist yet"), "{f:?}");
        assert!(!tmp.path().join("a").exists(), "nothing is created");

        let file = tmp.path().join("file");
        fs_err::write(&file, "").unwrap();
        let f = home_writable(&file);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.hint.unwrap().contains("MOAT_HOME"));
        let f = home_writable(&file.join("below"));
        assert_eq!(f.status, Status::Fail, "{f:?}");
    }

    #[test]
    fn the_key_is_never_created_and_missing_only_matters_with_credentials() {
        let tmp = tempfile::tempdir().unwrap();
        let file = FileKeySource::new(tmp.path().join(KEY_FILE_NAME));
        let keys = ChainKeySource::new(None, file.clone());

        let (f, key) = credential_key(&keys, false);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(key.is_none());
        assert!(!tmp.path().join(KEY_FILE_NAME).exists());

        let (f, _) = credential_key(&keys, true);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.hint.unwrap().contains("moat grant"));

        file.get_or_create().unwrap();
        let (f, key) = credential_key(&keys, true);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.detail.contains(KEY_FILE_NAME), "{f:?}");
        assert!(key.is_some());

        let path = tmp.path().join(KEY_FILE_NAME);
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (f, key) = credential_key(&keys, true);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.hint.unwrap().contains("chmod 600"));
        assert!(key.is_none());
    }

    #[test]
    fn stored_credentials_are_the_enc_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!has_stored_credentials(&tmp.path().join("missing")));
        fs_err::write(tmp.path().join(".github.enc.tmp"), "").unwrap();
        assert!(!has_stored_credentials(tmp.path()));
        fs_err::write(tmp.path().join("github.enc"), "").unwrap();
        assert!(has_stored_credentials(tmp.path()));
    }

    #[test]
    fn the_proxy_ca_is_checked_without_being_made() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("proxy-ca");
        let f = proxy_ca(&dir, Timestamp::now());
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.detail.contains("created on first run"), "{f:?}");
        assert!(!dir.exists());

        moat_proxy::CertificateAuthority::load_or_create(&dir).unwrap();
        let f = proxy_ca(&dir, Timestamp::now());
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.detail.contains("key private"), "{f:?}");

        let later = Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365 * 11);
        let f = proxy_ca(&dir, later);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.detail.contains("expired"), "{f:?}");

        let key = dir.join(moat_proxy::CA_KEY_FILE);
        fs_err::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let f = proxy_ca(&dir, Timestamp::now());
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.hint.as_deref().unwrap().contains("chmod 600"), "{f:?}");
    }

    #[test]
    fn settings_are_parsed() {
        let tmp = tempfile::tempdir().unwrap();
        let f = extra_ca_certs(&tmp.path().join("none.pem"));
        assert_eq!(f.status, Status::Fail, "{f:?}");
        let garbage = tmp.path().join("garbage.pem");
        fs_err::write(&garbage, "hello\n").unwrap();
        assert_eq!(extra_ca_certs(&garbage).status, Status::Fail);
        let ca = moat_proxy::CertificateAuthority::ephemeral().unwrap();
        let good = tmp.path().join("good.pem");
        fs_err::write(&good, ca.cert_pem()).unwrap();
        let f = extra_ca_certs(&good);
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(f.detail.ends_with("1 certificate"), "{f:?}");

        assert_eq!(
            connect_to("api.github.com:443:127.0.0.1:8443").status,
            Status::Ok
        );
        assert_eq!(connect_to("nonsense").status, Status::Fail);

        let (f, config) = global_config(&tmp.path().join("config.yaml"));
        assert_eq!(f.status, Status::Ok, "{f:?}");
        assert!(config.is_none());
        fs_err::write(tmp.path().join("config.yaml"), "keyring: nowhere\n").unwrap();
        let (f, _) = global_config(&tmp.path().join("config.yaml"));
        assert_eq!(f.status, Status::Fail, "{f:?}");
    }

    #[test]
    fn the_report_marks_indents_hints_and_sums_up() {
        let findings = vec![
            Finding::ok("docker", "up"),
            Finding::warn("base image", "missing"),
            Finding::fail("anthropic", "no Anthropic credential").hint("run it"),
            Finding::skip("image build", "skipped"),
        ];
        let text = render(&findings);
        assert_eq!(
            text,
            "✓ docker      up\n\
             ! base image  missing\n\
             ✗ anthropic   no Anthropic credential\n\
            \x20             hint: run it\n\
             - image build skipped\n\
             \n\
             1 problem to fix, 1 warning.\n"
        );
        assert_eq!(exit_code(&findings), 1);
        assert_eq!(exit_code(&findings[..2]), 0);
        assert_eq!(
            summary(&findings[..1]),
            "Everything moat needs is in place."
        );
        let json = serde_json::to_value(&findings).unwrap();
        assert_eq!(json[2]["status"], "fail");
        assert_eq!(json[0]["hint"], serde_json::Value::Null);
    }

    fn ssh_grant() -> moat_credentials::SshGrant {
        moat_credentials::SshGrant {
            host: "github.com".into(),
            port: 22,
            key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
                .into(),
            fingerprint: "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU".into(),
            comment: "me@laptop".into(),
            host_keys: vec![],
            host_keys_from: "built-in".into(),
            granted_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn the_ssh_agent_check_answers_the_guides_troubleshooting() {
        let grants = [ssh_grant()];
        let none = ssh_agent(&grants, None, Ok(vec![]));
        assert_eq!(none[0].status, Status::Fail);
        assert!(none[0].detail.contains("SSH_AUTH_SOCK not set"));
        assert!(none[0].hint.as_deref().unwrap().contains("ssh-agent -s"));
        let socket = Path::new("/tmp/agent.sock");
        let down = ssh_agent(&grants, Some(socket), Err("cannot reach it".into()));
        assert_eq!(down[0].status, Status::Fail);
        let missing = ssh_agent(&grants, Some(socket), Ok(vec![]));
        assert_eq!(missing[0].status, Status::Ok);
        assert_eq!(missing[1].status, Status::Fail);
        assert!(missing[1].hint.as_deref().unwrap().contains("ssh-add"));
        let key = moat_ssh::PublicKey::from_openssh(&grants[0].key).unwrap().0;
        let held = vec![moat_ssh::Identity {
            key: key.blob().to_vec(),
            comment: "me@laptop".into(),
        }];
        let fine = ssh_agent(&grants, Some(socket), Ok(held));
        assert!(fine.iter().all(|f| f.status == Status::Ok), "{fine:?}");
        assert_eq!(fine[1].check, "ssh:github.com");
    }
}
