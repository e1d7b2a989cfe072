//! The agent's configuration: config file, command line, defaults, `-D` and `--help`.
//!
//! Order of evaluation, as in qemu-ga: a first pass over the arguments finds `-c`, the config
//! file is loaded, a second pass applies the options in order (scalars override the file, lists
//! are appended to it; `-h`, `-V` and `-b help` act as soon as they are reached), then defaults
//! are filled in by [`Config::fill_defaults`] and [`Config::fill_default_path`].

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::cli::{Getopt, Opt, OptError, split_list};
use crate::keyfile::{KeyFile, KeyFileError, KeyFileWriter};
use crate::logging::LevelMask;

/// Default config file (`CONFIG_QEMU_CONFDIR/qemu-ga.conf`).
pub const CONF_DEFAULT: &str = "/etc/qemu/qemu-ga.conf";
/// Default virtio-serial port.
pub const VIRTIO_PATH_DEFAULT: &str = "/dev/virtio-ports/org.qemu.guest_agent.0";
/// Default isa-serial port (COM1).
pub const SERIAL_PATH_DEFAULT: &str = "/dev/ttyS0";
/// Default state directory.
pub const STATE_DIR_DEFAULT: &str = "/var/run";
/// Default pid file.
pub const PIDFILE_DEFAULT: &str = "/var/run/qemu-ga.pid";
/// The hook run by a bare `-F`.
pub const FSFREEZE_HOOK_DEFAULT: &str = "/etc/qemu/fsfreeze-hook";

/// Everything the command line and the config file can set (qemu-ga's `GAConfig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `-p` / `path`.
    pub channel_path: Option<OsString>,
    /// `-m` / `method`.
    pub method: Option<OsString>,
    /// `-l` / `logfile`.
    pub log_filepath: Option<OsString>,
    /// `-f` / `pidfile`.
    pub pid_filepath: Option<OsString>,
    /// `-F` / `fsfreeze-hook`.
    pub fsfreeze_hook: Option<OsString>,
    /// `-t` / `statedir`.
    pub state_dir: Option<OsString>,
    /// `-b` / `block-rpcs`, in qemu-ga's (partly reversed) order.
    pub blocked_rpcs: Vec<OsString>,
    /// `-a` / `allow-rpcs`, in qemu-ga's (partly reversed) order.
    pub allowed_rpcs: Vec<OsString>,
    /// `-d` / `daemon`.
    pub daemonize: bool,
    /// Log levels written (`-v`, `--debug`, `verbose`, `debug`).
    pub log_level: LevelMask,
    /// `-D`.
    pub dump_conf: bool,
    /// `-r` / `retry-path`.
    pub retry_path: bool,
    /// `--fsfreeze-timeout` / `fsfreeze-timeout` (qga only): the freeze watchdog's limit in
    /// seconds; 0 or absent means none.
    pub fsfreeze_timeout: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            channel_path: None,
            method: None,
            log_filepath: None,
            pid_filepath: None,
            fsfreeze_hook: None,
            state_dir: None,
            blocked_rpcs: Vec::new(),
            allowed_rpcs: Vec::new(),
            daemonize: false,
            log_level: LevelMask::DEFAULT,
            dump_conf: false,
            retry_path: false,
            fsfreeze_timeout: None,
        }
    }
}

/// Why argument parsing ended the program early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EarlyExit {
    /// `-h`: print the usage text, exit 0.
    Help,
    /// `-V`: print the version, exit 0.
    Version,
    /// `-b help` / `-a help`: list the commands, exit 0.
    ListCommands,
    /// A bad option: getopt's message, then the "Unknown option" hint, exit 1.
    BadOption(OptError),
    /// The config file could not be loaded: qemu-ga's critical message, exit 1.
    BadConfig(Vec<u8>),
}

/// qemu-ga's `is_help_option`: `help` or `?`.
fn is_help_option(value: &OsStr) -> bool {
    matches!(value.as_bytes(), b"help" | b"?")
}

