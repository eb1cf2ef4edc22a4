//! The snapshot store of one workspace: taking, listing, comparing, restoring, pruning.

use fs_err::os::unix::fs::OpenOptionsExt as _;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::SnapshotError;
use crate::git::{Git, RawChange, exists, parse_raw};

/// Which files a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Leave out what the workspace's `.gitignore` files leave out (the default).
    pub respect_gitignore: bool,
    /// More gitignore-style patterns to leave out.
    pub exclude: Vec<String>,
    /// Workspace paths (relative; each with everything under it) a restore in place never
    /// writes or removes: the places where something would run on the host (git hooks,
    /// editor tasks), which a run may not change either. A snapshot taken during a run can
    /// hold what the run put there, and the run's end moved aside; restoring it must not
    /// bring that back. `--to DIR` still writes them.
    pub kept_out_of_restores: Vec<String>,
}

impl Rules {
    /// Whether a restore in place leaves `path` (relative) alone: a kept path, what is
    /// under one, and what is above one (replacing `.claude` with a file would have to
    /// remove the `.claude/settings.json` that stays).
    fn keeps_out(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        let under = |outer: &str, inner: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('/'))
        };
        self.kept_out_of_restores.iter().any(|kept| {
            let kept = kept.trim_end_matches('/');
            path == kept || under(kept, path) || under(path, kept)
        })
    }
}

/// Why a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    PreRun,
    Manual,
    GitCommit,
    Idle,
    AgentTurn,
    /// Taken by a restore before it changes anything.
    Safety,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::PreRun => "pre-run",
            Trigger::Manual => "manual",
            Trigger::GitCommit => "git-commit",
            Trigger::Idle => "idle",
            Trigger::AgentTurn => "agent-turn",
            Trigger::Safety => "safety",
        }
    }
}

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// `snap_` + 12 hex.
    pub id: String,
    pub run: String,
    pub created_at: Timestamp,
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The git tree holding the files.
    pub tree: String,
    /// How many files it holds.
    pub files: u64,
    /// Paths that differ from the run's snapshot before it (all of them for the first).
    pub changed: u64,
    /// Bytes this snapshot added to the store (new file contents).
    pub bytes_added: u64,
    /// Empty directories, which a git tree cannot hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_dirs: Vec<String>,
}

/// How a path differs between two states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    /// Same content, another mode (the executable bit), or a file became a link.
    ModeChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// Progress of a long operation: done of total paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Paths written, removed or re-moded.
    pub changed: u64,
    /// The snapshot of the state before the restore (none for `--to`).
    pub safety: Option<SnapshotMeta>,
    /// Paths that differ but were left alone: [`Rules::kept_out_of_restores`].
    pub kept_out: Vec<String>,
}

/// The journal of a restore in progress (`restore.json`): enough to finish it.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    tree: String,
    empty_dirs: Vec<String>,
}

const JOURNAL: &str = "restore.json";
const LOCK: &str = "moat.lock";
const EXCLUDE: &str = "moat-exclude";

/// The snapshots of one workspace.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    git: Git,
    dir: PathBuf,
    workspace: PathBuf,
    rules: Rules,
}

impl SnapshotStore {
    /// The store in `dir` for `workspace` (absolute, resolved), made on first use. A
    /// restore a crash interrupted is finished here: open it so only while no run's agent
    /// can change the workspace ([`SnapshotStore::open_leaving_restores`] otherwise).
    pub fn open(dir: &Path, workspace: &Path, rules: Rules) -> Result<Self, SnapshotError> {
        Self::open_with(dir, workspace, rules, true)
    }

    /// [`SnapshotStore::open`], leaving an interrupted restore for later: a restore writes
    /// path by path, and while an agent runs it could put a link where one is written. The
    /// next restore finishes it first (with its run paused), as does the next open while
    /// nothing runs.
    pub fn open_leaving_restores(
        dir: &Path,
        workspace: &Path,
        rules: Rules,
    ) -> Result<Self, SnapshotError> {
        Self::open_with(dir, workspace, rules, false)
    }

    fn open_with(
        dir: &Path,
        workspace: &Path,
        rules: Rules,
        finish_restores: bool,
    ) -> Result<Self, SnapshotError> {
        moat_home::MoatHome::create_private_dir(dir)
            .map_err(|e| SnapshotError::Io(std::io::Error::other(e)))?;
        let store = SnapshotStore {
            git: Git {
                git_dir: dir.to_owned(),
                work_tree: workspace.to_owned(),
                index: dir.join("moat-index"),
            },
            dir: dir.to_owned(),
            workspace: workspace.to_owned(),
            rules,
        };
        if !dir.join("HEAD").exists() {
            let out = store
                .git
                .command()
                .env_remove("GIT_WORK_TREE")
                .env_remove("GIT_DIR")
                .args(["init", "-q", "--bare"])
                .arg(dir)
                .output()
                .map_err(SnapshotError::git_missing)?;
            if !out.status.success() {
                return Err(SnapshotError::Git {
                    command: "init".into(),
                    message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
        }
        let mut patterns = store.rules.exclude.join("\n");
        patterns.push('\n');
        // What `git add` leaves out besides `.gitignore`s: the extra patterns.
        fs_err::create_dir_all(dir.join("info"))?;
        moat_home::write_private_atomic(&dir.join("info").join("exclude"), patterns.as_bytes())?;
        moat_home::write_private_atomic(&dir.join(EXCLUDE), patterns.as_bytes())?;
        if finish_restores {
            let _lock = store.lock()?;
            store.finish_or_set_aside();
        }
        Ok(store)
    }

    fn lock(&self) -> Result<fs_err::File, SnapshotError> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK))?;
        file.file().lock()?;
        Ok(file)
    }

