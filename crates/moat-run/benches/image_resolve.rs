//! How long resolving a cached image takes: the image plan of a representative spec
//! (rendering the Dockerfile, the context tar and its hash) plus the Docker cache lookup,
//! repeated, with a count of builds that must stay zero.
//!
//! Run: `cargo bench -p moat-run --bench image_resolve`. Needs a Docker daemon. So that no
//! real build is needed, the spec's tag is pointed at the local `debian:bookworm-slim` for
//! the duration (and removed after): what is measured is the resolution, not the image.

#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)] // a program run by hand: its output is the point, its settings come from its environment

use std::time::Instant;

use moat_container::{Docker, Runtime as _, resolve_endpoint};
use moat_image::{ImageSpec, ResolvedDependencies};
use moat_run::PrepareEvent;

const ITERATIONS: usize = 200;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let docker = Docker::connect(resolve_endpoint(docker_host.as_deref(), None))
        .await
        .expect("a Docker daemon");
    let deps = ResolvedDependencies::parse_all(&[
        "git",
        "curl",
        "jq",
        "python@3.11",
        "node@22",
        "npm:left-pad@1.3.0",
        "pip:six@1.16.0",
        "claude-code",
    ])
    .expect("valid dependencies");
    let spec = ImageSpec::new("debian:bookworm-slim", 1234, 1234).with_dependencies(deps);
    let tag = moat_image::plan(&spec).tag;
    let made_tag = !docker.image_exists(&tag).await.unwrap();
    if made_tag {
        let status = std::process::Command::new("/usr/bin/docker")
            .args(["tag", "debian:bookworm-slim", &tag])
            .status()
            .expect("running docker tag");
        assert!(status.success(), "tagging the stand-in image failed");
    }

    let mut samples = Vec::with_capacity(ITERATIONS);
    let mut builds = 0usize;
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        let plan = moat_image::plan(&spec);
        let mut on_event = |event: PrepareEvent| {
            if matches!(event, PrepareEvent::BuildStarted { .. }) {
                builds += 1;
            }
        };
        moat_run::ensure_image(&docker, &plan, false, None, None, &mut on_event)
            .await
            .expect("resolving the image");
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    if made_tag {
        docker
            .remove_image(&tag)
            .await
            .expect("removing the stand-in tag");
    }

    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let median = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!("image resolve ({ITERATIONS} runs, 8 dependencies, cached image {tag})");
    println!(
        "  mean {mean:.2} ms, median {median:.2} ms, p99 {p99:.2} ms, max {:.2} ms",
        samples[samples.len() - 1]
    );
    println!("  builds: {builds}");
    assert_eq!(builds, 0, "a cached image must never be rebuilt");
}
