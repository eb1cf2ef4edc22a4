//! Host keys: the ones a `known_hosts` file holds for a host (plain and hashed
//! `|1|salt|hash` entries, patterns with `*`, `?` and `!`, `[host]:port` for other
//! ports, `@revoked` honoured), and the keys GitHub, GitLab and Bitbucket publish, for a
//! user whose `known_hosts` does not know them yet.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};

use crate::key::PublicKey;

/// The host keys GitHub, GitLab and Bitbucket publish (docs.github.com "GitHub's SSH key
/// fingerprints", docs.gitlab.com "SSH host keys fingerprints", bitbucket.org's
/// "/site/ssh"). Each line's fingerprint is the published one; a unit test checks them.
pub const BUILTIN_HOST_KEYS: &[(&str, &[&str])] = &[
    (
        "github.com",
        &[
            // SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            // SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
            // SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
        ],
    ),
    (
        "gitlab.com",
        &[
            // SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
            // SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFSMqzJeV9rUzU4kWitGjeR4PWSa29SPqJ1fVkhtj3Hw9xjLVXVYrU9QlYWrOLXBpQ6KWjbjTDTdDkoohFzgbEY=",
            // SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCsj2bNKTBSpIYDEGk9KxsGh3mySTRgMtXL583qmBpzeQ+jqCMRgBqB98u3z++J1sKlXHWfM9dyhSevkMwSbhoR8XIq/U0tCNyokEi/ueaBMCvbcTHhO7FcwzY92WK4Yt0aGROY5qX2UKSeOvuP4D6TPqKF1onrSzH9bx9XUf2lEdWT/ia1NEKjunUqu1xOB/StKDHMoX4/OKyIzuS0q/T1zOATthvasJFoPrAjkohTyaDUz2LN5JoH839hViyEG82yB+MjcFV5MU3N1l1QL3cVUCh93xSaua1N85qivl+siMkPGbO5xR/En4iEY6K2XPASUEMaieWVNTRCtJ4S8H+9",
        ],
    ),
    (
        "bitbucket.org",
        &[
            // SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO",
            // SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0
            "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=",
            // SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=",
        ],
    ),
];

/// The published host keys of `host` on port 22, if moat knows them.
pub fn builtin_host_keys(host: &str) -> Vec<PublicKey> {
    BUILTIN_HOST_KEYS
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(host))
        .flat_map(|(_, keys)| keys.iter())
        .map(|line| {
            PublicKey::from_openssh(line)
                .expect("the built-in host keys parse")
                .0
        })
        .collect()
}

/// The name `known_hosts` uses for `host` on `port`: the host alone on 22, else
/// `[host]:port`.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_ascii_lowercase()
    } else {
        format!("[{}]:{port}", host.to_ascii_lowercase())
    }
}

/// The keys `known_hosts` text holds for `host:port`, in file order, without duplicates.
/// Lines that do not parse are skipped, as ssh skips them; `@cert-authority` lines are
/// skipped (moat pins keys, not CAs); a key marked `@revoked` anywhere is never returned.
pub fn host_keys(known_hosts: &str, host: &str, port: u16) -> Vec<PublicKey> {
    let name = known_hosts_name(host, port);
    let mut found: Vec<PublicKey> = Vec::new();
    let mut revoked: Vec<PublicKey> = Vec::new();
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first);
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let rest: Vec<&str> = fields.collect();
        if rest.len() < 2 {
            continue;
        }
        let Ok((key, _)) = PublicKey::from_openssh(&rest.join(" ")) else {
            continue;
        };
        if marker == Some("@revoked") {
            revoked.push(key);
            continue;
        }
        if marker.is_some() || !patterns_match(first, &name) {
            continue;
        }
        if !found.contains(&key) {
            found.push(key);
        }
    }
    found.retain(|k| !revoked.contains(k));
    found
}

/// Whether a `known_hosts` host field (`a,b,!c`, or one hashed `|1|salt|hash`) names
/// `name`. A negated pattern that matches wins over every other.
fn patterns_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else if wildcard(&pattern.to_ascii_lowercase(), name) {
            matched = true;
        }
    }
    matched
}

