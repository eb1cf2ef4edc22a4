//! Why an image build failed, from the last lines its failing step printed, for the
//! causes a first build meets on a new network: a download location that does not
//! resolve or answer (curl, apt, npm), and HTTPS re-signed by a CA the image lacks.
//! Each names the setting that fixes it.

use crate::mirrors::Mirror;

/// What the failing step's output says went wrong, when it is one of the known causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildCause {
    /// A host the build downloads from did not resolve or answer; `setting` is the
    /// `config.yaml` mirror whose default lives there, if one does.
    Unreachable {
        host: String,
        setting: Option<&'static str>,
    },
    /// A TLS client refused a certificate signed by an unknown CA.
    ReSigned,
}

impl BuildCause {
    /// What to do about it (the build error's hint).
    pub fn advice(&self) -> String {
        match self {
            BuildCause::Unreachable {
                host,
                setting: Some(setting),
            } => format!(
                "image builds cannot reach {host}: set `{setting}` in config.yaml to a mirror they can (see docs/network.md; `moat doctor` checks each download location)"
            ),
            BuildCause::Unreachable {
                host,
                setting: None,
            } => format!(
                "image builds cannot reach {host}: use a mirror for it (the `mirrors` settings in config.yaml, docs/network.md), or a network that reaches it"
            ),
            BuildCause::ReSigned => "HTTPS in the build was signed by a CA the image does not trust (a proxy that re-signs): set MOAT_EXTRA_CA_CERTS to that CA's PEM file, then run again (`moat doctor` names the CAs this machine added)".into(),
        }
    }
}

/// The cause the output shows, the last one named winning (the line nearest the failure).
pub fn diagnose_build(output: &[String]) -> Option<BuildCause> {
    output.iter().rev().find_map(|line| diagnose_line(line))
}

const RESIGNED: &[&str] = &[
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "self-signed certificate in certificate chain",
    "self signed certificate in certificate chain",
    "unable to get local issuer certificate",
    "certificate verify failed",
    "curl: (60)",
];

/// `(marker, where the host starts after it)`: curl, apt and npm's words for a host that
/// does not resolve or answer.
const UNREACHABLE: &[&str] = &[
    "Could not resolve host: ",
    "Failed to connect to ",
    "Temporary failure resolving '",
    "Could not resolve '",
    "Could not connect to ",
    "getaddrinfo ENOTFOUND ",
    "getaddrinfo EAI_AGAIN ",
    "connect ECONNREFUSED ",
    "connect ETIMEDOUT ",
];

fn diagnose_line(line: &str) -> Option<BuildCause> {
    if RESIGNED.iter().any(|m| line.contains(m)) {
        return Some(BuildCause::ReSigned);
    }
    UNREACHABLE.iter().find_map(|marker| {
        let at = line.find(marker)? + marker.len();
        let host: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            .collect();
        // `host:port` (npm's ECONNREFUSED) and apt's `host:80 (1.2.3.4)`.
        let host = host.split(':').next().unwrap_or_default().to_owned();
        (!host.is_empty()).then(|| BuildCause::Unreachable {
            setting: setting_for(&host),
            host,
        })
    })
}

/// The mirror setting whose upstream default is on `host`.
fn setting_for(host: &str) -> Option<&'static str> {
    Mirror::ALL
        .iter()
        .find(|m| host_of(m.default_url()) == Some(host))
        .map(|m| m.setting())
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    rest.split(['/', ':']).next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(lines: &[&str]) -> Option<BuildCause> {
        diagnose_build(&lines.iter().map(|l| (*l).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn an_unreachable_download_names_its_mirror_setting() {
        assert_eq!(
            cause(&[
                "+ curl -fsSL https://nodejs.org/dist/latest-v22.x/SHASUMS256.txt",
                "curl: (6) Could not resolve host: nodejs.org"
            ]),
            Some(BuildCause::Unreachable {
                host: "nodejs.org".into(),
                setting: Some("mirrors.node")
            })
        );
        assert_eq!(
            cause(&[
                "W: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'"
            ]),
            Some(BuildCause::Unreachable {
                host: "deb.debian.org".into(),
                setting: Some("mirrors.debian")
            })
        );
        assert_eq!(
            cause(&[
                "npm error request to https://registry.npmjs.org/x failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org"
            ]),
            Some(BuildCause::Unreachable {
                host: "registry.npmjs.org".into(),
                setting: Some("mirrors.npm")
            })
        );
        assert_eq!(
            cause(&["curl: (7) Failed to connect to mirror.corp.example port 443"]),
            Some(BuildCause::Unreachable {
                host: "mirror.corp.example".into(),
                setting: None
            })
        );
    }

    #[test]
    fn a_re_signed_certificate_names_the_extra_ca_setting() {
        let re_signed = cause(&[
            "npm error code SELF_SIGNED_CERT_IN_CHAIN",
            "npm error errno SELF_SIGNED_CERT_IN_CHAIN",
        ]);
        assert_eq!(re_signed, Some(BuildCause::ReSigned));
        assert!(re_signed.unwrap().advice().contains("MOAT_EXTRA_CA_CERTS"));
        assert_eq!(cause(&["E: Unable to locate package nosuch"]), None);
    }
}
