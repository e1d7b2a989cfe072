//! The measurements: sequential round trips, a pipelined burst, file reads and writes. Every
//! request and every expected reply is built before the clock starts; every reply is checked.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::agent::RunningAgent;
use super::conn::{Conn, Received};
use super::echo::{ECHO_REPLY, EchoPeer};
use super::error::{Context, Error, Result};
use super::procfs;

/// `{"execute":"guest-sync","arguments":{"id":N}}` and a newline (which the echo peer counts;
/// agents skip it as whitespace).
pub fn sync_request(id: u64) -> Vec<u8> {
    format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}\n").into_bytes()
}

/// The reply to [`sync_request`]: `{"return": N}` and a newline.
pub fn sync_reply(id: u64) -> Vec<u8> {
    format!("{{\"return\": {id}}}\n").into_bytes()
}

/// `{"execute":"NAME","id":N}` and a newline.
pub fn command_request(name: &str, id: u64) -> Vec<u8> {
    format!("{{\"execute\":\"{name}\",\"id\":{id}}}\n").into_bytes()
}

/// How a successful reply to a request with id `N` ends: `, "id": N}` and a newline.
fn id_suffix(id: u64) -> Vec<u8> {
    format!(", \"id\": {id}}}\n").into_bytes()
}

/// Where a side's CPU time is read from.
#[derive(Debug, Clone, Copy)]
pub enum CpuOf<'a> {
    /// An agent process (all its threads).
    Agent(&'a RunningAgent),
    /// The echo peer's thread.
    Echo(&'a EchoPeer),
}

impl CpuOf<'_> {
    fn ns(self) -> Result<u64> {
        match self {
            CpuOf::Agent(a) => a.cpu_ns(),
            CpuOf::Echo(e) => e.cpu_ns(),
        }
    }

    fn failure(self, what: &str) -> Error {
        match self {
            CpuOf::Agent(a) => a.failure(what),
            CpuOf::Echo(_) => Error::new(format!("echo peer: {what}")),
        }
    }
}

/// How a reply is checked.
#[derive(Debug, Clone)]
enum Check {
    /// Byte for byte.
    Exact(Vec<u8>),
    /// A `{"return": …}` ending with this `, "id": N}\n`.
    Return(Vec<u8>),
}

/// Requests answered one at a time.
#[derive(Debug, Clone)]
pub struct Sequence {
    name: String,
    requests: Vec<Vec<u8>>,
    checks: Vec<Check>,
}

impl Sequence {
    /// `n` guest-syncs with ids from `first_id`, each reply checked byte for byte.
    pub fn guest_sync(first_id: u64, n: usize) -> Sequence {
        let ids = (0..n as u64).map(|i| first_id + i);
        Sequence {
            name: "guest-sync".into(),
            requests: ids.clone().map(sync_request).collect(),
            checks: ids.map(|id| Check::Exact(sync_reply(id))).collect(),
        }
    }

    /// `n` requests for `command` (no arguments) with ids from `first_id`; each reply must be a
    /// `return` carrying the request's id.
    pub fn command(command: &str, first_id: u64, n: usize) -> Sequence {
        if command == "guest-sync" {
            return Sequence::guest_sync(first_id, n);
        }
        let ids = (0..n as u64).map(|i| first_id + i);
        Sequence {
            name: command.into(),
            requests: ids.clone().map(|id| command_request(command, id)).collect(),
            checks: ids.map(|id| Check::Return(id_suffix(id))).collect(),
        }
    }

    /// The guest-sync requests of [`Sequence::guest_sync`], answered by the echo peer.
    pub fn echo(first_id: u64, n: usize) -> Sequence {
        Sequence {
            name: "echo".into(),
            requests: (0..n as u64).map(|i| sync_request(first_id + i)).collect(),
            checks: vec![Check::Exact(ECHO_REPLY.to_vec()); n],
        }
    }

