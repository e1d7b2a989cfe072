//! The command line: a small hand-written parser (global options, then one command).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// How to reach the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `--socket PATH`
    Socket(OsString),
    /// `--vsock CID:PORT`
    Vsock { cid: u32, port: u32 },
    /// `--serial DEV`
    Serial(OsString),
}

/// How to synchronise before the first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// 0xFF + `guest-sync-delimited` (the default).
    Delimited,
    /// `--plain-sync`: plain `guest-sync`.
    Plain,
    /// `--no-sync`: none before the first request.
    Skip,
}

/// Global options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub transport: Transport,
    /// `--timeout`, in milliseconds.
    pub timeout_ms: Option<u64>,
    pub sync: Sync,
    pub max_reply: Option<usize>,
}

/// `fsfreeze` operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeOp {
    Freeze,
    Thaw,
    Status,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Any agent command, with arguments as JSON text.
    Raw {
        name: String,
        args: Option<Vec<u8>>,
    },
    Ping,
    Info,
    Exec {
        program: OsString,
        args: Vec<OsString>,
    },
    Cat {
        path: OsString,
    },
    Get {
        path: OsString,
        dest: OsString,
    },
    Put {
        src: OsString,
        path: OsString,
    },
    Fsfreeze(FreezeOp),
    Shutdown {
        mode: &'static str,
    },
    Time,
    Osinfo,
    Ifaddr,
}

/// The result of parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Options, Command),
    Help,
    Version,
}

/// Parses the arguments after the program name. Errors are one-line messages.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let mut transport = None;
    let mut timeout_ms = None;
    let mut sync = Sync::Delimited;
    let mut max_reply = None;
    let name = loop {
        let Some(arg) = args.next() else {
            return Err("no command given".into());
        };
        let bytes = arg.as_bytes();
        if bytes == b"--" {
            break args.next().ok_or("no command given")?;
        }
        if !bytes.starts_with(b"-") || bytes == b"-" {
            break arg;
        }
        // `--name=value` or `--name value`.
        let (flag, inline) = match bytes.iter().position(|&b| b == b'=') {
            Some(i) => (
                bytes.get(..i).unwrap_or_default(),
                Some(OsStr::from_bytes(bytes.get(i + 1..).unwrap_or_default()).to_owned()),
            ),
            None => (bytes, None),
        };
        let flag = String::from_utf8_lossy(flag).into_owned();
        let mut value = |what: &str| -> Result<OsString, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs {what}"))
        };
        let new_transport = match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "--socket" => Some(Transport::Socket(value("a path")?)),
            "--serial" => Some(Transport::Serial(value("a device")?)),
            "--vsock" => Some(parse_vsock(&value("CID:PORT")?)?),
            "--timeout" => {
                timeout_ms = Some(parse_seconds(&value("a number of seconds")?)?);
                None
            }
            "--max-reply" => {
                max_reply = Some(parse_size(&value("a number of bytes")?)?);
                None
            }
            "--no-sync" | "--plain-sync" => {
                if inline.is_some() {
                    return Err(format!("{flag} takes no value"));
                }
                let chosen = if flag == "--no-sync" {
                    Sync::Skip
                } else {
                    Sync::Plain
                };
                if sync != Sync::Delimited && sync != chosen {
                    return Err("--no-sync and --plain-sync exclude each other".into());
                }
                sync = chosen;
                None
            }
            _ => return Err(format!("unknown option {flag}")),
        };
        if let Some(t) = new_transport {
            if transport.is_some() {
                return Err("give exactly one of --socket, --vsock, --serial".into());
            }
            transport = Some(t);
        }
    };
    let transport = transport.ok_or("give one of --socket PATH, --vsock CID:PORT, --serial DEV")?;
    let options = Options {
        transport,
        timeout_ms,
        sync,
        max_reply,
    };
    let rest: Vec<OsString> = args.collect();
    let command = parse_command(&name, rest)?;
    Ok(Parsed::Run(options, command))
}