/// Runs both passes over `args` (with `args[0]`), loading the config file in between.
///
/// `qga_conf` is the value of the `QGA_CONF` environment variable.
///
/// # Errors
///
/// An [`EarlyExit`] for every way the command line ends the program before the agent starts.
pub fn parse(
    args: &[OsString],
    qga_conf: Option<OsString>,
    posixly_correct: bool,
) -> Result<Config, EarlyExit> {
    // Pass 1: only -c. Errors are reported by pass 2.
    let mut conf_path = qga_conf.unwrap_or_else(|| CONF_DEFAULT.into());
    let mut conf_required = false;
    for item in Getopt::new(args, posixly_correct) {
        if let Ok((Opt::Config, Some(path))) = item {
            conf_path = path;
            conf_required = true;
        }
    }

    let mut config = Config::default();
    if let Err(msg) = config.load_file(&conf_path, conf_required) {
        let mut text = b"error loading configuration from path: ".to_vec();
        text.extend_from_slice(conf_path.as_bytes());
        text.extend_from_slice(b", ");
        text.extend_from_slice(msg.0.as_bytes());
        return Err(EarlyExit::BadConfig(text));
    }

    // Pass 2: everything else, in order.
    for item in Getopt::new(args, posixly_correct) {
        let (opt, value) = item.map_err(EarlyExit::BadOption)?;
        config.apply(opt, value)?;
    }
    Ok(config)
}

impl Config {
    /// Applies one option of pass 2.
    fn apply(&mut self, opt: Opt, value: Option<OsString>) -> Result<(), EarlyExit> {
        match opt {
            Opt::Method => self.method = value,
            Opt::Path => self.channel_path = value,
            Opt::Logfile => self.log_filepath = value,
            Opt::Pidfile => self.pid_filepath = value,
            Opt::FsfreezeHook => {
                self.fsfreeze_hook = Some(value.unwrap_or_else(|| FSFREEZE_HOOK_DEFAULT.into()));
            }
            Opt::Statedir => self.state_dir = value,
            Opt::Verbose => self.log_level = self.log_level.with_verbose(),
            Opt::Debug => self.log_level = LevelMask::ALL,
            Opt::Version => return Err(EarlyExit::Version),
            Opt::Daemonize => self.daemonize = true,
            Opt::DumpConf => self.dump_conf = true,
            Opt::RetryPath => self.retry_path = true,
            Opt::BlockRpcs | Opt::AllowRpcs => {
                let list = value.unwrap_or_default();
                if is_help_option(&list) {
                    return Err(EarlyExit::ListCommands);
                }
                let target = if opt == Opt::BlockRpcs {
                    &mut self.blocked_rpcs
                } else {
                    &mut self.allowed_rpcs
                };
                target.extend(split_list(&list));
            }
            Opt::FsfreezeTimeout => {
                let raw = value.unwrap_or_default();
                self.fsfreeze_timeout = Some(parse_timeout(raw.as_bytes()).ok_or_else(|| {
                    let mut msg = b"invalid value for --fsfreeze-timeout: '".to_vec();
                    msg.extend_from_slice(raw.as_bytes());
                    msg.extend_from_slice(b"' (a number of seconds; 0 means no limit)");
                    EarlyExit::BadConfig(msg)
                })?);
            }
            Opt::Help => return Err(EarlyExit::Help),
            // -c was handled in pass 1; -s is Windows-only and ignored on Linux.
            Opt::Config | Opt::Service => {}
        }
        Ok(())
    }

    /// qemu-ga's `config_load`. A missing file is fine unless it was named with `-c`.
    fn load_file(&mut self, path: &OsStr, required: bool) -> Result<(), KeyFileError> {
        let data = match read_regular_file(path) {
            Ok(data) => data,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(KeyFileError(io_message(&e))),
        };
        let kf = KeyFile::parse(&data)?;
        self.load_keyfile(&kf)
    }

