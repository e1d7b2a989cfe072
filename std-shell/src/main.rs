//! `qga`: a QEMU guest agent for Linux, a drop-in replacement for qemu-ga.
//!
//! It takes qemu-ga's command line and config file, writes qemu-ga's log lines, keeps qemu-ga's
//! state files, and speaks its protocol byte for byte. The protocol engine is the `qga-core`
//! crate; this crate is the Linux shell around it: command line and configuration
//! ([`config`], [`cli`], [`keyfile`]), logging ([`logging`]), transports ([`transport`]), the
//! lifecycle (daemon, signals, state files) and the [`Host`] implementation ([`host`]).
//!
//! Behaviour follows the newest qemu-ga (options `-c`, `-a`, `--debug`; `-v` meaning info and
//! above; syslog for every non-debug message; channel opened before daemonizing), with error
//! texts of commands as qemu-ga 7.2 (the reference binary) writes them.
//!
//! # Deliberate differences from qemu-ga
//!
//! * `-V` prints `qga <version>` and a line saying it is compatible with the QEMU Guest Agent
//!   protocol; `--help` has qemu-ga's layout with our name (and the correct default config path,
//!   where qemu-ga prints `/etc/qemu/qemu-ga.conf/qemu-ga.conf`).
//! * A bad option is reported once (qemu-ga ≥ 9.1 parses the arguments twice and prints
//!   getopt's message twice).
//! * A virtio-serial port without a host is not polled at 10 Hz: see [`transport`].
//!   Writes wait for POLLOUT instead of spinning on EAGAIN.
//! * `-d` re-executes the binary instead of forking (see [`daemon`]); the observable sequence
//!   (parent exits 0, child writes the pid file, `umask 077`, `setsid`, `chdir /`, stdio on
//!   /dev/null) is the same. Only a pid file this process wrote is removed at exit (qemu-ga
//!   unlinks the configured path even when it failed before writing it).
//! * A read error on a unix/vsock client drops that client and keeps listening (qemu-ga stops
//!   its main loop, i.e. exits without `-r`).
//! * EOF on an isa-serial port is treated like a virtio-serial hang-up (wait for input) instead
//!   of silently closing the port forever.
//! * `guest-get-users` reads utmp directly and `guest-ssh-*` look users up in `/etc/passwd`
//!   (no NSS).
//! * `guest-shutdown` needs no external program: it runs `/sbin/poweroff|halt|reboot` or
//!   `/sbin/shutdown` when present (as the newest qemu-ga), else asks PID 1 the way its init
//!   understands (systemd, busybox init, procd, sysvinit), else calls `reboot(2)` itself, and
//!   falls back to `reboot(2)` when nothing happened a minute later (see `host::power`).
//! * `guest-set-time` needs no `hwclock`: `clock_settime` and the RTC ioctls; a guest without an
//!   RTC gets its clock set (see `host::clock`).
//! * The fsfreeze hook is killed after 60 s (qemu-ga waits forever), and `--fsfreeze-timeout`
//!   (off by default) thaws filesystems frozen longer than that (see `host::freeze`).
//! * `guest-suspend-hybrid` also works through the kernel (`/sys/power/disk` = `suspend`) when
//!   neither systemd nor pm-utils is there; systemd is only asked when it runs the system.
//!
//! [`Host`]: qga_core::Host
#![deny(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod b64;
mod cli;
mod config;
mod daemon;
mod errno;
mod framebuf;
mod host;
mod keyfile;
mod logging;
mod signals;
mod state;
mod sysfd;
mod transport;
mod tz;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use qga_core::Agent;

use crate::config::{Config, EarlyExit};
use crate::daemon::{ChildInfo, PidFile};
use crate::framebuf::GrowBuf;
use crate::host::Lifecycle;
use crate::host::LinuxHost;
use crate::logging::{Level, critical, debug, info, warning};
use crate::signals::Signals;
use crate::state::StateFiles;
use crate::transport::writer::{FdWriter, WRITE_BUFFER};
use crate::transport::{Channel, Method, Next};

