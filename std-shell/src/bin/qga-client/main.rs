//! `qga-client`: talks to a QEMU guest agent (qemu-ga or qga) from the host, through the
//! client library of this crate (`qga::client`). See `--help`.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use qga::client;

mod args;
mod progress;

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use qga_core::types::{
    GuestAgentCommandInfo, GuestAgentInfo, GuestFsfreezeStatus, GuestIpAddress, GuestIpAddressType,
    GuestNetworkInterface, GuestOSInfo, GuestTime, List,
};

use args::{Command, FreezeOp, Options, Parsed, Sync, Transport};
use client::{
    ClientConfig, Connection, Error, Printable, PrintableBytes, Stream, SyncMode, Timeouts,
    Violation, exit,
};
use progress::Bar;

const HELP: &str = "\
Usage: qga-client [OPTIONS] COMMAND [ARGUMENTS...]

Talks to a QEMU guest agent (qemu-ga, or qga) from the host.

Connection (exactly one):
  --socket PATH       a unix socket: the host end of the agent's virtio-serial
                      channel (a QEMU -chardev socket), or an agent started
                      with -m unix-listen
  --vsock CID:PORT    the agent's vsock port in the guest with context id CID
                      (an agent started with -m vsock-listen -p 3:PORT)
  --serial DEV        a serial device or pty carrying the channel (raw mode)

Options:
  --timeout SECS      replace every timeout by SECS (fractions allowed).
                      Defaults: 5 s for the sync and most commands, 60 s for
                      guest-file-* and guest-exec*, 600 s for fsfreeze freeze
                      and guest-fstrim, 180 s for thaw; shutdown waits 60 s
                      for an error reply. Each request has its own deadline.
  --plain-sync        sync with plain guest-sync instead of 0xFF and
                      guest-sync-delimited (for agents without the latter,
                      older than qemu-ga 1.1)
  --no-sync           do not sync before the first request (see below)
  --max-reply BYTES   largest reply accepted (default 10485760)
  -h, --help          show this text
  -V, --version       show the version

Commands:
  COMMAND [ARGUMENTS-JSON]   run any agent command and print its \"return\"
                             value as JSON (indented on a terminal, compact
                             otherwise), e.g.
                               qga-client --socket S guest-get-users
                               qga-client --socket S guest-exec '{\"path\": \"/bin/ls\"}'
  ping                       check that the agent answers
  info                       agent version and its commands
  exec [--] PROGRAM [ARG...] run PROGRAM in the guest, wait for it, print its
                             output, exit with its status (128+N when signal
                             N killed it)
  cat PATH                   print a guest file
  get PATH DEST              copy a guest file to DEST (- for standard output)
  put SRC PATH               copy SRC (- for standard input) to a guest file
  fsfreeze freeze|thaw|status
                             freeze or thaw the guest's filesystems (prints how
                             many), or print their state
  shutdown [--mode powerdown|halt|reboot]
                             shut the guest down (default powerdown)
  time                       the guest's clock (UTC)
  osinfo                     the guest's operating system
  ifaddr                     the guest's network interfaces and addresses

Synchronisation: before the first request (and after a timeout or a protocol
error) qga-client sends a 0xFF byte, which makes the agent drop any
half-received request, then guest-sync-delimited with a random id, and skips
everything up to the agent's 0xFF and the reply carrying that id. Stale
replies of earlier clients are never taken for an answer. --no-sync skips
this: only safe on a channel nobody used before.

