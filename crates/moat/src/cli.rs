//! The command line as clap sees it. Only definitions live here: turning these into
//! resolved settings is `settings.rs`'s job, acting on them is `cmd/`'s.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "moat",
    version = env!("MOAT_VERSION"),
    about = "Run AI coding agents in isolated containers; credentials stay on the host",
    propagate_version = true
)]
pub struct Cli {
    /// Show debug logs on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container with a workspace mounted at /workspace.
    Run(RunArgs),
    /// List runs.
    List(ListArgs),
    /// Show a run's output.
    Logs(LogsArgs),
    /// Reconnect to a running run.
    Attach(AttachArgs),
    /// Stop a running run.
    Stop(StopArgs),
    /// Remove runs: their containers and files.
    Destroy(DestroyArgs),
    /// Remove finished runs (older than an age) and the images no remaining run uses.
    Prune(PruneArgs),
    /// Show what a run did on the network.
    Trace(TraceArgs),
    /// Show the resolved settings and image plan for a workspace.
    Config(ConfigArgs),
    /// The dependencies moat can install into images.
    #[command(subcommand)]
    Deps(DepsCommand),
    /// Internal: own one run from start to end (started by `moat run`).
    #[command(name = "__supervise", hide = true)]
    Supervise(SuperviseArgs),
    /// Grant a credential (`anthropic`, `github`, `openai`, ...), or list grants and providers.
    Grant(GrantArgs),
    /// Remove a granted credential.
    Revoke(RevokeArgs),
    /// Run Claude Code in a container: interactive, or `-p PROMPT` to answer and exit.
    Claude(ClaudeArgs),
    /// Continue the most recent Claude Code conversation of a workspace (`moat claude -c`).
    Resume(ClaudeRunArgs),
    /// Check what runs need (Docker, base image, credentials, proxy CA, settings) and say
    /// how to fix what is missing.
    Doctor(DoctorArgs),
    /// Trust a workspace's moat.yaml/agent.yaml as it is now (shows what it asks for), or
    /// list the trusted workspaces.
    Trust(TrustArgs),
    /// A run's audit log: its timeline, verifying it, exporting it.
    Audit(AuditArgs),
    /// Workspace snapshots: take one, list, compare, restore, prune.
    Snapshot(SnapshotArgs),
    /// Stop trusting a workspace's moat.yaml/agent.yaml.
    Untrust(UntrustArgs),
    /// Put back what a run wrote to protected workspace paths (moat moved it aside).
    Accept(AcceptArgs),
    /// Show moat's version and the git commit it was built from.
    Version(VersionArgs),
    /// Print a shell completion script: `moat completion bash > ~/.local/share/bash-completion/completions/moat`.
    Completion(CompletionArgs),
    /// Print moat's man page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print JSON: {version, commit, commit_date}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `moat.1` and a `moat-COMMAND.1` for every command into DIR (e.g.
    /// `~/.local/share/man/man1`) instead of printing `moat.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,

    /// Run ID, unique ID prefix or name (default: the most recent run).
    pub run: Option<String>,

    /// Print the entries as a JSON array.
    #[arg(long)]
    pub json: bool,