    /// Take a snapshot of the workspace now, for `run`.
    pub fn take(
        &self,
        run: &str,
        trigger: Trigger,
        label: Option<String>,
    ) -> Result<SnapshotMeta, SnapshotError> {
        let _lock = self.lock()?;
        let meta = self.take_locked(run, trigger, label, false)?;
        Ok(meta.expect("taken unconditionally"))
    }

    /// Take a snapshot for `run` unless the workspace holds what the run's last snapshot
    /// holds (`None`): a timer's snapshot of an unchanged tree would undo nothing.
    pub fn take_if_changed(
        &self,
        run: &str,
        trigger: Trigger,
        label: Option<String>,
    ) -> Result<Option<SnapshotMeta>, SnapshotError> {
        let _lock = self.lock()?;
        self.take_locked(run, trigger, label, true)
    }

    fn take_locked(
        &self,
        run: &str,
        trigger: Trigger,
        label: Option<String>,
        only_if_changed: bool,
    ) -> Result<Option<SnapshotMeta>, SnapshotError> {
        let before = self.loose_bytes()?;
        let tree = self.current_tree()?;
        let empty_dirs = self.empty_dirs()?;
        let previous = self.list_locked(run)?.pop();
        if only_if_changed
            && let Some(p) = &previous
            && p.tree == tree
            && p.empty_dirs == empty_dirs
        {
            return Ok(None);
        }
        let files = self.count_files(&tree)?;
        let changed = match &previous {
            Some(p) => self.raw_diff(&p.tree, &tree)?.len() as u64,
            None => files,
        };
        let mut id_bytes = [0u8; 6];
        getrandom::fill(&mut id_bytes).map_err(|e| SnapshotError::Io(std::io::Error::other(e)))?;
        let meta = SnapshotMeta {
            id: format!("snap_{}", hex::encode(id_bytes)),
            run: run.to_owned(),
            created_at: Timestamp::now(),
            trigger,
            label,
            tree: tree.clone(),
            files,
            changed,
            bytes_added: self.loose_bytes()?.saturating_sub(before),
            empty_dirs,
        };
        let message = serde_json::to_vec(&meta).expect("metadata serialises");
        let commit = self.git.run_with_input(&["commit-tree", &tree], &message)?;
        let commit = String::from_utf8_lossy(&commit).trim().to_owned();
        self.git.run(&[
            "update-ref",
            &format!("refs/moat/{run}/{}", meta.id),
            &commit,
        ])?;
        Ok(Some(meta))
    }

    /// The tree of the workspace as it is now, by the rules (the index is the stat cache:
    /// only files whose metadata changed are read).
    fn current_tree(&self) -> Result<String, SnapshotError> {
        // Files the rules leave out now are dropped even if an earlier snapshot held them.
        let exclude_from = format!("--exclude-from={}", self.dir.join(EXCLUDE).display());
        let mut ignored_args = vec!["ls-files", "-z", "-c", "-i", exclude_from.as_str()];
        if self.rules.respect_gitignore {
            ignored_args.push("--exclude-per-directory=.gitignore");
        }
        // A repository nested in the workspace is never in a snapshot: with one in the
        // index, `git add` runs `git status` inside it, under that repository's own
        // configuration (its filters, which the agent writes). So none is ever in the index
        // when git looks at the work tree (an older store's index may hold one).
        self.drop_nested_repositories()?;
        let ignored = self.git.run(&ignored_args)?;
        if !ignored.is_empty() {
            self.git.run_with_input(
                &[
                    "rm",
                    "--cached",
                    "-q",
                    "-r",
                    "--ignore-unmatch",
                    "--pathspec-from-file=-",
                    "--pathspec-file-nul",
                ],
                &ignored,
            )?;
        }
        if self.rules.respect_gitignore {
            self.git.run(&["add", "-A", "--", "."])?;
        } else {
            // Everything, then what the extra patterns leave out.
            self.git.run(&["add", "-A", "-f", "--", "."])?;
            let excluded = self
                .git
                .run(&["ls-files", "-z", "-c", "-i", &exclude_from])?;
            if !excluded.is_empty() {
                self.git.run_with_input(
                    &[
                        "rm",
                        "--cached",
                        "-q",
                        "-r",
                        "--ignore-unmatch",
                        "--pathspec-from-file=-",
                        "--pathspec-file-nul",
                    ],
                    &excluded,
                )?;
            }
        }
        self.drop_nested_repositories()?;
        let tree = self.git.run(&["write-tree"])?;
        Ok(String::from_utf8_lossy(&tree).trim().to_owned())
    }