Exit status:
   0  success (exec: the program's status)
  64  bad command line, or arguments that are not a JSON object
  69  cannot connect (no such socket or device, refused, no vsock support)
  70  the agent answered with an error (its class and description are
      printed), or the guest did not do what it reported
  73  a local file could not be read or written
  74  the connection was lost (closed by the agent or QEMU, I/O error)
  75  timed out
  76  the guest sent something that is not the agent protocol: not JSON,
      not a reply, a reply larger than allowed, impossible values
";

fn main() -> ExitCode {
    ExitCode::from(run())
}

fn run() -> u8 {
    let (options, command) = match args::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(options, command)) => (options, command),
        Ok(Parsed::Help) => return print_or_exit(HELP),
        Ok(Parsed::Version) => {
            return print_or_exit(&format!("qga-client {}\n", env!("CARGO_PKG_VERSION")));
        }
        Err(msg) => {
            let _ = writeln!(
                io::stderr(),
                "qga-client: {msg}\nTry 'qga-client --help' for more information."
            );
            return exit::USAGE;
        }
    };
    match connect(&options).and_then(|mut conn| execute(&mut conn, &command)) {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            e.exit_code()
        }
    }
}

fn print_or_exit(text: &str) -> u8 {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => exit::OK,
        Err(_) => exit::LOCAL_IO,
    }
}

fn report(e: &Error) {
    // `qga-client cat big | head`: a closed pipe is not worth a message.
    if let Error::Local { source, .. } = e {
        if source.kind() == io::ErrorKind::BrokenPipe {
            return;
        }
    }
    let _ = writeln!(io::stderr(), "qga-client: {e}");
}

fn warn(msg: &str) {
    let _ = writeln!(io::stderr(), "qga-client: warning: {msg}");
}

fn config(options: &Options) -> ClientConfig {
    let mut config = ClientConfig::default();
    if let Some(ms) = options.timeout_ms {
        config.timeouts = Timeouts {
            sync: ms,
            default: ms,
            file: ms,
            freeze: ms,
            thaw: ms,
            fstrim: ms,
            no_reply: ms,
        };
    }
    if let Some(max) = options.max_reply {
        config.max_reply = max;
    }
    if options.sync == Sync::Plain {
        config.sync = SyncMode::Plain;
    }
    config
}

fn connect(options: &Options) -> Result<Connection<Stream>, Error> {
    let config = config(options);
    let mut conn = match &options.transport {
        Transport::Socket(path) => client::connect_unix(path, config)?,
        Transport::Vsock { cid, port } => client::connect_vsock(*cid, *port, config)?,
        Transport::Serial(path) => client::open_serial(path, config)?,
    };
    if options.sync == Sync::Skip {
        conn.assume_synced();
    }
    Ok(conn)
}

/// Writes to standard output.
fn out(text: &str) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)
}

fn stdout_error(source: io::Error) -> Error {
    Error::Local {
        what: "standard output".into(),
        source,
    }
}

/// Names the local file in a [`Error::Local`] from the library.
fn local_name(e: Error, what: String) -> Error {
    match e {
        Error::Local { source, .. } => Error::Local { what, source },
        e => e,
    }
}

fn execute(conn: &mut Connection<Stream>, command: &Command) -> Result<u8, Error> {
    match command {
        Command::Raw { name, args } => {
            let pretty = io::stdout().is_terminal();
            if let Some(reply) = conn.call_raw(name, args.as_deref())? {
                client::json::write_value(&mut io::stdout().lock(), reply.msg, reply.value, pretty)
                    .map_err(stdout_error)?;
            }
        }
        Command::Ping => conn.execute("guest-ping")?,
        Command::Info => info(conn)?,
        Command::Exec { program, args } => return exec(conn, program, args),
        Command::Cat { path } => {
            conn.read_file(path.as_bytes(), &mut io::stdout().lock(), &mut ())
                .map_err(|e| local_name(e, "standard output".into()))?;
        }
        Command::Get { path, dest } => get(conn, path, dest)?,
        Command::Put { src, path } => put(conn, src, path)?,
        Command::Fsfreeze(op) => fsfreeze(conn, *op)?,
        Command::Shutdown { mode } => {
            let args = format!("{{\"mode\": \"{mode}\"}}");
            conn.call_raw("guest-shutdown", Some(args.as_bytes()))?;
        }
        Command::Time => {
            let time: GuestTime = conn.call("guest-get-time")?;
            time.check()?;
            out(&format!("{}\n", utc(time.0)))?;
        }
        Command::Osinfo => osinfo(conn)?,
        Command::Ifaddr => ifaddr(conn)?,
    }
    Ok(exit::OK)
}