    /// Number of requests.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// True if there are no requests.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// Sends one `command` (no arguments) and says whether the agent answers it: `Ok(None)` for a
/// `return` carrying the id, `Ok(Some(reply))` for an error reply (the command is then left
/// out), `Err` for anything else (no reply, garbage: the agent is broken, not just lacking the
/// command).
pub fn probe(conn: &mut Conn, command: &str, id: u64, cpu: CpuOf<'_>) -> Result<Option<String>> {
    let seq = Sequence::command(command, id, 1);
    let (Some(request), Some(check)) = (seq.requests.first(), seq.checks.first()) else {
        return Err(Error::new("empty probe"));
    };
    let line = conn
        .send(request)
        .and_then(|()| conn.read_line())
        .map_err(|e| cpu.failure(&format!("{command}: {e}")))?
        .to_vec();
    let answered = match check {
        Check::Exact(expected) => line == *expected,
        Check::Return(suffix) => line.starts_with(b"{\"return\": ") && line.ends_with(suffix),
    };
    let is_error = serde_json::from_slice::<serde_json::Value>(&line)
        .ok()
        .is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_object));
    match (answered, is_error) {
        (true, _) => Ok(None),
        (false, true) => Ok(Some(shorten(&line))),
        (false, false) => {
            Err(cpu.failure(&format!("{command}: unexpected reply {}", shorten(&line))))
        }
    }
}

/// What a sequential run measured.
#[derive(Debug, Clone)]
pub struct SeqStats {
    /// Requests answered.
    pub n: usize,
    /// From the first request to the last reply.
    pub elapsed: Duration,
    /// Round-trip times, sorted (ns).
    pub latencies_ns: Vec<u64>,
    /// CPU time the answering side used (ns).
    pub cpu_ns: u64,
}

impl SeqStats {
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of the round-trip times (µs), nearest rank.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let n = self.latencies_ns.len();
        if n == 0 {
            return f64::NAN;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        self.latencies_ns
            .get(rank - 1)
            .map_or(f64::NAN, |&ns| ns as f64 / 1000.0)
    }

    /// CPU time of the answering side per request (µs).
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.n.max(1) as f64
    }
}

/// Sends the requests of `seq` one at a time, waiting for each reply.
pub fn run_sequence(conn: &mut Conn, seq: &Sequence, cpu: CpuOf<'_>) -> Result<SeqStats> {
    let mut latencies = Vec::with_capacity(seq.len());
    let cpu_before = cpu.ns()?;
    let start = Instant::now();
    for (request, check) in seq.requests.iter().zip(&seq.checks) {
        let t = Instant::now();
        let outcome = conn.send(request).and_then(|()| match check {
            Check::Exact(expected) => conn.read_expected(expected),
            Check::Return(_) => conn.read_line().map(|l| Received::Other(l.to_vec())),
        });
        let took = t.elapsed();
        let reply = outcome.map_err(|e| {
            cpu.failure(&format!(
                "{}: {e} (request {})",
                seq.name,
                String::from_utf8_lossy(request).trim_end()
            ))
        })?;
        if let Received::Other(line) = reply {
            let ok = match check {
                Check::Exact(_) => false,
                Check::Return(suffix) => {
                    line.starts_with(b"{\"return\": ") && line.ends_with(suffix)
                }
            };
            if !ok {
                return Err(cpu.failure(&format!(
                    "{}: unexpected reply {} to {}",
                    seq.name,
                    shorten(&line),
                    String::from_utf8_lossy(request).trim_end()
                )));
            }
        }
        latencies.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }
    let elapsed = start.elapsed();
    let cpu_ns = cpu.ns()?.saturating_sub(cpu_before);
    check_nothing_pending(conn, cpu, &seq.name)?;
    latencies.sort_unstable();
    Ok(SeqStats {
        n: seq.len(),
        elapsed,
        latencies_ns: latencies,
        cpu_ns,
    })
}

fn check_nothing_pending(conn: &Conn, cpu: CpuOf<'_>, what: &str) -> Result<()> {
    let extra = conn.pending();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(cpu.failure(&format!(
            "{what}: {} unexpected bytes after the last reply: {}",
            extra.len(),
            shorten(extra)
        )))
    }
}

/// A reply for an error message: at most 300 bytes of it.
fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!(
            "{}… ({} bytes)",
            text.get(..i).unwrap_or_default(),
            bytes.len()
        ),
        None => text.to_owned(),
    }
}

