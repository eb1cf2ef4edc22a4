//! Image builds through the classic builder, reported as a stream of [`BuildEvent`]s.
//!
//! The classic builder is what every Docker daemon speaks (BuildKit needs a gRPC session);
//! its `Step N/M` lines give an honest progress count.

use futures_util::{Stream, StreamExt};

use crate::{Docker, MANAGED_LABEL, RuntimeError};

/// One thing that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A Dockerfile step began: `Step 3/7 : RUN apt-get update`.
    Step {
        index: u32,
        total: u32,
        instruction: String,
    },
    /// A line of output from the current step.
    Output(String),
}

/// How an image is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Ignore Docker's layer cache (`--rebuild`).
    pub no_cache: bool,
    /// Network of the build's `RUN` steps (`host` reaches a package mirror on the host's
    /// loopback); `None` is Docker's default bridge.
    pub network_mode: Option<String>,
    /// Labels to put on the image besides [`MANAGED_LABEL`] (e.g. [`crate::HOME_LABEL`]).
    pub labels: Vec<(String, String)>,
}

/// How many output lines a failed build keeps to show the user.
const KEPT_OUTPUT_LINES: usize = 40;

pub(crate) async fn image_exists(docker: &Docker, tag: &str) -> Result<bool, RuntimeError> {
    match docker.api.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(RuntimeError::api(format!("inspecting image `{tag}`"))(e)),
    }
}

/// Remove an image tag; a tag that does not exist is not an error.
pub(crate) async fn remove_image(docker: &Docker, tag: &str) -> Result<(), RuntimeError> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .force(true)
        .build();
    match docker.api.remove_image(tag, Some(options), None).await {
        Ok(_)
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(RuntimeError::api(format!("removing image `{tag}`"))(e)),
    }
}

/// One local image as `moat prune` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// `sha256:…`
    pub id: String,
    /// Its tags, `repo:tag`.
    pub tags: Vec<String>,
    /// Bytes, as `docker images` shows (layers shared with other images count in each).
    pub size: u64,
    pub created: jiff::Timestamp,
}

impl Docker {
    /// The images of repository `repository` (every tag) that carry `label` (`KEY=VALUE`)
    /// when given.
    pub async fn list_images(
        &self,
        repository: &str,
        label: Option<&str>,
    ) -> Result<Vec<ImageInfo>, RuntimeError> {
        let mut filters = std::collections::HashMap::from([(
            "reference".to_owned(),
            vec![format!("{repository}:*")],
        )]);
        if let Some(label) = label {
            filters.insert("label".to_owned(), vec![label.to_owned()]);
        }
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let images = self
            .api
            .list_images(Some(options))
            .await
            .map_err(RuntimeError::api("listing images"))?;
        Ok(images
            .into_iter()
            .map(|image| ImageInfo {
                id: image.id,
                tags: image.repo_tags,
                size: u64::try_from(image.size).unwrap_or(0),
                created: jiff::Timestamp::from_second(image.created)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            })
            .collect())
    }

    /// Every container on the daemon, running or not, and the image (`sha256:…`) it was
    /// made from: `(container id, image id)`.
    pub async fn containers_by_image(&self) -> Result<Vec<(String, String)>, RuntimeError> {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .build();
        let containers = self
            .api
            .list_containers(Some(options))
            .await
            .map_err(RuntimeError::api("listing containers"))?;
        Ok(containers
            .into_iter()
            .filter_map(|c| Some((c.id?, c.image_id?)))
            .collect())
    }

    /// Remove an image tag unless a container uses the image: `Ok(false)` then (the daemon
    /// refuses with a conflict). A tag that does not exist is removed already.
    pub async fn remove_unused_image(&self, tag: &str) -> Result<bool, RuntimeError> {
        let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
            .force(false)
            .build();
        match self.api.remove_image(tag, Some(options), None).await {
            Ok(_)
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(RuntimeError::api(format!("removing image `{tag}`"))(e)),
        }
    }
}