/// qemu-ga's `QGA_RETRY_INTERVAL`.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Bytes read from the channel at a time.
const READ_SIZE: usize = 64 * 1024;
/// The agent's scratch buffer (base64 payloads are streamed through it).
const WORK_SIZE: usize = 64 * 1024;
/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

static LOGGER: logging::CoreLogger = logging::CoreLogger;

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "qga".into());
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);

    let mut config = match config::parse(
        &args,
        std::env::var_os("QGA_CONF"),
        std::env::var_os("POSIXLY_CORRECT").is_some(),
    ) {
        Ok(c) => c,
        Err(exit) => return early_exit(&exit, &argv0),
    };
    config.fill_defaults();

    let child = std::env::var_os(daemon::CHILD_ENV).and_then(|v| daemon::child_info(&v));
    // The listening socket from systemd (in the daemon child: the one its parent got from
    // systemd). `Some(None)` is an activation whose descriptor could not be taken over.
    let activation: Option<Option<OwnedFd>> = match child {
        Some(ci) if ci.activated => Some(ci.channel_fd.and_then(|fd| sysfd::adopt(fd).ok())),
        Some(_) => None,
        None => match socket_activation() {
            Ok(fd) => fd.map(Some),
            Err(()) => return 1,
        },
    };
    let activated = activation.is_some();
    let activation_fd = activation.flatten();
    if activated {
        // The socket decides the method; -m and -p are ignored.
        let method = activation_fd
            .as_ref()
            .and_then(|fd| transport::method_of_socket(fd.as_fd()));
        let Some(method) = method else {
            logging::glib_critical_bytes(b"unsupported listen fd type");
            return 1;
        };
        config.method = Some(
            match method {
                Method::VsockListen => "vsock-listen",
                _ => "unix-listen",
            }
            .into(),
        );
        config.channel_path = None;
    } else if !config.fill_default_path() {
        logging::glib_critical_bytes(b"must specify a path for this channel");
        return 1;
    }

    if config.dump_conf {
        let _ = std::io::stdout().write_all(&config.dump());
        return 0;
    }

    let mut daemon = Daemon {
        args: &args,
        child,
        activated,
        pidfile: None,
    };
    let code = match initialize(&config, &mut daemon, activation_fd) {
        Some(code) => code,
        None => {
            critical!("error initializing guest agent");
            1
        }
    };
    if let Some(pf) = daemon.pidfile.take() {
        pf.remove();
    }
    code
}

/// Prints what an early exit prints and returns the exit code.
fn early_exit(exit: &EarlyExit, argv0: &OsStr) -> i32 {
    let mut out = std::io::stdout();
    match exit {
        EarlyExit::Help => {
            let _ = out.write_all(&config::usage(argv0));
            0
        }
        EarlyExit::Version => {
            let _ = out.write_all(config::version().as_bytes());
            0
        }
        EarlyExit::ListCommands => {
            for name in qga_core::command::names() {
                let _ = writeln!(out, "{name}");
            }
            0
        }
        EarlyExit::BadOption(err) => {
            let mut msg = argv0.as_bytes().to_vec();
            msg.extend_from_slice(b": ");
            msg.extend_from_slice(&err.0);
            msg.push(b'\n');
            let _ = std::io::stderr().write_all(&msg);
            let mut hint = b"Unknown option, try '".to_vec();
            hint.extend_from_slice(argv0.as_bytes());
            hint.extend_from_slice(b" --help' for more information.\n");
            let _ = out.write_all(&hint);
            1
        }
        EarlyExit::BadConfig(msg) => {
            logging::glib_critical_bytes(msg);
            1
        }
    }
}

