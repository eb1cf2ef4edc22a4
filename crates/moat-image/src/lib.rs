//! What image a run needs: the Dockerfile, its build context (a deterministic tar) and a
//! tag derived from the context's content.
//!
//! Pure: no Docker, no network, no files. The same [`ImageSpec`] always gives the same
//! bytes and the same `moat/run:<hash>` tag, which is what makes the image cache work.

mod context;
mod dockerfile;

pub use dockerfile::render_dockerfile;

use sha2::Digest;

/// The repository every image moat builds is tagged in.
pub const IMAGE_REPOSITORY: &str = "moat/run";
/// The base image when nothing asks for another.
pub const DEFAULT_BASE_IMAGE: &str = "debian:bookworm-slim";
/// Where the workspace is mounted, and the working directory of every run.
pub const WORKSPACE_DIR: &str = "/workspace";
/// The unprivileged user every command runs as.
pub const CONTAINER_USER: &str = "moatuser";
/// Its home directory.
pub const CONTAINER_HOME: &str = "/home/moatuser";
/// The UID/GID of moatuser when the workspace belongs to root (running as root is refused).
pub const FALLBACK_ID: u32 = 1000;

const INIT_SCRIPT: &[u8] = include_bytes!("scripts/moat-init.sh");
/// Path of the entrypoint inside the image.
pub const INIT_PATH: &str = "/usr/local/bin/moat-init";

/// The inputs that decide an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub base_image: String,
    /// UID and GID of moatuser: the owner of the workspace on the host.
    pub uid: u32,
    pub gid: u32,
}

impl ImageSpec {
    /// The default image for a workspace owned by `uid:gid`.
    pub fn for_owner(uid: u32, gid: u32) -> Self {
        let (uid, gid) = if uid == 0 {
            (FALLBACK_ID, FALLBACK_ID)
        } else {
            (uid, gid)
        };
        ImageSpec {
            base_image: DEFAULT_BASE_IMAGE.to_owned(),
            uid,
            gid,
        }
    }
}

/// Everything needed to build (or find) the image for an [`ImageSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// `moat/run:<first 16 hex digits of sha256(context)>`.
    pub tag: String,
    pub dockerfile: String,
    /// A tar holding `Dockerfile` and the files it copies.
    pub context: Vec<u8>,
}

/// Turn a spec into a build plan.
pub fn plan(spec: &ImageSpec) -> BuildPlan {
    let dockerfile = render_dockerfile(spec);
    let context = context::build_tar(&[
        ("Dockerfile", dockerfile.as_bytes(), 0o644),
        ("moat-init", INIT_SCRIPT, 0o755),
    ]);
    let digest = hex::encode(sha2::Sha256::digest(&context));
    BuildPlan {
        tag: format!("{IMAGE_REPOSITORY}:{}", &digest[..16]),
        dockerfile,
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_spec_gives_the_same_tag_and_bytes() {
        let a = plan(&ImageSpec::for_owner(1234, 1234));
        let b = plan(&ImageSpec::for_owner(1234, 1234));
        assert_eq!(a, b);
        assert!(a.tag.starts_with("moat/run:"));
        assert_eq!(a.tag.len(), "moat/run:".len() + 16);
    }

    #[test]
    fn a_different_owner_gives_a_different_tag() {
        let a = plan(&ImageSpec::for_owner(1234, 1234));
        let b = plan(&ImageSpec::for_owner(1235, 1234));
        assert_ne!(a.tag, b.tag);
    }

    #[test]
    fn root_owned_workspaces_get_the_fallback_user() {
        let spec = ImageSpec::for_owner(0, 0);
        assert_eq!((spec.uid, spec.gid), (FALLBACK_ID, FALLBACK_ID));
    }
}
