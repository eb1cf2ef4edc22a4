//! Extra CA certificates (the `MOAT_EXTRA_CA_CERTS` file) to install into every image, for
//! networks that re-sign HTTPS. A bundle is split into one file per certificate because
//! `update-ca-certificates` links each `.crt` file by the hash of its first certificate only.

/// Where the certificates go in the image; `update-ca-certificates` reads this directory.
pub const CA_DIR: &str = "/usr/local/share/ca-certificates";
/// The bundle the image's system trust ends up in (and the build's tools are pointed at).
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The variables of tools that keep their own roots (or replace the default bundle):
/// pointed at [`SYSTEM_BUNDLE`] while an image builds, and in every run's container.
pub const CA_BUNDLE_VARIABLES: &[&str] = &[
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "CARGO_HTTP_CAINFO",
    "GIT_SSL_CAINFO",
];

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// The certificates of a PEM file, each normalized to `BEGIN`, base64 lines, `END`, `\n`
/// line endings. Certificates are public, so `Debug` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCa {
    certificates: Vec<String>,
}

impl ExtraCa {
    /// Read a PEM file's content: every `CERTIFICATE` block, in order, duplicates dropped.
    /// Text around the blocks (comments, `Bag Attributes`) is ignored.
    pub fn from_pem(pem: &[u8]) -> Result<Self, CaError> {
        let text = std::str::from_utf8(pem).map_err(|_| CaError::NotText)?;
        let mut certificates: Vec<String> = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in text.lines().map(str::trim) {
            match (&mut current, line) {
                (None, BEGIN) => current = Some(Vec::new()),
                (None, _) => {}
                (Some(_), BEGIN) => {
                    return Err(CaError::Unterminated {
                        index: certificates.len() + 1,
                    });
                }
                (Some(body), END) => {
                    let index = certificates.len() + 1;
                    if body.is_empty() {
                        return Err(CaError::BadBody { index });
                    }
                    let mut pem = format!("{BEGIN}\n");
                    for line in body.iter() {
                        pem.push_str(line);
                        pem.push('\n');
                    }
                    pem.push_str(END);
                    pem.push('\n');
                    if !certificates.contains(&pem) {
                        certificates.push(pem);
                    }
                    current = None;
                }
                (Some(body), line) => {
                    let base64 = line
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                    if !base64 {
                        return Err(CaError::BadBody {
                            index: certificates.len() + 1,
                        });
                    }
                    if !line.is_empty() {
                        body.push(line);
                    }
                }
            }
        }
        if current.is_some() {
            return Err(CaError::Unterminated {
                index: certificates.len() + 1,
            });
        }
        if certificates.is_empty() {
            return Err(CaError::NoCertificate);
        }
        Ok(ExtraCa { certificates })
    }

    /// The certificates, each a PEM block ending in a newline.
    pub fn certificates(&self) -> &[String] {
        &self.certificates
    }

    /// File names (under [`CA_DIR`]) and contents: `moat-extra.crt` for one certificate,
    /// `moat-extra-1.crt`, `moat-extra-2.crt`, ... for a bundle.
    pub fn files(&self) -> Vec<(String, &str)> {
        match self.certificates.as_slice() {
            [single] => vec![("moat-extra.crt".to_owned(), single.as_str())],
            many => many
                .iter()
                .enumerate()
                .map(|(i, pem)| (format!("moat-extra-{}.crt", i + 1), pem.as_str()))
                .collect(),
        }
    }
}

/// An extra CA file moat cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    #[error("the extra CA file is not text")]
    NotText,
    #[error("the extra CA file holds no certificate")]
    NoCertificate,
    #[error("certificate {index} of the extra CA file has no end line")]
    Unterminated { index: usize },
    #[error("certificate {index} of the extra CA file is not valid PEM")]
    BadBody { index: usize },
}

impl CaError {
    pub fn hint(&self) -> Option<String> {
        Some(
            "`MOAT_EXTRA_CA_CERTS` must name a PEM file of `-----BEGIN CERTIFICATE-----` \
             blocks, such as the `.crt` files in `/usr/local/share/ca-certificates/`"
                .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "-----BEGIN CERTIFICATE-----\nQUJD\nREVG\n-----END CERTIFICATE-----\n";
    const TWO: &str = "-----BEGIN CERTIFICATE-----\nR0hJ\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_single_certificate_is_one_file() {
        let ca = ExtraCa::from_pem(ONE.as_bytes()).unwrap();
        assert_eq!(ca.files(), [("moat-extra.crt".to_owned(), ONE)]);
    }

    #[test]
    fn a_bundle_is_split_normalized_and_deduplicated() {
        let bundle = format!(
            "# corporate roots\r\n{}\r\nsubject=CN=two\r\n  {}{}",
            ONE.replace('\n', "\r\n"),
            TWO,
            ONE
        );
        let ca = ExtraCa::from_pem(bundle.as_bytes()).unwrap();
        assert_eq!(
            ca.files(),
            [
                ("moat-extra-1.crt".to_owned(), ONE),
                ("moat-extra-2.crt".to_owned(), TWO)
            ]
        );
    }

    #[test]
    fn the_host_s_certificates_parse() {
        // This machine's re-signing CAs, when present; the test proves nothing elsewhere.
        let Ok(dir) = fs_err::read_dir(CA_DIR) else {
            return;
        };
        for entry in dir.flatten() {
            let pem = fs_err::read(entry.path()).unwrap();
            let ca = ExtraCa::from_pem(&pem).unwrap();
            assert!(!ca.certificates().is_empty());
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "the extra CA file holds no certificate"),
            (b"\xff\xfe", "the extra CA file is not text"),
            (
                b"-----BEGIN CERTIFICATE-----\nQUJD\n",
                "certificate 1 of the extra CA file has no end line",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
                "certificate 1 of the extra CA file is not valid PEM",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
                "certificate 1 of the extra CA file is not valid PEM",
            ),
        ];
        for (pem, message) in cases {
            let err = ExtraCa::from_pem(pem).unwrap_err();
            assert_eq!(err.to_string(), *message);
            assert!(err.hint().unwrap().contains("MOAT_EXTRA_CA_CERTS"));
        }
    }
}
