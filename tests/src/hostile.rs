//! A hostile fake guest agent on a unix socket, for testing host-side clients (`qga-client`).
//!
//! [`HostileAgent::start`] listens on `<tmp>/agent.sock` and serves every connection in its own
//! thread according to a [`Mode`]: answering the sync correctly and then misbehaving, or
//! misbehaving from the first byte. Requests are recognised line by line (the client ends each
//! with a newline; 0xFF bytes before a request are skipped) and parsed with `serde_json`, so the
//! agent knows the sync id and each request's id and can answer with exactly the ids a real
//! agent would, or deliberately different ones.
//!
//! Everything the agent writes goes out with a write timeout and a stop flag, so endless
//! outputs end when the client goes away or the agent is dropped.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::tempdir::TempDir;

/// How the fake agent misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reads everything and never answers.
    Silent,
    /// 0xFF bytes, forever, from the first request on.
    FfStorm,
    /// After the 0xFF of the sync reply, a string that never ends.
    EndlessStringInSync,
    /// Lines that are not JSON instead of a sync reply, forever.
    NotJsonInSync,
    /// Sync replies with ids that are not the one asked for, every 10 ms.
    WrongSyncIds,
    /// Correct sync; then replies to the request with other ids (and with none), every 10 ms.
    WrongRequestIds,
    /// Correct sync; then a complete reply of 24 MiB.
    Oversized,
    /// Correct sync; then a reply whose string never ends.
    EndlessString,
    /// Correct sync; then a line that is not JSON.
    NotJson,
    /// Correct sync; then JSON that is not a reply object (`[1, 2, 3]`).
    NotAReply,
    /// Correct sync; then an error reply whose `error` is not `{class, desc}`.
    BadError,
    /// Correct sync; then a reply with the request's id and a value of the wrong type.
    WrongType,
    /// Correct sync; then a reply nested 2000 levels deep.
    DeepNesting,
    /// Correct sync; then a 9 MiB reply made of tiny object members (whose parser index would
    /// be larger than the reply itself).
    ManyMembers,
    /// Correct sync; then half a reply, then the connection is closed.
    HalfReplyThenClose,
    /// Correct sync; then a correct reply, one byte every 300 ms.
    SlowDrip,
    /// Stale replies, garbage and a wrong sync id before the correct sync reply, and a stale
    /// reply before each correct answer: a careful client succeeds. Answers `guest-ping`,
    /// `guest-get-time` (with [`STALE_THEN_CORRECT_TIME`]), `guest-fsfreeze-status` (`thawed`)
    /// and `guest-fsfreeze-freeze` (2); every other command with a `CommandNotFound` error.
    StaleThenCorrect,
    /// Correct sync; `guest-exec` answers a pid, `guest-exec-status` an impossible status
    /// (both an exit code and a signal).
    BadExecStatus,
    /// Correct sync and protocol; `guest-file-read` reports a count that differs from its data.
    /// Records whether the client closed the handle afterwards (see [`HostileAgent::closed_handles`]).
    BadFileRead,
}

/// The time [`Mode::StaleThenCorrect`] reports for `guest-get-time`.
pub const STALE_THEN_CORRECT_TIME: i64 = 1_795_690_610_553_972_000;

/// The handle [`Mode::BadFileRead`] hands out.
pub const FAKE_HANDLE: i64 = 1000;

/// A fake agent listening on a unix socket in a fresh temporary directory. Stops (and joins its
/// threads) on drop.
#[derive(Debug)]
pub struct HostileAgent {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    closed: Arc<std::sync::atomic::AtomicU32>,
    thread: Option<JoinHandle<()>>,
    // Declared last: removed after the threads have stopped.
    _dir: TempDir,
}

