//! Reading a path without trusting the links on it: what it names as written, and whether
//! a link stands above it in a tree someone else writes (a workspace).

use std::path::{Component, Path, PathBuf};

/// `path` as written, with `.` dropped and each `..` taking away the component before it
/// (without asking the file system): what it names if no link is on the way, to compare
/// with what it resolves to.
pub fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

/// Whether a directory above `relative` (inside `root`) is a symbolic link, or not a
/// directory at all: what `relative` names is then not where it seems, and nothing should
/// be written, moved or removed there.
pub fn linked_on_the_way(root: &Path, relative: &Path) -> bool {
    let mut at = root.to_owned();
    let parts: Vec<_> = relative.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        if !at.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_read_as_written() {
        assert_eq!(
            lexically_normal(Path::new("/a/./b/../c")),
            Path::new("/a/c")
        );
        assert_eq!(lexically_normal(Path::new("a/../../b")), Path::new("b"));
    }

    #[test]
    fn a_link_or_a_file_above_a_path_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("real/inner")).unwrap();
        fs_err::write(root.join("file"), "").unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("link")).unwrap();
        assert!(!linked_on_the_way(root, Path::new("real/inner/x")));
        assert!(
            !linked_on_the_way(root, Path::new("link")),
            "the last part is not looked at"
        );
        assert!(linked_on_the_way(root, Path::new("link/inner/x")));
        assert!(linked_on_the_way(root, Path::new("file/x")));
        assert!(!linked_on_the_way(root, Path::new("")));
    }
}