    /// Take every nested repository (a gitlink, mode 160000) out of the store's index.
    /// `update-index --force-remove` touches neither the work tree nor the repository.
    fn drop_nested_repositories(&self) -> Result<(), SnapshotError> {
        let staged = self.git.run(&["ls-files", "-s", "-z"])?;
        let mut paths = Vec::new();
        for entry in staged.split(|&b| b == 0) {
            if let Some(rest) = entry.strip_prefix(b"160000 ")
                && let Some(tab) = rest.iter().position(|&b| b == b'\t')
            {
                paths.extend_from_slice(&rest[tab + 1..]);
                paths.push(0);
            }
        }
        if !paths.is_empty() {
            tracing::debug!("nested repositories left out of the snapshot");
            self.git
                .run_with_input(&["update-index", "-z", "--force-remove", "--stdin"], &paths)?;
        }
        Ok(())
    }

    /// Empty directories of the workspace the rules keep, relative, sorted.
    fn empty_dirs(&self) -> Result<Vec<String>, SnapshotError> {
        let mut found = Vec::new();
        let mut stack = vec![self.workspace.clone()];
        while let Some(dir) = stack.pop() {
            let mut empty = true;
            for entry in fs_err::read_dir(&dir)? {
                let entry = entry?;
                empty = false;
                if entry.file_name() == ".git" {
                    continue;
                }
                if entry.file_type()?.is_dir() {
                    stack.push(entry.path());
                }
            }
            if empty && dir != self.workspace {
                let relative = dir
                    .strip_prefix(&self.workspace)
                    .expect("under the workspace");
                found.push(relative.to_string_lossy().into_owned());
            }
        }
        if found.is_empty() {
            return Ok(found);
        }
        // Left out by the rules: a directory that is ignored, or inside one.
        let mut input = Vec::new();
        for path in &found {
            input.extend_from_slice(path.as_bytes());
            input.push(b'/');
            input.push(0);
        }
        let mut args = vec!["check-ignore", "--no-index", "-z", "--stdin"];
        if !self.rules.respect_gitignore {
            // Only the extra patterns, which are the store's `info/exclude`: no per-directory
            // files. git has no switch for that, so ignored ones are filtered by hand below.
            args.push("--verbose");
        }
        let out = match self.git.run_with_input(&args, &input) {
            Ok(out) => out,
            // Exit 1: nothing is ignored.
            Err(SnapshotError::Git { message, .. }) if message.is_empty() => Vec::new(),
            Err(e) => return Err(e),
        };
        let ignored: Vec<String> = if self.rules.respect_gitignore {
            out.split(|&b| b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).trim_end_matches('/').to_owned())
                .collect()
        } else {
            // --verbose -z: source, line, pattern, path; keep paths matched by our file.
            let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
            fields
                .chunks(4)
                .filter(|c| c.len() == 4 && c[0].ends_with(b"info/exclude"))
                .map(|c| {
                    String::from_utf8_lossy(c[3])
                        .trim_end_matches('/')
                        .to_owned()
                })
                .collect()
        };
        found.retain(|p| !ignored.contains(p));
        found.sort();
        Ok(found)
    }

    fn count_files(&self, tree: &str) -> Result<u64, SnapshotError> {
        let out = self
            .git
            .run(&["ls-tree", "-r", "-z", "--name-only", tree])?;
        Ok(out.iter().filter(|&&b| b == 0).count() as u64)
    }

    /// Loose object bytes in the store: what a snapshot added is the growth.
    fn loose_bytes(&self) -> Result<u64, SnapshotError> {
        let out = self.git.run(&["count-objects", "-v"])?;
        let text = String::from_utf8_lossy(&out);
        let kib = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok((kib("size:") + kib("size-pack:")) * 1024)
    }

    /// The run's snapshots, oldest first.
    pub fn list(&self, run: &str) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        let _lock = self.lock()?;
        self.list_locked(run)
    }

    fn list_locked(&self, run: &str) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        let out = self.git.run(&[
            "for-each-ref",
            "--format=%(contents)%00",
            &format!("refs/moat/{run}/"),
        ])?;
        let mut metas: Vec<SnapshotMeta> = out
            .split(|&b| b == 0)
            .map(|m| String::from_utf8_lossy(m).trim().to_owned())
            .filter(|m| !m.is_empty())
            .filter_map(|m| serde_json::from_str(&m).ok())
            .collect();
        metas.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(metas)
    }

    /// The run's snapshot whose id starts with `prefix`.
    pub fn find(&self, run: &str, prefix: &str) -> Result<SnapshotMeta, SnapshotError> {
        let matches: Vec<SnapshotMeta> = self
            .list(run)?
            .into_iter()
            .filter(|m| m.id.starts_with(prefix))
            .collect();
        match <[SnapshotMeta; 1]>::try_from(matches) {
            Ok([meta]) => Ok(meta),
            Err(_) => Err(SnapshotError::NoSuchSnapshot(prefix.to_owned())),
        }
    }

    fn raw_diff(&self, from: &str, to: &str) -> Result<Vec<RawChange>, SnapshotError> {
        let out = self
            .git
            .run(&["diff-tree", "-r", "-z", "--no-renames", from, to])?;
        Ok(parse_raw(&out))
    }

    /// How `to` (a snapshot, or the workspace now when `None`) differs from `from`.
    pub fn diff(
        &self,
        from: &SnapshotMeta,
        to: Option<&SnapshotMeta>,
    ) -> Result<Vec<Change>, SnapshotError> {
        let _lock = self.lock()?;
        let (tree, empty_dirs) = match to {
            Some(meta) => (meta.tree.clone(), meta.empty_dirs.clone()),
            None => (self.current_tree()?, self.empty_dirs()?),
        };
        let mut changes: Vec<Change> = self
            .raw_diff(&from.tree, &tree)?
            .into_iter()
            .map(|c| Change {
                kind: match c.status {
                    'A' => ChangeKind::Added,
                    'D' => ChangeKind::Removed,
                    'T' => ChangeKind::ModeChanged,
                    _ if c.old_mode != c.new_mode && c.status == 'M' => ChangeKind::ModeChanged,
                    _ => ChangeKind::Changed,
                },
                path: c.path,
            })
            .collect();
        for dir in &empty_dirs {
            if !from.empty_dirs.contains(dir) {
                changes.push(Change {
                    path: format!("{dir}/"),
                    kind: ChangeKind::Added,
                });
            }
        }
        for dir in &from.empty_dirs {
            if !empty_dirs.contains(dir) && !exists(&self.workspace.join(dir)) {
                changes.push(Change {
                    path: format!("{dir}/"),
                    kind: ChangeKind::Removed,
                });
            }
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// Put the workspace back as `snapshot` had it (or, with `to`, write it into that new
    /// or empty directory and leave the workspace alone). In place, a safety snapshot of
    /// the current state comes first, only differing paths change, and paths the rules
    /// leave out are never touched.
    pub fn restore(
        &self,
        run: &str,
        snapshot: &SnapshotMeta,
        to: Option<&Path>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RestoreReport, SnapshotError> {
        let _lock = self.lock()?;
        if let Some(dir) = to {
            return self.restore_to(snapshot, dir, progress);
        }
        // One left unfinished (opened while a run was live) is finished first.
        self.finish_or_set_aside();
        let safety = self
            .take_locked(
                run,
                Trigger::Safety,
                Some(format!("before restoring {}", snapshot.id)),
                false,
            )?
            .expect("taken unconditionally");
        let journal = Journal {
            tree: snapshot.tree.clone(),
            empty_dirs: snapshot.empty_dirs.clone(),
        };
        moat_home::write_private_atomic(
            &self.dir.join(JOURNAL),
            &serde_json::to_vec(&journal).expect("a journal serialises"),
        )?;
        let (changed, kept_out) =
            self.apply(&safety.tree, &safety.empty_dirs, &journal, progress)?;
        fs_err::remove_file(self.dir.join(JOURNAL))?;
        Ok(RestoreReport {
            changed,
            safety: Some(safety),
            kept_out,
        })
    }

    /// [`SnapshotStore::finish_restore`]; one that cannot be finished must not keep every
    /// later snapshot or restore from being made, so its journal is put aside (the safety
    /// snapshot it took first still undoes what it did).
    fn finish_or_set_aside(&self) {
        if let Err(e) = self.finish_restore() {
            tracing::warn!(error = %e, "an interrupted restore could not be finished; its journal is kept as restore.json.failed");
            let _ = fs_err::rename(self.dir.join(JOURNAL), self.dir.join("restore.json.failed"));
        }
    }

    /// A restore a crash interrupted: compare what the workspace is now with its target
    /// and finish the job.
    fn finish_restore(&self) -> Result<(), SnapshotError> {
        let path = self.dir.join(JOURNAL);
        let Ok(bytes) = fs_err::read(&path) else {
            return Ok(());
        };
        let journal: Journal = serde_json::from_slice(&bytes)
            .map_err(|e| SnapshotError::Damaged(format!("the restore journal: {e}")))?;
        tracing::info!("finishing a restore that was interrupted");
        let now = self.current_tree()?;
        let empty_now = self.empty_dirs()?;
        self.apply(&now, &empty_now, &journal, &mut |_| {})?;
        fs_err::remove_file(&path)?;
        Ok(())
    }

    /// Change the workspace from `current` to the journal's tree, path by path; how many
    /// paths changed, and those left alone by the rules.
    fn apply(
        &self,
        current: &str,
        current_empty: &[String],
        target: &Journal,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(u64, Vec<String>), SnapshotError> {
        let (mut changes, kept): (Vec<_>, Vec<_>) = self
            .raw_diff(current, &target.tree)?
            .into_iter()
            .partition(|c| !self.rules.keeps_out(&c.path));
        let mut kept_out: Vec<String> = kept.into_iter().map(|c| c.path).collect();
        // Removals first (deepest first), so a path becomes free for what replaces it.
        changes.sort_by(|a, b| {
            (a.status != 'D')
                .cmp(&(b.status != 'D'))
                .then_with(|| match a.status {
                    'D' => b.path.cmp(&a.path),
                    _ => a.path.cmp(&b.path),
                })
        });
        let total = changes.len() as u64;
        let mut blobs = self.git.blobs()?;
        for (done, change) in changes.iter().enumerate() {
            let path = self.workspace.join(&change.path);
            match change.status {
                'D' if moat_home::linked_on_the_way(&self.workspace, Path::new(&change.path)) => {}
                'D' => {
                    remove(&path)?;
                    self.remove_empty_parents(&path, &target.empty_dirs);
                }
                _ => self.write(&mut blobs, change, &path)?,
            }
            progress(Progress {
                done: done as u64 + 1,
                total,
            });
        }
        for dir in &target.empty_dirs {
            if self.rules.keeps_out(dir) {
                if !current_empty.contains(dir) {
                    kept_out.push(format!("{dir}/"));
                }
                continue;
            }
            // Never through a link the workspace holds where a directory was.
            make_dirs(&self.workspace, &self.workspace.join(dir))?;
        }
        for dir in current_empty {
            // Only if still empty (never a directory holding left-out files), and only
            // where it is, not through a link.
            if !target.empty_dirs.contains(dir)
                && !self.rules.keeps_out(dir)
                && !moat_home::linked_on_the_way(&self.workspace, Path::new(dir))
            {
                let _ = fs_err::remove_dir(self.workspace.join(dir));
            }
        }
        kept_out.sort();
        Ok((total, kept_out))
    }

    /// Write `change`'s new content at `path`: a file (atomically, with its mode) or a
    /// link; a submodule is left alone.
    fn write(
        &self,
        blobs: &mut crate::git::BlobReader,
        change: &RawChange,
        path: &Path,
    ) -> Result<(), SnapshotError> {
        let parent = path.parent().expect("a workspace path has a parent");
        make_dirs(&self.workspace, parent)?;
        match change.new_mode.as_str() {
            "120000" => {
                let target = blobs.read(&change.new_sha)?;
                remove(path)?;
                std::os::unix::fs::symlink(
                    std::ffi::OsStr::new(&String::from_utf8_lossy(&target).into_owned()),
                    path,
                )?;
            }
            "160000" => {}
            mode => {
                let executable = mode == "100755";
                // A new file of a random name (O_EXCL: never a link or a file the agent
                // put there), its mode set through the open file, then renamed into place.
                let mut suffix = [0u8; 8];
                getrandom::fill(&mut suffix)
                    .map_err(|e| SnapshotError::Io(std::io::Error::other(e)))?;
                let tmp = parent.join(format!(".moat-restore-{}", hex::encode(suffix)));
                let written = (|| -> Result<(), SnapshotError> {
                    let mut file = fs_err::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&tmp)?;
                    blobs.copy_to(&change.new_sha, &mut file)?;
                    file.flush()?;
                    file.file()
                        .set_permissions(std::fs::Permissions::from_mode(if executable {
                            0o755
                        } else {
                            0o644
                        }))?;
                    file.sync_all()?;
                    if path.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                        let _ = fs_err::remove_dir(path);
                    }
                    fs_err::rename(&tmp, path)?;
                    Ok(())
                })();
                if written.is_err() {
                    let _ = fs_err::remove_file(&tmp);
                }
                written?;
            }
        }
        Ok(())
    }

    /// Remove directories above a removed path that became empty, up to the workspace,
    /// except those the target keeps empty.
    fn remove_empty_parents(&self, path: &Path, keep: &[String]) {
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == self.workspace {
                break;
            }
            let relative = d.strip_prefix(&self.workspace).unwrap_or(d);
            if keep.iter().any(|k| Path::new(k) == relative) || fs_err::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// The snapshot's files into `dir`, which must be new or empty.
    fn restore_to(
        &self,
        snapshot: &SnapshotMeta,
        dir: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RestoreReport, SnapshotError> {
        if dir.exists() && fs_err::read_dir(dir)?.next().is_some() {
            return Err(SnapshotError::NotEmpty(dir.to_owned()));
        }
        fs_err::create_dir_all(dir)?;
        let dir = fs_err::canonicalize(dir)?;
        let git = Git {
            work_tree: dir.clone(),
            index: self
                .dir
                .join(format!("restore-index-{}", std::process::id())),
            ..self.git.clone()
        };
        git.run(&["read-tree", &snapshot.tree])?;
        let result = git.run(&["checkout-index", "-a", "-f"]);
        let _ = fs_err::remove_file(&git.index);
        result?;
        for empty in &snapshot.empty_dirs {
            fs_err::create_dir_all(dir.join(empty))?;
        }
        progress(Progress {
            done: snapshot.files,
            total: snapshot.files,
        });
        Ok(RestoreReport {
            changed: snapshot.files,
            safety: None,
            kept_out: Vec::new(),
        })
    }

    /// Forget all but the newest `keep` snapshots of `run` (the pre-run one stays unless
    /// `delete_initial`); the ids removed. Contents no snapshot holds any more are freed.
    pub fn prune(
        &self,
        run: &str,
        keep: usize,
        delete_initial: bool,
        dry_run: bool,
    ) -> Result<Vec<SnapshotMeta>, SnapshotError> {
        let _lock = self.lock()?;
        let all = self.list_locked(run)?;
        let mut candidates: Vec<SnapshotMeta> = all
            .iter()
            .filter(|m| delete_initial || m.trigger != Trigger::PreRun)
            .cloned()
            .collect();
        let kept_fixed = all.len() - candidates.len();
        let keep_of_candidates = keep.saturating_sub(kept_fixed);
        let remove_count = candidates.len().saturating_sub(keep_of_candidates);
        candidates.truncate(remove_count);
        if !dry_run && !candidates.is_empty() {
            for meta in &candidates {
                self.git
                    .run(&["update-ref", "-d", &format!("refs/moat/{run}/{}", meta.id)])?;
            }
            self.git.run(&["prune", "--expire=now"])?;
        }
        Ok(candidates)
    }

    /// Forget every snapshot of `run` (its run is destroyed).
    pub fn forget_run(&self, run: &str) -> Result<(), SnapshotError> {
        let _lock = self.lock()?;
        for meta in self.list_locked(run)? {
            self.git
                .run(&["update-ref", "-d", &format!("refs/moat/{run}/{}", meta.id)])?;
        }
        self.git.run(&["prune", "--expire=now"])?;
        Ok(())
    }
}

/// Remove a file or link (never a directory's contents); nothing there is fine.
fn remove(path: &Path) -> Result<(), SnapshotError> {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            let _ = fs_err::remove_dir(path);
            Ok(())
        }
        Ok(_) => Ok(fs_err::remove_file(path)?),
        Err(_) => Ok(()),
    }
}

/// Make the directories down to `dir`, replacing a file or link that stands where a
/// directory must be (the snapshot has a directory there).
fn make_dirs(workspace: &Path, dir: &Path) -> Result<(), SnapshotError> {
    let relative = dir.strip_prefix(workspace).unwrap_or(Path::new(""));
    let mut at = workspace.to_owned();
    for part in relative.components() {
        at.push(part);
        match at.symlink_metadata() {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                fs_err::remove_file(&at)?;
                fs_err::create_dir(&at)?;
            }
            Err(_) => fs_err::create_dir(&at)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// path → (kind, mode, content) of every entry but `.git`, links not followed.
    fn manifest(root: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in fs_err::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                if rel == ".git" || rel.starts_with(".git/") {
                    continue;
                }
                let meta = path.symlink_metadata().unwrap();
                let what = if meta.file_type().is_symlink() {
                    format!("link {}", fs_err::read_link(&path).unwrap().display())
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    "dir".to_owned()
                } else {
                    format!(
                        "file {:o} {}",
                        meta.permissions().mode() & 0o111,
                        String::from_utf8_lossy(&fs_err::read(&path).unwrap())
                    )
                };
                out.push((rel, what));
            }
        }
        out.sort();
        out
    }

    fn workspace() -> tempfile::TempDir {
        let ws = tempfile::tempdir().unwrap();
        let w = ws.path();
        fs_err::write(w.join("a.txt"), "alpha\n").unwrap();
        fs_err::create_dir_all(w.join("src/deep")).unwrap();
        fs_err::write(w.join("src/deep/b.rs"), "fn b() {}\n").unwrap();
        fs_err::write(w.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs_err::set_permissions(w.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("a.txt", w.join("link")).unwrap();
        symlink("/etc/passwd", w.join("outside")).unwrap();
        fs_err::create_dir(w.join("empty")).unwrap();
        fs_err::write(w.join(".gitignore"), "secret.env\nnode_modules/\n").unwrap();
        fs_err::write(w.join("secret.env"), "TOKEN=1\n").unwrap();
        fs_err::create_dir(w.join("node_modules")).unwrap();
        fs_err::write(w.join("node_modules/x.js"), "x\n").unwrap();
        fs_err::create_dir_all(w.join(".git")).unwrap();
        fs_err::write(w.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        ws
    }

    fn store(dir: &Path, ws: &Path) -> SnapshotStore {
        let ws = fs_err::canonicalize(ws).unwrap();
        SnapshotStore::open(
            dir,
            &ws,
            Rules {
                respect_gitignore: true,
                exclude: vec!["*.log".into()],
                kept_out_of_restores: vec![".vscode".into(), ".git/hooks".into()],
            },
        )
        .unwrap()
    }

    #[test]
    fn a_restore_gives_back_the_exact_tree_and_leaves_ignored_files_alone() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let s = store(&home.path().join("store"), ws.path());
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let before = manifest(&w);
        let pre = s.take("run_a", Trigger::PreRun, None).unwrap();
        assert_eq!(pre.files, 6, "{pre:?}");
        assert_eq!(pre.empty_dirs, ["empty"]);

        // The agent at work: modify, delete, create, chmod, relink, and touch ignored files.
        fs_err::write(w.join("a.txt"), "changed\n").unwrap();
        fs_err::remove_file(w.join("src/deep/b.rs")).unwrap();
        fs_err::write(w.join("new.txt"), "new\n").unwrap();
        fs_err::set_permissions(w.join("run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
        fs_err::remove_file(w.join("link")).unwrap();
        fs_err::write(w.join("link"), "a file now\n").unwrap();
        fs_err::remove_dir(w.join("empty")).unwrap();
        fs_err::write(w.join("secret.env"), "TOKEN=2\n").unwrap();
        fs_err::write(w.join("debug.log"), "log\n").unwrap();

        let changes = s.diff(&pre, None).unwrap();
        let kinds: Vec<(String, ChangeKind)> =
            changes.iter().map(|c| (c.path.clone(), c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("a.txt".into(), ChangeKind::Changed),
                ("empty/".into(), ChangeKind::Removed),
                ("link".into(), ChangeKind::ModeChanged),
                ("new.txt".into(), ChangeKind::Added),
                ("run.sh".into(), ChangeKind::ModeChanged),
                // Empty now that its file is gone.
                ("src/deep/".into(), ChangeKind::Added),
                ("src/deep/b.rs".into(), ChangeKind::Removed),
            ]
        );

        let report = s.restore("run_a", &pre, None, &mut |_| {}).unwrap();
        assert!(report.safety.is_some());
        let after = manifest(&w);
        // Everything as it was, but the ignored file keeps its new content and the
        // excluded log stays: the snapshot never held them.
        let expected: Vec<(String, String)> = before
            .into_iter()
            .map(|(p, what)| {
                if p == "secret.env" {
                    (p, "file 0 TOKEN=2\n".into())
                } else {
                    (p, what)
                }
            })
            .chain([("debug.log".to_owned(), "file 0 log\n".to_owned())])
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        assert_eq!(after, expected);

        // The safety snapshot undoes the restore.
        s.restore("run_a", report.safety.as_ref().unwrap(), None, &mut |_| {})
            .unwrap();
        assert_eq!(
            fs_err::read_to_string(w.join("a.txt")).unwrap(),
            "changed\n"
        );
        assert!(!w.join("src/deep/b.rs").exists());
    }

    #[test]
    fn a_restore_into_another_directory_leaves_the_workspace_alone() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let s = store(&home.path().join("store"), ws.path());
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let pre = s.take("run_a", Trigger::PreRun, None).unwrap();
        fs_err::write(w.join("a.txt"), "changed\n").unwrap();
        let out = home.path().join("copy");
        s.restore("run_a", &pre, Some(&out), &mut |_| {}).unwrap();
        assert_eq!(
            fs_err::read_to_string(out.join("a.txt")).unwrap(),
            "alpha\n"
        );
        assert_eq!(
            fs_err::read_link(out.join("link")).unwrap(),
            Path::new("a.txt")
        );
        assert!(out.join("empty").is_dir());
        assert!(
            !out.join("secret.env").exists(),
            "ignored files were never captured"
        );
        assert_eq!(
            fs_err::read_to_string(w.join("a.txt")).unwrap(),
            "changed\n"
        );
        let e = s
            .restore("run_a", &pre, Some(&out), &mut |_| {})
            .unwrap_err();
        assert!(matches!(e, SnapshotError::NotEmpty(_)), "{e}");
    }

    #[test]
    fn an_interrupted_restore_is_finished_by_the_next_open() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("store");
        let s = store(&dir, ws.path());
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let pre = s.take("run_a", Trigger::PreRun, None).unwrap();
        fs_err::write(w.join("a.txt"), "changed\n").unwrap();
        fs_err::write(w.join("new.txt"), "new\n").unwrap();
        // A restore that wrote its journal and then died.
        let journal = Journal {
            tree: pre.tree.clone(),
            empty_dirs: pre.empty_dirs.clone(),
        };
        fs_err::write(dir.join(JOURNAL), serde_json::to_vec(&journal).unwrap()).unwrap();
        let _again = store(&dir, ws.path());
        assert_eq!(fs_err::read_to_string(w.join("a.txt")).unwrap(), "alpha\n");
        assert!(!w.join("new.txt").exists());
        assert!(!dir.join(JOURNAL).exists());
    }

    #[test]
    fn unchanged_trees_add_nothing_and_prune_keeps_the_initial() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let s = store(&home.path().join("store"), ws.path());
        let pre = s.take("run_a", Trigger::PreRun, None).unwrap();
        let same = s.take("run_a", Trigger::Idle, None).unwrap();
        assert_eq!(same.tree, pre.tree);
        assert_eq!((same.changed, same.bytes_added), (0, 0));
        let skipped = s.take_if_changed("run_a", Trigger::Idle, None).unwrap();
        assert_eq!(skipped, None, "the tree of the last snapshot: none taken");
        fs_err::write(ws.path().join("a.txt"), "changed\n").unwrap();
        let changed = s.take_if_changed("run_a", Trigger::Idle, None).unwrap();
        assert_eq!(changed.map(|m| m.changed), Some(1));
        for _ in 0..3 {
            s.take("run_a", Trigger::Manual, Some("x".into())).unwrap();
        }
        let removed = s.prune("run_a", 2, false, false).unwrap();
        assert_eq!(removed.len(), 4);
        let left = s.list("run_a").unwrap();
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].id, pre.id, "the pre-run snapshot stays");
        assert!(s.list("run_b").unwrap().is_empty());
    }

    /// git on the host, kept away from the user's configuration.
    fn host_git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    #[test]
    fn a_nested_repository_runs_nothing_and_stays_out_of_snapshots() {
        // The agent makes a repository of its own in the workspace, with a clean filter
        // in its own config: git running that repository's status would run the filter on
        // the host. Snapshots never hold a nested repository, so git never looks inside.
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let marker = home.path().join("ran");
        let sub = w.join("sub");
        fs_err::create_dir(&sub).unwrap();
        fs_err::write(sub.join("f"), "data\n").unwrap();
        host_git(&sub, &["init", "-q"]);
        host_git(&sub, &["add", "f"]);
        host_git(&sub, &["commit", "-q", "-m", "x"]);
        fs_err::write(sub.join(".gitattributes"), "* filter=x\n").unwrap();
        let payload = format!("sh -c 'touch {}; cat'", marker.display());
        host_git(&sub, &["config", "filter.x.clean", &payload]);
        let s = store(&home.path().join("store"), &w);
        let first = s.take("run_a", Trigger::Manual, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        fs_err::write(sub.join("f"), "DATA\n").unwrap();
        let second = s.take("run_a", Trigger::Manual, None).unwrap();
        s.diff(&first, None).unwrap();
        assert!(!marker.exists(), "the nested repository's filter ran");
        let listed = s
            .git
            .run(&["ls-tree", "-r", "--name-only", &second.tree])
            .unwrap();
        let listed = String::from_utf8_lossy(&listed);
        assert!(!listed.lines().any(|l| l.starts_with("sub")), "{listed}");
        assert_eq!(second.files, first.files);
    }

    #[test]
    fn a_restore_writes_nothing_through_a_planted_link() {
        // The agent plants `.a.txt.moat-restore` (the name an older restore wrote to) and
        // an ignored directory link, pointing outside the workspace; a restore must
        // change neither target.
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs_err::write(&victim, "keep\n").unwrap();
        let w = fs_err::canonicalize(ws.path()).unwrap();
        fs_err::create_dir_all(w.join("keys/inner")).unwrap();
        symlink(&victim, w.join(".a.txt.moat-restore")).unwrap();
        let s = store(&home.path().join("store"), &w);
        let snap = s.take("run_a", Trigger::Manual, None).unwrap();
        assert!(
            snap.empty_dirs.contains(&"keys/inner".to_owned()),
            "{snap:?}"
        );
        fs_err::write(w.join("a.txt"), "changed\n").unwrap();
        fs_err::remove_dir_all(w.join("keys")).unwrap();
        symlink(outside.path(), w.join("keys")).unwrap();
        fs_err::write(w.join(".gitignore"), "secret.env\nnode_modules/\nkeys\n").unwrap();
        s.restore("run_a", &snap, None, &mut |_| {}).unwrap();
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "keep\n");
        assert_eq!(
            fs_err::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o644,
            "mode untouched"
        );
        assert!(
            !outside.path().join("inner").exists(),
            "a directory was made outside"
        );
        assert_eq!(fs_err::read_to_string(w.join("a.txt")).unwrap(), "alpha\n");
        assert!(w.join("keys/inner").symlink_metadata().unwrap().is_dir());
    }

    /// A snapshot taken during a run holds what the run put at a protected path (the run's
    /// end moved it aside); a restore in place does not bring it back, and says so.
    #[test]
    fn a_restore_leaves_protected_paths_alone() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let s = store(&home.path().join("store"), &w);
        fs_err::create_dir_all(w.join(".vscode/empty")).unwrap();
        fs_err::write(w.join(".vscode/tasks.json"), "{\"tasks\": []}").unwrap();
        fs_err::write(w.join("a.txt"), "mid-run\n").unwrap();
        let mid = s.take("run_a", Trigger::AgentTurn, None).unwrap();
        fs_err::remove_dir_all(w.join(".vscode")).unwrap();
        fs_err::write(w.join("a.txt"), "later\n").unwrap();
        let report = s.restore("run_a", &mid, None, &mut |_| {}).unwrap();
        assert_eq!(report.kept_out, [".vscode/empty/", ".vscode/tasks.json"]);
        let kept = Rules {
            respect_gitignore: true,
            exclude: vec![],
            kept_out_of_restores: vec![".claude/settings.json".into()],
        };
        assert!(kept.keeps_out(".claude"), "above a kept path");
        assert!(kept.keeps_out(".claude/settings.json"));
        assert!(kept.keeps_out(".claude/settings.json/x"));
        assert!(!kept.keeps_out(".claude/notes.md"));
        assert!(!kept.keeps_out(".claudette"));
        assert!(!w.join(".vscode").exists());
        assert_eq!(
            fs_err::read_to_string(w.join("a.txt")).unwrap(),
            "mid-run\n"
        );
        let out = home.path().join("copy");
        s.restore("run_a", &mid, Some(&out), &mut |_| {}).unwrap();
        assert!(out.join(".vscode/tasks.json").exists(), "--to writes it");
    }

    #[test]
    fn ignored_files_are_captured_when_asked() {
        let ws = workspace();
        let home = tempfile::tempdir().unwrap();
        let w = fs_err::canonicalize(ws.path()).unwrap();
        let s = SnapshotStore::open(
            &home.path().join("store"),
            &w,
            Rules {
                respect_gitignore: false,
                exclude: vec!["node_modules/".into()],
                kept_out_of_restores: Vec::new(),
            },
        )
        .unwrap();
        let all = s.take("run_a", Trigger::Manual, None).unwrap();
        let out = home.path().join("copy");
        s.restore("run_a", &all, Some(&out), &mut |_| {}).unwrap();
        assert!(
            out.join("secret.env").exists(),
            "captured despite .gitignore"
        );
        assert!(
            !out.join("node_modules").exists(),
            "the extra pattern still applies"
        );
    }
}
