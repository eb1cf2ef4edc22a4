//! Build progress: a bar of Dockerfile steps on a terminal, plain step lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use moat_container::BuildEvent;
use moat_run::PrepareEvent;

/// Shows [`PrepareEvent`]s on stderr.
pub struct BuildProgress {
    bar: Option<ProgressBar>,
    interactive: bool,
    started: Option<std::time::Instant>,
}

impl BuildProgress {
    pub fn new() -> Self {
        BuildProgress {
            bar: None,
            interactive: std::io::stderr().is_terminal(),
            started: None,
        }
    }

    pub fn handle(&mut self, event: PrepareEvent) {
        match event {
            PrepareEvent::WaitingForBuild { tag } => {
                crate::ui::errln!("moat: waiting for another moat to finish building image {tag}");
            }
            PrepareEvent::ImageCached { tag } => tracing::debug!(%tag, "image cached"),
            PrepareEvent::SnapshotTaken { id, files, seconds } => {
                tracing::debug!(%id, files, seconds, "pre-run snapshot");
                if seconds > 2.0 {
                    crate::ui::errln!(
                        "moat: snapshot {id} of the workspace ({files} files) in {seconds:.1}s"
                    );
                }
            }
            PrepareEvent::SnapshotFailed { error, hint } => {
                crate::ui::warning(&format!("no snapshot before this run: {error}"));
                if let Some(hint) = hint {
                    crate::ui::errln!("hint: {hint}");
                }
            }
            PrepareEvent::BuildStarted { tag } => {
                self.started = Some(std::time::Instant::now());
                crate::ui::errln!(
                    "moat: building image {tag} (once: later runs reuse it){}",
                    if self.interactive {
                        ""
                    } else {
                        "; -v shows each step's output"
                    }
                );
                if self.interactive {
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} step {pos}/{len}, {elapsed} so far: {wide_msg}\n  | {prefix}",
                        )
                        .expect("a valid template"),
                    );
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.bar = Some(bar);
                }
            }
            PrepareEvent::Build(BuildEvent::Step {
                index,
                total,
                instruction,
            }) => {
                let instruction = shorten(&instruction, 100);
                match &self.bar {
                    Some(bar) => {
                        bar.set_length(u64::from(total));
                        bar.set_position(u64::from(index.saturating_sub(1)));
                        bar.set_message(instruction.clone());
                        bar.set_prefix("");
                    }
                    None => {
                        let elapsed = self
                            .started
                            .map(|s| s.elapsed().as_secs())
                            .unwrap_or_default();
                        crate::ui::errln!("moat: step {index}/{total} ({elapsed}s): {instruction}");
                    }
                }
            }
            PrepareEvent::Build(BuildEvent::Output(line)) => {
                tracing::debug!(target: "moat::build", "{line}");
                // On a terminal, the step's latest line under it shows it is moving (cut
                // to the terminal's width).
                // (The line is text already: see `moat_container`'s build.)
                if let Some(bar) = &self.bar
                    && !line.trim().is_empty()
                {
                    let width = usize::from(console::Term::stderr().size().1).max(20);
                    bar.set_prefix(shorten(line.trim(), width - 5));
                }
            }
            PrepareEvent::BuildFinished { tag, seconds } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                crate::ui::errln!("moat: built image {tag} in {seconds:.1}s");
            }
        }
    }
}

impl Drop for BuildProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    let first_line = text.lines().next().unwrap_or("");
    if first_line.chars().count() <= max {
        first_line.to_owned()
    } else {
        let cut: String = first_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

/// A count of done out of total (a restore's paths) as a bar on a terminal; nothing
/// elsewhere. Shown only once the work has taken a moment, so quick jobs stay quiet.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: &'static str,
    started: std::time::Instant,
}

impl Progress {
    pub fn new(label: &'static str) -> Self {
        Progress {
            bar: None,
            label,
            started: std::time::Instant::now(),
        }
    }

    pub fn set(&mut self, done: u64, total: u64) {
        if self.bar.is_none()
            && std::io::stderr().is_terminal()
            && self.started.elapsed() > std::time::Duration::from_millis(500)
        {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} [{pos}/{len}] {elapsed}")
                    .expect("a valid template"),
            );
            bar.set_prefix(self.label);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
