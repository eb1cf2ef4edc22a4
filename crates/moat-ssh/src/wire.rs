//! The SSH wire encoding (RFC 4251 §5) both sides of the agent protocol, the transport's
//! key exchange and the signed user-authentication data use: `byte`, `boolean`,
//! `uint32`, `string` and `mpint`, read with bounds checks so no input can make a reader
//! panic or allocate more than it holds.

use std::fmt;

/// Input that does not decode: what was expected, never the bytes themselves (they may be
/// a signature request's data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for WireError {}

/// Reads values off a byte slice, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// What has not been read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn byte(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1, "a byte is missing")?[0])
    }

    pub fn boolean(&mut self) -> Result<bool, WireError> {
        Ok(self.byte()? != 0)
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4, "a uint32 is cut short")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `string`: a uint32 length and that many bytes.
    pub fn string(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.u32()? as usize;
        self.take(len, "a string is longer than what follows it")
    }

    /// A `string` that must be UTF-8 (names: algorithms, users, services).
    pub fn utf8(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.string()?).map_err(|_| WireError("a name is not UTF-8"))
    }

    /// An `mpint` that must not be negative, as unsigned big-endian bytes without
    /// leading zeros.
    pub fn positive_mpint(&mut self) -> Result<&'a [u8], WireError> {
        let bytes = self.string()?;
        if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(WireError("an mpint is negative"));
        }
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        Ok(&bytes[start..])
    }

    /// Fails unless everything was read: trailing bytes mean the input is not what it
    /// claims to be.
    pub fn finish(&self) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError("unexpected bytes after the end"))
        }
    }
}

/// Appends values in the wire encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.bytes.push(b);
        self
    }

    pub fn boolean(&mut self, b: bool) -> &mut Self {
        self.byte(u8::from(b))
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn string(&mut self, s: impl AsRef<[u8]>) -> &mut Self {
        let s = s.as_ref();
        self.u32(u32::try_from(s.len()).expect("strings here are far below 4 GiB"));
        self.bytes.extend_from_slice(s);
        self
    }

    /// An `mpint` of an unsigned big-endian magnitude.
    pub fn positive_mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let start = magnitude
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(magnitude.len());
        let trimmed = &magnitude[start..];
        if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
            let mut padded = Vec::with_capacity(trimmed.len() + 1);
            padded.push(0);
            padded.extend_from_slice(trimmed);
            self.string(padded)
        } else {
            self.string(trimmed)
        }
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(bytes);
        self
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_round_trip() {
        let mut w = Writer::new();
        w.byte(7)
            .boolean(true)
            .u32(0xdead_beef)
            .string(b"ssh-ed25519")
            .positive_mpint(&[0, 0, 0x80, 1]);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.byte().unwrap(), 7);
        assert!(r.boolean().unwrap());
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.utf8().unwrap(), "ssh-ed25519");
        assert_eq!(r.positive_mpint().unwrap(), &[0x80, 1]);
        r.finish().unwrap();
    }

    #[test]
    fn short_and_hostile_input_is_an_error() {
        assert!(Reader::new(&[0, 0, 0]).u32().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]).string().is_err());
        assert!(Reader::new(&[0, 0, 0, 1, 0x80]).positive_mpint().is_err());
        assert!(Reader::new(&[0, 0, 0, 1, 0xff]).utf8().is_err());
        assert!(Reader::new(&[1]).finish().is_err());
    }

    proptest! {
        #[test]
        fn no_input_makes_a_reader_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            while r.string().is_ok() {}
            let mut r = Reader::new(&bytes);
            let _ = (r.byte(), r.positive_mpint(), r.utf8(), r.u32(), r.finish());
        }

        #[test]
        fn strings_round_trip(parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8)) {
            let mut w = Writer::new();
            for p in &parts { w.string(p); }
            let bytes = w.into_bytes();
            let mut r = Reader::new(&bytes);
            for p in &parts { prop_assert_eq!(r.string().unwrap(), p.as_slice()); }
            prop_assert!(r.finish().is_ok());
        }
    }
}
