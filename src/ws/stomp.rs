//! A strict STOMP 1.2 frame codec.
//!
//! The WebSocket layer hands us the bytes of each received message; STOMP frames
//! may straddle messages or several may share one, so [`StompDecoder`] buffers
//! and yields one [`Incoming`] item (a frame or a heart-beat) at a time.
//! [`StompFrame::encode`] produces the wire form for frames we send.
//!
//! Choices worth knowing about:
//!
//! * **Incremental parsing.** The decoder is a small state machine (command
//!   line, header lines, body) that consumes each line as soon as it is
//!   complete and remembers how far it has already searched for the next
//!   terminator. A frame delivered one byte per push therefore costs linear
//!   time, not quadratic.
//! * **Size limit.** A frame counts from the first byte of its command line up
//!   to and including its NUL; heart-beats between frames do not count. The
//!   limit is also enforced on incomplete frames (every incomplete frame still
//!   needs at least its NUL, so `bytes seen + 1` is a lower bound of its final
//!   size), and a declared `content-length` is checked as soon as the headers
//!   end. A peer thus cannot make the buffer grow beyond the limit plus one
//!   push, provided the caller drains [`StompDecoder::next`] after every push.
//!   (The one exception is a lone CR between frames, kept because it may be
//!   the start of a CRLF heart-beat: one byte, relevant only with a limit of 0.)
//! * **Errors.** [`StompDecoder::push`] parses ahead as far as the next
//!   undelivered item so that it can refuse oversized frames right away; it
//!   reports only [`StompError::FrameTooLarge`]. Any other problem it finds is
//!   kept and reported by the following [`StompDecoder::next`], so frames that
//!   arrived before the bad one are still delivered first. After an error the
//!   decoder is poisoned (it frees its buffer and repeats the error), because
//!   a STOMP stream cannot be resynchronised reliably.
//! * **Colons in header values.** STOMP 1.2 requires `:` inside a value to be
//!   escaped as `\c`, but many clients send raw colons (for example in URLs or
//!   times), so a value is everything after the *first* colon of the line.
//! * **Carriage returns.** A header line may end in `\r\n`; a raw CR anywhere
//!   else in a header line is rejected as [`StompError::MalformedHeader`], as
//!   the 1.2 grammar excludes CR from header octets.
//! * **No escaping for CONNECT, STOMP and CONNECTED.** The spec exempts
//!   CONNECT and CONNECTED frames for backward compatibility with 1.0; STOMP is
//!   an alias of CONNECT, so it is treated the same way in both directions
//!   (decoding does not unescape, encoding does not escape).
//! * **`content-length`.** Only the first occurrence counts (repeated header
//!   rule). It must be plain ASCII digits; leading zeros are accepted since
//!   they are still a plain decimal integer.
//! * **Bodies** are split off the receive buffer as [`Bytes`] without copying.

use bytes::{Buf, Bytes, BytesMut};

/// Most headers accepted in one frame. Real clients send a handful; the cap
/// bounds the work and allocations a peer can cause per frame.
const MAX_HEADERS: usize = 64;

/// A STOMP 1.2 command (client and server frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client: open a session (1.2 alias of CONNECT).
    Stomp,
    /// Server: session opened.
    Connected,
    /// Client: send a message to a destination.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: cancel a subscription.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: reject a message.
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll back a transaction.
    Abort,
    /// Client: close the session gracefully.
    Disconnect,
    /// Server: a message for a subscription.
    Message,
    /// Server: acknowledges a frame that asked for a receipt.
    Receipt,
    /// Server: something went wrong; the connection is closed afterwards.
    Error,
}