/// systemd socket activation (QEMU's `check_socket_activation`): `Ok(Some(fd))` when one socket
/// was passed, `Ok(None)` when none, `Err` (after the critical message) for more than one.
fn socket_activation() -> Result<Option<OwnedFd>, ()> {
    let number = |name: &str| -> Option<u64> {
        let v = std::env::var_os(name)?;
        std::str::from_utf8(v.as_bytes()).ok()?.parse().ok()
    };
    let Some(pid) = number("LISTEN_PID") else {
        return Ok(None);
    };
    if pid != u64::from(std::process::id()) {
        return Ok(None);
    }
    let nr_fds = number("LISTEN_FDS").unwrap_or(0);
    // Every passed descriptor must be valid (and is made close-on-exec), else there is no
    // activation at all.
    let mut fds = Vec::new();
    for i in 0..nr_fds {
        let fd = i32::try_from(i)
            .ok()
            .and_then(|i| i.checked_add(LISTEN_FDS_START))
            .and_then(|raw| sysfd::adopt(raw).ok());
        match fd {
            Some(fd) => fds.push(fd),
            None => return Ok(None),
        }
    }
    if fds.len() > 1 {
        logging::glib_critical_bytes(b"qemu-ga only supports listening on one socket");
        return Err(());
    }
    Ok(fds.pop())
}

/// Daemon-related state carried through initialisation.
struct Daemon<'a> {
    args: &'a [OsString],
    /// Set in the re-executed daemon child.
    child: Option<ChildInfo>,
    activated: bool,
    pidfile: Option<PidFile>,
}

/// qemu-ga's `initialize_agent` followed by `run_agent`. `None` means "error initializing guest
/// agent".
fn initialize(
    config: &Config,
    daemon: &mut Daemon<'_>,
    activation_fd: Option<OwnedFd>,
) -> Option<i32> {
    // The daemon child repeats what its parent already did (and said): stay quiet until
    // detached, except for errors.
    logging::set_quiet(daemon.child.is_some());
    let state_dir = config.state_dir.clone().unwrap_or_default();
    let state = StateFiles::new(&state_dir);
    let frozen = state.check_frozen();

    logging::install(
        config.log_level,
        &String::from_utf8_lossy(daemon_argv0(daemon)),
    );
    debug!("Guest agent version {} started", env!("CARGO_PKG_VERSION"));

    let mut life = Lifecycle::new(state.clone(), frozen);
    if frozen {
        if config.daemonize {
            life.deferred_pid = config.pid_filepath.clone();
        }
        life.deferred_log = config.log_filepath.clone();
        logging::set_enabled(false);
    } else if let Some(path) = &config.log_filepath {
        match daemon::open_logfile(path) {
            Ok(f) => logging::set_file(f),
            Err(e) => {
                critical!("unable to open specified log file: {e}");
                return None;
            }
        }
    }

    let Some(fd_counter) = state.load(frozen) else {
        critical!("failed to load persistent state");
        return None;
    };

    let Ok(signals) = Signals::install() else {
        critical!("failed to register signal handlers");
        return None;
    };

    let core_config = core_config(config, frozen);

    // The channel: inherited from the daemonizing parent, from systemd, or opened here.
    let method = config.method.clone().unwrap_or_default();
    let path = config.channel_path.clone().unwrap_or_default();
    let inherited = match daemon.child {
        Some(ChildInfo {
            channel_fd: Some(fd),
            activated: false,
        }) => sysfd::adopt(fd).ok(),
        _ => activation_fd,
    };
    let had_inherited = inherited.is_some() || daemon.child.is_some();
    let mut channel = if had_inherited {
        inherited.and_then(|fd| open_channel(&method, &path, Some(fd)).ok())
    } else {
        open_channel(&method, &path, None).ok()
    };
    if channel.is_none() && !had_inherited {
        if config.retry_path {
            info!("failed to initialize guest agent channel, will retry");
        } else {
            critical!("failed to initialize guest agent channel");
            return None;
        }
    }

    if config.daemonize {
        match daemon.child {
            None => {
                daemon::spawn_child(
                    daemon.args,
                    channel.as_ref().map(Channel::handle),
                    daemon.activated,
                );
                // Only reached if the child could not be started.
                return Some(1);
            }
            Some(_) => {
                if !frozen && let Some(path) = &config.pid_filepath {
                    match daemon::write_pidfile(path) {
                        Ok(pf) => daemon.pidfile = Some(pf),
                        Err(msg) => {
                            critical!("{msg}");
                            return Some(1);
                        }
                    }
                }
                if daemon::detach().is_err() {
                    if let Some(pf) = daemon.pidfile.take() {
                        pf.remove();
                    }
                    critical!("failed to daemonize");
                    return Some(1);
                }
            }
        }
    }
    logging::set_quiet(false);

    life.pidfile = daemon.pidfile.take();
    let host = LinuxHost::new(
        life,
        fd_counter,
        config.fsfreeze_hook.clone(),
        config
            .fsfreeze_timeout
            .map(|s| Duration::from_secs(u64::from(s))),
    );
    let mut work = vec![0u8; WORK_SIZE];
    let mut agent = Agent::new(host, GrowBuf::new(), &mut work[..], core_config);
    agent.set_frozen(frozen);

    let mut run = Runner {
        signals: &signals,
        rx: vec![0u8; READ_SIZE],
        tx: Vec::with_capacity(WRITE_BUFFER),
    };
    let code = run.run_agent(&mut agent, &mut channel, config, &method, &path);
    // qemu-ga's cleanup: an agent leaving while frozen thaws first.
    agent.host_mut().thaw_at_exit();
    daemon.pidfile = agent.host_mut().take_pidfile();
    Some(code)
}

