//! `borderlane score`: NDJSON manifests in, NDJSON decisions out, in input order, scored on every core.
//!
//! Bad lines go to the dead-letter file as `{"line", "kind", "message", "raw"}` and scoring goes on. The
//! input is read in large blocks; each block is split into lines, scored in parallel with rayon in chunks
//! that each fill their own output buffer, and the buffers are written in order.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use borderlane_core::policy::CompiledPolicy;
use borderlane_core::score::process;
use borderlane_core::table::PartnerTable;
use borderlane_core::time::Timestamp;
use borderlane_core::wire::Limits;
use rayon::prelude::*;
use serde::Serialize;

use crate::summary::Tally;

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
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    line: u64,
    kind: &'static str,
    message: &'a str,
    raw: std::borrow::Cow<'a, str>,
}

/// Lines per parallel chunk: big enough to amortise rayon, small enough to balance two cores.
const CHUNK: usize = 2048;
/// Bytes read per block.
const BLOCK: usize = 16 << 20;

/// What every line is scored against: fixed for the whole run.
struct Ctx<'a> {
    policy: &'a CompiledPolicy,
    table: &'a PartnerTable,
    limits: Limits,
    decided_at: Option<Timestamp>,
}

/// One chunk's output: decisions, dead letters, counts.
#[derive(Default)]
struct Sink {
    out: Vec<u8>,
    dlq: Vec<u8>,
    tally: Tally,
}

impl Ctx<'_> {
    /// Scores one line; appends the decision or the dead letter to the sink and counts it.
    fn score_line(&self, line_no: u64, line: &[u8], sink: &mut Sink) {
        match process(self.policy, self.table, line, &self.limits) {
            Ok(mut d) => {
                d.decided_at = self.decided_at;
                sink.tally.add(&d);
                // Serialising our own Decision into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut sink.out, &d);
                sink.out.push(b'\n');
            }
            Err(e) => {
                sink.tally.add_dead_letter(e.kind);
                let dl = DeadLetter {
                    line: line_no,
                    kind: e.kind.as_str(),
                    message: &e.message,
                    raw: String::from_utf8_lossy(line),
                };
                let _ = serde_json::to_writer(&mut sink.dlq, &dl);
                sink.dlq.push(b'\n');
            }
        }
    }
}

fn now() -> Option<Timestamp> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_nanos() as i128;
    Timestamp::from_unix_nanos(nanos)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .ok();
    }
    let policy = crate::policy_file::load(&args.policy)?;
    let limits = Limits::default();
    let table = PartnerTable::new();
    if let Some(path) = &args.partners {
        let r = crate::partners_file::load(path, &table, &limits)?;
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
    let mut input: Box<dyn Read> = match &args.input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(std::io::stdin().lock()),
        Some(p) => Box::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
    };
    let mut output: Box<dyn Write> = match &args.output {
        None => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock())),
        Some(p) if p.as_os_str() == "-" => {
            Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout().lock()))
        }
        Some(p) => Box::new(BufWriter::with_capacity(
            1 << 20,
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
    };
    let mut dlq: Option<Box<dyn Write>> = match &args.dlq {
        Some(p) => Some(Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        ))),
        None => None,
    };
    let ctx = Ctx {
        policy: &policy,
        table: &table,
        limits,
        decided_at: if args.no_timestamp { None } else { now() },
    };

    let started = Instant::now();
    let mut tally = Tally::default();
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    let mut carry: Vec<u8> = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buf.clear();
        buf.extend_from_slice(&carry);
        carry.clear();
        let read = (&mut input).take(BLOCK as u64).read_to_end(&mut buf)?;
        let eof = read == 0;
        if !eof {
            // Keep the partial last line for the next block.
            match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => {
                    carry.extend_from_slice(&buf[i + 1..]);
                    buf.truncate(i + 1);
                }
                None => continue,
            }
        }
        let lines: Vec<(u64, &[u8])> = buf
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .enumerate()
            .map(|(i, l)| (line_no + i as u64 + 1, l))
            .collect();
        // `split` yields a final empty piece after a trailing newline; it is not a line.
        let lines = match lines.split_last() {
            Some((last, rest)) if last.1.is_empty() => rest,
            _ => &lines[..],
        };
        line_no += lines.len() as u64;
        let sinks: Vec<Sink> = lines
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut sink = Sink {
                    out: Vec::with_capacity(chunk.len() * 1024),
                    ..Sink::default()
                };
                for (n, line) in chunk {
                    // Blank lines separate nothing in NDJSON; they are not records.
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        ctx.score_line(*n, line, &mut sink);
                    }
                }
                sink
            })
            .collect();
        for sink in sinks {
            output.write_all(&sink.out)?;
            if let Some(d) = dlq.as_mut() {
                d.write_all(&sink.dlq)?;
            }
            tally.merge(sink.tally);
        }
        if eof {
            break;
        }
    }
    output.flush()?;
    if let Some(d) = dlq.as_mut() {
        d.flush()?;
    }
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