/// Requests written all at once while the replies are read.
#[derive(Debug, Clone)]
pub struct Pipeline {
    n: usize,
    data: Vec<u8>,
    expected: Vec<u8>,
}

impl Pipeline {
    /// `n` guest-syncs with ids from `first_id`.
    pub fn guest_sync(first_id: u64, n: usize) -> Pipeline {
        let ids = first_id..first_id + n as u64;
        Pipeline {
            n,
            data: ids.clone().flat_map(sync_request).collect(),
            expected: ids.flat_map(sync_reply).collect(),
        }
    }

    /// The same requests, answered by the echo peer.
    pub fn echo(first_id: u64, n: usize) -> Pipeline {
        Pipeline {
            n,
            data: (first_id..first_id + n as u64)
                .flat_map(sync_request)
                .collect(),
            expected: ECHO_REPLY.repeat(n),
        }
    }
}

/// What a pipelined run measured.
#[derive(Debug, Clone, Copy)]
pub struct PipeStats {
    /// Requests answered.
    pub n: usize,
    /// From the first byte written to the last byte of the last reply.
    pub elapsed: Duration,
    /// CPU time the answering side used (ns).
    pub cpu_ns: u64,
}

impl PipeStats {
    /// Requests per second.
    pub fn per_second(&self) -> f64 {
        self.n as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// CPU time per request (µs).
    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.n.max(1) as f64
    }
}

/// Writes every request of `p` from a second thread while this one reads and checks the
/// replies (all of them, in order, byte for byte).
pub fn run_pipeline(conn: &mut Conn, p: &Pipeline, cpu: CpuOf<'_>) -> Result<PipeStats> {
    let mut writer = conn
        .stream()
        .try_clone()
        .context(|| "cannot clone the socket".into())?;
    let cpu_before = cpu.ns()?;
    let start = Instant::now();
    let (read, written) = std::thread::scope(|s| {
        let data = &p.data;
        let handle = s.spawn(move || std::io::Write::write_all(&mut writer, data));
        let read = conn.read_expected(&p.expected);
        if !matches!(read, Ok(Received::AsExpected)) {
            // Unblocks the writer if the peer stopped reading.
            let _ = conn.stream().shutdown(std::net::Shutdown::Both);
        }
        let written = handle
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
        (read, written)
    });
    let elapsed = start.elapsed();
    match read {
        Ok(Received::AsExpected) => {}
        Ok(Received::Other(line)) => {
            return Err(cpu.failure(&format!(
                "pipelined guest-sync: unexpected reply {}",
                shorten(&line)
            )));
        }
        Err(e) => return Err(cpu.failure(&format!("pipelined guest-sync: {e}"))),
    }
    written.map_err(|e| cpu.failure(&format!("pipelined guest-sync: write: {e}")))?;
    let cpu_ns = cpu.ns()?.saturating_sub(cpu_before);
    check_nothing_pending(conn, cpu, "pipelined guest-sync")?;
    Ok(PipeStats {
        n: p.n,
        elapsed,
        cpu_ns,
    })
}

/// `len` pseudo-random bytes (xorshift64*, so that nothing compresses or repeats).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What a file transfer measured.
#[derive(Debug, Clone, Copy)]
pub struct FileStats {
    /// Bytes transferred (and verified).
    pub bytes: u64,
    /// Requests sent (reads or writes, open/close excluded).
    pub requests: usize,
    /// From the first request to the last reply (open and close excluded).
    pub elapsed: Duration,
    /// The agent's CPU time over the same span (ns).
    pub cpu_ns: u64,
    /// The client thread's CPU time over the same span (ns).
    pub client_cpu_ns: u64,
    /// The agent's resident set afterwards (KiB).
    pub rss_after_kib: u64,
    /// The agent's peak resident set (KiB).
    pub hwm_kib: u64,
}

