//! Scrubbing a stream of any size in bounded memory.
//!
//! The scanner reads `chunk` bytes at a time into a buffer that also keeps an uncommitted
//! tail of at least `overlap` bytes from the previous read. After each read it scans the whole
//! buffer, then writes out (committed) everything before a *cut*:
//!
//! * the cut starts `overlap` bytes before the end of the buffer, so any match shorter than
//!   `overlap` that starts before the cut is seen whole;
//! * it moves back to just after a line break, else a blank (within `overlap / 2`), so no token
//!   is split and the next scan starts with the left context a whole-text scan would have;
//! * it moves back to the start of a redaction that crosses it, so that match is rescanned with
//!   more text after it;
//! * if that would keep more than `2 · overlap` bytes, the cut stays where it is and the
//!   crossing redaction is split: its first part is redacted now, the rest is rescanned. Only
//!   matches longer than `overlap` are affected: verbatim system-prompt spans of more than the
//!   overlap (each part is still redacted if it has enough words), high-entropy runs and
//!   bearer tokens longer than that (each part is still a high-entropy run). PEM blocks are
//!   capped at [`super::PEM_CAP`] < [`DEFAULT_OVERLAP`], registered secrets' encodings at
//!   3 × [`super::MAX_SECRET_LEN`] < [`DEFAULT_OVERLAP`].
//!
//! Memory stays under `chunk + 2 · overlap` bytes plus the scan's working set.

use super::{Redaction, Region, Scrubber, marker};
use serde::Serialize;
use std::io::{self, Read, Write};

/// Bytes read per step: large enough that re-scanning the overlap costs ~6%, small enough that
/// the buffer stays in a core's L2 cache.
pub const DEFAULT_CHUNK: usize = 256 * 1024;

/// Bytes kept between steps: longer than any match the scanner must see whole.
pub const DEFAULT_OVERLAP: usize = 16 * 1024;

/// Smallest overlap used whatever the options say: longer than typical JWTs, keys and emails,
/// and small enough that tests with short inputs still cross many cuts.
pub const MIN_OVERLAP: usize = 256;

/// Buffer sizes of [`scrub_stream_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Bytes read per step (at least 1).
    pub chunk: usize,
    /// Bytes kept between steps; raised to [`MIN_OVERLAP`] and to the scrubber's longest
    /// literal pattern if smaller.
    pub overlap: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            chunk: DEFAULT_CHUNK,
            overlap: DEFAULT_OVERLAP,
        }
    }
}

/// Totals of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Bytes read from the input.
    pub bytes_in: u64,
    /// Bytes written to the output.
    pub bytes_out: u64,
    /// Redactions made.
    pub redactions: u64,
}

/// Scrubs `reader` into `writer` with the default buffer sizes, passing each redaction (with
/// offsets into the whole stream, in order) to `on_redaction`. Errors from the reader, the writer
/// or `on_redaction` stop the stream and are returned.
pub fn scrub_stream<R: Read, W: Write, F: FnMut(Redaction) -> io::Result<()>>(
    scrubber: &Scrubber,
    reader: R,
    writer: W,
    on_redaction: F,
) -> io::Result<Summary> {
    scrub_stream_with(
        scrubber,
        reader,
        writer,
        on_redaction,
        StreamOptions::default(),
    )
}

/// [`scrub_stream`] with explicit buffer sizes.
pub fn scrub_stream_with<R: Read, W: Write, F: FnMut(Redaction) -> io::Result<()>>(
    scrubber: &Scrubber,
    mut reader: R,
    mut writer: W,
    mut on_redaction: F,
    options: StreamOptions,
) -> io::Result<Summary> {
    let chunk = options.chunk.max(1);
    let overlap = options
        .overlap
        .max(MIN_OVERLAP)
        .max(scrubber.max_literal_len() + 16);
    let mut summary = Summary::default();
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + 2 * overlap);
    let mut out: Vec<u8> = Vec::new();
    let mut base: u64 = 0;
    let mut eof = false;
    while !eof || !buf.is_empty() {
        if !eof {
            // Reads into the spare capacity: zeroing `chunk` bytes first would cost a pass
            // over the whole stream. `read_to_end` retries `Interrupted`; it stops short of
            // `chunk` only at the end of the input.
            let read = (&mut reader).take(chunk as u64).read_to_end(&mut buf)?;
            eof = read < chunk;
            summary.bytes_in += read as u64;
            if !eof && buf.len() <= overlap {
                continue;
            }
        }
        let regions = scrubber.regions(&buf);
        let cut = if eof {
            buf.len()
        } else {
            choose_cut(&buf, &regions, overlap)
        };
        out.clear();
        let mut at = 0;
        for r in regions.iter().filter(|r| r.start < cut) {
            out.extend_from_slice(&buf[at..r.start]);
            out.extend_from_slice(marker(r.rep.rule).as_bytes());
            let piece = Region {
                end: r.end.min(cut),
                ..*r
            };
            on_redaction(scrubber.redaction(&piece, base))?;
            summary.redactions += 1;
            at = piece.end;
        }
        out.extend_from_slice(&buf[at..cut]);
        writer.write_all(&out)?;
        summary.bytes_out += out.len() as u64;
        buf.drain(..cut);
        base += cut as u64;
    }
    writer.flush()?;
    Ok(summary)
}

/// Where to commit up to; see the module docs. Needs `buf.len() > overlap`.
fn choose_cut(buf: &[u8], regions: &[Region], overlap: usize) -> usize {
    let len = buf.len();
    let hard = len.saturating_sub(overlap);
    let mut cut = hard;
    let floor = cut.saturating_sub(overlap / 2);
    // A line start keeps the context of `key = value` and `Bearer <token>` rules.
    let window = &buf[floor..cut];
    if let Some(p) = window
        .iter()
        .rposition(|b| *b == b'\n')
        .or_else(|| window.iter().rposition(u8::is_ascii_whitespace))
    {
        cut = floor + p + 1;
    }
    if let Some(r) = regions
        .iter()
        .find(|r| r.ctx.min(r.start) < cut && r.end > cut)
    {
        cut = r.ctx.min(r.start);
    }
    // A cut at 0 commits nothing and waits for more text; only a redaction longer than the
    // carry limit is split.
    if len - cut > 2 * overlap {
        cut = hard;
    }
    cut
}
