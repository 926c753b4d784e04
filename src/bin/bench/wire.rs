//! Response bodies as the load generator reads them: an incremental `transfer-encoding: chunked`
//! decoder and an SSE scanner that counts events across arbitrary read splits and notes `[DONE]`
//! and in-band `{"error"` events.

/// Incremental `transfer-encoding: chunked` decoder.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: Chunk,
    size: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size (extensions after `;` are skipped).
    #[default]
    Size,
    /// Skipping a chunk extension up to the line end.
    Extension,
    /// Expecting the `\n` of the size line.
    SizeLf,
    /// `size` data bytes to go.
    Data,
    /// The CRLF after the data.
    DataCr,
    DataLf,
    /// After the zero-size chunk: trailer lines until an empty one.
    Trailer {
        line_len: usize,
    },
    Done,
}

impl ChunkedDecoder {
    /// Decodes from `input`, handing data to `out`; returns the bytes used and whether the body
    /// ended (what follows belongs to the next response).
    pub fn feed(&mut self, input: &[u8], mut out: impl FnMut(&[u8])) -> Result<(usize, bool), String> {
        let mut i = 0;
        while i < input.len() && self.state != Chunk::Done {
            let b = input[i];
            match self.state {
                Chunk::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (b as char).to_digit(16).unwrap_or(0) as usize;
                        self.size = self.size.checked_mul(16).ok_or("chunk size overflow")? + digit;
                    }
                    b';' | b' ' | b'\t' => self.state = Chunk::Extension,
                    b'\r' => self.state = Chunk::SizeLf,
                    _ => return Err(format!("bad chunk size byte {b:#x}")),
                },
                Chunk::Extension => {
                    if b == b'\r' {
                        self.state = Chunk::SizeLf;
                    }
                }
                Chunk::SizeLf => {
                    if b != b'\n' {
                        return Err("chunk size line without LF".into());
                    }
                    self.state = if self.size == 0 {
                        Chunk::Trailer { line_len: 0 }
                    } else {
                        Chunk::Data
                    };
                }
                Chunk::Data => {
                    let take = self.size.min(input.len() - i);
                    out(&input[i..i + take]);
                    self.size -= take;
                    i += take;
                    if self.size == 0 {
                        self.state = Chunk::DataCr;
                    }
                    continue;
                }
                Chunk::DataCr => {
                    if b != b'\r' {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.state = Chunk::DataLf;
                }
                Chunk::DataLf => {
                    if b != b'\n' {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    self.state = Chunk::Size;
                }
                Chunk::Trailer { line_len } => {
                    self.state = match b {
                        b'\n' if line_len == 0 => Chunk::Done,
                        b'\n' => Chunk::Trailer { line_len: 0 },
                        b'\r' => Chunk::Trailer { line_len },
                        _ => Chunk::Trailer { line_len: line_len + 1 },
                    };
                }
                Chunk::Done => {}
            }
            i += 1;
        }
        Ok((i, self.state == Chunk::Done))
    }
}

/// Counts SSE events (blank-line separated) across arbitrary splits; notes `[DONE]` and errors.
#[derive(Debug, Default)]
pub struct SseScan {
    /// Events seen.
    pub events: u32,
    /// `data: [DONE]` seen.
    pub done: bool,
    /// `data: {"error"` seen.
    pub error: bool,
    head: [u8; 16],
    len: usize,
    prev: u8,
}

impl SseScan {
    /// Takes the next decoded body bytes.
    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            if b == b'\n' && self.prev == b'\n' {
                let head = &self.head[..self.len.min(16)];
                self.done |= head.starts_with(b"data: [DONE]");
                self.error |= head.starts_with(br#"data: {"error""#);
                self.events += 1;
                self.len = 0;
                self.prev = 0;
                continue;
            }
            if b == b'\n' && self.len == 0 {
                // A stray blank line between events.
                continue;
            }
            if self.len < 16 {
                self.head[self.len] = b;
            }
            self.len += 1;
            self.prev = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_across_any_split() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        for split in 0..wire.len() {
            let mut decoder = ChunkedDecoder::default();
            let mut out = Vec::new();
            let (a, done_a) = decoder.feed(&wire[..split], |d| out.extend_from_slice(d)).unwrap();
            if done_a {
                assert_eq!((a, out.as_slice()), (wire.len() - 4, b"hello, world".as_slice()));
                continue;
            }
            assert_eq!(a, split);
            let (b, done) = decoder.feed(&wire[split..], |d| out.extend_from_slice(d)).unwrap();
            assert!(done);
            assert_eq!(split + b, wire.len() - 4, "stops before the next response");
            assert_eq!(out, b"hello, world");
        }
    }

    #[test]
    fn a_bad_chunk_size_is_an_error() {
        assert!(ChunkedDecoder::default().feed(b"zz\r\n", |_| {}).is_err());
    }

    #[test]
    fn sse_events_are_counted_byte_by_byte() {
        let body = b"data: {\"a\":1}\n\ndata: {\"error\":{}}\n\ndata: [DONE]\n\n";
        let mut scan = SseScan::default();
        for b in body {
            scan.feed(std::slice::from_ref(b));
        }
        assert_eq!((scan.events, scan.done, scan.error), (3, true, true));
    }
}
