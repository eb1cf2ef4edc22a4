//! `moat doctor [--build] [--json]`: check what runs need (Docker, the base image, the moat
//! home, the credential store's key, the Anthropic credential and the others, the proxy
//! CA, the settings from the environment and `config.yaml`, the way out of an image build
//! to its download locations, optionally an image build),
//! print one line per check with a hint for each problem, and exit 1 if any failed.
//!
//! The checks that need no Docker live in `checks.rs`, where they are unit-tested.

mod checks;
mod network;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use jiff::Timestamp;
use moat_container::{Docker, Runtime as _};
use moat_credentials::{ChainKeySource, CredentialStore, ListedCredential, ProviderName};
use moat_run::{PrepareEvent, RunError};

use self::checks::{Finding, Status};
use crate::cli::DoctorArgs;
use crate::settings::Context;
use crate::ui::{BuildProgress, out, outln};

pub async fn doctor(ctx: &Context, args: DoctorArgs) -> Result<i32> {
    let now = Timestamp::now();
    let mut findings = Vec::new();

    let docker = match ctx.docker().await {
        Ok(docker) => {
            findings.push(docker_finding(&docker).await);
            Some(docker)
        }
        Err(e) => {
            findings.push(Finding::from_error("docker", &e).hint(
                crate::ui::error_hint(&e).unwrap_or_else(|| {
                    "start Docker, or point DOCKER_HOST at a running daemon".into()
                }),
            ));
            None
        }
    };
    let (config_finding, global) = checks::global_config(&ctx.home().config_file());
    // The machine settings with a run's precedence; values that do not resolve are
    // reported by their own checks below, and the defaults stand in for them here.
    let host = moat_config::resolve_host(global.as_ref(), &ctx.env.overrides())
        .or_else(|_| moat_config::resolve_host(None, &moat_config::CliOverrides::default()))?;
    findings.push(base_image(ctx, &host.base_image, docker.as_ref()).await);
    findings.push(checks::home_writable(ctx.home().root()));

    credentials(ctx, global.as_ref(), now, &mut findings);
    ssh(ctx, &mut findings).await;
    findings.push(checks::proxy_ca(&ctx.home().proxy_ca_dir(), now));

    let extra_ca = ctx.env.extra_ca_certs.as_ref().map(PathBuf::from);
    if let Some(path) = &extra_ca {
        findings.push(checks::extra_ca_certs(path));
    }
    if let Some(text) = &ctx.env.connect_to {
        findings.push(checks::connect_to(text));
    }
    findings.push(config_finding);
    // What a first build downloads from, and whether HTTPS to it arrives re-signed.
    let extra_ca = host.extra_ca_certs.as_deref().or(extra_ca.as_deref());
    findings.extend(network::check_all(network::destinations(&host.mirrors), extra_ca).await);

    const BUILD: &str = "image build";
    findings.push(match (&docker, args.build) {
        (_, false) => Finding::skip(
            BUILD,
            "skipped; `moat doctor --build` builds the minimal image",
        ),
        (None, true) => Finding::skip(BUILD, "skipped: Docker is not reachable"),
        (Some(docker), true) => build(ctx, docker, &host).await?,
    });

    if args.json {
        outln!("{}", crate::ui::json(&findings)?)?;
    } else {
        out!("{}", checks::render(&findings))?;
    }
    Ok(checks::exit_code(&findings))
}

/// The user's SSH agent and each `ssh:` grant's key in it, when there are SSH grants.
async fn ssh(ctx: &Context, findings: &mut Vec<Finding>) {
    let grants = match moat_credentials::SshGrantStore::in_home(ctx.home()).list() {
        Ok(grants) => grants,
        Err(e) => {
            findings.push(Finding::fail("ssh grants", e.to_string()).maybe_hint(e.hint()));
            return;
        }
    };
    if grants.is_empty() {
        return;
    }
    let socket = ctx.env.ssh_auth_sock.as_deref();
    let held = match socket {
        Some(socket) => moat_ssh::list_identities(socket)
            .await
            .map_err(|e| e.to_string()),
        None => Ok(Vec::new()),
    };
    findings.extend(checks::ssh_agent(&grants, socket, held));
}

/// The daemon answered: where it is and its version.
async fn docker_finding(docker: &Docker) -> Finding {
    let endpoint = docker.endpoint();
    let version = match docker.server_version().await {
        Ok(v) if !v.is_empty() => format!(", Docker {v}"),
        _ => String::new(),
    };
    Finding::ok(
        "docker",
        format!("{} ({}){version}", endpoint.host, endpoint.source),
    )
}

/// The base image every moat image starts `FROM`; nothing can be pulled without it.
async fn base_image(ctx: &Context, image: &str, docker: Option<&Docker>) -> Finding {
    const CHECK: &str = "base image";
    let from = if ctx.env.base_image.is_some() {
        " (MOAT_BASE_IMAGE)"
    } else {
        ""
    };
    let Some(docker) = docker else {
        return Finding::skip(
            CHECK,
            format!("`{image}`{from}: not checked, Docker is not reachable"),
        );
    };
    match docker.image_exists(image).await {
        Ok(true) => Finding::ok(CHECK, format!("`{image}`{from} is present")),
        Ok(false) => Finding::warn(
            CHECK,
            format!("`{image}`{from} is not present; the first build will try to pull it"),
        )
        .hint(format!(
            "pull it now with `docker pull {image}`, or set MOAT_BASE_IMAGE to an image you have"
        )),
        Err(e) => Finding::from_error(CHECK, &e.into()),
    }
}

