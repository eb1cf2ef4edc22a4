//! What a credentialed request's answer says of the credential is blanked before the
//! client sees it: a server that reflects its request (an error page quoting the
//! `Authorization` header, a debug endpoint, `TRACE`) would otherwise hand the agent the
//! real value the proxy injected.
//!
//! The values are blanked byte for byte with `*`, so a `Content-Length` stays true, and
//! a value split across two frames is found too: the last bytes of what came (one fewer
//! than the longest credential, whatever they are) wait for the next frame, the body's
//! end, or [`RELEASE_AFTER`].

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::HeaderValue;
use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::secret::Secret;

/// What stands in for each byte of a credential.
const BLANK: u8 = b'*';

/// Shorter values are not looked for: they would blank ordinary text, and no
/// credential is that short.
const SHORTEST: usize = 8;

/// The forms of a grant's credentials that could come back in an answer: each header
/// value the rule writes (`Bearer TOKEN`), the token without its scheme word, and the
/// password inside a `Basic` value.
#[derive(Clone, Default)]
pub(crate) struct Needles(Arc<Vec<Secret>>);

impl Needles {
    /// The forms of `value`, a header value holding a credential, added to `self`.
    pub fn add_header_value(&mut self, value: &str) {
        let mut forms = vec![value.to_owned()];
        if let Some((scheme, rest)) = value.split_once(' ') {
            let rest = rest.trim();
            forms.push(rest.to_owned());
            if scheme.eq_ignore_ascii_case("basic")
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest)
                && let Ok(decoded) = String::from_utf8(decoded)
            {
                if let Some((_, password)) = decoded.split_once(':') {
                    forms.push(password.to_owned());
                }
                forms.push(decoded);
            }
        }
        let list = Arc::make_mut(&mut self.0);
        for form in forms {
            if form.len() >= SHORTEST && !list.iter().any(|s| s.expose() == form) {
                list.push(Secret::new(form));
            }
        }
    }

    /// `other`'s forms added to `self`.
    pub fn extend(&mut self, other: &Needles) {
        let list = Arc::make_mut(&mut self.0);
        for form in other.0.iter() {
            if !list.iter().any(|s| s.expose() == form.expose()) {
                list.push(form.clone());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn longest(&self) -> usize {
        self.forms().map(<[u8]>::len).max().unwrap_or(0)
    }

    /// The credentials, as bytes to look for.
    fn forms(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(|form| form.expose().as_bytes())
    }

    /// Blank every credential in `data`, one form after the other (a form found inside
    /// one already blanked is not found again).
    fn blank_in(&self, data: &mut [u8]) {
        for form in self.forms() {
            for found in found_in(data, form) {
                data[found].fill(BLANK);
            }
        }
    }

    fn any_in(&self, data: &[u8]) -> bool {
        self.forms().any(|form| memmem::find(data, form).is_some())
    }

    /// Header values holding a credential are blanked in place.
    pub fn blank_headers(&self, headers: &mut HeaderMap) {
        for value in headers.values_mut() {
            if self.any_in(value.as_bytes()) {
                let mut bytes = value.as_bytes().to_vec();
                self.blank_in(&mut bytes);
                if let Ok(blanked) = HeaderValue::from_bytes(&bytes) {
                    *value = blanked;
                }
            }
        }
    }
}

/// Where `form` is in `haystack`.
fn found_in(haystack: &[u8], form: &[u8]) -> Vec<std::ops::Range<usize>> {
    memmem::find_iter(haystack, form)
        .map(|start| start..start + form.len())
        .collect()
}

/// How long held bytes wait for more before they go on anyway. The same for every
/// byte, so when they go says nothing of what they are.
pub(crate) const RELEASE_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// One body's pass through [`Needles`], frame by frame.
///
/// The last `longest - 1` bytes of what came are always held back, whatever they are,
/// until more comes, the body ends or [`RELEASE_AFTER`] passes: holding only an end that
/// could begin a credential would tell an agent, by what is held, whether its guess of
/// the credential's start is right. A credential cut by a release is still blanked from
/// where it goes on: the search looks at what was passed on last, too.
pub(crate) struct Scrubber {
    needles: Needles,
    /// How much is held: one byte less than the longest credential.
    hold: usize,
    /// What came and is not passed on yet.
    held: BytesMut,
    /// The last `hold` bytes passed on (blanked), searched with what comes next.
    history: BytesMut,
    /// Armed while bytes are held and nothing comes: they go when it fires.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Scrubber {
    pub fn new(needles: Needles) -> Self {
        let hold = needles.longest().saturating_sub(1);
        Scrubber {
            held: BytesMut::with_capacity(2 * hold),
            history: BytesMut::with_capacity(2 * hold),
            timer: None,
            hold,
            needles,
        }
    }

    /// What can be passed on now that `data` came, blanked: all but the last `hold` bytes.
    pub fn pass(&mut self, data: Bytes) -> Bytes {
        self.timer = None;
        let mut joined = std::mem::take(&mut self.held);
        joined.extend_from_slice(&data);
        self.blank(&mut joined);
        let keep = self.hold.min(joined.len());
        self.held = joined.split_off(joined.len() - keep);
        self.passed(&joined);
        joined.freeze()
    }

    /// Everything held, passed on now (the body ended, or [`RELEASE_AFTER`] passed).
    pub fn release(&mut self) -> Option<Bytes> {
        self.timer = None;
        if self.held.is_empty() {
            return None;
        }
        let out = std::mem::take(&mut self.held);
        self.passed(&out);
        Some(out.freeze())
    }

    /// While nothing more comes: what is held, once it has waited [`RELEASE_AFTER`].
    /// `Pending` (with `cx` woken then) while it waits, and while nothing is held.
    pub fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<Bytes> {
        if self.held.is_empty() {
            return Poll::Pending;
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(RELEASE_AFTER)));
        std::task::ready!(timer.as_mut().poll(cx));
        Poll::Ready(self.release().unwrap_or_default())
    }

    /// Blank every credential in `data` and every one that began in what was passed on.
    fn blank(&self, data: &mut [u8]) {
        if !self.history.is_empty() {
            // One that began in what was passed on ends within `hold` bytes of it.
            let edge = data.len().min(self.hold);
            let mut window = Vec::with_capacity(self.history.len() + edge);
            window.extend_from_slice(&self.history);
            window.extend_from_slice(&data[..edge]);
            let before = self.history.len();
            for form in self.needles.forms() {
                for found in found_in(&window, form) {
                    if found.start < before {
                        data[..found.end - before].fill(BLANK);
                    }
                }
            }
        }
        self.needles.blank_in(data);
    }

    fn passed(&mut self, out: &[u8]) {
        self.history.extend_from_slice(out);
        if self.history.len() > self.hold {
            let cut = self.history.len() - self.hold;
            let _ = self.history.split_to(cut);
        }
    }

    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// Header values (trailers) holding a credential are blanked in place.
    pub fn blank_headers(&self, headers: &mut HeaderMap) {
        self.needles.blank_headers(headers);
    }
}

/// A byte stream (a protocol switch's upstream side) whose reads pass through a
/// [`Scrubber`]; writes go through untouched.
pub(crate) struct Scrubbed<T> {
    inner: T,
    scrubber: Scrubber,
    /// Scrubbed bytes not yet handed to the reader.
    ready: Bytes,
    /// The inner stream has ended (what the scrubber held has been handed out).
    ended: bool,
}

impl<T> Scrubbed<T> {
    pub fn new(inner: T, needles: Needles) -> Self {
        Scrubbed {
            inner,
            scrubber: Scrubber::new(needles),
            ready: Bytes::new(),
            ended: false,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Scrubbed<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    this.ended = true;
                    this.ready = this.scrubber.release().unwrap_or_default();
                }
                Poll::Ready(Ok(())) => {
                    this.ready = this.scrubber.pass(Bytes::copy_from_slice(read.filled()));
                    // An all-held read reads again rather than report an end it is not.
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => this.ready = std::task::ready!(this.scrubber.poll_release(cx)),
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Scrubbed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOKEN: &str = "ghp_REALTOKEN0123456789";

    fn needles() -> Needles {
        let mut n = Needles::default();
        n.add_header_value(&format!("Bearer {TOKEN}"));
        n
    }

    fn through(scrubber: &mut Scrubber, frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for frame in frames {
            out.extend_from_slice(&scrubber.pass(Bytes::copy_from_slice(frame)));
        }
        if let Some(rest) = scrubber.release() {
            out.extend_from_slice(&rest);
        }
        out
    }

    #[test]
    fn a_reflected_header_and_its_token_are_blanked_to_the_same_length() {
        let body = format!("you sent: Authorization: Bearer {TOKEN}; token={TOKEN}.");
        let out = through(&mut Scrubber::new(needles()), &[body.as_bytes()]);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out.len(), body.len());
        assert!(!out.contains("REALTOKEN"), "{out}");
        assert!(out.starts_with("you sent: Authorization: "), "{out}");
        assert!(
            out.ends_with(&format!("token={}.", "*".repeat(TOKEN.len()))),
            "{out}"
        );
    }

    #[test]
    fn a_token_split_across_frames_is_found() {
        let out = through(
            &mut Scrubber::new(needles()),
            &[b"data: x\n\ntoken=ghp_REAL", b"TOKEN0123456789 end\n\n"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("data: x\n\ntoken={} end\n\n", "*".repeat(TOKEN.len()))
        );
    }

    /// What is held does not depend on what it is: a guess of the credential's start is
    /// held exactly as long as anything else.
    #[test]
    fn what_is_held_says_nothing_of_the_credential() {
        let hold = format!("Bearer {TOKEN}").len() - 1;
        for guess in ["Bearer ghp_REAL", "Bearer ghp_XXXX", "plain text here"] {
            let mut scrubber = Scrubber::new(needles());
            let body = format!("{}{guess}", "x".repeat(100));
            let out = scrubber.pass(Bytes::from(body.clone()));
            assert_eq!(out.len(), body.len() - hold, "{guess}");
            assert_eq!(scrubber.held_len(), hold, "{guess}");
        }
    }

    /// Released by the clock in the middle of a credential, the rest of it is still
    /// blanked when it comes.
    #[test]
    fn a_credential_cut_by_a_release_is_blanked_from_where_it_goes_on() {
        let mut scrubber = Scrubber::new(needles());
        assert!(
            scrubber
                .pass(Bytes::from_static(b"token=ghp_REAL"))
                .is_empty()
        );
        assert_eq!(scrubber.release().as_deref(), Some(&b"token=ghp_REAL"[..]));
        let mut out = scrubber
            .pass(Bytes::from_static(b"TOKEN0123456789 end"))
            .to_vec();
        out.extend_from_slice(&scrubber.release().unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{} end", "*".repeat(15))
        );
    }

    #[test]
    fn basic_values_are_looked_for_with_their_password() {
        let mut n = Needles::default();
        n.add_header_value("Basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldDEyMw==");
        let out = through(
            &mut Scrubber::new(n),
            &[b"user x-access-token, password ghs_secret123"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "user x-access-token, password *************"
        );
    }

    #[test]
    fn short_values_and_other_text_are_left_alone() {
        let mut n = Needles::default();
        n.add_header_value("abc");
        assert!(n.is_empty());
        let mut headers = HeaderMap::new();
        headers.insert("x-echo", HeaderValue::from_str(TOKEN).unwrap());
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        needles().blank_headers(&mut headers);
        assert_eq!(headers["x-echo"], "*".repeat(TOKEN.len()).as_str());
        assert_eq!(headers["content-type"], "text/plain");
    }

    proptest! {
        /// However the body is cut into frames, the client gets as many bytes as were
        /// sent, no credential among them, and everything else as it was.
        #[test]
        fn any_framing_blanks_every_token_and_keeps_the_rest(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(TOKEN.to_owned()),
                    Just("ghp_".to_owned()),
                    "[a-zA-Z0-9 _\n]{0,12}",
                ],
                0..12,
            ),
            cuts in proptest::collection::vec(0usize..64, 0..8),
        ) {
            let body: String = parts.concat();
            let mut frames = Vec::new();
            let mut at = 0;
            for cut in cuts {
                let end = (at + cut).min(body.len());
                frames.push(&body.as_bytes()[at..end]);
                at = end;
            }
            frames.push(&body.as_bytes()[at..]);
            let out = through(&mut Scrubber::new(needles()), &frames);
            let whole = through(&mut Scrubber::new(needles()), &[body.as_bytes()]);
            prop_assert_eq!(out.len(), body.len());
            prop_assert!(memmem::find(&out, TOKEN.as_bytes()).is_none());
            prop_assert_eq!(&out, &whole);
            let expected = body.replace(TOKEN, &"*".repeat(TOKEN.len()));
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);

            // Released by the clock after every frame: a token may come through cut,
            // never whole, and no byte is lost or added.
            let mut scrubber = Scrubber::new(needles());
            let mut released = Vec::new();
            for frame in &frames {
                released.extend_from_slice(&scrubber.pass(Bytes::copy_from_slice(frame)));
                if let Some(held) = scrubber.release() {
                    released.extend_from_slice(&held);
                }
            }
            prop_assert_eq!(released.len(), body.len());
            prop_assert!(memmem::find(&released, TOKEN.as_bytes()).is_none());
        }
    }
}