    /// Only entries of this kind (repeatable), e.g. `credential_injected`.
    #[arg(long = "type", value_name = "KIND")]
    pub kinds: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check a run's audit log (or an exported bundle): the hash chain, the signed
    /// checkpoints, and the files the log covers.
    Verify {
        /// A run (ID, prefix or name; default: the most recent) or a bundle file.
        target: Option<String>,
        /// The fingerprint (`SHA256:…`) of the key the log must be signed with (default:
        /// this machine's key).
        #[arg(long, value_name = "FINGERPRINT")]
        key: Option<String>,
    },
    /// Write a run's audit log and the files it covers to one file that anyone verifies
    /// with the printed fingerprint alone.
    Export {
        /// Run ID, prefix or name.
        run: Option<String>,
        /// Where to write it.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Write an in-toto statement in a DSSE envelope instead (subject: the
        /// workspace's git commit after the run).
        #[arg(long)]
        attestation: bool,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: Option<SnapshotCommand>,

    /// Take a snapshot of this run's workspace now (ID, prefix or name; default: the most
    /// recent run).
    pub run: Option<String>,

    /// A label for the snapshot.
    #[arg(long)]
    pub label: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// A run's snapshots: ID, time, trigger, label, files changed, size added.
    List {
        run: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// What differs between a snapshot and another one, or the workspace now.
    Diff {
        run: String,
        /// A snapshot ID (or a unique prefix).
        snapshot: String,
        /// Another snapshot (default: the workspace now).
        other: Option<String>,
        /// Compare with the workspace now (the default without OTHER).
        #[arg(long, conflicts_with = "other")]
        workspace: bool,
        /// Counts only.
        #[arg(long)]
        stat: bool,
    },
    /// Put the workspace back as a snapshot had it (default: the run's first, taken
    /// before it started). A safety snapshot of the current state is taken first.
    Restore {
        run: String,
        snapshot: Option<String>,
        /// Write the snapshot into this new or empty directory instead; the workspace is
        /// left alone.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Do not ask (required without a terminal).
        #[arg(short, long)]
        yes: bool,
    },
    /// Keep only the newest N snapshots of a run (the pre-run one too, unless retention
    /// says otherwise).
    Prune {
        run: String,
        #[arg(long, value_name = "N")]
        keep: usize,
        /// Show what would go, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Workspace directory (default: the current directory).
    #[arg(value_name = "PATH", conflicts_with = "list")]
    pub path: Option<PathBuf>,

    /// List the trusted workspaces and whether their files still match.
    #[arg(long)]
    pub list: bool,

    /// With `--list`: print JSON instead of a table.
    #[arg(long, requires = "list")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UntrustArgs {
    /// Workspace directory (default: the current directory).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// Run ID, unique ID prefix or name (default: the most recent run).
    pub run: Option<String>,

    /// Only these paths (relative to the workspace, as the run reported them).
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ClaudeArgs {
    #[command(subcommand)]
    pub command: Option<ClaudeCommand>,

    #[command(flatten)]
    pub conversation: ConversationArgs,

    #[command(flatten)]
    pub run: ClaudeRunArgs,
}

#[derive(Debug, Subcommand)]
pub enum ClaudeCommand {
    /// The Claude Code sessions moat started, newest first.
    Sessions {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Claude Code plugins: `moat claude plugins list [WORKSPACE]`.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Every plugin of every source (host, workspace settings, the workspace file): its
    /// marketplace, version and commit, whether it is enabled and, if not, why.
    List {
        /// The workspace (default: the current directory).
        #[arg(value_name = "WORKSPACE")]
        path: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Which conversation `moat claude` holds (default: a new one).
#[derive(Debug, Args, Clone, Default)]
pub struct ConversationArgs {
    /// Continue the most recent conversation in the workspace.
    #[arg(short = 'c', long = "continue", conflicts_with = "resume")]
    pub continue_: bool,

    /// Resume a conversation: a Claude session ID, or the ID or name of the moat run that
    /// held it.
    #[arg(short, long, value_name = "SESSION|RUN")]
    pub resume: Option<String>,
}

/// What `moat claude` and `moat resume` share.
#[derive(Debug, Args, Clone, Default)]
pub struct ClaudeRunArgs {
    /// Workspace directory to mount at /workspace (default: the current directory, or the
    /// resumed run's workspace).
    #[arg(value_name = "WORKSPACE")]
    pub path: Option<PathBuf>,

    /// Answer PROMPT without a session, print the answer and exit with Claude Code's code.
    #[arg(short, long = "prompt", value_name = "PROMPT")]
    pub prompt: Option<String>,

    /// Ask before each tool use, as Claude Code does on a host (no
    /// `--dangerously-skip-permissions`).
    #[arg(long)]
    pub noyolo: bool,

    /// What moat does anyway (`--dangerously-skip-permissions`): accepted, with a note.
    #[arg(
        long,
        hide = true,
        alias = "dangerously-skip-permissions",
        conflicts_with = "noyolo"
    )]
    pub yolo: bool,

    #[command(flatten)]
    pub exec: ExecArgs,

    /// An initial prompt for the interactive session.
    #[arg(last = true, value_name = "PROMPT")]
    pub initial_prompt: Vec<String>,
}

/// Flags shared by every command that starts a run (`run` now, the agent commands later).
#[derive(Debug, Args, Clone, Default)]
pub struct ExecArgs {
    /// Start in the background and print the run ID.
    #[arg(short, long)]
    pub detach: bool,

    /// Name the run (shown by `moat list`, usable wherever a run is expected).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Take the name from a finished run that holds it: that run is destroyed first.
    #[arg(long)]
    pub replace: bool,

    /// Keep the container after the command exits.
    #[arg(long)]
    pub keep: bool,

    /// Rebuild the image even if a cached one exists.
    #[arg(long)]
    pub rebuild: bool,

    #[command(flatten)]
    pub settings: SettingsFlags,

    /// Trust the workspace's moat.yaml/agent.yaml as it is now, for this run and later
    /// ones (see `moat trust`).
    #[arg(long)]
    pub trust: bool,

    /// Show the resolved settings and the image plan; build and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The run flags that change a run's resolved settings: the ones `moat config` takes
/// (the others, such as `--rebuild` or `--detach`, only matter to a run that starts).
#[derive(Debug, Args, Clone, Default)]
pub struct SettingsFlags {
    /// Interactive session: a terminal, raw keys, window resizes follow.
    #[arg(short, long)]
    pub interactive: bool,

    /// Set an environment variable in the container (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Grant a credential to the run, adding to the configuration's `grants` (repeatable).
    #[arg(short, long = "grant", value_name = "GRANT")]
    pub grant: Vec<String>,

    /// Mount a host path: SRC:DST[:ro|rw] (repeatable).
    #[arg(long = "mount", value_name = "SRC:DST[:ro]")]
    pub mount: Vec<String>,

    /// Allow a host in the strict network policy (repeatable).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_host: Vec<String>,

    /// Take no workspace snapshots for this run.
    #[arg(long)]
    pub no_snapshots: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workspace directory to mount at /workspace (default: the current directory).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    #[command(flatten)]
    pub exec: ExecArgs,

    /// The command to run (default: the image's shell).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Run ID, unique ID prefix or name (default: the most recent run).
    pub run: Option<String>,

    /// The requests the run made through its proxy (without `--ssh`, the default).
    #[arg(long)]
    pub network: bool,

    /// The signatures the run's SSH agent made and refused (`ssh:` grants).
    #[arg(long)]
    pub ssh: bool,

    /// Print the recorded events as a JSON array.
    #[arg(long)]
    pub json: bool,

    /// Also print headers and body samples.
    #[arg(long)]
    pub details: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Workspace directory (default: the current directory).
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    #[command(flatten)]
    pub settings: SettingsFlags,

    /// The command a run would use.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DepsCommand {
    /// List every dependency in the registry.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show what one dependency installs, how, and which versions.
    Info {
        /// A registry name, e.g. `node`.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table (fields: docs/json.md).
    #[arg(long, conflicts_with_all = ["quiet", "format"])]
    pub json: bool,

    /// Only the runs still active (created or running).
    #[arg(long)]
    pub running: bool,

    /// Only the runs of this name; `*` matches any characters (`--name 'feat-*'`).
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,

    /// Print only the run IDs, one a line.
    #[arg(short, long, conflicts_with = "format")]
    pub quiet: bool,

    /// Print each run through a template: `{{.ID}}`, `{{.Name}}`, `{{.State}}`,
    /// `{{.ExitCode}}`, ... (the fields: `moat list --help` and docs/json.md); `\t` is a
    /// tab.
    #[arg(long, value_name = "TEMPLATE", long_help = crate::ui::TEMPLATE_HELP)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Run ID, unique ID prefix or name (default: the most recent run).
    pub run: Option<String>,

    /// Show only the last N lines.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,

    /// Keep printing new lines until the run ends.
    #[arg(short, long)]
    pub follow: bool,

    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,

    /// The output as the bytes the run wrote, escape codes and all (by default an
    /// interactive run is replayed on a terminal of the run's size and shown as text, and
    /// another run's output is shown without escape codes and control characters). To a
    /// terminal, what would act beyond its screen (the clipboard, file transfers) is still
    /// left out.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Run ID, unique ID prefix or name (default: the most recent run).
    pub run: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Run ID, unique ID prefix or name (default: the most recent running run).
    #[arg(conflicts_with = "all")]
    pub run: Option<String>,

    /// Stop every running run.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Run IDs, unique ID prefixes or names (one or more).
    #[arg(value_name = "RUN")]
    pub runs: Vec<String>,

    /// Every run that is over (exited, stopped or failed).
    #[arg(long, conflicts_with = "runs")]
    pub all_stopped: bool,

    /// Stop the run first if it is still running.
    #[arg(short, long)]
    pub force: bool,

    /// Keep the run's audit log (as a verifiable bundle in `$MOAT_HOME/audit/`).
    #[arg(long)]
    pub keep_audit: bool,

    /// Keep the run's workspace snapshots (they are removed with it otherwise).
    #[arg(long)]
    pub keep_snapshots: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Only runs that ended longer ago than this: `30m`, `12h`, `7d`, `2w` (default: every
    /// finished run).
    #[arg(long, value_name = "DURATION", value_parser = crate::ui::parse_age)]
    pub older_than: Option<jiff::SignedDuration>,

    /// Show what would go and the space it holds; remove nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask (required without a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    #[arg(long)]
    pub home: PathBuf,
    #[arg(long)]
    pub docker_host: String,
    pub run_id: String,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GrantArgs {
    #[command(subcommand)]
    pub command: Option<GrantCommand>,

    /// The provider to grant: `anthropic`, `github`, `openai`, `mcp` (with a NAME), `ssh`, or
    /// one of `moat grant providers`.
    #[arg(value_name = "PROVIDER")]
    pub provider: Option<String>,

    /// `moat grant mcp NAME`: the MCP credential to store, saved as `mcp-NAME` (the
    /// workspace file's `mcp[].auth.grant`).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Check the credential with a request to the service even where moat would not ask.
    #[arg(long, conflicts_with = "no_validate")]
    pub validate: bool,

    /// Save the credential without checking it with the service.
    #[arg(long)]
    pub no_validate: bool,

    /// `moat grant ssh`: the host the key is for, `HOST` or `HOST:PORT` (one grant per
    /// host; repeat the command for each).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// `moat grant ssh`: the key of your SSH agent to use, by the path of its private key
    /// or `.pub` file (default: the agent's first key).
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,

    /// `moat grant ssh`: pin this host key (`TYPE BASE64`, as known_hosts holds it)
    /// instead of looking the host up in `~/.ssh/known_hosts`; repeatable.
    #[arg(long = "host-key", value_name = "KEY")]
    pub host_key: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// The granted credentials: provider, kind, source, expiry, when granted.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The providers that can be granted: built-in and from `$MOAT_HOME/providers/*.yaml`.
    Providers {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The provider whose credential to remove, e.g. `github`, or an SSH grant,
    /// `ssh:github.com`.
    #[arg(value_name = "PROVIDER")]
    pub provider: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also build the minimal image, to prove image builds work.
    #[arg(long)]
    pub build: bool,

    /// Print the checks as a JSON array of {check, status, detail, hint}.
    #[arg(long)]
    pub json: bool,
}