fn info(conn: &mut Connection<Stream>) -> Result<(), Error> {
    let info: GuestAgentInfo<'_> = conn.call("guest-info")?;
    let mut text = format!(
        "version: {}\ncommands ({}):\n",
        Printable(info.version),
        info.supported_commands.len()
    );
    client::for_each(
        &info.supported_commands,
        |_, cmd: GuestAgentCommandInfo<'_>| {
            let _ = write!(text, "  {}", Printable(cmd.name));
            if !cmd.enabled {
                text.push_str(" (disabled)");
            }
            if !cmd.success_response {
                text.push_str(" (no success response)");
            }
            text.push('\n');
            Ok(())
        },
    )?;
    out(&text)
}

fn exec(
    conn: &mut Connection<Stream>,
    program: &OsStr,
    args: &[std::ffi::OsString],
) -> Result<u8, Error> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let status = conn.exec(
        program.as_bytes(),
        &args,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
    )?;
    if status.out_truncated {
        warn("the agent cut the program's standard output at its size limit");
    }
    if status.err_truncated {
        warn("the agent cut the program's standard error at its size limit");
    }
    match (status.code, status.signal) {
        // Exit statuses are 0..=255 on Linux; anything else is shown as the shell would.
        (Some(code), _) => Ok(u8::try_from(code & 0xFF).unwrap_or(u8::MAX)),
        (None, Some(signal)) => Ok(u8::try_from(128 + signal.clamp(0, 127)).unwrap_or(u8::MAX)),
        (None, None) => Err(Error::Protocol(Violation::Inconsistent(
            "the program exited with neither an exit code nor a signal",
        ))),
    }
}

fn get(conn: &mut Connection<Stream>, path: &OsStr, dest: &OsStr) -> Result<(), Error> {
    if dest.as_bytes() == b"-" {
        return conn
            .read_file(path.as_bytes(), &mut io::stdout().lock(), &mut ())
            .map(drop)
            .map_err(|e| local_name(e, "standard output".into()));
    }
    let shown = dest.to_string_lossy().into_owned();
    let mut file = LazyFile {
        path: dest,
        file: None,
    };
    let mut bar = Bar::new(path.to_string_lossy().into_owned());
    let result = conn.read_file(path.as_bytes(), &mut file, &mut bar);
    bar.finish();
    if result.is_err() && file.file.take().is_some() {
        // Leave no partial copy that looks complete.
        if std::fs::remove_file(dest).is_ok() {
            warn(&format!("removed the incomplete copy {shown}"));
        }
    }
    result
        .map(drop)
        .map_err(|e| local_name(e, format!("cannot write {shown}")))
}

/// The destination of `get`, created (or truncated) only when the first data arrives or the
/// copy completes, so that a guest file that cannot be opened leaves the destination alone.
struct LazyFile<'a> {
    path: &'a OsStr,
    file: Option<File>,
}

impl LazyFile<'_> {
    fn open(&mut self) -> io::Result<&mut File> {
        match &mut self.file {
            Some(file) => Ok(file),
            slot => Ok(slot.insert(File::create(self.path)?)),
        }
    }
}

impl Write for LazyFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.open()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.open()?.flush()
    }
}

fn put(conn: &mut Connection<Stream>, src: &OsStr, path: &OsStr) -> Result<(), Error> {
    let shown = src.to_string_lossy().into_owned();
    let (mut source, total): (Box<dyn Read>, Option<u64>) = if src.as_bytes() == b"-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(src).map_err(|source| Error::Local {
            what: format!("cannot open {shown}"),
            source,
        })?;
        let size = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        (Box::new(file), size)
    };
    let mut bar = Bar::new(shown.clone());
    let result = conn.write_file(path.as_bytes(), &mut source, total, &mut bar);
    bar.finish();
    let copied = result.map_err(|e| local_name(e, format!("cannot read {shown}")))?;
    if total.is_some_and(|t| t != copied) {
        warn(&format!("{shown} changed size while it was copied"));
    }
    Ok(())
}

