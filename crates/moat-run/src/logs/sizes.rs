//! `terminal.jsonl`: the sizes an interactive run's terminal had, one JSON object per
//! change (`{"ts":"…","cols":120,"rows":40}`), written by the attached CLI each time it
//! sizes the container's terminal. A full-screen program draws for its terminal's size,
//! so its output reads right only on a screen of that size (`moat logs` replays it).

use std::io::Write as _;
use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::LogError;

/// The container's terminal had `cols` × `rows` from `ts` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    pub ts: Timestamp,
    pub cols: u16,
    pub rows: u16,
}

/// The most entries read back: a terminal resized more often than this in one run is
/// replayed with the sizes it had last (and a hostile file costs bounded memory).
const MAX_SIZES: usize = 100_000;

/// Append one size, in one write (so a reader never sees half an entry unless the disk
/// filled up, and then skips it).
pub fn record_terminal_size(path: &Path, size: TerminalSize) -> Result<(), LogError> {
    let mut line = serde_json::to_vec(&size).expect("a size serialises");
    line.push(b'\n');
    let written = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(&line));
    written.map_err(|source| LogError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The sizes recorded, oldest first; none when the file is missing. Lines that do not
/// parse (a write cut by a full disk) are skipped.
pub fn read_terminal_sizes(path: &Path) -> std::io::Result<Vec<TerminalSize>> {
    let text = match fs_err::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sizes: Vec<TerminalSize> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|s: &TerminalSize| s.cols > 0 && s.rows > 0)
        .collect();
    if sizes.len() > MAX_SIZES {
        sizes.drain(..sizes.len() - MAX_SIZES);
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_back_in_order_and_a_cut_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("terminal.jsonl");
        assert!(read_terminal_sizes(&path).unwrap().is_empty());
        let first = TerminalSize {
            ts: "2026-12-01T10:00:00Z".parse().unwrap(),
            cols: 80,
            rows: 24,
        };
        let second = TerminalSize {
            cols: 120,
            rows: 40,
            ..first
        };
        record_terminal_size(&path, first).unwrap();
        record_terminal_size(&path, second).unwrap();
        fs_err::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"ts\":\"2026-12-01T1")
            .unwrap();
        assert_eq!(read_terminal_sizes(&path).unwrap(), vec![first, second]);
    }
}