impl HostileAgent {
    /// Starts listening.
    pub fn start(mode: Mode) -> io::Result<Self> {
        let dir = TempDir::new("qga-hostile")?;
        let path = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let (stop2, closed2) = (Arc::clone(&stop), Arc::clone(&closed));
        let thread = thread::spawn(move || serve(&listener, mode, &stop2, &closed2));
        Ok(Self {
            path,
            stop,
            closed,
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// The socket to connect to.
    pub fn socket_path(&self) -> &Path {
        &self.path
    }

    /// How many `guest-file-close` requests for [`FAKE_HANDLE`] arrived ([`Mode::BadFileRead`]).
    pub fn closed_handles(&self) -> u32 {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for HostileAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: &UnixListener,
    mode: Mode,
    stop: &Arc<AtomicBool>,
    closed: &Arc<std::sync::atomic::AtomicU32>,
) {
    let mut handlers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (stop, closed) = (Arc::clone(stop), Arc::clone(closed));
                handlers.push(thread::spawn(move || {
                    if let Ok(mut conn) = Conn::new(stream, stop) {
                        // The client going away ends the script: nothing to report.
                        let _ = script(&mut conn, mode, &closed);
                    }
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break,
        }
    }
    for h in handlers {
        let _ = h.join();
    }
}

/// Why a script ended early: the client left, or the agent is stopping.
#[derive(Debug)]
struct Gone;

/// One request, as far as the fake agent cares.
#[derive(Debug)]
struct Request {
    command: String,
    /// The top-level `id`.
    id: Option<i64>,
    /// `arguments.id` (the sync id of `guest-sync` and `guest-sync-delimited`).
    arg_id: Option<i64>,
    /// `arguments.handle`.
    handle: Option<i64>,
}

impl Request {
    fn is_sync(&self) -> bool {
        self.command.starts_with("guest-sync")
    }

    /// The id to echo (`null` when the request has none).
    fn id_text(&self) -> String {
        self.id
            .map_or_else(|| "null".to_owned(), |id| id.to_string())
    }

    /// What qemu-ga answers to a sync.
    fn sync_reply(&self) -> Vec<u8> {
        let id = self.arg_id.unwrap_or(0);
        let mut reply = if self.command == "guest-sync-delimited" {
            vec![0xFF]
        } else {
            Vec::new()
        };
        reply.extend_from_slice(format!("{{\"return\": {id}}}\n").as_bytes());
        reply
    }
}

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    stop: Arc<AtomicBool>,
}

impl Conn {
    fn new(stream: UnixStream, stop: Arc<AtomicBool>) -> io::Result<Self> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        stream.set_write_timeout(Some(Duration::from_millis(50)))?;
        Ok(Self {
            stream,
            buf: Vec::new(),
            stop,
        })
    }

    fn stopping(&self) -> Result<(), Gone> {
        if self.stop.load(Ordering::SeqCst) {
            Err(Gone)
        } else {
            Ok(())
        }
    }

    /// The next request line that parses as a JSON object (other lines are skipped).
    fn request(&mut self) -> Result<Request, Gone> {
        loop {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let text: Vec<u8> = line.into_iter().filter(|&b| b != 0xFF).collect();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) else {
                    continue;
                };
                let Some(command) = v.get("execute").and_then(|c| c.as_str()) else {
                    continue;
                };
                let args = v.get("arguments");
                return Ok(Request {
                    command: command.to_owned(),
                    id: v.get("id").and_then(serde_json::Value::as_i64),
                    arg_id: args
                        .and_then(|a| a.get("id"))
                        .and_then(serde_json::Value::as_i64),
                    handle: args
                        .and_then(|a| a.get("handle"))
                        .and_then(serde_json::Value::as_i64),
                });
            }
            self.read_some()?;
        }
    }

    /// Reads what is there (waiting up to 50 ms); `Gone` on EOF or stop.
    fn read_some(&mut self) -> Result<usize, Gone> {
        self.stopping()?;
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(Gone),
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) if crate::is_retry(&e) => Ok(0),
            Err(_) => Err(Gone),
        }
    }

    /// Writes all of `bytes`, retrying on write timeouts until the client leaves or the agent
    /// stops.
    fn send(&mut self, mut bytes: &[u8]) -> Result<(), Gone> {
        while !bytes.is_empty() {
            self.stopping()?;
            match self.stream.write(bytes) {
                Ok(0) => return Err(Gone),
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(e) if crate::is_retry(&e) => {}
                Err(_) => return Err(Gone),
            }
        }
        Ok(())
    }

    /// Writes `chunk` again and again until the client leaves or the agent stops.
    fn flood(&mut self, chunk: &[u8]) -> Result<(), Gone> {
        loop {
            self.send(chunk)?;
        }
    }

    /// Sends `bytes` every 10 ms, forever.
    fn repeat(&mut self, bytes: &[u8]) -> Result<(), Gone> {
        loop {
            self.send(bytes)?;
            // Keep reading: the client's requests must not fill the socket buffer.
            self.read_some()?;
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Answers syncs like qemu-ga until a request that is not a sync arrives, and returns it.
    fn after_sync(&mut self) -> Result<Request, Gone> {
        loop {
            let r = self.request()?;
            if !r.is_sync() {
                return Ok(r);
            }
            let reply = r.sync_reply();
            self.send(&reply)?;
        }
    }
}

fn script(c: &mut Conn, mode: Mode, closed: &std::sync::atomic::AtomicU32) -> Result<(), Gone> {
    match mode {
        Mode::Silent => loop {
            c.request()?;
        },
        Mode::FfStorm => {
            c.request()?;
            c.flood(&[0xFF; 4096])
        }
        Mode::EndlessStringInSync => {
            c.request()?;
            c.send(b"\xff{\"return\": \"")?;
            c.flood(&[b'a'; 4096])
        }
        Mode::NotJsonInSync => {
            c.request()?;
            c.repeat(b"hello, this is a log line and not JSON\n")
        }
        Mode::WrongSyncIds => {
            let r = c.request()?;
            let wrong = r.arg_id.unwrap_or(0).wrapping_add(1);
            let mut reply = vec![0xFF];
            reply.extend_from_slice(format!("{{\"return\": {wrong}}}\n").as_bytes());
            c.repeat(&reply)
        }
        Mode::WrongRequestIds => {
            let r = c.after_sync()?;
            let wrong = r.id.unwrap_or(0).wrapping_add(1);
            c.repeat(
                format!(
                    "{{\"return\": {{}}, \"id\": {wrong}}}\n{{\"return\": {{}}}}\n\
                     {{\"return\": {{}}, \"id\": \"{}\"}}\n",
                    r.id_text()
                )
                .as_bytes(),
            )
        }
        Mode::Oversized => {
            let r = c.after_sync()?;
            c.send(b"{\"return\": \"")?;
            let chunk = [b'x'; 65536];
            for _ in 0..(24 * 16) {
                c.send(&chunk)?;
            }
            c.send(format!("\", \"id\": {}}}\n", r.id_text()).as_bytes())?;
            c.request().map(drop)
        }
        Mode::EndlessString => {
            c.after_sync()?;
            c.send(b"{\"return\": \"")?;
            c.flood(&[b'x'; 4096])
        }
        Mode::NotJson => {
            c.after_sync()?;
            c.send(b"hello, this is a log line and not JSON\n")?;
            answer_syncs_forever(c)
        }
        Mode::NotAReply => {
            c.after_sync()?;
            c.send(b"[1, 2, 3]\n")?;
            answer_syncs_forever(c)
        }
        Mode::BadError => {
            let r = c.after_sync()?;
            c.send(format!("{{\"error\": 42, \"id\": {}}}\n", r.id_text()).as_bytes())?;
            answer_syncs_forever(c)
        }
        Mode::WrongType => {
            let r = c.after_sync()?;
            c.send(format!("{{\"return\": \"soon\", \"id\": {}}}\n", r.id_text()).as_bytes())?;
            answer_syncs_forever(c)
        }
        Mode::DeepNesting => {
            let r = c.after_sync()?;
            let mut reply = b"{\"return\": ".to_vec();
            reply.extend(std::iter::repeat_n(b'[', 2000));
            reply.extend(std::iter::repeat_n(b']', 2000));
            reply.extend_from_slice(format!(", \"id\": {}}}\n", r.id_text()).as_bytes());
            c.send(&reply)?;
            answer_syncs_forever(c)
        }
        Mode::ManyMembers => {
            let r = c.after_sync()?;
            let mut reply = b"{\"return\": {".to_vec();
            let mut i = 0u32;
            while reply.len() < 9 << 20 {
                reply.extend_from_slice(format!("\"k{i}\": 0, ").as_bytes());
                i += 1;
            }
            reply
                .extend_from_slice(format!("\"end\": 0}}, \"id\": {}}}\n", r.id_text()).as_bytes());
            c.send(&reply)?;
            answer_syncs_forever(c)
        }
        Mode::HalfReplyThenClose => {
            let r = c.after_sync()?;
            let reply = format!(
                "{{\"return\": {{\"version\": \"7.2.22\"}}, \"id\": {}}}\n",
                r.id_text()
            );
            c.send(reply.as_bytes().get(..reply.len() / 2).unwrap_or_default())?;
            thread::sleep(Duration::from_millis(50));
            Err(Gone)
        }
        Mode::SlowDrip => {
            let r = c.after_sync()?;
            let reply = format!("{{\"return\": {{}}, \"id\": {}}}\n", r.id_text());
            for b in reply.bytes() {
                c.send(&[b])?;
                thread::sleep(Duration::from_millis(300));
            }
            c.request().map(drop)
        }
        Mode::StaleThenCorrect => {
            let sync = c.request()?;
            let mut pre = b"{\"return\": 12345}\n{\"error\": {\"class\": \"GenericError\", \"desc\": \"stale\"}}\n\
                            garbage that is not JSON\n\xff{\"return\": 999}\n{\"return\": {}, \"id\": 7}\n"
                .to_vec();
            pre.extend_from_slice(&sync.sync_reply());
            c.send(&pre)?;
            loop {
                let r = c.request()?;
                if r.is_sync() {
                    let reply = r.sync_reply();
                    c.send(&reply)?;
                    continue;
                }
                let value = match r.command.as_str() {
                    "guest-ping" => "{}".to_owned(),
                    "guest-get-time" => STALE_THEN_CORRECT_TIME.to_string(),
                    "guest-fsfreeze-status" => "\"thawed\"".to_owned(),
                    "guest-fsfreeze-freeze" => "2".to_owned(),
                    _ => {
                        let e =
                            "{\"class\": \"CommandNotFound\", \"desc\": \"not in this script\"}";
                        c.send(
                            format!("{{\"error\": {e}, \"id\": {}}}\n", r.id_text()).as_bytes(),
                        )?;
                        continue;
                    }
                };
                let stale = r.id.unwrap_or(0).wrapping_sub(1);
                c.send(
                    format!(
                        "{{\"return\": {{}}, \"id\": {stale}}}\n{{\"return\": {value}, \"id\": {}}}\n",
                        r.id_text()
                    )
                    .as_bytes(),
                )?;
            }
        }
        Mode::BadExecStatus => loop {
            let r = c.after_sync()?;
            let value = match r.command.as_str() {
                "guest-exec" => "{\"pid\": 4242}",
                _ => "{\"exitcode\": 0, \"signal\": 9, \"exited\": true}",
            };
            c.send(format!("{{\"return\": {value}, \"id\": {}}}\n", r.id_text()).as_bytes())?;
        },
        Mode::BadFileRead => loop {
            let r = c.after_sync()?;
            let value = match r.command.as_str() {
                "guest-file-open" => FAKE_HANDLE.to_string(),
                "guest-file-read" => {
                    "{\"count\": 10, \"buf-b64\": \"QUJD\", \"eof\": false}".to_owned()
                }
                "guest-file-close" => {
                    if r.handle == Some(FAKE_HANDLE) {
                        closed.fetch_add(1, Ordering::SeqCst);
                    }
                    "{}".to_owned()
                }
                _ => "{}".to_owned(),
            };
            c.send(format!("{{\"return\": {value}, \"id\": {}}}\n", r.id_text()).as_bytes())?;
        },
    }
}

/// After the misbehaviour: answer resyncs correctly (and nothing else), so that a client that
/// resyncs to clean up (closing a file handle, say) is not held up.
fn answer_syncs_forever(c: &mut Conn) -> Result<(), Gone> {
    loop {
        let r = c.request()?;
        if r.is_sync() {
            let reply = r.sync_reply();
            c.send(&reply)?;
        }
    }
}
