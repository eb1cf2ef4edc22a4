//! The grant tests' view of the shared fake HTTPS service
//! (`moat_test_support::FakeUpstream`): handlers answer with a status and a JSON body, and
//! each recorded request carries the host it named.

use std::collections::BTreeMap;
use std::path::PathBuf;

use moat_test_support::Reply;

/// One request as the fake saw it. Header names are lowercase.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub host: String,
    pub headers: BTreeMap<String, String>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn from(request: &moat_test_support::SeenRequest) -> Self {
        let host = request.header("host").unwrap_or_default();
        Seen {
            method: request.method.clone(),
            path: request.path.clone(),
            host: host.split(':').next().unwrap_or_default().to_owned(),
            headers: request.headers.clone(),
        }
    }
}

pub struct FakeUpstream {
    inner: moat_test_support::FakeUpstream,
    hosts: Vec<String>,
}

impl FakeUpstream {
    /// Serve `hosts` (the certificate names them) with `handler`, which returns the
    /// status and a JSON body.
    pub fn start(
        hosts: &[&str],
        handler: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> Self {
        let inner = moat_test_support::FakeUpstream::start(hosts, move |request| {
            let (status, body) = handler(&Seen::from(request));
            Reply::json(status, body)
        });
        FakeUpstream {
            inner,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    /// `MOAT_CONNECT_TO`: every host of the fake, port 443, to this server.
    pub fn connect_to(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("{h}:443:127.0.0.1:{}", self.inner.port()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `MOAT_EXTRA_CA_CERTS`: the test CA that signed the fake's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.inner.ca_file().to_owned()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.requests().iter().map(Seen::from).collect()
    }

    /// Environment for a `moat` command that should reach this fake.
    pub fn apply(&self, command: &mut std::process::Command) {
        command
            .env("MOAT_CONNECT_TO", self.connect_to())
            .env("MOAT_EXTRA_CA_CERTS", self.ca_file());
    }
}