    /// Reads the `[general]` keys in qemu-ga's order. Every key is read even after an error;
    /// the first error is the one reported.
    fn load_keyfile(&mut self, kf: &KeyFile) -> Result<(), KeyFileError> {
        const G: &str = "general";
        let mut first_err: Option<KeyFileError> = None;
        let mut keep = |r: Result<(), KeyFileError>| {
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        };
        let string = |key: &str| -> Option<Result<OsString, KeyFileError>> {
            kf.has_key(G, key)
                .then(|| kf.get_string(G, key).map(OsString::from))
        };
        if kf.has_key(G, "daemon") {
            keep(kf.get_boolean(G, "daemon").map(|v| self.daemonize = v));
        }
        for (key, slot) in [
            ("method", &mut self.method),
            ("path", &mut self.channel_path),
            ("logfile", &mut self.log_filepath),
            ("pidfile", &mut self.pid_filepath),
            ("fsfreeze-hook", &mut self.fsfreeze_hook),
            ("statedir", &mut self.state_dir),
        ] {
            if let Some(r) = string(key) {
                // On error qemu-ga stores NULL; it exits right after, so only the error matters.
                keep(r.map(|v| *slot = Some(v)));
            }
        }
        if kf.has_key(G, "verbose") {
            keep(kf.get_boolean(G, "verbose").map(|v| {
                if v {
                    self.log_level = self.log_level.with_verbose();
                }
            }));
        }
        if kf.has_key(G, "debug") {
            keep(kf.get_boolean(G, "debug").map(|v| {
                if v {
                    self.log_level = LevelMask::ALL;
                }
            }));
        }
        if kf.has_key(G, "retry-path") {
            keep(kf.get_boolean(G, "retry-path").map(|v| self.retry_path = v));
        }
        for (key, list) in [
            ("block-rpcs", &mut self.blocked_rpcs),
            ("allow-rpcs", &mut self.allowed_rpcs),
        ] {
            if let Some(r) = string(key) {
                keep(r.map(|v| list.extend(split_list(&v))));
            }
        }
        // qga's own key, read after qemu-ga's.
        const TIMEOUT_KEY: &str = "fsfreeze-timeout";
        if kf.has_key(G, TIMEOUT_KEY) {
            keep(
                kf.get_integer(G, TIMEOUT_KEY)
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .map(|v| self.fsfreeze_timeout = Some(v))
                    .ok_or_else(|| {
                        KeyFileError(format!(
                            "Key file contains key \u{201c}{TIMEOUT_KEY}\u{201d} which has a value \
                             that cannot be interpreted."
                        ))
                    }),
            );
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Fills in the defaults qemu-ga applies after parsing (pid file, state dir, method).
    pub fn fill_defaults(&mut self) {
        self.pid_filepath
            .get_or_insert_with(|| PIDFILE_DEFAULT.into());
        self.state_dir
            .get_or_insert_with(|| STATE_DIR_DEFAULT.into());
        self.method.get_or_insert_with(|| "virtio-serial".into());
    }

    /// The default path for the method, when none was given: `None` means the method needs an
    /// explicit path ("must specify a path for this channel").
    pub fn fill_default_path(&mut self) -> bool {
        if self.channel_path.is_some() {
            return true;
        }
        let default = match self.method.as_deref().map(OsStr::as_bytes) {
            Some(b"virtio-serial") => VIRTIO_PATH_DEFAULT,
            Some(b"isa-serial") => SERIAL_PATH_DEFAULT,
            _ => return false,
        };
        self.channel_path = Some(default.into());
        true
    }

    /// The `-D` output: qemu-ga's key order and GLib's formatting.
    pub fn dump(&self) -> Vec<u8> {
        let empty = OsString::new();
        let mut w = KeyFileWriter::default();
        w.group("general")
            .boolean("daemon", self.daemonize)
            .string("method", self.method.as_ref().unwrap_or(&empty).as_bytes());
        if let Some(path) = &self.channel_path {
            w.string("path", path.as_bytes());
        }
        if let Some(log) = &self.log_filepath {
            w.string("logfile", log.as_bytes());
        }
        w.string(
            "pidfile",
            self.pid_filepath.as_ref().unwrap_or(&empty).as_bytes(),
        );
        if let Some(hook) = &self.fsfreeze_hook {
            w.string("fsfreeze-hook", hook.as_bytes());
        }
        w.string(
            "statedir",
            self.state_dir.as_ref().unwrap_or(&empty).as_bytes(),
        )
        .boolean("verbose", self.log_level.contains(LevelMask::INFO))
        .boolean("debug", self.log_level.contains(LevelMask::DEBUG))
        .boolean("retry-path", self.retry_path)
        .string("block-rpcs", &join(&self.blocked_rpcs))
        .string("allow-rpcs", &join(&self.allowed_rpcs));
        // qga's own key, after qemu-ga's, and only when set: without it the output is qemu-ga's.
        if let Some(secs) = self.fsfreeze_timeout {
            w.integer("fsfreeze-timeout", i64::from(secs));
        }
        w.finish()
    }
}

/// A `--fsfreeze-timeout` value: GLib's integer syntax (as in the config file), 0 or more.
fn parse_timeout(raw: &[u8]) -> Option<u32> {
    crate::keyfile::parse_integer(raw).and_then(|v| u32::try_from(v).ok())
}

fn join(list: &[OsString]) -> Vec<u8> {
    let parts: Vec<&[u8]> = list.iter().map(|s| s.as_bytes()).collect();
    parts.join(&b","[..])
}

/// Reads a whole file that must be a regular file (GLib: "Not a regular file").
fn read_regular_file(path: &OsStr) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("Not a regular file"));
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    Ok(data)
}

