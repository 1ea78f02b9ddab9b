//! `borderlane score`: NDJSON manifests in, NDJSON decisions out, in input order, scored on every core.
//!
//! Bad lines go to the dead-letter file as `{"line", "kind", "message", "raw"}` and scoring goes on. The
//! input is read in large blocks; each block is split into lines, scored in parallel with rayon in chunks
//! that each fill their own output buffer, and the buffers are written in order.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use std::sync::Arc;

use borderlane_core::history::{History, HistoryAsOf, Watermark};
use borderlane_core::json;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::resumption::Resumptions;
use borderlane_core::score::{process_json, Lookups};
use borderlane_core::table::{FrozenTable, PartnerTable};
use borderlane_core::time::Timestamp;
use borderlane_core::wire::Limits;
use rayon::prelude::*;
use serde::Serialize;

use crate::analysis::summary::{Counts, Tally};

#[derive(clap::Args)]
pub struct Args {
    /// Manifests, one JSON object per line; `-` or absent for stdin.
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Decisions, one per line; `-` or absent for stdout.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Partner records (NDJSON) for the partner table.
    #[arg(long, short)]
    pub partners: Option<PathBuf>,
    /// Policy file.
    #[arg(long, default_value = "config/policy.toml")]
    pub policy: PathBuf,
    /// Dead-letter file for lines that cannot be decided; without it they are only counted.
    #[arg(long)]
    pub dlq: Option<PathBuf>,
    /// Leave `decided_at` out, so two runs produce byte-identical output.
    #[arg(long)]
    pub no_timestamp: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json_summary: bool,
    /// Exam outcomes (NDJSON, complete records) for the party history of a policy with `[history]`.
    /// Positions: partition 0 and the line index, or each line's `"position"` in a topic export.
    #[arg(long)]
    pub outcomes: Option<PathBuf>,
    /// Read the history as of this watermark (a decision's `history_as_of`: `{"0": 120}`, `0:120,1:7`, or
    /// `120` for partition 0) to reproduce that decision; default: every record of `--outcomes`.
    #[arg(long, requires = "outcomes")]
    pub history_as_of: Option<String>,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    line: u64,
    kind: &'static str,
    message: &'a str,
    raw: std::borrow::Cow<'a, str>,
}

impl DeadLetter<'_> {
    /// Appends the dead letter's JSON: the bytes `serde_json::to_writer` writes through the derived
    /// `Serialize` (kept as the reference for the test below), without serde.
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"line\":");
        json::int(out, self.line);
        out.extend_from_slice(b",\"kind\":");
        json::string(out, self.kind);
        out.extend_from_slice(b",\"message\":");
        json::string(out, self.message);
        out.extend_from_slice(b",\"raw\":");
        json::string(out, &self.raw);
        out.push(b'}');
    }
}

/// Lines per parallel chunk: big enough to amortise rayon, small enough that the last chunk of a block
/// (the cores wait for it before the next block starts) is short.
const CHUNK: usize = 128;
/// Bytes read per block.
const BLOCK: usize = 8 << 20;
/// Most lines a block: 256 chunks, reached only by lines shorter than 256 bytes on average (no manifest is
/// that short), so only a read mostly of blank or short lines is sent in several parts.
const BLOCK_LINES: usize = 256 * CHUNK;
/// Room for a chunk's decisions, reserved up front, and the biggest chunk output kept for reuse. Every
/// pooled buffer is this big, so none grows while it is written unless a chunk's decisions pass a megabyte
/// (128 lines of 8 KiB). With room for 2 KiB a line, every new buffer grew once on the 1.74 KB mix (2.35 KB
/// decisions), and whether glibc's `realloc` then copied what it held depended on the allocator's state,
/// so on the threads' timing: ~4 % of `score`'s instructions in some runs. Reserved pages that are never
/// written are never touched (peak RSS measured unchanged). `take` hands out pooled buffers as they are:
/// every one was made with this capacity, and bigger ones are not pooled.
const OUT_KEEP: usize = 1 << 20;
/// Output buffer: a chunk's decisions (~225–295 KiB) are bigger, so they go straight to the file, uncopied.
const OUT_BUF: usize = 64 << 10;

/// A block of whole lines and where each line is: (line number, start, end) in `buf`, a trailing `\r`
/// already cut off.
struct Block {
    /// Shared by the parts of a block read with more than [`BLOCK_LINES`] lines.
    buf: Arc<Vec<u8>>,
    lines: Vec<(u64, usize, usize)>,
}

/// Buffers handed back for reuse. Fresh multi-megabyte buffers cost a page fault (and the kernel zeroing
/// the page) for every 4 KiB written into them: a fifth of `score`'s time before they were reused.
struct Pool {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Most buffers kept: about as many as are in flight at once.
    keep: usize,
    /// Biggest buffer kept: one grown by a very long line or a huge manifest's decisions is freed, so it
    /// does not pin its memory for the whole run.
    max_capacity: usize,
}