fn daemon_argv0<'a>(daemon: &Daemon<'a>) -> &'a [u8] {
    daemon.args.first().map_or(b"qga", |a| a.as_bytes())
}

/// The core's configuration from `-b`/`-a` (unknown names are ignored, as in qemu-ga; an
/// allow list made only of unknown names still denies everything).
fn core_config(config: &Config, frozen: bool) -> qga_core::Config {
    let mut cc = qga_core::Config {
        base64: b64::codec(),
        ..qga_core::Config::default()
    };
    for name in &config.blocked_rpcs {
        cc.block(&name.to_string_lossy());
    }
    for name in &config.allowed_rpcs {
        cc.allow(&name.to_string_lossy());
    }
    if logging::enabled(Level::Debug) {
        for spec in qga_core::command::COMMANDS {
            let disabled = if frozen {
                !spec.freeze_safe
            } else {
                cc.allowed.is_some_and(|a| !a.contains(spec.id)) || cc.blocked.contains(spec.id)
            };
            if disabled {
                debug!("disabling command: {}", spec.name);
            }
        }
    }
    cc
}

/// qemu-ga's `channel_init`: opens the channel, logging qemu-ga's messages on failure.
fn open_channel(method: &OsStr, path: &OsStr, fd: Option<OwnedFd>) -> Result<Channel, ()> {
    let Some(m) = Method::parse(method) else {
        critical!(
            "unsupported channel method/type: {}",
            method.to_string_lossy()
        );
        return Err(());
    };
    Channel::open(m, path, fd).map_err(|msg| {
        critical!("{msg}");
        critical!("failed to create guest agent channel");
    })
}

/// Why serving a channel ended.
enum Stop {
    /// A stop signal: exit.
    Requested,
    /// The channel failed: exit, or reopen with `-r`.
    ChannelError,
}

/// The main loop and what it needs.
struct Runner<'a> {
    signals: &'a Signals,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

type QgaAgent<'w> = Agent<'w, LinuxHost, GrowBuf>;