impl FileStats {
    fn mib(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0)
    }

    /// MiB per second of wall-clock time.
    pub fn mib_per_second(&self) -> f64 {
        self.mib() / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Agent CPU time per MiB (ms).
    pub fn cpu_ms_per_mib(&self) -> f64 {
        self.cpu_ns as f64 / 1e6 / self.mib().max(1e-9)
    }

    /// MiB per second of agent CPU time: the throughput if the agent were the only limit.
    pub fn mib_per_agent_cpu_second(&self) -> f64 {
        self.mib() / (self.cpu_ns as f64 / 1e9).max(1e-9)
    }

    /// The client thread's CPU time as a share of the wall-clock time (%).
    pub fn client_cpu_percent(&self) -> f64 {
        100.0 * self.client_cpu_ns as f64 / 1e9 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Request ids of file transfers: open, then the transfers, then close.
const FILE_OPEN_ID: u64 = 1;
const FILE_FIRST_ID: u64 = 100;

/// `guest-file-open` of `path` (inside the agent's own directory) in `mode`: the handle.
fn file_open(conn: &mut Conn, agent: &RunningAgent, path: &Path, mode: &str) -> Result<i64> {
    let path_json = serde_json::to_string(&path.to_string_lossy())
        .context(|| "cannot encode the path".into())?;
    let request = format!(
        "{{\"execute\":\"guest-file-open\",\"arguments\":{{\"path\":{path_json},\"mode\":\"{mode}\"}},\"id\":{FILE_OPEN_ID}}}\n"
    );
    conn.send(request.as_bytes())
        .map_err(|e| agent.failure(&format!("guest-file-open: {e}")))?;
    let line = conn
        .read_line()
        .map_err(|e| agent.failure(&format!("guest-file-open: {e}")))?;
    let suffix = format!(", \"id\": {FILE_OPEN_ID}}}\n");
    let handle = std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.strip_prefix("{\"return\": "))
        .and_then(|l| l.strip_suffix(suffix.as_str()))
        .and_then(|h| h.parse().ok());
    handle.ok_or_else(|| {
        agent.failure(&format!(
            "guest-file-open {}: {}",
            path.display(),
            shorten(line)
        ))
    })
}

/// `guest-file-close`.
fn file_close(conn: &mut Conn, agent: &RunningAgent, handle: i64, id: u64) -> Result<()> {
    let request = format!(
        "{{\"execute\":\"guest-file-close\",\"arguments\":{{\"handle\":{handle}}},\"id\":{id}}}\n"
    );
    let expected = format!("{{\"return\": {{}}, \"id\": {id}}}\n");
    conn.send(request.as_bytes())
        .and_then(|()| conn.read_expected(expected.as_bytes()))
        .map_err(|e| agent.failure(&format!("guest-file-close: {e}")))
        .and_then(|r| match r {
            Received::AsExpected => Ok(()),
            Received::Other(line) => {
                Err(agent.failure(&format!("guest-file-close: {}", shorten(&line))))
            }
        })
}

/// The replies to reading a file in pieces of `count` bytes, built once and shared by the agents.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Bytes per `guest-file-read`.
    pub count: usize,
    /// File size.
    pub total: usize,
    /// The expected reply to each read, the final empty read at end-of-file included.
    replies: Vec<Vec<u8>>,
}

impl ReadPlan {
    /// Plans reading `data` with `count` bytes per request.
    pub fn new(data: &[u8], count: usize) -> ReadPlan {
        let engine = base64::engine::general_purpose::STANDARD;
        let mut replies: Vec<Vec<u8>> = data
            .chunks(count.max(1))
            .enumerate()
            .map(|(i, chunk)| {
                let id = FILE_FIRST_ID + i as u64;
                let mut r = Vec::with_capacity(chunk.len() / 3 * 4 + 100);
                r.extend_from_slice(
                    format!(
                        "{{\"return\": {{\"count\": {}, \"buf-b64\": \"",
                        chunk.len()
                    )
                    .as_bytes(),
                );
                let start = r.len();
                r.resize(
                    start + base64::encoded_len(chunk.len(), true).unwrap_or(0),
                    0,
                );
                if let Some(out) = r.get_mut(start..) {
                    let _ = engine.encode_slice(chunk, out);
                }
                r.extend_from_slice(format!("\", \"eof\": false}}, \"id\": {id}}}\n").as_bytes());
                r
            })
            .collect();
        let last = FILE_FIRST_ID + replies.len() as u64;
        replies.push(
            format!("{{\"return\": {{\"count\": 0, \"buf-b64\": \"\", \"eof\": true}}, \"id\": {last}}}\n")
                .into_bytes(),
        );
        ReadPlan {
            count,
            total: data.len(),
            replies,
        }
    }
}

