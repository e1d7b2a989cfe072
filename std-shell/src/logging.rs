//! Logging the way qemu-ga does it.
//!
//! * Before the agent's handler is installed (command-line and config errors, the "previous
//!   instance appears to have exited with frozen filesystems" warning), messages use GLib's
//!   default format on stderr: `\n** (process:PID): CRITICAL **: HH:MM:SS.mmm: text\n`, the text
//!   converted to the C locale's ASCII as GLib does (each non-ASCII character becomes `?`).
//! * Afterwards every message passing the level mask goes to the log file (or stderr) as
//!   `<secs>.<usecs>: <level>: <text>\n`, and, unless it is a debug message, to syslog as
//!   `<level>: <text>` (qemu-ga ≥ 9.1). Syslog datagrams are written to `/dev/log` directly; when
//!   there is no syslog daemon they are dropped silently.
//! * While filesystems are frozen nothing is logged at all (writing could block forever).
//!
//! The `log` crate's records (from `qga-core`) are mapped onto GLib's levels: error → critical,
//! warn → warning, info → info, debug and trace → debug.

use std::fmt::Arguments;
use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tz;

/// GLib's log levels, as qemu-ga names them in its log lines.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub enum Level {
    /// `g_error` (fatal in GLib; qemu-ga uses it only for impossible situations).
    Error,
    /// `g_critical`: qemu-ga's "error" level.
    Critical,
    /// `g_warning`.
    Warning,
    /// `g_message`.
    Message,
    /// `g_info`.
    Info,
    /// `g_debug`.
    Debug,
}

impl Level {
    /// The word qemu-ga writes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Critical => "critical",
            Level::Warning => "warning",
            Level::Message => "message",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// syslog priority (`glib_log_level_to_system`), with facility LOG_USER.
    const fn syslog_priority(self) -> u8 {
        const LOG_USER: u8 = 1 << 3;
        LOG_USER
            | match self {
                Level::Error => 3,    // LOG_ERR
                Level::Critical => 2, // LOG_CRIT
                Level::Warning => 4,  // LOG_WARNING
                Level::Message => 5,  // LOG_NOTICE
                Level::Info => 6,     // LOG_INFO
                Level::Debug => 7,    // LOG_DEBUG
            }
    }
}

/// A set of levels (qemu-ga's `log_level` mask).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LevelMask(u8);

impl LevelMask {
    /// Error, critical and warning: the default.
    pub const DEFAULT: LevelMask =
        LevelMask(Level::Error.bit() | Level::Critical.bit() | Level::Warning.bit());
    /// Every level (`--debug`).
    pub const ALL: LevelMask = LevelMask(0x3f);
    /// The info bit (what `-D` reports as `verbose`).
    pub const INFO: LevelMask = LevelMask(Level::Info.bit());
    /// The debug bit (what `-D` reports as `debug`).
    pub const DEBUG: LevelMask = LevelMask(Level::Debug.bit());

    /// Adds message and info (`-v`).
    #[must_use]
    pub const fn with_verbose(self) -> LevelMask {
        LevelMask(self.0 | Level::Message.bit() | Level::Info.bit())
    }

    /// True if every level of `other` is in the mask.
    pub const fn contains(self, other: LevelMask) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if `level` is in the mask.
    pub const fn has(self, level: Level) -> bool {
        self.0 & level.bit() != 0
    }
}

enum Sink {
    Stderr,
    File(File),
}

struct State {
    /// False until the agent's handler is installed: GLib's default format.
    installed: bool,
    /// False while frozen.
    enabled: bool,
    /// Only critical and error messages (the daemon child before it detaches).
    quiet: bool,
    mask: LevelMask,
    sink: Sink,
    syslog: Option<Syslog>,
}

