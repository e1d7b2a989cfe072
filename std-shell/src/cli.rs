//! A small `getopt_long` work-alike for qemu-ga's command line.
//!
//! qemu-ga parses its arguments with glibc's `getopt_long` and the short-option string
//! `hVvdc:m:p:l:f:F::b:a:s:t:Dr`. Users see getopt's behaviour directly, so this parser follows
//! it: clustered short options (`-vd`), attached or separate arguments (`-mfoo`, `-m foo`), the
//! optional argument of `-F` that must be attached, long options with `=` or a separate argument,
//! unambiguous abbreviations of long options (`--meth`), non-options permuted to the end (or,
//! with `POSIXLY_CORRECT`, ending the options), `--` ending the options, and glibc's exact error
//! messages.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// qemu-ga's options.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Opt {
    /// `-h, --help`
    Help,
    /// `-V, --version`
    Version,
    /// `-c, --config=PATH`
    Config,
    /// `-D, --dump-conf`
    DumpConf,
    /// `-l, --logfile=PATH`
    Logfile,
    /// `-f, --pidfile=PATH`
    Pidfile,
    /// `-F, --fsfreeze-hook[=PATH]`
    FsfreezeHook,
    /// `-v, --verbose`
    Verbose,
    /// `--debug`
    Debug,
    /// `-m, --method=METHOD`
    Method,
    /// `-p, --path=PATH`
    Path,
    /// `-d, --daemonize`
    Daemonize,
    /// `-b, --block-rpcs=LIST`
    BlockRpcs,
    /// `-a, --allow-rpcs=LIST`
    AllowRpcs,
    /// `-s` (a Windows-only option; accepted and ignored on Linux, as qemu-ga does)
    Service,
    /// `-t, --statedir=DIR`
    Statedir,
    /// `-r, --retry-path`
    RetryPath,
    /// `--fsfreeze-timeout=SECS` (qga only, no short form)
    FsfreezeTimeout,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HasArg {
    No,
    Required,
    Optional,
}

/// The short options, in the order of qemu-ga's string `hVvdc:m:p:l:f:F::b:a:s:t:Dr`.
const SHORT: &[(u8, Opt, HasArg)] = &[
    (b'h', Opt::Help, HasArg::No),
    (b'V', Opt::Version, HasArg::No),
    (b'v', Opt::Verbose, HasArg::No),
    (b'd', Opt::Daemonize, HasArg::No),
    (b'c', Opt::Config, HasArg::Required),
    (b'm', Opt::Method, HasArg::Required),
    (b'p', Opt::Path, HasArg::Required),
    (b'l', Opt::Logfile, HasArg::Required),
    (b'f', Opt::Pidfile, HasArg::Required),
    (b'F', Opt::FsfreezeHook, HasArg::Optional),
    (b'b', Opt::BlockRpcs, HasArg::Required),
    (b'a', Opt::AllowRpcs, HasArg::Required),
    (b's', Opt::Service, HasArg::Required),
    (b't', Opt::Statedir, HasArg::Required),
    (b'D', Opt::DumpConf, HasArg::No),
    (b'r', Opt::RetryPath, HasArg::No),
];

/// The long options in qemu-ga's table order (the order of getopt's "possibilities").
const LONG: &[(&str, Opt, HasArg)] = &[
    ("help", Opt::Help, HasArg::No),
    ("version", Opt::Version, HasArg::No),
    ("config", Opt::Config, HasArg::Required),
    ("dump-conf", Opt::DumpConf, HasArg::No),
    ("logfile", Opt::Logfile, HasArg::Required),
    ("pidfile", Opt::Pidfile, HasArg::Required),
    ("fsfreeze-hook", Opt::FsfreezeHook, HasArg::Optional),
    ("verbose", Opt::Verbose, HasArg::No),
    ("debug", Opt::Debug, HasArg::No),
    ("method", Opt::Method, HasArg::Required),
    ("path", Opt::Path, HasArg::Required),
    ("daemonize", Opt::Daemonize, HasArg::No),
    ("block-rpcs", Opt::BlockRpcs, HasArg::Required),
    ("allow-rpcs", Opt::AllowRpcs, HasArg::Required),
    ("statedir", Opt::Statedir, HasArg::Required),
    ("retry-path", Opt::RetryPath, HasArg::No),
];

/// Long options qemu-ga does not have. They are matched exactly, or as an abbreviation only when
/// the abbreviation matches none of qemu-ga's options: every abbreviation qemu-ga accepts keeps
/// its meaning (`--fsf` is still `--fsfreeze-hook`), and none becomes ambiguous.
const QGA_LONG: &[(&str, Opt, HasArg)] =
    &[("fsfreeze-timeout", Opt::FsfreezeTimeout, HasArg::Required)];