/// The store's key, the Anthropic credential, and the other credentials granted.
fn credentials(
    ctx: &Context,
    global: Option<&moat_config::GlobalConfig>,
    now: Timestamp,
    findings: &mut Vec<Finding>,
) {
    const ANTHROPIC: &str = "anthropic";
    let env_key_set = ctx.env.anthropic_api_key.is_some();
    let mode = match crate::settings::keyring_mode(&ctx.env, global) {
        Ok(mode) => mode,
        Err(e) => {
            findings.push(Finding::from_error("credential key", &e));
            findings.push(Finding::skip(
                ANTHROPIC,
                "not checked: the credential store cannot be opened",
            ));
            return;
        }
    };
    let dir = ctx.home().credentials_dir();
    let stored = checks::has_stored_credentials(&dir);
    let keys = ChainKeySource::for_home(ctx.home(), mode);
    let (key_finding, key) = checks::credential_key(&keys, stored);
    let key_ok = key_finding.status == Status::Ok;
    findings.push(key_finding);
    let Some(key) = key else {
        findings.push(if stored && !key_ok {
            Finding::skip(
                ANTHROPIC,
                "not checked: the credential store cannot be opened",
            )
        } else {
            checks::anthropic(None, env_key_set, now)
        });
        return;
    };
    let listed = match CredentialStore::new(dir.clone(), key).list() {
        Ok(listed) => listed,
        Err(e) => {
            findings.push(
                Finding::fail(ANTHROPIC, format!("cannot list credentials: {e}"))
                    .maybe_hint(e.hint()),
            );
            return;
        }
    };
    let anthropic = ProviderName::anthropic();
    let mut anthropic_finding = None;
    let mut others = Vec::new();
    for item in &listed {
        match item {
            ListedCredential::Readable(summary) if summary.provider == anthropic => {
                anthropic_finding = Some(checks::anthropic(Some(summary), env_key_set, now));
            }
            ListedCredential::Readable(summary) => {
                others.push(checks::other_credential(summary, now));
            }
            ListedCredential::Unreadable { path, error } => {
                let provider = provider_of(path);
                if provider == anthropic.as_str() {
                    anthropic_finding = Some(checks::unreadable_credential(
                        ANTHROPIC,
                        error,
                        Status::Fail,
                    ));
                } else {
                    others.push(checks::unreadable_credential(
                        format!("{provider} credential"),
                        error,
                        Status::Warn,
                    ));
                }
            }
        }
    }
    findings.push(anthropic_finding.unwrap_or_else(|| checks::anthropic(None, env_key_set, now)));
    findings.extend(others);
}

/// `github` for `…/credentials/github.enc`.
fn provider_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Build (or find cached) the image of an empty workspace here: the base image, the
/// workspace owner's user, the extra CAs and the proxy CA if it exists already.
async fn build(
    ctx: &Context,
    docker: &Docker,
    host: &moat_config::HostSettings,
) -> Result<Finding> {
    const CHECK: &str = "image build";
    let (uid, gid) = ctx
        .env
        .cwd
        .as_deref()
        .and_then(|cwd| fs_err::metadata(cwd).ok())
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((moat_image::FALLBACK_ID, moat_image::FALLBACK_ID));
    let mut spec = moat_image::ImageSpec::new(host.base_image.clone(), uid, gid);
    if let Some(path) = &host.extra_ca_certs {
        // A bad file is reported by its own check; build without it.
        let ca = moat_home::read_bounded(path, moat_home::FileKind::CA_CERTIFICATES)
            .ok()
            .and_then(|pem| moat_image::ExtraCa::from_pem(&pem).ok());
        spec = spec.with_extra_ca(ca);
    }
    let ca_cert = ctx.home().proxy_ca_dir().join(moat_proxy::CA_CERT_FILE);
    if let Ok(pem) = fs_err::read_to_string(&ca_cert) {
        spec = spec.with_proxy_ca(pem);
    }
    let plan = moat_image::plan(&spec);
    let mut progress = BuildProgress::new();
    let mut cached = false;
    let started = std::time::Instant::now();
    let mut on_event = |event: PrepareEvent| {
        if matches!(event, PrepareEvent::ImageCached { .. }) {
            cached = true;
        }
        progress.handle(event);
    };
    let result = tokio::select! {
        result = moat_run::ensure_image(
            docker,
            &plan,
            false,
            ctx.env.build_network.as_deref(),
            Some(ctx.home().root()),
            &mut on_event,
        ) => result,
        _ = tokio::signal::ctrl_c() => return Err(RunError::Cancelled.into()),
    };
    Ok(match result {
        Ok(()) if cached => Finding::ok(CHECK, format!("`{}` is built already", plan.tag)),
        Ok(()) => Finding::ok(
            CHECK,
            format!(
                "built `{}` in {:.0}s",
                plan.tag,
                started.elapsed().as_secs_f64()
            ),
        ),
        Err(e) => Finding::from_error(CHECK, &e.into()),
    })
}