fn fsfreeze(conn: &mut Connection<Stream>, op: FreezeOp) -> Result<(), Error> {
    let command = match op {
        FreezeOp::Freeze => "guest-fsfreeze-freeze",
        FreezeOp::Thaw => "guest-fsfreeze-thaw",
        FreezeOp::Status => {
            let status: GuestFsfreezeStatus = conn.call("guest-fsfreeze-status")?;
            return out(match status {
                GuestFsfreezeStatus::Thawed => "thawed\n",
                GuestFsfreezeStatus::Frozen => "frozen\n",
            });
        }
    };
    let count: i64 = conn.call(command)?;
    if count < 0 {
        return Err(Error::Protocol(Violation::Inconsistent(
            "a negative number of filesystems",
        )));
    }
    out(&format!("{count}\n"))
}

fn osinfo(conn: &mut Connection<Stream>) -> Result<(), Error> {
    let os: GuestOSInfo<'_> = conn.call("guest-get-osinfo")?;
    let fields = [
        ("name", os.name),
        ("pretty-name", os.pretty_name),
        ("version", os.version),
        ("version-id", os.version_id),
        ("id", os.id),
        ("variant", os.variant),
        ("variant-id", os.variant_id),
        ("kernel-release", os.kernel_release),
        ("kernel-version", os.kernel_version),
        ("machine", os.machine),
    ];
    let mut text = String::new();
    for (key, value) in fields {
        if let Some(value) = value {
            let _ = writeln!(text, "{key}: {}", PrintableBytes(value.0));
        }
    }
    out(&text)
}

fn ifaddr(conn: &mut Connection<Stream>) -> Result<(), Error> {
    let list: List<'_, GuestNetworkInterface<'_>> = conn.call("guest-network-get-interfaces")?;
    let mut rows: Vec<[String; 4]> = vec![[
        "Name".into(),
        "MAC address".into(),
        "Protocol".into(),
        "Address".into(),
    ]];
    client::for_each(&list, |_, iface: GuestNetworkInterface<'_>| {
        let name = PrintableBytes(iface.name.0).to_string();
        let mac = iface
            .hardware_address
            .map_or_else(|| "-".into(), |m| Printable(m).to_string());
        let mut any = false;
        if let Some(List::Json(addresses)) = iface.ip_addresses {
            let mut arena = vec![0u8; addresses.text().len()];
            addresses.decode_each::<GuestIpAddress<'_>, _>(&mut arena, |_, addr| {
                addr.check()?;
                let family = match addr.ip_address_type {
                    GuestIpAddressType::Ipv4 => "ipv4",
                    GuestIpAddressType::Ipv6 => "ipv6",
                };
                rows.push([
                    name.clone(),
                    mac.clone(),
                    family.into(),
                    format!("{}/{}", Printable(addr.ip_address), addr.prefix),
                ]);
                any = true;
                Ok(())
            })?;
        }
        if !any {
            rows.push([name, mac, "-".into(), "-".into()]);
        }
        Ok(())
    })?;
    let mut widths = [0usize; 3];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for [name, mac, family, address] in &rows {
        let [w0, w1, w2] = widths;
        let _ = writeln!(text, "{name:<w0$}  {mac:<w1$}  {family:<w2$}  {address}");
    }
    out(&text)
}

/// `2026-11-26T13:14:15.553972000Z` for nanoseconds since the epoch.
fn utc(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let day_secs = secs.rem_euclid(86_400);
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            utc(1_795_690_610_553_972_000),
            "2026-11-26T10:56:50.553972000Z"
        );
        assert_eq!(
            utc(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(utc(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn help_documents_every_exit_code() {
        for code in [
            exit::USAGE,
            exit::CONNECT,
            exit::AGENT_ERROR,
            exit::LOCAL_IO,
            exit::CONNECTION_LOST,
            exit::TIMEOUT,
            exit::PROTOCOL,
        ] {
            assert!(HELP.contains(&format!("\n  {code}  ")), "{code}");
        }
    }
}