fn parse_command(name: &OsStr, rest: Vec<OsString>) -> Result<Command, String> {
    let name = name
        .to_str()
        .ok_or_else(|| format!("invalid command name {}", name.to_string_lossy()))?;
    let exact = |n: usize, usage: &str| -> Result<Vec<OsString>, String> {
        if rest.len() == n {
            Ok(rest.clone())
        } else {
            Err(format!("usage: qga-client [OPTIONS] {name} {usage}")
                .trim_end()
                .to_owned())
        }
    };
    let take = |n: usize, usage: &str| -> Result<std::vec::IntoIter<OsString>, String> {
        exact(n, usage).map(Vec::into_iter)
    };
    let next = |it: &mut std::vec::IntoIter<OsString>| it.next().unwrap_or_default();
    Ok(match name {
        "ping" => take(0, "").map(|_| Command::Ping)?,
        "info" => take(0, "").map(|_| Command::Info)?,
        "time" => take(0, "").map(|_| Command::Time)?,
        "osinfo" => take(0, "").map(|_| Command::Osinfo)?,
        "ifaddr" => take(0, "").map(|_| Command::Ifaddr)?,
        "cat" => {
            let mut it = take(1, "PATH")?;
            Command::Cat {
                path: next(&mut it),
            }
        }
        "get" => {
            let mut it = take(2, "PATH DEST")?;
            let path = next(&mut it);
            Command::Get {
                path,
                dest: next(&mut it),
            }
        }
        "put" => {
            let mut it = take(2, "SRC PATH")?;
            let src = next(&mut it);
            Command::Put {
                src,
                path: next(&mut it),
            }
        }
        "exec" => {
            let mut it = rest.into_iter().peekable();
            if it.peek().is_some_and(|a| a.as_bytes() == b"--") {
                it.next();
            }
            let program = it
                .next()
                .ok_or("usage: qga-client [OPTIONS] exec [--] PROGRAM [ARG...]")?;
            Command::Exec {
                program,
                args: it.collect(),
            }
        }
        "fsfreeze" => {
            let mut it = take(1, "freeze|thaw|status")?;
            match next(&mut it).to_str() {
                Some("freeze") => Command::Fsfreeze(FreezeOp::Freeze),
                Some("thaw") => Command::Fsfreeze(FreezeOp::Thaw),
                Some("status") => Command::Fsfreeze(FreezeOp::Status),
                _ => return Err("usage: qga-client [OPTIONS] fsfreeze freeze|thaw|status".into()),
            }
        }
        "shutdown" => parse_shutdown(&rest)?,
        _ => {
            if rest.len() > 1 {
                return Err(format!(
                    "usage: qga-client [OPTIONS] {name} [ARGUMENTS-JSON] (quote the JSON as one argument)"
                ));
            }
            Command::Raw {
                name: name.to_owned(),
                args: rest.into_iter().next().map(|a| a.into_vec()),
            }
        }
    })
}

fn parse_shutdown(rest: &[OsString]) -> Result<Command, String> {
    const USAGE: &str = "usage: qga-client [OPTIONS] shutdown [--mode powerdown|halt|reboot]";
    let mode = match rest {
        [] => Some("powerdown".as_bytes()),
        [flag, mode] if flag.as_bytes() == b"--mode" => Some(mode.as_bytes()),
        [flag] => flag.as_bytes().strip_prefix(b"--mode="),
        _ => None,
    };
    let mode = match mode {
        Some(b"powerdown") => "powerdown",
        Some(b"halt") => "halt",
        Some(b"reboot") => "reboot",
        _ => return Err(USAGE.into()),
    };
    Ok(Command::Shutdown { mode })
}

fn parse_vsock(v: &OsStr) -> Result<Transport, String> {
    let bad = || {
        format!(
            "--vsock needs CID:PORT (two numbers), not {}",
            v.to_string_lossy()
        )
    };
    let text = v.to_str().ok_or_else(bad)?;
    let (cid, port) = text.split_once(':').ok_or_else(bad)?;
    Ok(Transport::Vsock {
        cid: cid.parse().map_err(|_| bad())?,
        port: port.parse().map_err(|_| bad())?,
    })
}