/// Build `context` (a tar holding a `Dockerfile`) and tag it `tag`.
///
/// The tag only appears when the last step succeeds, so a failed or cancelled build
/// (drop the stream) leaves no tag behind.
pub(crate) fn build_image(
    docker: &Docker,
    tag: &str,
    context: Vec<u8>,
    options: &BuildOptions,
) -> impl Stream<Item = Result<BuildEvent, RuntimeError>> + Send + 'static {
    let mut labels = std::collections::HashMap::from([(MANAGED_LABEL, "true")]);
    for (key, value) in &options.labels {
        labels.insert(key.as_str(), value.as_str());
    }
    let mut builder = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(tag)
        .rm(true)
        .forcerm(true)
        .nocache(options.no_cache)
        .labels(&labels);
    if let Some(network) = &options.network_mode {
        builder = builder.networkmode(network);
    }
    let options = builder.build();
    let api = docker.api.clone();
    let tag = tag.to_owned();
    async_stream(move |tx| async move {
        let mut stream = api.build_image(options, None, Some(bollard::body_full(context.into())));
        let mut step = String::from("the first step");
        let mut recent: std::collections::VecDeque<String> = Default::default();
        let mut pending = String::new();
        // The classic builder's last line, once the image has its tag.
        let tagged_line = format!("Successfully tagged {tag}");
        let mut tagged = false;
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                // The connection can end untidily after the build is done ("bytes remaining
                // on stream"): the image is there, so the build did not fail.
                Err(e)
                    if tagged
                        && !matches!(e, bollard::errors::Error::DockerStreamError { .. })
                        && api.inspect_image(&tag).await.is_ok() =>
                {
                    tracing::debug!(%tag, error = %e, "the build's stream ended untidily after the image was tagged");
                    break;
                }
                Err(e) => {
                    let message = match e {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        other => other.to_string(),
                    };
                    let _ = tx
                        .send(Err(RuntimeError::Build {
                            step,
                            message: failure_message(&message),
                            output: recent.into_iter().collect(),
                        }))
                        .await;
                    return;
                }
            };
            if let Some(detail) = info.error_detail {
                let _ = tx
                    .send(Err(RuntimeError::Build {
                        step,
                        message: failure_message(&detail.message.unwrap_or_default()),
                        output: recent.into_iter().collect(),
                    }))
                    .await;
                return;
            }
            let Some(text) = info.stream else { continue };
            pending.push_str(&text);
            while let Some(nl) = pending.find('\n') {
                let line: String = pending.drain(..=nl).collect();
                let line = output_text(line.trim_end_matches(['\n', '\r']));
                tagged |= line == tagged_line;
                let event = match parse_step(&line) {
                    Some((index, total, instruction)) => {
                        // The instruction once, in short: a RUN script can be pages long
                        // (the whole of it is in the debug log, `-v`).
                        tracing::debug!(index, total, %instruction, "image build step");
                        step =
                            format!("step {index}/{total} ({})", short_instruction(&instruction));
                        recent.clear();
                        BuildEvent::Step {
                            index,
                            total,
                            instruction,
                        }
                    }
                    None => {
                        if recent.len() == KEPT_OUTPUT_LINES {
                            recent.pop_front();
                        }
                        recent.push_back(line.clone());
                        BuildEvent::Output(line)
                    }
                };
                if tx.send(Ok(event)).await.is_err() {
                    return; // the caller went away: dropping `stream` cancels the build
                }
            }
        }
        tracing::debug!(%tag, "image build finished");
    })
}

/// A line of a build's output as text: what a `\r` progress display drew last, without
/// escape sequences and control characters. The classic builder colours stderr red, and a
/// hook's or an installer's output (a repository's choice) could carry any sequence: none
/// of it reaches a log, an error message or the terminal.
fn output_text(line: &str) -> String {
    let last = line.rsplit('\r').next().unwrap_or(line);
    moat_text::plain(last).into_owned()
}

/// How long an instruction may be in an error message before it is cut.
const SHORT_INSTRUCTION: usize = 72;

/// `RUN set -eux; npm install -g …`: the first line of an instruction, cut to
/// [`SHORT_INSTRUCTION`] characters.
fn short_instruction(instruction: &str) -> String {
    let squeezed = instruction.split_whitespace().collect::<Vec<_>>().join(" ");
    if squeezed.chars().count() <= SHORT_INSTRUCTION {
        return squeezed;
    }
    let cut: String = squeezed.chars().take(SHORT_INSTRUCTION - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Docker's failure text without the script it repeats: `The command '/bin/sh -c …'
/// returned a non-zero code: 1` becomes `the command exited with code 1`.
fn failure_message(message: &str) -> String {
    let message = message.trim();
    if message.starts_with("The command ")
        && let Some((_, code)) = message.rsplit_once("returned a non-zero code: ")
    {
        return format!("the command exited with code {}", code.trim());
    }
    moat_text::plain(message).into_owned()
}

/// Parse `Step 3/7 : RUN apt-get update` into its parts.
fn parse_step(line: &str) -> Option<(u32, u32, String)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, instruction) = rest.split_once(" : ")?;
    let (index, total) = counts.split_once('/')?;
    Some((
        index.parse().ok()?,
        total.parse().ok()?,
        instruction.trim().to_owned(),
    ))
}