/// A command-line error: getopt's message, without the `<argv0>: ` prefix and final newline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OptError(pub Vec<u8>);

impl OptError {
    fn new(parts: &[&[u8]]) -> Self {
        OptError(parts.concat())
    }
}

/// Iterates over the options of an argument vector (`args[0]` is the program name).
pub struct Getopt<'a> {
    args: &'a [OsString],
    /// Index of the next argument to look at.
    next: usize,
    /// Rest of a cluster of short options (`-vd` after the `v`).
    cluster: &'a [u8],
    /// Stop at the first non-option (`POSIXLY_CORRECT`).
    posix: bool,
    done: bool,
}

impl<'a> Getopt<'a> {
    /// Starts parsing `args` (including `args[0]`).
    pub fn new(args: &'a [OsString], posixly_correct: bool) -> Self {
        Getopt {
            args,
            next: 1,
            cluster: &[],
            posix: posixly_correct,
            done: false,
        }
    }

    fn take_next_arg(&mut self) -> Option<&'a OsStr> {
        let arg = self.args.get(self.next)?;
        self.next += 1;
        Some(arg.as_os_str())
    }

    fn short(&mut self) -> Result<(Opt, Option<OsString>), OptError> {
        let (&c, rest) = self.cluster.split_first().unwrap_or((&0, &[]));
        self.cluster = rest;
        let Some(&(_, opt, has_arg)) = SHORT.iter().find(|(s, _, _)| *s == c) else {
            return Err(OptError::new(&[b"invalid option -- '", &[c], b"'"]));
        };
        let attached = std::mem::take(&mut self.cluster);
        match has_arg {
            HasArg::No => {
                self.cluster = attached;
                Ok((opt, None))
            }
            HasArg::Optional if attached.is_empty() => Ok((opt, None)),
            HasArg::Optional | HasArg::Required if !attached.is_empty() => {
                Ok((opt, Some(OsStr::from_bytes(attached).to_os_string())))
            }
            _ => match self.take_next_arg() {
                Some(arg) => Ok((opt, Some(arg.to_os_string()))),
                None => Err(OptError::new(&[
                    b"option requires an argument -- '",
                    &[c],
                    b"'",
                ])),
            },
        }
    }

    fn long(&mut self, body: &'a [u8]) -> Result<(Opt, Option<OsString>), OptError> {
        let (name, value) = match body.iter().position(|&b| b == b'=') {
            Some(i) => (body.get(..i).unwrap_or(body), body.get(i + 1..)),
            None => (body, None),
        };
        let exact = LONG
            .iter()
            .chain(QGA_LONG)
            .find(|(n, _, _)| n.as_bytes() == name);
        let (long_name, opt, has_arg) = match exact {
            Some(&found) => found,
            None => {
                let prefixed = |table: &'static [(&'static str, Opt, HasArg)]| -> Vec<_> {
                    table
                        .iter()
                        .filter(|(n, _, _)| !name.is_empty() && n.as_bytes().starts_with(name))
                        .collect()
                };
                let mut matches = prefixed(LONG);
                if matches.is_empty() {
                    matches = prefixed(QGA_LONG);
                }
                match matches.as_slice() {
                    [] => {
                        return Err(OptError::new(&[b"unrecognized option '--", body, b"'"]));
                    }
                    [found] => **found,
                    several => {
                        let mut msg =
                            [b"option '--", body, b"' is ambiguous; possibilities:"].concat();
                        for (n, _, _) in several {
                            msg.extend_from_slice(b" '--");
                            msg.extend_from_slice(n.as_bytes());
                            msg.push(b'\'');
                        }
                        return Err(OptError(msg));
                    }
                }
            }
        };
        let name = long_name.as_bytes();
        match (has_arg, value) {
            (HasArg::No, Some(_)) => Err(OptError::new(&[
                b"option '--",
                name,
                b"' doesn't allow an argument",
            ])),
            (HasArg::No, None) | (HasArg::Optional, None) => Ok((opt, None)),
            (_, Some(v)) => Ok((opt, Some(OsStr::from_bytes(v).to_os_string()))),
            (HasArg::Required, None) => match self.take_next_arg() {
                Some(arg) => Ok((opt, Some(arg.to_os_string()))),
                None => Err(OptError::new(&[
                    b"option '--",
                    name,
                    b"' requires an argument",
                ])),
            },
        }
    }
}