/// Opens `path` (a copy of `data` in the agent's directory) and reads it to the end with
/// `plan.count` bytes per request, checking every byte.
pub fn run_file_read(
    conn: &mut Conn,
    agent: &RunningAgent,
    path: &Path,
    data: &[u8],
    plan: &ReadPlan,
) -> Result<FileStats> {
    let handle = file_open(conn, agent, path, "r")?;
    let limit = plan.replies.len() + 1;
    let requests: Vec<Vec<u8>> = (0..limit as u64)
        .map(|i| {
            format!(
                "{{\"execute\":\"guest-file-read\",\"arguments\":{{\"handle\":{handle},\"count\":{}}},\"id\":{}}}\n",
                plan.count,
                FILE_FIRST_ID + i
            )
            .into_bytes()
        })
        .collect();
    let cpu_before = agent.cpu_ns()?;
    let client_before = procfs::current_thread_cpu_ns()?;
    let start = Instant::now();
    let mut offset = 0usize;
    let mut sent = 0;
    for (i, request) in requests.iter().enumerate() {
        sent += 1;
        let id = FILE_FIRST_ID + i as u64;
        // The planned reply, while the agent follows the plan.
        let planned = plan.replies.get(i).filter(|_| offset == i * plan.count);
        let outcome = conn.send(request).and_then(|()| match planned {
            Some(expected) => conn.read_expected(expected),
            None => conn.read_line().map(|l| Received::Other(l.to_vec())),
        });
        let reply = outcome.map_err(|e| agent.failure(&format!("guest-file-read: {e}")))?;
        let (count, eof) = match reply {
            Received::AsExpected => {
                let count = plan.count.min(plan.total - offset);
                (count, count == 0)
            }
            Received::Other(line) => {
                check_read_reply(&line, id, data.get(offset..).unwrap_or_default()).map_err(
                    |e| agent.failure(&format!("guest-file-read at offset {offset}: {e}")),
                )?
            }
        };
        offset += count;
        if eof || count == 0 {
            break;
        }
    }
    let elapsed = start.elapsed();
    let client_cpu_ns = procfs::current_thread_cpu_ns()?.saturating_sub(client_before);
    let cpu_ns = agent.cpu_ns()?.saturating_sub(cpu_before);
    if offset != data.len() {
        return Err(agent.failure(&format!(
            "guest-file-read: {offset} bytes read of {} (after {sent} requests)",
            data.len()
        )));
    }
    file_close(conn, agent, handle, FILE_FIRST_ID + limit as u64)?;
    check_nothing_pending(conn, CpuOf::Agent(agent), "guest-file-read")?;
    Ok(FileStats {
        bytes: offset as u64,
        requests: sent,
        elapsed,
        cpu_ns,
        client_cpu_ns,
        rss_after_kib: agent.rss_kib()?,
        hwm_kib: agent.hwm_kib()?,
    })
}

/// Checks a read reply that did not match the plan (another layout, a short read): parses it,
/// decodes the data and compares it with the file's next bytes. Returns (count, eof).
fn check_read_reply(
    line: &[u8],
    id: u64,
    rest: &[u8],
) -> std::result::Result<(usize, bool), String> {
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("{e}: {}", shorten(line)))?;
    if v.get("id").and_then(serde_json::Value::as_u64) != Some(id) {
        return Err(format!("expected id {id}: {}", shorten(line)));
    }
    let r = v
        .get("return")
        .ok_or_else(|| format!("not a return: {}", shorten(line)))?;
    let count = r
        .get("count")
        .and_then(serde_json::Value::as_u64)
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| format!("no count: {}", shorten(line)))?;
    let eof = r
        .get("eof")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| format!("no eof: {}", shorten(line)))?;
    let b64 = r
        .get("buf-b64")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("no buf-b64: {}", shorten(line)))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad base64: {e}"))?;
    if bytes.len() != count {
        return Err(format!("count {count} but {} bytes of data", bytes.len()));
    }
    if rest.get(..count) != Some(bytes.as_slice()) {
        return Err(format!("the {count} bytes read differ from the file"));
    }
    Ok((count, eof))
}

