//! A deterministic tar for the build context: fixed order, mtime 0, owner 0, given modes.
//! Deterministic bytes make the content hash (and so the tag) stable.

pub(crate) fn build_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut sorted: Vec<_> = files.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes, mode) in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes)
            .expect("writing a tar to memory cannot fail");
    }
    builder
        .into_inner()
        .expect("writing a tar to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_input_does_not_matter() {
        let a = build_tar(&[("b", b"2", 0o644), ("a", b"1", 0o755)]);
        let b = build_tar(&[("a", b"1", 0o755), ("b", b"2", 0o644)]);
        assert_eq!(a, b);
        let mut archive = tar::Archive::new(&a[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }
}
