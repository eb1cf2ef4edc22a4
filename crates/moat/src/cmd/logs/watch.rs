//! Waiting for a run's directory to change, for `moat logs -f`: inotify on Linux (the
//! process sleeps in the kernel until `logs.jsonl` grows or the record is replaced), and
//! elsewhere a sleep of [`POLL`] between looks, which is one `read` of a file that has
//! not grown: four syscalls a second, not a busy loop.

use std::path::Path;
use std::time::Duration;

/// How long the fallback sleeps between looks at the log.
const POLL: Duration = Duration::from_millis(250);

/// The file whose replacement means the record changed.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const RECORD: &str = "metadata.json";

pub struct Watch {
    #[cfg(target_os = "linux")]
    inotify: Option<tokio::io::unix::AsyncFd<Inotify>>,
}

#[cfg(target_os = "linux")]
struct Inotify(nix::sys::inotify::Inotify);

#[cfg(target_os = "linux")]
impl std::os::fd::AsRawFd for Inotify {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd as _;
        self.0.as_fd().as_raw_fd()
    }
}

impl Watch {
    /// Watch `dir`. Without inotify (other systems, or no watch left), the fallback.
    pub fn new(dir: &Path) -> Self {
        #[cfg(target_os = "linux")]
        {
            use nix::sys::inotify::{AddWatchFlags, InitFlags};
            let inotify = (|| -> std::io::Result<_> {
                let inotify = nix::sys::inotify::Inotify::init(
                    InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC,
                )?;
                // Appends to the log, and the record replaced by a rename.
                inotify.add_watch(
                    dir,
                    AddWatchFlags::IN_MODIFY
                        | AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_CREATE,
                )?;
                // Deprecated for values that only borrow their descriptor, which could be
                // closed while registered; `Inotify` owns its descriptor, so it is closed
                // only when the `AsyncFd` is dropped. (`register` would need `unsafe`,
                // which the workspace forbids.)
                #[allow(deprecated)]
                tokio::io::unix::AsyncFd::new(Inotify(inotify))
            })();
            match inotify {
                Ok(inotify) => Watch {
                    inotify: Some(inotify),
                },
                Err(e) => {
                    tracing::debug!(error = %e, "no inotify; polling the log");
                    Watch { inotify: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = dir;
            Watch {}
        }
    }

    /// Wait until something in the directory changed, or `at_most` passed. Returns
    /// whether the run's record was among the changes.
    pub async fn changed(&mut self, at_most: Duration) -> bool {
        #[cfg(target_os = "linux")]
        if let Some(inotify) = &self.inotify {
            let Ok(ready) = tokio::time::timeout(at_most, inotify.readable()).await else {
                return false;
            };
            let Ok(mut guard) = ready else {
                return true;
            };
            let mut record = false;
            loop {
                match guard.get_inner().0.read_events() {
                    Ok(events) => {
                        record |= events
                            .iter()
                            .any(|e| e.name.as_deref().is_some_and(|n| n == RECORD));
                    }
                    Err(nix::errno::Errno::EAGAIN) => {
                        guard.clear_ready();
                        return record;
                    }
                    Err(_) => return true,
                }
            }
        }
        tokio::time::sleep(POLL.min(at_most)).await;
        false
    }
}