static STATE: Mutex<State> = Mutex::new(State {
    installed: false,
    enabled: true,
    quiet: false,
    mask: LevelMask::DEFAULT,
    sink: Sink::Stderr,
    syslog: None,
});

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the agent's handler: from now on, qemu-ga's own format, the level mask, and syslog.
pub fn install(mask: LevelMask, program: &str) {
    let mut st = state();
    st.installed = true;
    st.mask = mask;
    st.syslog = Some(Syslog::new(program));
    log::set_max_level(if mask.has(Level::Debug) {
        log::LevelFilter::Trace
    } else if mask.has(Level::Info) {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    });
}

/// Sends the log lines to `file` instead of stderr.
pub fn set_file(file: File) {
    state().sink = Sink::File(file);
}

/// Switches all logging off (frozen filesystems) or back on.
pub fn set_enabled(enabled: bool) {
    state().enabled = enabled;
}

/// Drops everything but critical and error messages while set.
pub fn set_quiet(quiet: bool) {
    state().quiet = quiet;
}

/// True if a message of `level` would be written now (to skip building costly messages).
pub fn enabled(level: Level) -> bool {
    let st = state();
    !st.installed || (st.enabled && st.mask.has(level))
}

/// Logs one message.
pub fn emit(level: Level, args: Arguments<'_>) {
    let mut st = state();
    if !st.installed {
        let quiet = st.quiet;
        drop(st);
        if !quiet || level <= Level::Critical {
            glib_default(level, args);
        }
        return;
    }
    if !st.enabled || !st.mask.has(level) || (st.quiet && level > Level::Critical) {
        return;
    }
    let text = args.to_string();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = format!(
        "{}.{:06}: {}: {}\n",
        now.as_secs(),
        now.subsec_micros(),
        level.as_str(),
        text
    );
    // Logging must never take the agent down: write errors are ignored, as with fprintf.
    let _ = match &mut st.sink {
        Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
        Sink::File(f) => f.write_all(line.as_bytes()),
    };
    if level != Level::Debug
        && let Some(syslog) = &mut st.syslog
    {
        syslog.send(level, &text);
    }
}