impl Command {
    /// Every command, used for parsing and for prefix checks.
    const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Connected,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as it appears on the wire, e.g. `"CONNECT"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command name. Exact and case-sensitive: no surrounding
    /// whitespace and no line terminator.
    pub fn parse(s: &[u8]) -> Option<Command> {
        Self::ALL
            .into_iter()
            .find(|command| command.as_str().as_bytes() == s)
    }

    /// Whether header names and values of this frame use STOMP 1.2 escapes.
    /// CONNECT and CONNECTED are exempt by the spec; STOMP is CONNECT's alias.
    fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StompFrame {
    /// The frame's command.
    pub command: Command,
    /// Headers in wire order, unescaped; repeated names are kept.
    pub headers: Vec<(String, String)>,
    /// The body, possibly binary.
    pub body: Bytes,
}

impl StompFrame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Self {
        StompFrame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Appends a header (builder style). Existing headers of the same name
    /// are kept, and the earlier one takes precedence for readers.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (builder style).
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// First occurrence wins (STOMP 1.2 repeated header rule).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Serialises: COMMAND\n, headers name:value\n (escaped per 1.2 except for CONNECT and CONNECTED frames,
    /// which are never escaped), blank line, body, NUL. Adds `content-length:<n>` automatically when the
    /// body is non-empty and no content-length header was given.
    ///
    /// STOMP frames are not escaped either, as STOMP is an alias of CONNECT.
    /// Headers of unescaped frames are written verbatim, so the caller must
    /// keep CR, LF and (in names) `:` out of them. An explicit
    /// `content-length` is trusted, not checked against the body.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let escape = self.command.escapes_headers();
        out.extend_from_slice(self.command.as_str().as_bytes());
        out.push(b'\n');
        for (name, value) in &self.headers {
            write_header_text(out, name, escape);
            out.push(b':');
            write_header_text(out, value, escape);
            out.push(b'\n');
        }
        // Without content-length a NUL inside the body would end the frame
        // early, so a non-empty body always gets one.
        if !self.body.is_empty() && self.get("content-length").is_none() {
            out.extend_from_slice(b"content-length:");
            out.extend_from_slice(self.body.len().to_string().as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
    }

    /// Serialises into a new buffer; see [`StompFrame::encode_into`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.body.len());
        self.encode_into(&mut out);
        out
    }
}

/// Writes a header name or value, applying STOMP 1.2 escapes if asked.
fn write_header_text(out: &mut Vec<u8>, text: &str, escape: bool) {
    if !escape {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    // Byte-wise is safe: the escaped characters are ASCII, and ASCII bytes
    // never occur inside a multi-byte UTF-8 sequence.
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b':' => out.extend_from_slice(b"\\c"),
            _ => out.push(b),
        }
    }
}

/// One thing read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// An EOL between frames: the peer is alive.
    Heartbeat,
    /// A complete frame.
    Frame(StompFrame),
}

/// Why a byte stream is not valid STOMP 1.2. Every error is fatal for the
/// connection.
// Clone so a poisoned decoder can repeat its error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StompError {
    /// The frame is, or would become, larger than the configured limit.
    #[error("frame exceeds the {0} byte limit")]
    FrameTooLarge(usize),
    /// The command line is not an exact STOMP command.
    #[error("unknown command")]
    UnknownCommand,
    /// A header line has no colon, an empty name, or a stray CR.
    #[error("malformed header line")]
    MalformedHeader,
    /// A backslash in a header is not one of `\r`, `\n`, `\c`, `\\`.
    #[error("invalid escape sequence in header")]
    InvalidEscape,
    /// A header name or value is not UTF-8.
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// `content-length` is not a plain non-negative decimal that fits `usize`.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// The byte after a `content-length` body is not NUL.
    #[error("frame body is not terminated by NUL")]
    MissingNul,
    /// The frame has more than 64 headers.
    #[error("too many headers")]
    TooManyHeaders,
}

/// Where the decoder is inside the current frame.
#[derive(Debug)]
enum State {
    /// Between frames: EOLs are heart-beats, anything else starts a command line.
    Idle,
    /// Command line consumed; reading header lines until the blank line.
    Headers {
        command: Command,
        headers: Vec<(String, String)>,
    },
    /// Blank line consumed; waiting for the body and its NUL.
    Body {
        command: Command,
        headers: Vec<(String, String)>,
        content_length: Option<usize>,
    },
}

/// Incremental decoder: the WebSocket layer pushes each received message's bytes;
/// frames may be split across pushes or several may arrive in one push.
///
/// Typical use: `push` a message, then call `next` until it returns
/// `Ok(None)`; on any error send an ERROR frame and close.
#[derive(Debug)]
pub struct StompDecoder {
    /// Bytes received but not yet consumed by the state machine.
    buf: BytesMut,
    /// Largest frame accepted, command line through NUL.
    max_frame: usize,
    state: State,
    /// Bytes of the current frame already consumed from `buf`.
    frame_len: usize,
    /// Prefix of `buf` already searched for the current terminator, so
    /// small pushes do not cause rescans.
    scan: usize,
    /// An item parsed ahead (by `push`) that `next` has not returned yet.
    ready: Option<Incoming>,
    /// Set once an error occurred; the decoder is then unusable.
    failed: Option<StompError>,
}

impl StompDecoder {
    /// A decoder accepting frames of at most `max_frame` bytes, counted from
    /// the command line through the terminating NUL.
    pub fn new(max_frame: usize) -> Self {
        StompDecoder {
            buf: BytesMut::new(),
            max_frame,
            state: State::Idle,
            frame_len: 0,
            scan: 0,
            ready: None,
            failed: None,
        }
    }

    /// Buffers received bytes.
    ///
    /// Returns [`StompError::FrameTooLarge`] if the next undelivered frame
    /// already exceeds the limit, even though it is incomplete. Other errors
    /// found while looking ahead are reported by the next call to
    /// [`StompDecoder::next`]. Once poisoned, returns the stored error and
    /// ignores `data`.
    pub fn push(&mut self, data: &[u8]) -> Result<(), StompError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.buf.extend_from_slice(data);
        match self.advance() {
            Ok(()) => Ok(()),
            Err(err) => {
                let too_large = matches!(err, StompError::FrameTooLarge(_));
                self.fail(err.clone());
                if too_large {
                    Err(err)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Ok(None) = need more bytes. After an Err the decoder is poisoned: the caller sends ERROR and closes.
    // Not an `Iterator`: the three-way outcome (item, need more, fatal error)
    // does not fit `Option`, and callers want `?` on the error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Incoming>, StompError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if let Err(err) = self.advance() {
            self.fail(err.clone());
            return Err(err);
        }
        Ok(self.ready.take())
    }

    /// Poisons the decoder and releases the buffer, which may be large.
    fn fail(&mut self, err: StompError) {
        self.failed = Some(err);
        self.buf = BytesMut::new();
        self.state = State::Idle;
        self.ready = None;
    }

    /// Runs the state machine until an item is ready or more bytes are needed.
    fn advance(&mut self) -> Result<(), StompError> {
        // Each step either consumes bytes, completes an item, or reports that
        // it needs more input, so this loop terminates.
        while self.ready.is_none() {
            let progressed = match std::mem::replace(&mut self.state, State::Idle) {
                State::Idle => self.step_idle()?,
                State::Headers { command, headers } => self.step_headers(command, headers)?,
                State::Body {
                    command,
                    headers,
                    content_length,
                } => self.step_body(command, headers, content_length)?,
            };
            if !progressed {
                break;
            }
        }
        Ok(())
    }

    /// Between frames: a heart-beat, or the command line of a new frame.
    fn step_idle(&mut self) -> Result<bool, StompError> {
        match self.buf.first() {
            None => return Ok(false),
            Some(b'\n') => return Ok(self.heartbeat(1)),
            Some(b'\r') => match self.buf.get(1) {
                None => return Ok(false),
                Some(b'\n') => return Ok(self.heartbeat(2)),
                // A CR not followed by LF cannot start a command.
                Some(_) => return Err(StompError::UnknownCommand),
            },
            Some(_) => {}
        }
        let Some(line_len) = self.find(b'\n') else {
            // Fail early on garbage rather than waiting for a newline that
            // may never come; the prefix check also bounds this line's length.
            if !could_be_command_line(&self.buf) {
                return Err(StompError::UnknownCommand);
            }
            self.check_incomplete()?;
            return Ok(false);
        };
        let command =
            Command::parse(strip_cr(&self.buf[..line_len])).ok_or(StompError::UnknownCommand)?;
        self.consume_line(line_len)?;
        self.state = State::Headers {
            command,
            headers: Vec::new(),
        };
        Ok(true)
    }

    /// One header line, or the blank line that ends the headers.
    fn step_headers(
        &mut self,
        command: Command,
        mut headers: Vec<(String, String)>,
    ) -> Result<bool, StompError> {
        let Some(line_len) = self.find(b'\n') else {
            self.check_incomplete()?;
            self.state = State::Headers { command, headers };
            return Ok(false);
        };
        let line = strip_cr(&self.buf[..line_len]);
        if line.is_empty() {
            let content_length = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .map(|(_, value)| parse_content_length(value))
                .transpose()?;
            self.consume_line(line_len)?;
            if let Some(len) = content_length {
                // The whole frame size is known now: refuse before buffering
                // a body that could never be accepted.
                let total = self
                    .frame_len
                    .checked_add(len)
                    .and_then(|t| t.checked_add(1));
                if total.is_none_or(|t| t > self.max_frame) {
                    return Err(StompError::FrameTooLarge(self.max_frame));
                }
            }
            self.state = State::Body {
                command,
                headers,
                content_length,
            };
            return Ok(true);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(StompError::TooManyHeaders);
        }
        let header = parse_header(line, command.escapes_headers())?;
        headers.push(header);
        self.consume_line(line_len)?;
        self.state = State::Headers { command, headers };
        Ok(true)
    }

    /// The body and its terminating NUL.
    fn step_body(
        &mut self,
        command: Command,
        headers: Vec<(String, String)>,
        content_length: Option<usize>,
    ) -> Result<bool, StompError> {
        let body_len = match content_length {
            Some(len) => match self.buf.get(len) {
                Some(0) => len,
                Some(_) => return Err(StompError::MissingNul),
                None => {
                    // The declared size was already checked against the limit.
                    self.state = State::Body {
                        command,
                        headers,
                        content_length,
                    };
                    return Ok(false);
                }
            },
            None => match self.find(0) {
                Some(len) => len,
                None => {
                    self.check_incomplete()?;
                    self.state = State::Body {
                        command,
                        headers,
                        content_length,
                    };
                    return Ok(false);
                }
            },
        };
        // body_len < buf.len(), so body_len + 1 cannot overflow.
        if self.frame_len.saturating_add(body_len + 1) > self.max_frame {
            return Err(StompError::FrameTooLarge(self.max_frame));
        }
        let body = self.buf.split_to(body_len).freeze();
        self.buf.advance(1);
        self.scan = 0;
        self.frame_len = 0;
        self.ready = Some(Incoming::Frame(StompFrame {
            command,
            headers,
            body,
        }));
        Ok(true)
    }

    /// Consumes an EOL of `len` bytes between frames as a heart-beat.
    fn heartbeat(&mut self, len: usize) -> bool {
        self.buf.advance(len);
        self.scan = 0;
        self.ready = Some(Incoming::Heartbeat);
        true
    }

    /// Consumes a line of `line_len` bytes plus its LF as part of the frame.
    fn consume_line(&mut self, line_len: usize) -> Result<(), StompError> {
        let len = line_len + 1;
        self.buf.advance(len);
        self.scan = 0;
        self.frame_len = self.frame_len.saturating_add(len);
        // The frame still needs at least its NUL.
        if self.frame_len >= self.max_frame {
            return Err(StompError::FrameTooLarge(self.max_frame));
        }
        Ok(())
    }

    /// Called when the whole buffer belongs to the unfinished current frame:
    /// that frame will be at least one byte (its NUL) longer than what we have.
    fn check_incomplete(&self) -> Result<(), StompError> {
        if self.frame_len.saturating_add(self.buf.len()) >= self.max_frame {
            return Err(StompError::FrameTooLarge(self.max_frame));
        }
        Ok(())
    }

    /// Finds `byte` in the unsearched part of the buffer. When absent,
    /// records that the whole buffer has been searched.
    fn find(&mut self, byte: u8) -> Option<usize> {
        let start = self.scan.min(self.buf.len());
        match self.buf[start..].iter().position(|&b| b == byte) {
            Some(i) => Some(start + i),
            None => {
                self.scan = self.buf.len();
                None
            }
        }
    }
}

/// Removes the CR of a CRLF line ending (the LF is already excluded).
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether an unterminated line can still become a valid command line,
/// i.e. it is a prefix of `COMMAND` or equals `COMMAND\r`.
fn could_be_command_line(partial: &[u8]) -> bool {
    Command::ALL.into_iter().any(|command| {
        let name = command.as_str().as_bytes();
        name.starts_with(partial) || partial.strip_prefix(name) == Some(&b"\r"[..])
    })
}

/// Parses one header line (without its line ending).
fn parse_header(line: &[u8], unescape: bool) -> Result<(String, String), StompError> {
    // The line ending's CR is already stripped; any other CR is not allowed.
    if line.contains(&b'\r') {
        return Err(StompError::MalformedHeader);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(StompError::MalformedHeader)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() {
        return Err(StompError::MalformedHeader);
    }
    let name = std::str::from_utf8(name).map_err(|_| StompError::InvalidUtf8)?;
    let value = std::str::from_utf8(value).map_err(|_| StompError::InvalidUtf8)?;
    if unescape {
        Ok((unescape_header(name)?, unescape_header(value)?))
    } else {
        Ok((name.to_owned(), value.to_owned()))
    }
}

/// Decodes the STOMP 1.2 header escapes `\r`, `\n`, `\c` and `\\`.
fn unescape_header(text: &str) -> Result<String, StompError> {
    if !text.contains('\\') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        // The spec makes any other escape a fatal protocol error.
        let decoded = match chars.next() {
            Some('r') => '\r',
            Some('n') => '\n',
            Some('c') => ':',
            Some('\\') => '\\',
            _ => return Err(StompError::InvalidEscape),
        };
        out.push(decoded);
    }
    Ok(out)
}

/// Parses a `content-length` value: ASCII digits only (`str::parse` alone
/// would accept a leading `+`).
fn parse_content_length(value: &str) -> Result<usize, StompError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StompError::InvalidContentLength);
    }
    value.parse().map_err(|_| StompError::InvalidContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMIT: usize = 64 * 1024;

    /// Pushes `wire` in chunks of the given sizes (cycled; 1 if none), draining
    /// the decoder after every push. Returns the items and the first error.
    /// Also checks the buffering bound and that decoding terminates.
    fn feed(
        dec: &mut StompDecoder,
        wire: &[u8],
        chunks: &[usize],
    ) -> (Vec<Incoming>, Option<StompError>) {
        let mut items = Vec::new();
        let mut rest = wire;
        let mut sizes = chunks.iter().cycle();
        while !rest.is_empty() {
            let n = sizes.next().copied().unwrap_or(1).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            let pushed = dec.push(chunk);
            // `max(1)`: a lone CR between frames is kept even with a limit of 0.
            assert!(dec.buf.len() <= dec.max_frame.max(1) + chunk.len());
            if let Err(err) = pushed {
                return (items, Some(err));
            }
            loop {
                match dec.next() {
                    Ok(Some(item)) => {
                        items.push(item);
                        // Every item consumes at least one byte.
                        assert!(items.len() <= wire.len(), "decoder is looping");
                    }
                    Ok(None) => break,
                    Err(err) => return (items, Some(err)),
                }
            }
            // Between pushes only part of one frame (or a lone CR) remains.
            assert!(dec.buf.len() <= dec.max_frame.max(1));
        }
        (items, None)
    }

    fn decode_all(wire: &[u8]) -> Vec<Incoming> {
        let mut dec = StompDecoder::new(LIMIT);
        let (items, err) = feed(&mut dec, wire, &[wire.len().max(1)]);
        assert_eq!(err, None);
        items
    }

    fn decode_one(wire: &[u8]) -> StompFrame {
        match decode_all(wire).as_slice() {
            [Incoming::Frame(frame)] => frame.clone(),
            other => panic!("expected one frame, got {other:?}"),
        }
    }

    fn decode_err(wire: &[u8]) -> StompError {
        let mut dec = StompDecoder::new(LIMIT);
        match feed(&mut dec, wire, &[wire.len().max(1)]) {
            (_, Some(err)) => err,
            (items, None) => panic!("expected an error, got {items:?}"),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    // ---- decoding ----

    #[test]
    fn parses_a_stompjs_style_connect() {
        let frame = decode_one(
            b"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\nAuthorization:Bearer abc.def\n\n\0",
        );
        assert_eq!(frame.command, Command::Connect);
        assert_eq!(
            frame.headers,
            headers(&[
                ("accept-version", "1.2,1.1,1.0"),
                ("heart-beat", "10000,10000"),
                ("Authorization", "Bearer abc.def"),
            ])
        );
        assert_eq!(frame.get("Authorization"), Some("Bearer abc.def"));
        assert!(frame.body.is_empty());
    }

    #[test]
    fn parses_a_send_with_content_length_and_a_binary_body_containing_nul_bytes() {
        let frame = decode_one(b"SEND\ndestination:/queue/a\ncontent-length:5\n\n\0a\0\xff\0\0");
        assert_eq!(frame.command, Command::Send);
        assert_eq!(frame.get("destination"), Some("/queue/a"));
        assert_eq!(&frame.body[..], b"\0a\0\xff\0");
    }

    #[test]
    fn parses_a_send_without_content_length_up_to_the_first_nul() {
        let items = decode_all(b"SEND\ndestination:/queue/a\n\nhello world\0");
        let frame = StompFrame::new(Command::Send)
            .header("destination", "/queue/a")
            .body(&b"hello world"[..]);
        assert_eq!(items, vec![Incoming::Frame(frame)]);
    }

    #[test]
    fn accepts_crlf_line_endings() {
        let frame = decode_one(b"SEND\r\ndestination:/q\r\ncontent-length:2\r\n\r\nhi\0");
        assert_eq!(frame.command, Command::Send);
        assert_eq!(
            frame.headers,
            headers(&[("destination", "/q"), ("content-length", "2")])
        );
        assert_eq!(&frame.body[..], b"hi");
    }

    #[test]
    fn reports_heartbeats_before_between_and_after_frames() {
        let items = decode_all(b"\n\r\nACK\nid:1\n\n\0\n\nNACK\nid:2\n\n\0\r\n");
        let ack = StompFrame::new(Command::Ack).header("id", "1");
        let nack = StompFrame::new(Command::Nack).header("id", "2");
        assert_eq!(
            items,
            vec![
                Incoming::Heartbeat,
                Incoming::Heartbeat,
                Incoming::Frame(ack),
                Incoming::Heartbeat,
                Incoming::Heartbeat,
                Incoming::Frame(nack),
                Incoming::Heartbeat,
            ]
        );
    }

    #[test]
    fn a_heartbeat_crlf_split_across_pushes_is_one_heartbeat() {
        let mut dec = StompDecoder::new(LIMIT);
        dec.push(b"\r").unwrap();
        assert_eq!(dec.next(), Ok(None));
        dec.push(b"\n").unwrap();
        assert_eq!(dec.next(), Ok(Some(Incoming::Heartbeat)));
        assert_eq!(dec.next(), Ok(None));
    }

    #[test]
    fn decodes_a_frame_pushed_byte_by_byte() {
        let wire = b"MESSAGE\r\nsubscription:sub-0\nmessage-id:7\ncontent-length:3\n\na\0b\0\n";
        let mut dec = StompDecoder::new(LIMIT);
        let (items, err) = feed(&mut dec, wire, &[1]);
        assert_eq!(err, None);
        let frame = StompFrame::new(Command::Message)
            .header("subscription", "sub-0")
            .header("message-id", "7")
            .header("content-length", "3")
            .body(&b"a\0b"[..]);
        assert_eq!(items, vec![Incoming::Frame(frame), Incoming::Heartbeat]);
    }

    #[test]
    fn a_large_frame_pushed_byte_by_byte_decodes_in_linear_time() {
        // With rescans from the start of the frame on every push this would
        // take tens of billions of steps; it must finish instantly.
        let body = vec![b'x'; 256 * 1024];
        let wire = [&b"SEND\ndestination:/q\n\n"[..], &body, b"\0"].concat();
        let mut dec = StompDecoder::new(wire.len());
        let (items, err) = feed(&mut dec, &wire, &[1]);
        assert_eq!(err, None);
        let frame = StompFrame::new(Command::Send)
            .header("destination", "/q")
            .body(body);
        assert_eq!(items, vec![Incoming::Frame(frame)]);
    }

    #[test]
    fn decodes_two_frames_from_one_push() {
        let mut dec = StompDecoder::new(LIMIT);
        dec.push(b"BEGIN\ntransaction:t1\n\n\0COMMIT\ntransaction:t1\n\n\0")
            .unwrap();
        let begin = StompFrame::new(Command::Begin).header("transaction", "t1");
        let commit = StompFrame::new(Command::Commit).header("transaction", "t1");
        assert_eq!(dec.next(), Ok(Some(Incoming::Frame(begin))));
        assert_eq!(dec.next(), Ok(Some(Incoming::Frame(commit))));
        assert_eq!(dec.next(), Ok(None));
    }

    #[test]
    fn first_occurrence_of_a_repeated_header_wins() {
        let frame = decode_one(b"SEND\nfoo:first\nfoo:second\n\n\0");
        assert_eq!(frame.get("foo"), Some("first"));
        // Both are kept, in wire order.
        assert_eq!(
            frame.headers,
            headers(&[("foo", "first"), ("foo", "second")])
        );
    }

    #[test]
    fn first_content_length_wins() {
        let frame = decode_one(b"SEND\ncontent-length:1\ncontent-length:x\n\n\0\0");
        assert_eq!(&frame.body[..], b"\0");
    }

    #[test]
    fn decodes_header_escapes() {
        let frame = decode_one(b"SEND\na\\cb:x\\ny\\rz\\\\w\\c\n\n\0");
        assert_eq!(frame.headers, headers(&[("a:b", "x\ny\rz\\w:")]));
    }

    #[test]
    fn keeps_unescaped_colons_in_values() {
        let frame = decode_one(b"SEND\nreply-to:http://x:80/a\n\n\0");
        assert_eq!(frame.get("reply-to"), Some("http://x:80/a"));
    }

    #[test]
    fn does_not_unescape_connect_stomp_or_connected_headers() {
        for command in ["CONNECT", "STOMP", "CONNECTED"] {
            let wire = format!("{command}\nlogin:a\\cb\\q\n\n\0");
            let frame = decode_one(wire.as_bytes());
            assert_eq!(frame.get("login"), Some("a\\cb\\q"), "{command}");
        }
    }

    #[test]
    fn ignores_nul_bytes_in_headers() {
        // The 1.2 grammar allows NUL in header octets; only the body ends at NUL.
        let frame = decode_one(b"SEND\na:b\0c\n\n\0");
        assert_eq!(frame.get("a"), Some("b\0c"));
    }

    // ---- errors ----

    #[test]
    fn rejects_unknown_commands() {
        for wire in [
            &b"FOO\n\n\0"[..],
            b"send\n\n\0",
            b"SEND \n\n\0",
            b"SEND\r\r\n\n\0",
            b"\rSEND\n\n\0",
            b"\0",
        ] {
            assert_eq!(decode_err(wire), StompError::UnknownCommand, "{wire:?}");
        }
    }

    #[test]
    fn rejects_an_unknown_command_before_its_line_is_complete() {
        let mut dec = StompDecoder::new(LIMIT);
        // push only reports FrameTooLarge; next reports the rest.
        assert_eq!(dec.push(b"GET / HTTP/1.1"), Ok(()));
        assert_eq!(dec.next(), Err(StompError::UnknownCommand));
    }

    #[test]
    fn waits_for_a_partial_command_that_is_still_a_valid_prefix() {
        let mut dec = StompDecoder::new(LIMIT);
        dec.push(b"UNSUBSCRIBE\r").unwrap();
        assert_eq!(dec.next(), Ok(None));
    }

    #[test]
    fn rejects_malformed_header_lines() {
        for wire in [
            &b"SEND\nno-colon\n\n\0"[..],
            b"SEND\n:empty-name\n\n\0",
            b"SEND\na:b\rc\n\n\0",
            b"SEND\na:b\r\r\n\n\0",
        ] {
            assert_eq!(decode_err(wire), StompError::MalformedHeader, "{wire:?}");
        }
    }

    #[test]
    fn rejects_invalid_escapes() {
        for wire in [
            &b"SEND\na:b\\t\n\n\0"[..],
            b"SEND\na:b\\\n\n\0",
            b"SEND\na\\:b\n\n\0",
        ] {
            assert_eq!(decode_err(wire), StompError::InvalidEscape, "{wire:?}");
        }
    }

    #[test]
    fn rejects_non_utf8_headers() {
        assert_eq!(decode_err(b"SEND\na:\xff\n\n\0"), StompError::InvalidUtf8);
        assert_eq!(decode_err(b"SEND\n\xc3:b\n\n\0"), StompError::InvalidUtf8);
        assert_eq!(
            decode_err(b"CONNECT\na:\xff\n\n\0"),
            StompError::InvalidUtf8
        );
    }

    #[test]
    fn rejects_invalid_content_lengths() {
        for value in [
            "",
            "-1",
            "+1",
            " 1",
            "1 ",
            "0x1",
            "1.0",
            "99999999999999999999999",
        ] {
            let wire = format!("SEND\ncontent-length:{value}\n\nx\0");
            assert_eq!(
                decode_err(wire.as_bytes()),
                StompError::InvalidContentLength,
                "{value:?}"
            );
        }
    }

    #[test]
    fn rejects_a_body_not_followed_by_nul() {
        assert_eq!(
            decode_err(b"SEND\ncontent-length:2\n\nabc\0"),
            StompError::MissingNul
        );
    }

    #[test]
    fn accepts_64_headers_and_rejects_65() {
        let mut wire = String::from("SEND\n");
        for i in 0..MAX_HEADERS {
            wire.push_str(&format!("h{i}:v\n"));
        }
        let ok = format!("{wire}\n\0");
        assert_eq!(decode_one(ok.as_bytes()).headers.len(), MAX_HEADERS);
        let too_many = format!("{wire}one-more:v\n\n\0");
        assert_eq!(decode_err(too_many.as_bytes()), StompError::TooManyHeaders);
    }

    #[test]
    fn enforces_the_frame_size_limit_on_complete_frames() {
        let wire = b"SEND\na:b\n\nbody\0";
        let mut dec = StompDecoder::new(wire.len());
        assert!(matches!(feed(&mut dec, wire, &[wire.len()]), (_, None)));

        let mut dec = StompDecoder::new(wire.len() - 1);
        let (items, err) = feed(&mut dec, wire, &[wire.len()]);
        assert!(items.is_empty());
        assert_eq!(err, Some(StompError::FrameTooLarge(wire.len() - 1)));

        // Heart-beats around the frame do not count towards the limit.
        let mut dec = StompDecoder::new(wire.len());
        let padded = [&b"\n\n"[..], wire, b"\r\n"].concat();
        let (items, err) = feed(&mut dec, &padded, &[padded.len()]);
        assert_eq!((items.len(), err), (4, None));
    }

    #[test]
    fn enforces_the_frame_size_limit_on_incomplete_frames() {
        // A body without NUL.
        let mut dec = StompDecoder::new(100);
        dec.push(b"SEND\n\n").unwrap();
        assert_eq!(dec.next(), Ok(None));
        assert_eq!(dec.push(&[b'x'; 200]), Err(StompError::FrameTooLarge(100)));
        assert_eq!(dec.buf.len(), 0, "buffer is released");

        // An endless header line.
        let mut dec = StompDecoder::new(100);
        let mut line = b"SEND\nx:".to_vec();
        line.extend_from_slice(&[b'y'; 100]);
        assert_eq!(dec.push(&line), Err(StompError::FrameTooLarge(100)));

        // A declared content-length that cannot fit is refused before the body.
        let mut dec = StompDecoder::new(100);
        assert_eq!(
            dec.push(b"SEND\ncontent-length:1000\n\n"),
            Err(StompError::FrameTooLarge(100))
        );
    }

    #[test]
    fn a_poisoned_decoder_keeps_failing() {
        let mut dec = StompDecoder::new(LIMIT);
        dec.push(b"NOPE\n").unwrap();
        assert_eq!(dec.next(), Err(StompError::UnknownCommand));
        assert_eq!(dec.push(b"SEND\n\n\0"), Err(StompError::UnknownCommand));
        assert_eq!(dec.next(), Err(StompError::UnknownCommand));
    }

    #[test]
    fn frames_before_a_bad_frame_are_delivered_first() {
        let mut dec = StompDecoder::new(LIMIT);
        dec.push(b"ACK\nid:1\n\n\0BAD\n").unwrap();
        let ack = StompFrame::new(Command::Ack).header("id", "1");
        assert_eq!(dec.next(), Ok(Some(Incoming::Frame(ack))));
        assert_eq!(dec.next(), Err(StompError::UnknownCommand));
    }

    #[test]
    fn every_error_has_a_message() {
        assert_eq!(
            StompError::FrameTooLarge(10).to_string(),
            "frame exceeds the 10 byte limit"
        );
        assert_eq!(
            StompError::MissingNul.to_string(),
            "frame body is not terminated by NUL"
        );
    }

    // ---- commands ----

    #[test]
    fn commands_parse_exactly_what_they_print() {
        for command in Command::ALL {
            assert_eq!(Command::parse(command.as_str().as_bytes()), Some(command));
            let lower = command.as_str().to_ascii_lowercase();
            assert_eq!(Command::parse(lower.as_bytes()), None);
        }
        assert_eq!(Command::parse(b""), None);
        assert_eq!(Command::parse(b"SEND\n"), None);
    }

    // ---- encoding ----

    #[test]
    fn encodes_a_message_with_escaped_headers() {
        let frame = StompFrame::new(Command::Message)
            .header("a:b", "c\nd\re\\f")
            .header("destination", "a:b\nc");
        assert_eq!(
            frame.encode(),
            b"MESSAGE\na\\cb:c\\nd\\re\\\\f\ndestination:a\\cb\\nc\n\n\0"
        );
    }

    #[test]
    fn does_not_escape_connected_headers() {
        let frame = StompFrame::new(Command::Connected)
            .header("version", "1.2")
            .header("server", "chatgate\\1");
        assert_eq!(
            frame.encode(),
            b"CONNECTED\nversion:1.2\nserver:chatgate\\1\n\n\0"
        );
    }

    #[test]
    fn adds_content_length_only_when_needed() {
        let frame = StompFrame::new(Command::Message).body(&b"a\0b"[..]);
        assert_eq!(frame.encode(), b"MESSAGE\ncontent-length:3\n\na\0b\0");

        let explicit = StompFrame::new(Command::Message)
            .header("content-length", "3")
            .body(&b"abc"[..]);
        assert_eq!(explicit.encode(), b"MESSAGE\ncontent-length:3\n\nabc\0");

        let empty = StompFrame::new(Command::Receipt).header("receipt-id", "7");
        assert_eq!(empty.encode(), b"RECEIPT\nreceipt-id:7\n\n\0");
    }

    #[test]
    fn encode_into_appends() {
        let mut out = b"\n".to_vec();
        StompFrame::new(Command::Disconnect).encode_into(&mut out);
        assert_eq!(out, b"\nDISCONNECT\n\n\0");
    }

    // ---- properties ----

    /// Characters STOMP treats specially, mixed with arbitrary Unicode.
    fn header_text(min: usize) -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![':', '\n', '\r', '\\', 'c', 'n', 'r', '\0']);
        prop::collection::vec(prop_oneof![any::<char>(), special], min..8)
            .prop_map(String::from_iter)
    }

    fn escaped_command() -> impl Strategy<Value = Command> {
        prop::sample::select(
            Command::ALL
                .into_iter()
                .filter(|c| c.escapes_headers())
                .collect::<Vec<_>>(),
        )
    }

    fn round_trip_frame() -> impl Strategy<Value = StompFrame> {
        let name = header_text(1).prop_filter("auto header", |n| n != "content-length");
        (
            escaped_command(),
            prop::collection::vec((name, header_text(0)), 0..MAX_HEADERS),
            prop::collection::vec(any::<u8>(), 0..256),
        )
            .prop_map(|(command, headers, body)| StompFrame {
                command,
                headers,
                body: Bytes::from(body),
            })
    }

    /// Byte soup that often looks like STOMP, so the decoder gets deep.
    fn wireish() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..8),
            prop::sample::select(vec![
                &b"SEND\n"[..],
                b"MESSAGE\r\n",
                b"CONNECT\n",
                b"UNSUBSCRIBE",
                b"\n",
                b"\r\n",
                b"\r",
                b"\0",
                b":",
                b"\\",
                b"\\c",
                b"content-length:",
                b"content-length:3\n",
                b"a:b\n",
                b"\xff",
            ])
            .prop_map(<[u8]>::to_vec),
        ];
        prop::collection::vec(token, 0..64).prop_map(|tokens| tokens.concat())
    }

    fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(1usize..=64, 1..16)
    }

    proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn any_bytes_decode_or_are_refused_with_a_named_error(
            wire in prop::collection::vec(any::<u8>(), 0..1024),
            max_frame in 0usize..2048,
            chunks in chunk_sizes(),
        ) {
            let mut dec = StompDecoder::new(max_frame);
            let (items, err) = feed(&mut dec, &wire, &chunks);
            for item in &items {
                if let Incoming::Frame(frame) = item {
                    // A decoded frame fits the limit it was decoded under.
                    prop_assert!(frame.body.len() <= max_frame);
                }
            }
            if let Some(err) = err {
                prop_assert!(!err.to_string().is_empty());
            }
        }

        #[test]
        fn encoded_frames_decode_to_the_same_frame(
            frame in round_trip_frame(),
            chunks in chunk_sizes(),
        ) {
            let wire = frame.encode();
            let mut expected = frame.clone();
            if !expected.body.is_empty() {
                expected
                    .headers
                    .push(("content-length".into(), expected.body.len().to_string()));
            }

            // Exactly the frame's size is accepted...
            let mut dec = StompDecoder::new(wire.len());
            let (items, err) = feed(&mut dec, &wire, &chunks);
            prop_assert_eq!(err, None);
            prop_assert_eq!(items, vec![Incoming::Frame(expected.clone())]);

            // ...one byte less is not.
            let mut dec = StompDecoder::new(wire.len() - 1);
            let (items, err) = feed(&mut dec, &wire, &chunks);
            prop_assert!(items.is_empty());
            prop_assert_eq!(err, Some(StompError::FrameTooLarge(wire.len() - 1)));

            // Several frames with heart-beats between them.
            let stream = [&b"\r\n"[..], &wire, b"\n", &wire].concat();
            let mut dec = StompDecoder::new(wire.len());
            let (items, err) = feed(&mut dec, &stream, &chunks);
            prop_assert_eq!(err, None);
            prop_assert_eq!(
                items,
                vec![
                    Incoming::Heartbeat,
                    Incoming::Frame(expected.clone()),
                    Incoming::Heartbeat,
                    Incoming::Frame(expected),
                ]
            );
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
            wire in wireish(),
            max_frame in 0usize..256,
            chunks in chunk_sizes(),
        ) {
            // `feed` also asserts termination.
            let mut chunked = StompDecoder::new(max_frame);
            let (items, err) = feed(&mut chunked, &wire, &chunks);
            let mut whole = StompDecoder::new(max_frame);
            let (whole_items, whole_err) = feed(&mut whole, &wire, &[wire.len().max(1)]);
            // Early checks on partial data may name a different problem, but
            // the same items come out and either both fail or neither does.
            prop_assert_eq!(items, whole_items);
            prop_assert_eq!(err.is_some(), whole_err.is_some());
        }

        #[test]
        fn the_buffer_never_exceeds_the_limit_plus_one_push(
            wire in wireish(),
            max_frame in 0usize..64,
            chunks in chunk_sizes(),
        ) {
            // `feed` asserts the bound after every push and every drain.
            let mut dec = StompDecoder::new(max_frame);
            let _ = feed(&mut dec, &wire, &chunks);
            // An endless body or header line is cut off, however it arrives.
            let mut dec = StompDecoder::new(max_frame);
            let mut endless = b"SEND\nh:".to_vec();
            endless.resize(4 * max_frame + 16, b'x');
            let (_, err) = feed(&mut dec, &endless, &chunks);
            prop_assert_eq!(err, Some(StompError::FrameTooLarge(max_frame)));
        }
    }
}