/// A stream fed by a task through a small channel: enough to turn a loop into a stream
/// without another dependency. Dropping the stream ends the task at its next send.
fn async_stream<T, F, Fut>(body: F) -> impl Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(body(tx));
    let guard = AbortOnDrop(task);
    futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (item, (rx, guard)))
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Docker daemon of the test's own on a unix socket: it answers the ping, ends a
    /// build's stream in the middle of a line after "Successfully tagged", and says
    /// whether the image exists.
    fn untidy_daemon(dir: &std::path::Path, image_exists: bool) -> String {
        use std::io::{BufRead, BufReader, Read, Write};
        let path = dir.join("docker.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                let (status, body) = if target == "/_ping" {
                    ("200 OK\r\nApi-Version: 1.41", "OK".to_owned())
                } else if target.contains("/build") {
                    (
                        "200 OK",
                        "{\"stream\":\"Step 1/1 : FROM scratch\\n\"}\r\n\
                         {\"stream\":\"Successfully tagged moat/run:t\\n\"}\r\n{\"str"
                            .to_owned(),
                    )
                } else if target.contains("/images/") && image_exists {
                    ("200 OK", "{\"Id\":\"sha256:0\"}".to_owned())
                } else {
                    (
                        "404 Not Found",
                        "{\"message\":\"no such image\"}".to_owned(),
                    )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}"
                );
            }
        });
        format!("unix://{}", path.display())
    }

    async fn build_against(image_exists: bool) -> Vec<Result<BuildEvent, RuntimeError>> {
        let dir = tempfile::tempdir().unwrap();
        let host = untidy_daemon(dir.path(), image_exists);
        let docker = Docker::connect(crate::DockerEndpoint {
            host,
            source: "test",
        })
        .await
        .unwrap();
        build_image(&docker, "moat/run:t", Vec::new(), &BuildOptions::default())
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_stream_cut_after_the_image_was_tagged_is_a_finished_build() {
        let events = build_against(true).await;
        assert!(events.iter().all(Result::is_ok), "{events:?}");
        assert!(
            events.iter().any(
                |e| matches!(e, Ok(BuildEvent::Output(l)) if l == "Successfully tagged moat/run:t")
            ),
            "{events:?}"
        );
        // Without the image, the same cut is the failure it looks like.
        let events = build_against(false).await;
        assert!(
            matches!(events.last(), Some(Err(RuntimeError::Build { .. }))),
            "{events:?}"
        );
    }

    #[test]
    fn output_is_text_only() {
        assert_eq!(
            output_text("\u{1b}[91m+ apt-get\u{1b}[0m update"),
            "+ apt-get update"
        );
        assert_eq!(output_text("plain"), "plain");
        assert_eq!(output_text("10%\r50%\r100% done"), "100% done");
        assert_eq!(
            output_text("x\u{1b}]52;c;Y3VybA==\u{7}\u{9b}2J\u{202e}y"),
            "xy"
        );
        assert_eq!(
            failure_message("denied \u{1b}]0;pwned\u{7}here"),
            "denied here"
        );
    }

    #[test]
    fn a_failed_step_names_its_command_once_and_short() {
        let script = format!("RUN set -eux; \\\n    npm install -g {}", "pkg ".repeat(40));
        let short = short_instruction(&script);
        assert!(
            short.starts_with("RUN set -eux; \\ npm install -g pkg"),
            "{short}"
        );
        assert!(short.ends_with('…') && short.chars().count() <= SHORT_INSTRUCTION);
        assert_eq!(short_instruction("RUN true"), "RUN true");
        assert_eq!(
            failure_message(&format!(
                "The command '/bin/sh -c {script}' returned a non-zero code: 100"
            )),
            "the command exited with code 100"
        );
        assert_eq!(failure_message(" no space left "), "no space left");
    }

    #[test]
    fn parses_step_lines() {
        assert_eq!(
            parse_step("Step 3/7 : RUN apt-get update"),
            Some((3, 7, "RUN apt-get update".into()))
        );
        assert_eq!(parse_step(" ---> Running in 1234"), None);
        assert_eq!(parse_step("Step x/7 : RUN"), None);
    }
}