/// GLib's default handler, used before the agent's handler is installed. Only error, critical,
/// warning and message are shown (info and debug need `G_MESSAGES_DEBUG`, which qemu-ga users
/// do not set).
fn glib_default(level: Level, args: Arguments<'_>) {
    let (alert, name) = match level {
        Level::Error => (true, "ERROR"),
        Level::Critical => (true, "CRITICAL"),
        Level::Warning => (true, "WARNING"),
        Level::Message => (false, "Message"),
        Level::Info | Level::Debug => return,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let local = secs.saturating_add(i64::from(tz::local_offset(secs).offset));
    let day_secs = local.rem_euclid(86_400);
    let mut out = Vec::new();
    if alert {
        out.extend_from_slice(b"\n** ");
        out.extend_from_slice(format!("(process:{}): ", std::process::id()).as_bytes());
    } else {
        out.extend_from_slice(b"** ");
    }
    out.extend_from_slice(
        format!(
            "{name} **: {:02}:{:02}:{:02}.{:03}: ",
            day_secs / 3600,
            day_secs / 60 % 60,
            day_secs % 60,
            now.subsec_millis()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&to_console(args.to_string().as_bytes()));
    out.push(b'\n');
    let _ = std::io::stderr().write_all(&out);
}

/// Writes a message in GLib's default format from raw bytes (texts that may hold a non-UTF-8
/// path). Only for the messages printed before the handler is installed.
pub fn glib_critical_bytes(text: &[u8]) {
    let printable = to_console(text);
    glib_default(
        Level::Critical,
        format_args!("{}", String::from_utf8_lossy(&printable)),
    );
}

/// GLib's conversion of a message to the C locale's charset (ASCII): valid UTF-8 has each
/// non-ASCII character replaced by `?`; anything else gets the `[Invalid UTF-8] ` prefix and
/// `\xNN` escapes.
pub fn to_console(text: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(text) {
        Ok(s) => s
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        Err(_) => {
            let mut out = b"[Invalid UTF-8] ".to_vec();
            let mut iter = text.iter().peekable();
            while let Some(&b) = iter.next() {
                let safe = (b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r')) && b < 0x7f;
                let lone_cr = b == b'\r' && iter.peek() != Some(&&b'\n');
                if safe && !lone_cr {
                    out.push(b);
                } else {
                    out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
                }
            }
            out
        }
    }
}

/// A datagram connection to the local syslog daemon.
struct Syslog {
    socket: Option<UnixDatagram>,
    tag: String,
}

impl Syslog {
    fn new(program: &str) -> Self {
        let tag = program.rsplit('/').next().unwrap_or(program).to_owned();
        Syslog { socket: None, tag }
    }

    /// glibc's `syslog()` without `openlog()`: `<PRI>Mmm dd hh:mm:ss tag: text`.
    fn send(&mut self, level: Level, text: &str) {
        if self.socket.is_none() {
            self.socket = UnixDatagram::unbound()
                .ok()
                .filter(|s| s.connect("/dev/log").is_ok());
        }
        let Some(socket) = &self.socket else { return };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let stamp = tz::syslog_timestamp(secs);
        let msg = format!(
            "<{}>{} {}: {}: {}",
            level.syslog_priority(),
            stamp,
            self.tag,
            level.as_str(),
            text
        );
        if socket.send(msg.as_bytes()).is_err() {
            // The daemon may have restarted: reconnect on the next message.
            self.socket = None;
        }
    }
}

/// The `log` crate's front end for `qga-core`'s messages.
pub struct CoreLogger;

impl log::Log for CoreLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let level = match record.level() {
            log::Level::Error => Level::Critical,
            log::Level::Warn => Level::Warning,
            log::Level::Info => Level::Info,
            log::Level::Debug | log::Level::Trace => Level::Debug,
        };
        emit(level, *record.args());
    }

    fn flush(&self) {}
}

/// `g_critical`.
macro_rules! critical {
    ($($t:tt)*) => { $crate::logging::emit($crate::logging::Level::Critical, format_args!($($t)*)) };
}
/// `g_warning`.
macro_rules! warning {
    ($($t:tt)*) => { $crate::logging::emit($crate::logging::Level::Warning, format_args!($($t)*)) };
}
/// `g_info`.
macro_rules! info {
    ($($t:tt)*) => { $crate::logging::emit($crate::logging::Level::Info, format_args!($($t)*)) };
}
/// `g_debug`.
macro_rules! debug {
    ($($t:tt)*) => { $crate::logging::emit($crate::logging::Level::Debug, format_args!($($t)*)) };
}
pub(crate) use {critical, debug, info, warning};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert!(!LevelMask::DEFAULT.has(Level::Info));
        assert!(LevelMask::DEFAULT.has(Level::Warning));
        let v = LevelMask::DEFAULT.with_verbose();
        assert!(v.has(Level::Info) && v.has(Level::Message) && !v.has(Level::Debug));
        assert!(LevelMask::ALL.contains(LevelMask::DEBUG));
    }

    #[test]
    fn console_conversion() {
        assert_eq!(
            to_console("line \u{201c}garbage\u{201d} ok".as_bytes()),
            b"line ?garbage? ok"
        );
        assert_eq!(to_console(b"p/\xff x"), b"[Invalid UTF-8] p/\\xff x");
        assert_eq!(
            to_console(b"\xe2\x80\x9c\x01\xff"),
            b"[Invalid UTF-8] \\xe2\\x80\\x9c\\x01\\xff"
        );
    }

    #[test]
    fn syslog_priorities() {
        assert_eq!(Level::Info.syslog_priority(), 14);
        assert_eq!(Level::Critical.syslog_priority(), 10);
        assert_eq!(Level::Warning.syslog_priority(), 12);
    }
}