impl Pool {
    fn new(keep: usize, max_capacity: usize) -> Pool {
        Pool {
            free: std::sync::Mutex::new(Vec::new()),
            keep,
            max_capacity,
        }
    }

    /// An empty buffer, reused if one is free.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Keeps `buf` for reuse, within the pool's bounds.
    fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > self.max_capacity {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < self.keep {
            free.push(buf);
        }
    }
}

/// What every line is scored against: fixed for the whole run.
struct Ctx<'a> {
    policy: &'a CompiledPolicy,
    table: &'a FrozenTable,
    history: Option<HistoryAsOf<'a>>,
    limits: Limits,
    decided_at: Option<Timestamp>,
}

/// One chunk's output: decisions, dead letters, counts.
#[derive(Default)]
struct Sink {
    out: Vec<u8>,
    dlq: Vec<u8>,
    counts: Counts,
}

impl Ctx<'_> {
    /// Scores one line; appends the decision or the dead letter to the sink and counts it.
    fn score_line(&self, line_no: u64, line: &[u8], sink: &mut Sink) {
        let lookups = Lookups::new(self.table, self.history);
        // The decision's JSON written straight into the output (no `Decision` built).
        match process_json(
            self.policy,
            lookups,
            line,
            &self.limits,
            &Resumptions::NONE,
            self.decided_at.as_ref(),
            &mut sink.out,
        ) {
            Ok((m, v)) => {
                sink.counts.add_verdict(&v, &m);
                sink.out.push(b'\n');
            }
            Err(e) => {
                sink.counts.add_dead_letter(e.kind);
                let dl = DeadLetter {
                    line: line_no,
                    kind: e.kind.as_str(),
                    message: &e.message,
                    raw: String::from_utf8_lossy(line),
                };
                dl.write_json(&mut sink.dlq);
                sink.dlq.push(b'\n');
            }
        }
    }
}

/// Reads `input` in blocks of about `block` bytes, each ending at a line boundary (the last may not end in
/// a newline), finds the lines of each and sends them on, at most `max_lines` to a [`Block`] (a block read
/// with more lines is sent as several sharing its buffer). Every line is a record, blank ones included
/// (they are `empty` dead letters): one outcome each. The line cap bounds what one block's line index and
/// outcomes hold in memory however short its lines: 8 MiB of blank lines was 8 M lines indexed and 8 M dead
/// letters held at once (1.83–2.27 GB peak RSS for a 20 MB input).
fn read_blocks(
    input: &mut dyn Read,
    block: usize,
    max_lines: usize,
    free: &Pool,
    tx: std::sync::mpsc::SyncSender<Block>,
) -> anyhow::Result<()> {
    anyhow::ensure!(max_lines > 0, "a block holds at least one line");
    let mut carry: Vec<u8> = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        let mut buf = free.take(block + carry.len());
        buf.append(&mut carry);
        if carry.capacity() > block {
            // It held a very long line: not kept for the rest of the run.
            carry = Vec::new();
        }
        // Room for the whole read up front: a reused buffer is only as big as its last block, and
        // `read_to_end` would otherwise double it (past the size the pool keeps).
        buf.reserve_exact(block);
        let read = input.take(block as u64).read_to_end(&mut buf)?;
        let end = if read == 0 {
            buf.len()
        } else {
            match memchr::memrchr(b'\n', &buf) {
                Some(i) => i + 1,
                // No newline yet: the whole block is part of one long line.
                None => {
                    carry = buf;
                    continue;
                }
            }
        };
        carry.extend_from_slice(&buf[end..]);
        buf.truncate(end);
        if buf.is_empty() {
            return Ok(());
        }
        let buf = Arc::new(buf);
        let mut at = 0;
        loop {
            let (lines, next) = split_lines(&buf, at, &mut line_no, max_lines);
            at = next;
            if at < buf.len() {
                if tx
                    .send(Block {
                        buf: Arc::clone(&buf),
                        lines,
                    })
                    .is_err()
                {
                    return Ok(());
                }
            } else {
                // The last part takes the buffer itself: a block read in one part is never shared, and
                // whoever scores the last part gets the buffer back for the pool.
                if tx.send(Block { buf, lines }).is_err() || read == 0 {
                    return Ok(());
                }
                break;
            }
        }
    }
}