/// Seconds, with an optional fraction (`5`, `0.5`), as milliseconds; at least 1 ms.
fn parse_seconds(v: &OsStr) -> Result<u64, String> {
    let bad = || {
        format!(
            "--timeout needs a positive number of seconds, not {}",
            v.to_string_lossy()
        )
    };
    let secs: f64 = v.to_str().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(bad());
    }
    // Bounded above, so the conversion cannot overflow.
    Ok(((secs * 1000.0).ceil() as u64).max(1))
}

fn parse_size(v: &OsStr) -> Result<usize, String> {
    let bad = || {
        format!(
            "--max-reply needs a number of bytes (at least 1024), not {}",
            v.to_string_lossy()
        )
    };
    let n: usize = v.to_str().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if n < 1024 {
        return Err(bad());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(OsString::from))
    }

    fn run(args: &[&str]) -> (Options, Command) {
        match p(args) {
            Ok(Parsed::Run(o, c)) => (o, c),
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn options_and_commands() {
        let (o, c) = run(&["--socket", "/s", "--timeout=2.5", "--plain-sync", "ping"]);
        assert_eq!(o.transport, Transport::Socket("/s".into()));
        assert_eq!(o.timeout_ms, Some(2500));
        assert_eq!(o.sync, Sync::Plain);
        assert_eq!(c, Command::Ping);
        let (o, c) = run(&[
            "--vsock",
            "3:1234",
            "guest-exec",
            "{\"path\": \"/bin/true\"}",
        ]);
        assert_eq!(o.transport, Transport::Vsock { cid: 3, port: 1234 });
        assert_eq!(
            c,
            Command::Raw {
                name: "guest-exec".into(),
                args: Some(b"{\"path\": \"/bin/true\"}".to_vec())
            }
        );
        let (_, c) = run(&["--serial=/dev/pts/3", "exec", "--", "ls", "-l", "--", "/"]);
        assert_eq!(
            c,
            Command::Exec {
                program: "ls".into(),
                args: vec!["-l".into(), "--".into(), "/".into()]
            }
        );
        let (_, c) = run(&["--socket", "s", "shutdown", "--mode", "reboot"]);
        assert_eq!(c, Command::Shutdown { mode: "reboot" });
        let (_, c) = run(&["--socket", "s", "shutdown"]);
        assert_eq!(c, Command::Shutdown { mode: "powerdown" });
        let (_, c) = run(&["--socket", "s", "fsfreeze", "status"]);
        assert_eq!(c, Command::Fsfreeze(FreezeOp::Status));
        let (o, c) = run(&["--socket", "s", "--no-sync", "--", "get", "/a", "b"]);
        assert_eq!(o.sync, Sync::Skip);
        assert_eq!(
            c,
            Command::Get {
                path: "/a".into(),
                dest: "b".into()
            }
        );
        assert_eq!(p(&["--help"]), Ok(Parsed::Help));
        assert_eq!(p(&["--socket", "s", "-V"]), Ok(Parsed::Version));
    }

    #[test]
    fn errors() {
        for bad in [
            &[][..],
            &["ping"],
            &["--socket", "a", "--serial", "b", "ping"],
            &["--socket"],
            &["--socket", "s"],
            &["--socket", "s", "--timeout", "0", "ping"],
            &["--socket", "s", "--timeout", "x", "ping"],
            &["--vsock", "3", "ping"],
            &["--socket", "s", "--no-sync", "--plain-sync", "ping"],
            &["--socket", "s", "--bogus", "ping"],
            &["--socket", "s", "ping", "extra"],
            &["--socket", "s", "cat"],
            &["--socket", "s", "get", "a"],
            &["--socket", "s", "exec"],
            &["--socket", "s", "exec", "--"],
            &["--socket", "s", "fsfreeze", "melt"],
            &["--socket", "s", "shutdown", "--mode", "off"],
            &["--socket", "s", "guest-ping", "{}", "{}"],
            &["--socket", "s", "--max-reply", "10", "ping"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }
}