/// `strerror` text of an I/O error (without Rust's " (os error N)" suffix).
pub fn io_message(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => crate::errno::strerror(code).to_owned(),
        None => e.to_string(),
    }
}

/// The `--help` text: qemu-ga's layout, our name.
pub fn usage(argv0: &OsStr) -> Vec<u8> {
    let mut out = b"Usage: ".to_vec();
    out.extend_from_slice(argv0.as_bytes());
    out.extend_from_slice(
        format!(
            " [-m <method> -p <path>] [<options>]
qga {version}: a QEMU Guest Agent for Linux
Compatible with qemu-ga's command line, configuration file and protocol

  -c, --config=PATH configuration file path (default is
                    {CONF_DEFAULT}
                    unless overridden by the QGA_CONF environment variable)
  -m, --method      transport method: one of unix-listen, virtio-serial,
                    isa-serial, or vsock-listen (virtio-serial is the default)
  -p, --path        device/socket path (the default for virtio-serial is:
                    {VIRTIO_PATH_DEFAULT},
                    the default for isa-serial is:
                    {SERIAL_PATH_DEFAULT}).
                    Socket addresses for vsock-listen are written as
                    <cid>:<port>.
  -l, --logfile     set logfile path, logs to stderr by default
  -f, --pidfile     specify pidfile (default is {PIDFILE_DEFAULT})
  -F, --fsfreeze-hook
                    enable fsfreeze hook. Accepts an optional argument that
                    specifies script to run on freeze/thaw. Script will be
                    called with 'freeze'/'thaw' arguments accordingly.
                    (default is {FSFREEZE_HOOK_DEFAULT})
                    If using -F with an argument, do not follow -F with a
                    space.
                    (for example: -F/var/run/fsfreezehook.sh)
  --fsfreeze-timeout=SECS
                    thaw frozen filesystems by itself after SECS seconds
                    (qga only; default: no limit, as qemu-ga)
  -t, --statedir    specify dir to store state information (absolute paths
                    only, default is {STATE_DIR_DEFAULT})
  -v, --verbose     enable verbose logging (info and above)
  --debug           enable debug logging (all messages)
  -V, --version     print version information and exit
  -d, --daemonize   become a daemon
  -b, --block-rpcs  comma-separated list of RPCs to disable (no spaces,
                    use \"--block-rpcs=help\" to list available RPCs)
  -a, --allow-rpcs  comma-separated list of RPCs to enable (no spaces,
                    use \"--allow-rpcs=help\" to list available RPCs)
  -D, --dump-conf   dump a qemu-ga config file based on current config
                    options / command-line parameters to stdout
  -r, --retry-path  attempt re-opening path if it's unavailable or closed
                    due to an error which may be recoverable in the future
                    (virtio-serial driver re-install, serial device hot
                    plug/unplug, etc.)
  -h, --help        display this help and exit

qga is licensed under the MIT or Apache-2.0 license; it is not part of QEMU.\n",
            version = env!("CARGO_PKG_VERSION"),
        )
        .as_bytes(),
    );
    out
}

/// The `-V` text.
pub fn version() -> String {
    format!(
        "qga {}\ncompatible with the QEMU Guest Agent protocol (qemu-ga)\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {

    #[test]
    fn usage_keeps_qemu_gas_indentation() {
        let text = String::from_utf8(usage(OsStr::new("qga"))).unwrap();
        assert!(text.contains("\n  -m, --method      transport method: one of unix-listen, virtio-serial,\n                    isa-serial, or vsock-listen (virtio-serial is the default)\n"));
        assert!(text.contains("\n  -h, --help        display this help and exit\n"));
    }

    use super::*;
    use std::io::Write;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("qga")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn parse_with(list: &[&str], conf: Option<&std::path::Path>) -> Result<Config, EarlyExit> {
        let conf = conf.map_or_else(
            || OsString::from("/nonexistent/qga-test.conf"),
            |p| p.into(),
        );
        parse(&args(list), Some(conf), false)
    }

    fn dump(list: &[&str]) -> String {
        let mut c = parse_with(list, None).unwrap();
        c.fill_defaults();
        assert!(c.fill_default_path());
        String::from_utf8(c.dump()).unwrap()
    }

    fn temp_conf(name: &str, text: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("qga-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text)
            .unwrap();
        path
    }

    #[test]
    fn dump_defaults_match_qemu_ga() {
        // qemu-ga 7.2's 180 bytes plus the newer keys "debug" and "allow-rpcs".
        assert_eq!(
            dump(&[]),
            "[general]\ndaemon=false\nmethod=virtio-serial\npath=/dev/virtio-ports/org.qemu.guest_agent.0\n\
pidfile=/var/run/qemu-ga.pid\nstatedir=/var/run\nverbose=false\ndebug=false\nretry-path=false\n\
block-rpcs=\nallow-rpcs=\n"
        );
    }

    #[test]
    fn dump_options_and_list_order_quirk() {
        let out = dump(&[
            "-F",
            "-b",
            "guest-ping",
            "-b",
            "guest-info,guest-sync",
            "-v",
            "-d",
            "-r",
        ]);
        assert!(out.contains("\nfsfreeze-hook=/etc/qemu/fsfreeze-hook\n"));
        assert!(out.contains("\nverbose=true\ndebug=false\n"));
        assert!(out.contains("\nblock-rpcs=guest-ping,guest-sync,guest-info\n"));
        assert!(out.contains("\ndaemon=true\n") && out.contains("\nretry-path=true\n"));
        let out = dump(&["--debug", "-m", "isa-serial", "-l", "/log", "-a", "a,b,c"]);
        assert!(out.contains("\nmethod=isa-serial\npath=/dev/ttyS0\nlogfile=/log\n"));
        assert!(out.contains("\nverbose=true\ndebug=true\n"));
        assert!(out.ends_with("\nallow-rpcs=c,b,a\n"));
    }

    #[test]
    fn fsfreeze_timeout_option_and_key() {
        // Not set: qemu-ga's output, no extra key.
        assert!(!dump(&[]).contains("fsfreeze-timeout"));
        let out = dump(&["--fsfreeze-timeout=30"]);
        assert!(
            out.ends_with("\nallow-rpcs=\nfsfreeze-timeout=30\n"),
            "{out}"
        );
        assert_eq!(
            parse_with(&["--fsfreeze-timeout", "0"], None)
                .unwrap()
                .fsfreeze_timeout,
            Some(0)
        );
        for bad in ["", "x", "-1", "1.5", "99999999999"] {
            match parse_with(&["--fsfreeze-timeout", bad], None) {
                Err(EarlyExit::BadConfig(m)) => assert_eq!(
                    String::from_utf8(m).unwrap(),
                    format!(
                        "invalid value for --fsfreeze-timeout: '{bad}' (a number of seconds; 0 \
                         means no limit)"
                    )
                ),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let path = temp_conf("timeout.conf", b"[general]\nfsfreeze-timeout=45\n");
        let c = parse_with(&[], Some(&path)).unwrap();
        assert_eq!(c.fsfreeze_timeout, Some(45));
        // The command line overrides the file.
        let c = parse_with(&["--fsfreeze-timeout=5"], Some(&path)).unwrap();
        assert_eq!(c.fsfreeze_timeout, Some(5));
        let path = temp_conf("badtimeout.conf", b"[general]\nfsfreeze-timeout=-3\n");
        match parse_with(&[], Some(&path)) {
            Err(EarlyExit::BadConfig(m)) => assert!(String::from_utf8(m).unwrap().ends_with(
                "badtimeout.conf, Key file contains key \u{201c}fsfreeze-timeout\u{201d} which has a \
                 value that cannot be interpreted."
            )),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths_are_required_for_listen_methods() {
        for m in ["unix-listen", "vsock-listen", "foo", ""] {
            let mut c = parse_with(&["-m", m], None).unwrap();
            c.fill_defaults();
            assert!(!c.fill_default_path(), "{m}");
        }
    }

    #[test]
    fn early_exits_in_argument_order() {
        assert_eq!(
            parse_with(&["-V", "--bogus"], None),
            Err(EarlyExit::Version)
        );
        assert!(matches!(
            parse_with(&["--bogus", "-V"], None),
            Err(EarlyExit::BadOption(_))
        ));
        assert_eq!(
            parse_with(&["-b", "help"], None),
            Err(EarlyExit::ListCommands)
        );
        assert_eq!(
            parse_with(&["--allow-rpcs=?"], None),
            Err(EarlyExit::ListCommands)
        );
        assert_eq!(parse_with(&["-h", "-V"], None), Err(EarlyExit::Help));
    }

    #[test]
    fn config_file_values_and_command_line_overrides() {
        let path = temp_conf(
            "ok.conf",
            b"[general]\ndaemon=1\nmethod=unix-listen\npath=/conf/sock\nverbose=true\n\
block-rpcs=guest-ping;guest-get-time\nallow-rpcs=a,b\nstatedir=/var/state\n",
        );
        let c = parse_with(&["-p", "/cli/sock", "-b", "x,y"], Some(&path)).unwrap();
        assert!(c.daemonize);
        assert_eq!(c.method.as_deref(), Some(OsStr::new("unix-listen")));
        assert_eq!(c.channel_path.as_deref(), Some(OsStr::new("/cli/sock")));
        assert!(c.log_level.contains(LevelMask::INFO));
        assert_eq!(
            c.blocked_rpcs,
            vec![
                OsString::from("guest-ping;guest-get-time"),
                "y".into(),
                "x".into()
            ]
        );
        assert_eq!(c.allowed_rpcs, vec![OsString::from("b"), "a".into()]);
    }

    #[test]
    fn config_errors_have_qemu_ga_text() {
        let bad = |name: &str, text: &[u8]| match parse_with(&[], Some(&temp_conf(name, text))) {
            Err(EarlyExit::BadConfig(m)) => String::from_utf8(m).unwrap(),
            other => panic!("{other:?}"),
        };
        let m = bad("garbage.conf", b"garbage\n");
        assert!(m.starts_with("error loading configuration from path: /"));
        assert!(m.ends_with(
            "garbage.conf, Key file contains line \u{201c}garbage\u{201d} which is not a key-value pair, group, or comment"
        ));
        let m = bad("maybe.conf", b"[general]\ndaemon=maybe\n");
        assert!(m.ends_with(
            "maybe.conf, Key file contains key \u{201c}daemon\u{201d} which has a value that cannot be interpreted."
        ));
        // The first failing key in qemu-ga's order is reported.
        let m = bad("two.conf", b"[general]\nretry-path=x\ndaemon=y\n");
        assert!(m.contains("\u{201c}daemon\u{201d}"));
        // A directory.
        let dir = std::env::temp_dir();
        match parse(&args(&[]), Some(dir.clone().into()), false) {
            Err(EarlyExit::BadConfig(m)) => assert!(m.ends_with(b", Not a regular file")),
            other => panic!("{other:?}"),
        }
        // A missing default file is fine, a missing -c file is not.
        assert!(parse_with(&[], None).is_ok());
        match parse_with(&["-c", "/nonexistent/x.conf"], None) {
            Err(EarlyExit::BadConfig(m)) => assert_eq!(
                m,
                b"error loading configuration from path: /nonexistent/x.conf, No such file or directory"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn upstream_test_config_round_trip() {
        // tests/data/test-qga-config from QEMU.
        let path = temp_conf(
            "upstream.conf",
            b"[general]\ndaemon=false\nmethod=virtio-serial\npath=/path/to/org.qemu.guest_agent.0\n\
pidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\nblock-rpcs=guest-ping;guest-get-time\n",
        );
        let mut c = parse_with(&["-D"], Some(&path)).unwrap();
        c.fill_defaults();
        assert!(c.fill_default_path());
        let out = String::from_utf8(c.dump()).unwrap();
        assert!(out.contains("\npath=/path/to/org.qemu.guest_agent.0\n"));
        assert!(
            out.contains("\npidfile=/var/foo/qemu-ga.pid\nstatedir=/var/state\nverbose=true\n")
        );
        assert!(out.contains("\nblock-rpcs=guest-ping;guest-get-time\n"));
    }

    #[test]
    fn usage_mentions_every_option() {
        let text = String::from_utf8(usage(OsStr::new("qga"))).unwrap();
        assert!(text.starts_with("Usage: qga [-m <method> -p <path>] [<options>]\n"));
        for opt in [
            "--config",
            "--method",
            "--path",
            "--logfile",
            "--pidfile",
            "--fsfreeze-hook",
            "--statedir",
            "--verbose",
            "--debug",
            "--version",
            "--daemonize",
            "--block-rpcs",
            "--allow-rpcs",
            "--dump-conf",
            "--retry-path",
            "--fsfreeze-timeout",
            "--help",
        ] {
            assert!(text.contains(opt), "{opt}");
        }
    }
}
