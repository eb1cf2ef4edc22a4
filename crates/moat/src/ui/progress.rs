//! Build progress: a bar of Dockerfile steps on a terminal, plain step lines otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use moat_container::BuildEvent;
use moat_run::PrepareEvent;

/// Shows [`PrepareEvent`]s on stderr.
pub struct BuildProgress {
    bar: Option<ProgressBar>,
    interactive: bool,
}

impl BuildProgress {
    pub fn new() -> Self {
        BuildProgress {
            bar: None,
            interactive: std::io::stderr().is_terminal(),
        }
    }

    pub fn handle(&mut self, event: PrepareEvent) {
        match event {
            PrepareEvent::WaitingForBuild { tag } => {
                crate::ui::errln!("moat: waiting for another moat to finish building image {tag}");
            }
            PrepareEvent::ImageCached { tag } => tracing::debug!(%tag, "image cached"),
            PrepareEvent::BuildStarted { tag } => {
                if self.interactive {
                    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} building {prefix} [{pos}/{len}] {wide_msg}",
                        )
                        .expect("a valid template"),
                    );
                    bar.set_prefix(tag);
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    self.bar = Some(bar);
                } else {
                    crate::ui::errln!("moat: building image {tag}");
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
                        bar.set_message(instruction);
                    }
                    None => crate::ui::errln!("moat: step {index}/{total}: {instruction}"),
                }
            }
            PrepareEvent::Build(BuildEvent::Output(line)) => {
                tracing::debug!(target: "moat::build", "{line}");
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