impl Iterator for Getopt<'_> {
    type Item = Result<(Opt, Option<OsString>), OptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.cluster.is_empty() {
            return Some(self.short());
        }
        while !self.done {
            let arg = self.args.get(self.next)?.as_bytes();
            if arg == b"--" {
                self.done = true;
                return None;
            }
            if let Some(body) = arg.strip_prefix(b"--") {
                self.next += 1;
                return Some(self.long(body));
            }
            if let Some(cluster) = arg.strip_prefix(b"-").filter(|c| !c.is_empty()) {
                self.next += 1;
                self.cluster = cluster;
                return Some(self.short());
            }
            // A non-option: glibc moves it to the end; qemu-ga ignores it either way.
            if self.posix {
                self.done = true;
                return None;
            }
            self.next += 1;
        }
        None
    }
}

/// Splits a comma list the way qemu-ga's `split_list` does (`g_strsplit` then prepending each
/// piece), so the pieces come out in reverse order; an empty string gives no pieces.
pub fn split_list(list: &OsStr) -> impl Iterator<Item = OsString> + '_ {
    let bytes = list.as_bytes();
    let pieces: Vec<&[u8]> = if bytes.is_empty() {
        Vec::new()
    } else {
        bytes.split(|&b| b == b',').collect()
    };
    pieces
        .into_iter()
        .rev()
        .map(|p| OsString::from_vec(p.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("qga")
            .chain(list.iter().copied())
            .map(OsString::from)
            .collect()
    }

    fn parse(list: &[&str]) -> Vec<Result<(Opt, Option<String>), String>> {
        let a = args(list);
        Getopt::new(&a, false)
            .map(|r| {
                r.map(|(o, v)| (o, v.map(|s| s.to_string_lossy().into_owned())))
                    .map_err(|e| String::from_utf8_lossy(&e.0).into_owned())
            })
            .collect()
    }

    fn ok(o: Opt, v: Option<&str>) -> Result<(Opt, Option<String>), String> {
        Ok((o, v.map(str::to_owned)))
    }

    #[test]
    fn short_options_clusters_and_arguments() {
        assert_eq!(
            parse(&["-vd", "-mfoo", "-p", "/x", "-Dr"]),
            vec![
                ok(Opt::Verbose, None),
                ok(Opt::Daemonize, None),
                ok(Opt::Method, Some("foo")),
                ok(Opt::Path, Some("/x")),
                ok(Opt::DumpConf, None),
                ok(Opt::RetryPath, None),
            ]
        );
        // A required argument may itself start with '-'.
        assert_eq!(parse(&["-m", "-v"]), vec![ok(Opt::Method, Some("-v"))]);
        assert_eq!(
            parse(&["-vm", "x"]),
            vec![ok(Opt::Verbose, None), ok(Opt::Method, Some("x"))]
        );
    }

    #[test]
    fn optional_argument_of_f_must_be_attached() {
        assert_eq!(
            parse(&["-F", "/hook"]),
            vec![ok(Opt::FsfreezeHook, None)] // "/hook" is a non-option
        );
        assert_eq!(
            parse(&["-F/hook"]),
            vec![ok(Opt::FsfreezeHook, Some("/hook"))]
        );
        assert_eq!(
            parse(&["-vF"]),
            vec![ok(Opt::Verbose, None), ok(Opt::FsfreezeHook, None)]
        );
        assert_eq!(parse(&["-Fv"]), vec![ok(Opt::FsfreezeHook, Some("v"))]);
        assert_eq!(
            parse(&["--fsfreeze-hook"]),
            vec![ok(Opt::FsfreezeHook, None)]
        );
        assert_eq!(
            parse(&["--fsfreeze-hook=/h", "--fsf=/g"]),
            vec![
                ok(Opt::FsfreezeHook, Some("/h")),
                ok(Opt::FsfreezeHook, Some("/g"))
            ]
        );
    }

    #[test]
    fn long_options() {
        assert_eq!(
            parse(&[
                "--method",
                "unix-listen",
                "--path=/s",
                "--meth=x",
                "--debug",
                "--allow-rpcs",
                "a,b"
            ]),
            vec![
                ok(Opt::Method, Some("unix-listen")),
                ok(Opt::Path, Some("/s")),
                ok(Opt::Method, Some("x")),
                ok(Opt::Debug, None),
                ok(Opt::AllowRpcs, Some("a,b")),
            ]
        );
        assert_eq!(parse(&["--method="]), vec![ok(Opt::Method, Some(""))]);
        // "--service" is Windows-only: unknown on Linux.
        assert_eq!(
            parse(&["--service=x"]),
            vec![Err("unrecognized option '--service=x'".into())]
        );
    }

    #[test]
    fn fsfreeze_timeout_option() {
        assert_eq!(
            parse(&["--fsfreeze-timeout=30", "--fsfreeze-timeout", "5"]),
            vec![
                ok(Opt::FsfreezeTimeout, Some("30")),
                ok(Opt::FsfreezeTimeout, Some("5"))
            ]
        );
        // Its own abbreviations work where they cannot mean a qemu-ga option...
        assert_eq!(
            parse(&["--fsfreeze-t=7"]),
            vec![ok(Opt::FsfreezeTimeout, Some("7"))]
        );
        // ...and qemu-ga's keep their meaning.
        assert_eq!(
            parse(&["--fsf=/h", "--fsfreeze", "--fsfreeze-"]),
            vec![
                ok(Opt::FsfreezeHook, Some("/h")),
                ok(Opt::FsfreezeHook, None),
                ok(Opt::FsfreezeHook, None)
            ]
        );
        assert_eq!(
            parse(&["--fsfreeze-timeout"]),
            vec![Err(
                "option '--fsfreeze-timeout' requires an argument".into()
            )]
        );
    }

    #[test]
    fn glibc_error_messages() {
        assert_eq!(
            parse(&["--bogus"]),
            vec![Err("unrecognized option '--bogus'".into())]
        );
        assert_eq!(
            parse(&["--bogus=3"]),
            vec![Err("unrecognized option '--bogus=3'".into())]
        );
        assert_eq!(parse(&["-x"]), vec![Err("invalid option -- 'x'".into())]);
        assert_eq!(parse(&["-:"]), vec![Err("invalid option -- ':'".into())]);
        assert_eq!(
            parse(&["-m"]),
            vec![Err("option requires an argument -- 'm'".into())]
        );
        assert_eq!(
            parse(&["--method"]),
            vec![Err("option '--method' requires an argument".into())]
        );
        assert_eq!(
            parse(&["--meth"]),
            vec![Err("option '--method' requires an argument".into())]
        );
        assert_eq!(
            parse(&["--verbose=3"]),
            vec![Err("option '--verbose' doesn't allow an argument".into())]
        );
        assert_eq!(
            parse(&["--ver=3"]),
            vec![Err(
                "option '--ver=3' is ambiguous; possibilities: '--version' '--verbose'".into()
            )]
        );
        assert_eq!(
            parse(&["--d"]),
            vec![Err(
                "option '--d' is ambiguous; possibilities: '--dump-conf' '--debug' '--daemonize'"
                    .into()
            )]
        );
        // An exact match wins over longer names with the same prefix.
        assert_eq!(parse(&["--debug"]), vec![ok(Opt::Debug, None)]);
    }

    #[test]
    fn non_options_and_double_dash() {
        assert_eq!(
            parse(&["extra", "-v", "-", "more", "--", "-d"]),
            vec![ok(Opt::Verbose, None)]
        );
        let a = args(&["extra", "-v"]);
        assert_eq!(Getopt::new(&a, true).count(), 0);
    }

    #[test]
    fn non_utf8_arguments_survive() {
        let mut a = args(&["-p"]);
        a.push(OsString::from_vec(b"/tmp/\xff".to_vec()));
        let got: Vec<_> = Getopt::new(&a, false).collect();
        assert_eq!(
            got,
            vec![Ok((
                Opt::Path,
                Some(OsString::from_vec(b"/tmp/\xff".to_vec()))
            ))]
        );
        let a = vec![OsString::from("qga"), OsString::from_vec(b"-\xff".to_vec())];
        let got: Vec<_> = Getopt::new(&a, false).collect();
        assert_eq!(
            got,
            vec![Err(OptError(b"invalid option -- '\xff'".to_vec()))]
        );
    }

    #[test]
    fn split_list_reverses_each_list() {
        let got: Vec<_> = split_list(OsStr::new("guest-info,guest-sync")).collect();
        assert_eq!(
            got,
            vec![OsString::from("guest-sync"), OsString::from("guest-info")]
        );
        assert_eq!(split_list(OsStr::new("")).count(), 0);
        assert_eq!(split_list(OsStr::new(",")).count(), 2);
    }

    #[test]
    fn hostile_huge_lists_and_many_arguments() {
        let list = vec!["guest-ping"; 100_000].join(",");
        assert_eq!(split_list(OsStr::new(&list)).count(), 100_000);
        let many: Vec<&str> = std::iter::repeat_n("-v", 100_000).collect();
        assert_eq!(parse(&many).len(), 100_000);
        let long = "x".repeat(1 << 20);
        assert_eq!(parse(&["-p", &long]), vec![ok(Opt::Path, Some(&long))]);
    }
}
