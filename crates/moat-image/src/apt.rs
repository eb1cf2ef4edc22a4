//! Debian's archives in the base image's apt sources, pointed at the configured mirrors
//! before the first `apt-get update`.
//!
//! The sources are rewritten in place rather than replaced, so the suites and components
//! the base image chose (`bookworm-updates`, `contrib`, a `Signed-By`) stay as they are.
//! Only whole URIs are replaced: `http://deb.debian.org/debian` (main archive) and the
//! security archive (`http://deb.debian.org/debian-security`, `http://security.debian.org`
//! with or without `/debian-security`), each with `http` or `https` and an optional
//! trailing `/`. Both formats are covered: one-line `deb URI SUITE...` lists
//! (`/etc/apt/sources.list`, `sources.list.d/*.list`; what a debootstrapped base has) and
//! deb822 `URIs: URI` stanzas (`sources.list.d/*.sources`; Debian's bookworm images).
//! A third-party repository keeps its own URI.

use crate::dockerfile::quote;
use crate::mirrors::{Mirror, Mirrors};

/// Every file apt reads sources from; globs that match nothing are skipped.
const SOURCE_FILES: &str =
    "/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources";

/// Extended regular expressions (`sed -E`) for a whole URI: preceded by the start of the
/// line or a blank, followed by a blank or the end. Group 1 is the blank before it, the
/// last group the one after.
const MAIN_ARCHIVE: &str = r"(^|[[:space:]])https?://deb\.debian\.org/debian/?([[:space:]]|$)";
const SECURITY_ARCHIVE: &str = r"(^|[[:space:]])https?://(deb\.debian\.org/debian-security|security\.debian\.org(/debian-security)?)/?([[:space:]]|$)";

/// The shell commands that point the apt sources at the configured Debian mirrors, to run
/// before `apt-get update`; none when both are Debian's own.
pub(crate) fn point_sources_at_mirrors(mirrors: &Mirrors) -> Vec<String> {
    let main = !mirrors.is_default(Mirror::Debian);
    let security = !mirrors.is_default(Mirror::DebianSecurity);
    let mut expressions = Vec::new();
    if main {
        let to = sed_replacement(&mirrors.url(Mirror::Debian));
        expressions.push(format!("s#{MAIN_ARCHIVE}#\\1{to}\\2#g"));
    }
    if security {
        let to = sed_replacement(&mirrors.url(Mirror::DebianSecurity));
        expressions.push(format!("s#{SECURITY_ARCHIVE}#\\1{to}\\4#g"));
    }
    if expressions.is_empty() {
        return Vec::new();
    }
    let sed = expressions
        .iter()
        .map(|e| format!("-e {}", quote(e)))
        .collect::<Vec<_>>()
        .join(" ");
    let mut commands = vec![format!(
        r#"for f in {SOURCE_FILES}; do if [ -f "$f" ]; then sed -E -i {sed} "$f"; fi; done"#
    )];
    // Every Debian base names the main archive, so a mirror that no source names now means
    // the base is not using Debian's archive (Ubuntu, a source already elsewhere): saying so
    // beats a build that quietly ignores `mirrors.debian`. The security archive is not
    // checked: a debootstrapped base has no security source at all.
    if main {
        let url = mirrors.url(Mirror::Debian);
        let why = format!(
            "moat: mirrors.debian is {url}, but no apt source of the base image names it: \
             it replaces {}, which the base image does not use",
            crate::DEFAULT_DEBIAN_MIRROR
        );
        commands.push(format!(
            "grep -rqsF -e {} /etc/apt/sources.list /etc/apt/sources.list.d || {{ echo {} >&2; exit 1; }}",
            quote(&url),
            quote(&why)
        ));
    }
    commands
}

/// `text` as the replacement of a `sed` `s#...#...#` command: `\`, `&` and the delimiter
/// `#` stand for themselves. (URLs from the configuration hold no whitespace; a newline
/// would end the command and make sed fail, never reach the shell.)
fn sed_replacement(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '&' | '#') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_mirrors_rewrite_nothing() {
        assert!(point_sources_at_mirrors(&Mirrors::default()).is_empty());
        let slash = Mirrors {
            debian: "http://deb.debian.org/debian/".into(),
            ..Mirrors::default()
        };
        assert!(point_sources_at_mirrors(&slash).is_empty());
    }

    #[test]
    fn the_replacement_is_literal() {
        assert_eq!(sed_replacement(r"http://x/a&b#c\d"), r"http://x/a\&b\#c\\d");
    }

    #[test]
    fn the_security_archive_alone() {
        let mirrors = Mirrors {
            debian_security: "http://mirror.example/debian-security".into(),
            ..Mirrors::default()
        };
        let commands = point_sources_at_mirrors(&mirrors);
        assert_eq!(
            commands.len(),
            1,
            "no check without a main mirror: {commands:?}"
        );
        assert!(
            commands[0].contains(r"#\1http://mirror.example/debian-security\4#g"),
            "{}",
            commands[0]
        );
        assert!(!commands[0].contains("deb\\.debian\\.org/debian/?"));
    }
}