/// The lines of `buf` from `at` (whole lines, the last newline optional), at most `max_lines`, numbered on
/// from `line_no`, and where the next line starts (`buf.len()` when none is left).
fn split_lines(
    buf: &[u8],
    at: usize,
    line_no: &mut u64,
    max_lines: usize,
) -> (Vec<(u64, usize, usize)>, usize) {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut lines = Vec::with_capacity(((body.len() - at) / 1024 + 1).min(max_lines));
    let mut start = at;
    for nl in memchr::memchr_iter(b'\n', &body[at..])
        .map(|i| at + i)
        .chain(std::iter::once(body.len()))
    {
        if lines.len() == max_lines {
            return (lines, start);
        }
        let end = if nl > start && body[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        *line_no += 1;
        lines.push((*line_no, start, end));
        start = nl + 1;
    }
    (lines, buf.len())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .ok();
    }
    let policy = crate::load::policy::load(&args.policy)?;
    let limits = Limits::default();
    let table = PartnerTable::new();
    if let Some(path) = &args.partners {
        let r = crate::load::partners::load(path, &table, &limits)?;
        eprintln!(
            "partners: {} loaded, {} tombstones, {} rejected",
            r.upserts,
            r.tombstones,
            r.rejected.len()
        );
        for (line, e) in r.rejected.iter().take(5) {
            eprintln!("  partners line {line}: {e}");
        }
    }
    // Loaded once, then only read: lookups without locks.
    let table = table.freeze();
    let history = History::new();
    let as_of = match &args.outcomes {
        Some(path) => {
            let r = crate::load::outcomes::load(path, &history, &limits)?;
            let as_of = match &args.history_as_of {
                Some(w) => Watermark::parse(w)
                    .map_err(|e| anyhow::anyhow!("--history-as-of {w:?}: {e}"))?,
                None => r.watermark.clone(),
            };
            eprintln!(
                "outcomes: {} loaded, {} rejected; history as of {} (the file holds {})",
                r.inserted,
                r.rejected.len(),
                serde_json::to_string(&as_of)?,
                serde_json::to_string(&r.watermark)?,
            );
            for (line, e) in r.rejected.iter().take(5) {
                eprintln!("  outcomes line {line}: {e}");
            }
            if policy.doc.history.is_none() {
                eprintln!("  (the policy has no [history] section: the outcomes are not read)");
            }
            Some(Arc::new(as_of))
        }
        None => None,
    };
    let mut input: Box<dyn Read + Send> = match &args.input {
        None => Box::new(std::io::stdin()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
    };
    let mut output: Box<dyn Write + Send> = match &args.output {
        None => Box::new(BufWriter::with_capacity(OUT_BUF, std::io::stdout())),
        Some(p) if p.as_os_str() == "-" => {
            Box::new(BufWriter::with_capacity(OUT_BUF, std::io::stdout()))
        }
        Some(p) => Box::new(BufWriter::with_capacity(
            OUT_BUF,
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
    };
    let mut dlq: Option<Box<dyn Write + Send>> = match &args.dlq {
        Some(p) => Some(Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        None => None,
    };
    let ctx = Ctx {
        policy: &policy,
        table: &table,
        history: as_of.as_ref().map(|as_of| HistoryAsOf {
            history: &history,
            as_of,
        }),
        limits,
        decided_at: if args.no_timestamp {
            None
        } else {
            crate::clock::now()
        },
    };

    let started = Instant::now();
    // Three stages overlap: a reader thread cuts the input into blocks at line boundaries, rayon scores each
    // block on every core, and a writer thread writes the results in order.
    let (blocks_tx, blocks_rx) = std::sync::mpsc::sync_channel::<Block>(2);
    let (out_tx, out_rx) = std::sync::mpsc::sync_channel::<Vec<Sink>>(2);
    // Blocks and output buffers go back to these once used: four blocks' worth (two queued, one scored,
    // one read), chunk outputs ([`OUT_KEEP`] reserved each; ~225–295 KiB written on ~1–1.7 KB manifests).
    let free_blocks = Pool::new(4, 2 * BLOCK);
    let free_outputs = Pool::new(4 * (BLOCK / 1024 / CHUNK + 1), OUT_KEEP);
    let tally = std::thread::scope(|scope| -> anyhow::Result<Tally> {
        let free_blocks = &free_blocks;
        let free_outputs = &free_outputs;
        let reader = scope
            .spawn(move || read_blocks(&mut input, BLOCK, BLOCK_LINES, free_blocks, blocks_tx));
        let writer = scope.spawn(move || -> anyhow::Result<Tally> {
            let mut counts = Counts::default();
            for sinks in out_rx {
                for sink in sinks {
                    output.write_all(&sink.out)?;
                    if let Some(d) = dlq.as_mut() {
                        d.write_all(&sink.dlq)?;
                    }
                    counts.merge(&sink.counts);
                    free_outputs.give(sink.out);
                }
            }
            output.flush()?;
            if let Some(d) = dlq.as_mut() {
                d.flush()?;
            }
            Ok(counts.tally())
        });
        for block in blocks_rx {
            let sinks: Vec<Sink> = block
                .lines
                .par_chunks(CHUNK)
                .map(|chunk| {
                    let mut sink = Sink {
                        out: free_outputs.take(OUT_KEEP),
                        ..Sink::default()
                    };
                    // Every pooled output buffer was made this big (bigger ones are not pooled).
                    debug_assert!(sink.out.capacity() >= OUT_KEEP);
                    for &(n, start, end) in chunk {
                        ctx.score_line(n, &block.buf[start..end], &mut sink);
                    }
                    sink
                })
                .collect();
            // The part scored last holds the buffer alone (the reader sends the last part the buffer itself).
            if let Ok(buf) = Arc::try_unwrap(block.buf) {
                free_blocks.give(buf);
            }
            if out_tx.send(sinks).is_err() {
                break;
            }
        }
        drop(out_tx);
        let read = reader
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
        let tally = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        read?;
        Ok(tally)
    })?;
    let secs = started.elapsed().as_secs_f64();
    if args.json_summary {
        eprintln!("{}", serde_json::to_string_pretty(&tally)?);
    } else {
        eprint!("{}", tally.render());
        let n = tally.decisions + tally.dead_letter_total();
        eprintln!(
            "\nscored {n} lines in {secs:.2} s ({:.0}/s), policy {}",
            n as f64 / secs.max(1e-9),
            policy.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{read_blocks, DeadLetter, Pool};
    use borderlane_core::ErrorKind;
    use proptest::prelude::*;
    use proptest::sample::select;
    use std::sync::Arc;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The direct dead-letter writer writes serde_json's bytes: any line (invalid UTF-8 included, as
        /// `score_line` gets it), any message, every kind.
        #[test]
        fn dead_letter_bytes_are_serde_json_bytes(
            line in any::<u64>(),
            kind in select(&ErrorKind::ALL[..]),
            message in any::<String>(),
            raw in prop::collection::vec(
                prop_oneof![any::<u8>(), select(&b"\"\\\n\r\t\x08\x0c\x00\x1f\x7f{}"[..])],
                0..64,
            ),
        ) {
            let dl = DeadLetter {
                line,
                kind: kind.as_str(),
                message: &message,
                raw: String::from_utf8_lossy(&raw),
            };
            let mut out = b"x".to_vec();
            dl.write_json(&mut out);
            let want = serde_json::to_vec(&dl).unwrap();
            prop_assert_eq!(&out[1..], &want[..]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Whatever the block size and line cap (lines longer than a block, blank lines, CRLF, no final
        /// newline), the blocks hold every line of the input once, in order, numbered from 1, `\r\n` read
        /// as `\n`, and none holds more lines than the cap (nor none).
        #[test]
        fn blocks_hold_every_line_once_in_order(
            lines in prop::collection::vec(
                prop::collection::vec(select(&b"ab\r{} "[..]), 0..40),
                0..30,
            ),
            final_newline in any::<bool>(),
            block in 1usize..64,
            max_lines in prop_oneof![1usize..4, Just(usize::MAX)],
            reuse in any::<bool>(),
        ) {
            let mut input = lines.join(&b'\n');
            if final_newline && !lines.is_empty() {
                input.push(b'\n');
            }
            // The lines as `score` found them before the reader thread did (one `split` of each block): no
            // lines for an empty input, else one per newline-separated piece.
            let want: Vec<(u64, Vec<u8>)> = if input.is_empty() {
                Vec::new()
            } else {
                let body = input.strip_suffix(b"\n").unwrap_or(&input);
                body.split(|b| *b == b'\n')
                    .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
                    .enumerate()
                    .map(|(i, l)| (i as u64 + 1, l))
                    .collect()
            };
            let pool = Pool::new(4, 1 << 20);
            if reuse {
                // A used buffer with stale bytes in it: a reused block must not show them.
                pool.give(b"stale\nbytes".to_vec());
            }
            let (tx, rx) = std::sync::mpsc::sync_channel(1000);
            read_blocks(&mut &input[..], block, max_lines, &pool, tx).unwrap();
            let blocks: Vec<_> = rx.iter().collect();
            for b in &blocks {
                prop_assert!(!b.lines.is_empty() && b.lines.len() <= max_lines, "{} lines", b.lines.len());
                // Only the parts of one read share its buffer, and nothing else holds it once the reader
                // is done (a leaked reference would keep every buffer out of the pool). That the last part
                // carries the reader's own reference is not checked here.
                let parts = blocks.iter().filter(|o| Arc::ptr_eq(&o.buf, &b.buf)).count();
                prop_assert_eq!(Arc::strong_count(&b.buf), parts);
            }
            let got: Vec<(u64, Vec<u8>)> = blocks
                .iter()
                .flat_map(|b| {
                    b.lines
                        .iter()
                        .map(|&(n, s, e)| (n, b.buf[s..e].to_vec()))
                        .collect::<Vec<_>>()
                })
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