impl Runner<'_> {
    /// qemu-ga's `run_agent`: serve, and with `-r` reopen the channel after failures.
    fn run_agent(
        &mut self,
        agent: &mut QgaAgent<'_>,
        channel: &mut Option<Channel>,
        config: &Config,
        method: &OsStr,
        path: &OsStr,
    ) -> i32 {
        loop {
            let mut code = 0;
            if channel.is_none() {
                match open_channel(method, path, None) {
                    Ok(c) => *channel = Some(c),
                    Err(()) => {
                        critical!("failed to initialize guest agent channel");
                        code = 1;
                    }
                }
            }
            if let Some(ch) = channel.as_mut() {
                match self.serve(agent, ch) {
                    Stop::Requested => return 0,
                    Stop::ChannelError => *channel = None,
                }
            }
            if !config.retry_path {
                return code;
            }
            warning!("agent stopped unexpectedly, restarting...");
            warning!("waiting for channel path...");
            if self.sleep_unless_stopped(agent, RETRY_INTERVAL) {
                return 0;
            }
        }
    }

    /// Sleeps, returning true if a stop signal must end the agent.
    fn sleep_unless_stopped(&self, agent: &QgaAgent<'_>, d: Duration) -> bool {
        let deadline = std::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let ts = rustix::event::Timespec {
                tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let sigfd = self.signals.fd();
            let mut fds = [rustix::event::PollFd::new(
                &sigfd,
                rustix::event::PollFlags::IN,
            )];
            let _ = rustix::event::poll(&mut fds, Some(&ts));
            if let Some(sig) = self.signals.take() {
                if !agent.host().is_frozen() {
                    debug!("received signal num {sig}, quitting");
                    return true;
                }
            }
        }
    }

    /// Serves one open channel until a stop signal or a channel error.
    fn serve(&mut self, agent: &mut QgaAgent<'_>, channel: &mut Channel) -> Stop {
        loop {
            match channel.next(&mut self.rx, self.signals) {
                Next::Signal(sig) => {
                    // While frozen, a graceful exit could block on a frozen filesystem.
                    if !agent.host().is_frozen() {
                        debug!("received signal num {sig}, quitting");
                        return Stop::Requested;
                    }
                }
                Next::Error(e) => {
                    warning!("error reading channel");
                    debug!("read error: {}", transport::io_text(&e));
                    return Stop::ChannelError;
                }
                Next::Data(n) => {
                    let input = self.rx.get(..n).unwrap_or(&[]);
                    if logging::enabled(Level::Debug) {
                        debug!(
                            "read data, count: {n}, data: {}",
                            String::from_utf8_lossy(input)
                        );
                    }
                    // The freeze watchdog may have thawed since the last request.
                    Self::sync_frozen(agent);
                    let was_frozen = agent.is_frozen();
                    let Some(out) = channel.output() else {
                        continue;
                    };
                    let mut writer = FdWriter::new(out, &mut self.tx, self.signals, was_frozen);
                    feed_all(agent, input, &mut writer);
                    Self::sync_frozen(agent);
                }
            }
        }
    }

    /// Keeps the engine's frozen flag and the daemon's frozen state in step. Freezing goes
    /// through the host, which applies the frozen-state effects itself before any filesystem is
    /// frozen; this catches the cases where the two disagree afterwards (a freeze that froze
    /// nothing leaves qemu-ga thawed; a thaw whose hook failed still thaws; the freeze watchdog
    /// thawed between two requests).
    fn sync_frozen(agent: &mut QgaAgent<'_>) {
        let host_frozen = agent.host().is_frozen();
        if agent.is_frozen() != host_frozen {
            agent.set_frozen(host_frozen);
        }
    }
}

/// Feeds every byte of `input` to the agent and writes every reply. A reply that cannot be
/// written is logged and dropped; the remaining input is still fed, so the parser's state stays
/// in step with what the host sent.
fn feed_all(agent: &mut QgaAgent<'_>, mut input: &[u8], writer: &mut FdWriter<'_>) {
    loop {
        while agent.reply_pending() {
            if let Err(e) = agent.write_reply(writer) {
                warning!("error writing to channel: {}", transport::io_text(&e));
                warning!("error sending error response: Input/output error");
            }
        }
        if input.is_empty() {
            // The engine leaves replies in the writer until the input read is used up: one
            // write for all the replies to pipelined requests.
            if let Err(e) = embedded_io::Write::flush(writer) {
                warning!("error writing to channel: {}", transport::io_text(&e));
            }
            return;
        }
        let n = agent.feed(input);
        input = input.get(n..).unwrap_or(&[]);
    }
}