/// Writing a file in pieces: the base64 of every piece, built once and shared by the agents.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// Bytes per `guest-file-write`.
    pub chunk: usize,
    /// File size.
    pub total: usize,
    payloads: Vec<String>,
}

impl WritePlan {
    /// Plans writing `data` with `chunk` bytes per request.
    pub fn new(data: &[u8], chunk: usize) -> WritePlan {
        let engine = base64::engine::general_purpose::STANDARD;
        WritePlan {
            chunk,
            total: data.len(),
            payloads: data
                .chunks(chunk.max(1))
                .map(|c| engine.encode(c))
                .collect(),
        }
    }
}

/// Creates `path` (in the agent's directory), writes `data` to it with `plan.chunk` bytes per
/// request, closes it and compares the file on disk with `data`.
pub fn run_file_write(
    conn: &mut Conn,
    agent: &RunningAgent,
    path: &Path,
    data: &[u8],
    plan: &WritePlan,
) -> Result<FileStats> {
    let handle = file_open(conn, agent, path, "w")?;
    let mut requests = Vec::with_capacity(plan.payloads.len());
    let mut replies = Vec::with_capacity(plan.payloads.len());
    for (i, (payload, chunk)) in plan
        .payloads
        .iter()
        .zip(data.chunks(plan.chunk.max(1)))
        .enumerate()
    {
        let id = FILE_FIRST_ID + i as u64;
        let mut r = Vec::with_capacity(payload.len() + 100);
        r.extend_from_slice(
            format!("{{\"execute\":\"guest-file-write\",\"arguments\":{{\"handle\":{handle},\"buf-b64\":\"")
                .as_bytes(),
        );
        r.extend_from_slice(payload.as_bytes());
        r.extend_from_slice(format!("\"}},\"id\":{id}}}\n").as_bytes());
        requests.push(r);
        replies.push(
            format!(
                "{{\"return\": {{\"count\": {}, \"eof\": false}}, \"id\": {id}}}\n",
                chunk.len()
            )
            .into_bytes(),
        );
    }
    let cpu_before = agent.cpu_ns()?;
    let client_before = procfs::current_thread_cpu_ns()?;
    let start = Instant::now();
    for (request, expected) in requests.iter().zip(&replies) {
        let reply = conn
            .send(request)
            .and_then(|()| conn.read_expected(expected))
            .map_err(|e| agent.failure(&format!("guest-file-write: {e}")))?;
        if let Received::Other(line) = reply {
            return Err(agent.failure(&format!(
                "guest-file-write: expected {} got {}",
                shorten(expected),
                shorten(&line)
            )));
        }
    }
    let elapsed = start.elapsed();
    let client_cpu_ns = procfs::current_thread_cpu_ns()?.saturating_sub(client_before);
    let cpu_ns = agent.cpu_ns()?.saturating_sub(cpu_before);
    file_close(conn, agent, handle, FILE_FIRST_ID + requests.len() as u64)?;
    check_nothing_pending(conn, CpuOf::Agent(agent), "guest-file-write")?;
    let written = std::fs::read(path).context(|| format!("cannot read back {}", path.display()))?;
    if written != data {
        let first = written.iter().zip(data).take_while(|(a, b)| a == b).count();
        return Err(agent.failure(&format!(
            "guest-file-write: the file holds {} bytes, {} expected, first difference at {first}",
            written.len(),
            data.len()
        )));
    }
    Ok(FileStats {
        bytes: data.len() as u64,
        requests: requests.len(),
        elapsed,
        cpu_ns,
        client_cpu_ns,
        rss_after_kib: agent.rss_kib()?,
        hwm_kib: agent.hwm_kib()?,
    })
}