/// `salt|hash`, both base64: HMAC-SHA1 keyed with the salt over the name.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// ssh's `match_pattern`: `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// One `known_hosts` line per key for `host:port`, for a file ssh in the container reads.
pub fn known_hosts_lines(host: &str, port: u16, keys: &[PublicKey]) -> String {
    let name = known_hosts_name(host, port);
    keys.iter()
        .map(|k| format!("{name} {}\n", k.to_openssh()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const GL: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf";

    fn fingerprints(keys: &[PublicKey]) -> Vec<String> {
        keys.iter().map(PublicKey::fingerprint).collect()
    }

    #[test]
    fn the_builtin_keys_are_the_published_ones() {
        let published = [
            (
                "github.com",
                "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
            ),
            (
                "github.com",
                "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
            ),
            (
                "github.com",
                "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
            ),
            (
                "gitlab.com",
                "SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8",
            ),
            (
                "gitlab.com",
                "SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw",
            ),
            (
                "gitlab.com",
                "SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ",
            ),
            (
                "bitbucket.org",
                "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
            ),
            (
                "bitbucket.org",
                "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
            ),
            (
                "bitbucket.org",
                "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
            ),
        ];
        for host in ["github.com", "gitlab.com", "bitbucket.org"] {
            let expected: Vec<&str> = published
                .iter()
                .filter(|(h, _)| *h == host)
                .map(|(_, f)| *f)
                .collect();
            assert_eq!(fingerprints(&builtin_host_keys(host)), expected, "{host}");
        }
        assert!(builtin_host_keys("example.com").is_empty());
        assert_eq!(builtin_host_keys("GitHub.com").len(), 3);
    }

    #[test]
    fn plain_patterns_ports_negation_and_markers() {
        let text = format!(
            "# comment\n\
             github.com,140.82.121.3 {ED}\n\
             *.example.com,!bad.example.com {GL}\n\
             [git.corp.test]:2222 {ED}\n\
             @cert-authority *.corp.test {GL}\n\
             broken line\n\
             other.test {GL} trailing comment\n"
        );
        assert_eq!(host_keys(&text, "github.com", 22).len(), 1);
        assert_eq!(host_keys(&text, "GitHub.com", 22).len(), 1);
        assert!(host_keys(&text, "github.com", 2222).is_empty());
        assert_eq!(host_keys(&text, "a.example.com", 22).len(), 1);
        assert!(host_keys(&text, "bad.example.com", 22).is_empty());
        assert_eq!(host_keys(&text, "git.corp.test", 2222).len(), 1);
        assert!(
            host_keys(&text, "git.corp.test", 22).is_empty(),
            "CA lines pin nothing"
        );
        assert_eq!(host_keys(&text, "other.test", 22).len(), 1);
        let revoked = format!("{text}@revoked * {ED}\n");
        assert!(host_keys(&revoked, "github.com", 22).is_empty());
    }

    #[test]
    fn hashed_entries_match_their_host_only() {
        // `ssh-keygen -H` of `github.com`: salt and HMAC-SHA1(salt, "github.com").
        let salt = [7u8; 20];
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"github.com");
        let hash = mac.finalize().into_bytes();
        let line = format!(
            "|1|{}|{} {ED}\n",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        );
        assert_eq!(host_keys(&line, "github.com", 22).len(), 1);
        assert!(host_keys(&line, "gitlab.com", 22).is_empty());
        assert!(host_keys("|1|!!|!! ssh-ed25519 AAAA\n", "github.com", 22).is_empty());
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "anything"));
        assert!(wildcard("g?thub.com", "github.com"));
        assert!(wildcard("*.com", "github.com"));
        assert!(!wildcard("*.com", "github.org"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxbyy"));
    }

    #[test]
    fn lines_for_the_container() {
        let keys = builtin_host_keys("github.com");
        let text = known_hosts_lines("github.com", 22, &keys[..1]);
        assert_eq!(text, format!("github.com {ED}\n"));
        assert!(known_hosts_lines("h.test", 2222, &keys[..1]).starts_with("[h.test]:2222 "));
        assert_eq!(host_keys(&text, "github.com", 22), keys[..1]);
    }

    proptest! {
        #[test]
        fn any_text_is_read_without_panicking(text in "\\PC{0,300}") {
            let _ = host_keys(&text, "github.com", 22);
        }
    }
}
