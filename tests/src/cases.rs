//! The protocol corpus, as code. `gen-corpus` writes these cases to `corpus/protocol/NNN-name.bin`
//! (numbered in the order below); a test checks that the files on disk match.
//!
//! Scope: only protocol-level behaviour that must be byte-identical between qemu-ga 7.2 and qga:
//! framing, lexer and parser errors, request shape, command lookup, argument validation, and the
//! three commands whose results do not depend on the host (`guest-sync`, `guest-sync-delimited`,
//! `guest-ping`). Host-dependent results, `guest-info`'s result, and commands that differ between
//! 7.2 and the newest schema are out (see `corpus/known-differences.md`).
//!
//! Safety: every request naming a command with side effects fails argument validation through an
//! earlier check (a missing member or a wrong type) and also carries the `qga-test-guard` member,
//! so that it would fail even if that check passed. No-argument side-effect commands only get
//! requests that the dispatcher rejects before the command is looked up.

use std::fmt::Write as _;

use crate::corpus::{SAFETY_GUARD, side_effect_commands};
use crate::rng::Rng;

/// One corpus stream.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short name (lowercase letters, digits, hyphens); the file is `NNN-<name>.bin`.
    pub name: String,
    /// The raw bytes sent to the agent.
    pub bytes: Vec<u8>,
    /// For streams whose first reply is `Parameter '<prefix><m>' is unexpected` with several
    /// unexpected members: what the `GHashTable` model needs to predict `<m>`.
    pub unexpected: Option<UnexpectedProbe>,
}

/// Input of [`crate::qdict::first_unexpected_member`] for one case.
#[derive(Debug, Clone)]
pub struct UnexpectedProbe {
    /// Member names of the object the visitor checks, in input order, unescaped.
    pub keys: Vec<String>,
    /// The schema members among them (the visitor removes them before looking for leftovers).
    pub visited: Vec<String>,
    /// Path prefix of the object in error messages (`""`, `"vcpus[0]."`).
    pub prefix: String,
}

/// A command of the 7.2 schema that exists unchanged in the newest schema, and its arguments.
struct Command {
    name: &'static str,
    members: &'static [Member],
}

#[derive(Clone, Copy)]
struct Member {
    name: &'static str,
    ty: Ty,
    required: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Str,
    Bool,
    ListStr,
    ListVcpu,
    ListMemBlk,
    Whence,
}

const fn req(name: &'static str, ty: Ty) -> Member {
    Member {
        name,
        ty,
        required: true,
    }
}

const fn opt(name: &'static str, ty: Ty) -> Member {
    Member {
        name,
        ty,
        required: false,
    }
}

/// The 7.2 commands, in schema order, minus `guest-get-devices` (disabled in 7.2, absent in the
/// newest schema: a known difference). `guest-exec`'s `capture-output` is left out of its member
/// list because its type changed (bool in 7.2, an alternate in 8.0+).
const COMMANDS: &[Command] = &[
    Command {
        name: "guest-sync-delimited",
        members: &[req("id", Ty::Int)],
    },
    Command {
        name: "guest-sync",
        members: &[req("id", Ty::Int)],
    },
    Command {
        name: "guest-ping",
        members: &[],
    },
    Command {
        name: "guest-get-time",
        members: &[],
    },
    Command {
        name: "guest-set-time",
        members: &[opt("time", Ty::Int)],
    },
    Command {
        name: "guest-info",
        members: &[],
    },
    Command {
        name: "guest-shutdown",
        members: &[opt("mode", Ty::Str)],
    },
    Command {
        name: "guest-file-open",
        members: &[req("path", Ty::Str), opt("mode", Ty::Str)],
    },
    Command {
        name: "guest-file-close",
        members: &[req("handle", Ty::Int)],
    },
    Command {
        name: "guest-file-read",
        members: &[req("handle", Ty::Int), opt("count", Ty::Int)],
    },
    Command {
        name: "guest-file-write",
        members: &[
            req("handle", Ty::Int),
            req("buf-b64", Ty::Str),
            opt("count", Ty::Int),
        ],
    },
    Command {
        name: "guest-file-seek",
        members: &[
            req("handle", Ty::Int),
            req("offset", Ty::Int),
            req("whence", Ty::Whence),
        ],
    },
    Command {
        name: "guest-file-flush",
        members: &[req("handle", Ty::Int)],
    },
    Command {
        name: "guest-fsfreeze-status",
        members: &[],
    },
    Command {
        name: "guest-fsfreeze-freeze",
        members: &[],
    },
    Command {
        name: "guest-fsfreeze-freeze-list",
        members: &[opt("mountpoints", Ty::ListStr)],
    },
    Command {
        name: "guest-fsfreeze-thaw",
        members: &[],
    },
    Command {
        name: "guest-fstrim",
        members: &[opt("minimum", Ty::Int)],
    },
    Command {
        name: "guest-suspend-disk",
        members: &[],
    },
    Command {
        name: "guest-suspend-ram",
        members: &[],
    },
    Command {
        name: "guest-suspend-hybrid",
        members: &[],
    },
    Command {
        name: "guest-network-get-interfaces",
        members: &[],
    },
    Command {
        name: "guest-get-vcpus",
        members: &[],
    },
    Command {
        name: "guest-set-vcpus",
        members: &[req("vcpus", Ty::ListVcpu)],
    },
    Command {
        name: "guest-get-disks",
        members: &[],
    },
    Command {
        name: "guest-get-fsinfo",
        members: &[],
    },
    Command {
        name: "guest-set-user-password",
        members: &[
            req("username", Ty::Str),
            req("password", Ty::Str),
            req("crypted", Ty::Bool),
        ],
    },
    Command {
        name: "guest-get-memory-blocks",
        members: &[],
    },
    Command {
        name: "guest-set-memory-blocks",
        members: &[req("mem-blks", Ty::ListMemBlk)],
    },
    Command {
        name: "guest-get-memory-block-info",
        members: &[],
    },
    Command {
        name: "guest-exec-status",
        members: &[req("pid", Ty::Int)],
    },
    Command {
        name: "guest-exec",
        members: &[
            req("path", Ty::Str),
            opt("arg", Ty::ListStr),
            opt("env", Ty::ListStr),
            opt("input-data", Ty::Str),
        ],
    },
    Command {
        name: "guest-get-host-name",
        members: &[],
    },
    Command {
        name: "guest-get-users",
        members: &[],
    },
    Command {
        name: "guest-get-timezone",
        members: &[],
    },
    Command {
        name: "guest-get-osinfo",
        members: &[],
    },
    Command {
        name: "guest-ssh-get-authorized-keys",
        members: &[req("username", Ty::Str)],
    },
    Command {
        name: "guest-ssh-add-authorized-keys",
        members: &[
            req("username", Ty::Str),
            req("keys", Ty::ListStr),
            opt("reset", Ty::Bool),
        ],
    },
    Command {
        name: "guest-ssh-remove-authorized-keys",
        members: &[req("username", Ty::Str), req("keys", Ty::ListStr)],
    },
    Command {
        name: "guest-get-diskstats",
        members: &[],
    },
    Command {
        name: "guest-get-cpustats",
        members: &[],
    },
];

fn is_side_effect(command: &str) -> bool {
    side_effect_commands().any(|c| c == command)
}

/// Builds the case list.
struct Builder {
    cases: Vec<Case>,
}

impl Builder {
    fn add(&mut self, name: &str, bytes: impl AsRef<[u8]>) {
        self.cases.push(Case {
            name: name.to_owned(),
            bytes: bytes.as_ref().to_vec(),
            unexpected: None,
        });
    }

    fn add_probe(&mut self, name: &str, bytes: impl AsRef<[u8]>, probe: UnexpectedProbe) {
        self.cases.push(Case {
            name: name.to_owned(),
            bytes: bytes.as_ref().to_vec(),
            unexpected: Some(probe),
        });
    }
}

/// `{"execute":"<cmd>","arguments":<args>}`, with the safety guard added to `args` (which must
/// then be an object) when `cmd` has side effects.
fn call(cmd: &str, args: &str) -> String {
    if is_side_effect(cmd) {
        format!("{{\"execute\":\"{cmd}\",\"arguments\":{}}}", guarded(args))
    } else {
        format!("{{\"execute\":\"{cmd}\",\"arguments\":{args}}}")
    }
}

/// `args` (an object literal) with `"qga-test-guard":1` added as its last member.
fn guarded(args: &str) -> String {
    let body = args
        .trim()
        .strip_prefix('{')
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or_else(|| panic!("side-effect arguments must be an object literal: {args}"));
    if body.trim().is_empty() {
        format!("{{\"{SAFETY_GUARD}\":1}}")
    } else {
        format!("{{{body},\"{SAFETY_GUARD}\":1}}")
    }
}

fn ping_id(id: &str) -> String {
    format!("{{\"execute\":\"guest-ping\",\"id\":{id}}}")
}

fn ping_id_bytes(id: &[u8]) -> Vec<u8> {
    let mut v = b"{\"execute\":\"guest-ping\",\"id\":".to_vec();
    v.extend_from_slice(id);
    v.push(b'}');
    v
}

const PING: &str = "{\"execute\":\"guest-ping\"}";

/// Every protocol case, in corpus order.
pub fn protocol_cases() -> Vec<Case> {
    let mut b = Builder { cases: Vec::new() };
    spec_examples(&mut b);
    sync_family(&mut b);
    request_ids(&mut b);
    lexer_stray_bytes(&mut b);
    lexer_recovery(&mut b);
    strings_and_escapes(&mut b);
    invalid_utf8(&mut b);
    numbers(&mut b);
    keywords(&mut b);
    parser_structure(&mut b);
    duplicate_and_non_string_keys(&mut b);
    nesting(&mut b);
    top_level_scalars(&mut b);
    request_shape(&mut b);
    unknown_commands(&mut b);
    argument_validation(&mut b);
    list_element_paths(&mut b);
    multiple_unexpected_members(&mut b);
    client_patterns(&mut b);
    split_and_coalesced(&mut b);
    b.cases
}

fn spec_examples(b: &mut Builder) {
    // §1.10 and §5.3 of the reference notes, verbatim where they are protocol-level.
    b.add("spec-ping", PING);
    b.add(
        "spec-ping-id-abc-newline",
        "{\"execute\":\"guest-ping\",\"id\":\"abc\"}\n",
    );
    b.add("spec-ping-id-object", ping_id("{\"a\":[1,2]}"));
    b.add(
        "spec-unknown-command-with-id",
        "{\"execute\":\"guest-foo\",\"id\":\"x\"}",
    );
    b.add(
        "spec-unknown-command-bogus",
        "{\"execute\":\"guest-bogus\"}",
    );
    b.add(
        "spec-sync",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":123456789}}",
    );
    b.add(
        "spec-sync-delimited-with-id",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":7},\"id\":\"req\"}",
    );
    b.add("spec-execute-without-value", "{\"execute\":}");
    b.add(
        "spec-control-byte-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\x01b\"}",
    );
    b.add(
        "spec-single-quoted",
        "{'execute':'guest-ping','id':'it\\'s \"x\"'}",
    );
    b.add("spec-garbage-keyword", "garbage\n");
    b.add(
        "spec-ff-then-sync-delimited",
        b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":12345}}",
    );
    b.add("spec-id-1-5", ping_id("1.5"));
    b.add("spec-id-0-1", ping_id("0.1"));
    b.add("spec-id-1e3", ping_id("1e3"));
    b.add("spec-id-minus-zero", ping_id("-0"));
    b.add("spec-id-u64-max", ping_id("18446744073709551615"));
    b.add("spec-id-below-i64-min", ping_id("-9223372036854775809"));
    b.add("spec-id-null", ping_id("null"));
    b.add("spec-id-first", "{\"id\":7,\"execute\":\"guest-ping\"}");
    b.add(
        "spec-id-unicode-escapes",
        ping_id("\"\\u00e9\\ud83d\\ude00\""),
    );
    b.add("spec-id-unicode-raw", ping_id_bytes("\"é😀\"".as_bytes()));
    b.add(
        "spec-id-escapes",
        ping_id("\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u0080 <>&'\""),
    );
    b.add("spec-id-modified-utf8-nul", ping_id_bytes(b"\"\xc0\x80\""));
    b.add("spec-id-invalid-utf8", ping_id_bytes(b"\"a\x80b\""));
    b.add("spec-id-lone-surrogate", ping_id("\"\\uD800\""));
    b.add(
        "spec-sync-minus-one",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-1}}",
    );
    b.add(
        "spec-sync-float-id",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.0}}",
    );
    b.add("spec-sync-no-arguments", "{\"execute\":\"guest-sync\"}");
    b.add(
        "spec-sync-extra-argument",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"x\":2}}",
    );
    b.add(
        "spec-sync-delimited",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":42}}",
    );
    b.add("spec-ff-alone", b"\xff");
    b.add(
        "spec-partial-then-ff-ping",
        b"{\"execute\":\"guest-pi\xff{\"execute\":\"guest-ping\"}",
    );
    b.add("spec-empty-command-name", "{\"execute\":\"\"}");
    b.add("spec-execute-not-string", "{\"execute\":1,\"id\":2}");
    b.add("spec-lacks-execute-with-id", "{\"id\":3}");
    b.add("spec-empty-object", "{}");
    b.add(
        "spec-arguments-null",
        "{\"execute\":\"guest-ping\",\"arguments\":null}",
    );
    b.add(
        "spec-unexpected-member-with-id",
        "{\"execute\":\"guest-ping\",\"foo\":1,\"id\":9}",
    );
    b.add("spec-exec-oob", "{\"exec-oob\":\"guest-ping\"}");
    b.add("spec-array", "[1,2]");
    b.add("spec-string", "\"abc\"");
    b.add("spec-null-space", "null ");
    b.add("spec-true-newline", "true\n");
    b.add("spec-number-newline", "1\n");
    b.add(
        "spec-duplicate-execute",
        "{\"execute\":\"guest-ping\",\"execute\":\"guest-info\"}",
    );
    b.add("spec-missing-colon", "{\"execute\" \"guest-ping\"}");
    b.add("spec-number-key", "{1:2}");
    b.add("spec-stray-close-brace", "}");
    b.add("spec-stray-close-bracket", "]");
    b.add("spec-stray-at", "@");
    b.add(
        "spec-form-feed-then-ping",
        b"\x0c{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "spec-bom-then-ping",
        b"\xef\xbb\xbf{\"execute\":\"guest-ping\"}",
    );
    b.add("spec-nul-then-ping", b"\x00{\"execute\":\"guest-ping\"}");
    b.add("spec-leading-zero-id", ping_id("01"));
    b.add(
        "spec-raw-tab-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\tb\"}",
    );
    b.add("spec-capital-true", ping_id("True"));
    b.add("spec-ping-then-keyword", "{\"execute\":\"guest-ping\"}xyz ");
    b.add(
        "spec-two-pings-coalesced",
        "{\"execute\":\"guest-ping\",\"id\":1}{\"execute\":\"guest-ping\",\"id\":2}",
    );
}

fn sync_family(b: &mut Builder) {
    for (name, id) in [
        ("zero", "0"),
        ("one", "1"),
        ("i64-max", "9223372036854775807"),
        ("i64-min", "-9223372036854775808"),
        ("minus-zero", "-0"),
        ("millis", "1732627200123"),
        ("u32-max", "4294967295"),
    ] {
        b.add(
            &format!("sync-id-{name}"),
            format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}"),
        );
    }
    for (name, id) in [
        ("zero", "0"),
        ("i64-max", "9223372036854775807"),
        ("i64-min", "-9223372036854775808"),
        ("negative", "-42"),
    ] {
        b.add(
            &format!("sync-delimited-id-{name}"),
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}"),
        );
    }
    for (name, id) in [
        ("u63", "9223372036854775808"),
        ("u64-max", "18446744073709551615"),
        ("below-i64-min", "-9223372036854775809"),
        ("exponent", "1e3"),
        ("float-zero", "0.0"),
        ("string", "\"1\""),
        ("true", "true"),
        ("null", "null"),
        ("array", "[1]"),
        ("object", "{\"id\":1}"),
    ] {
        b.add(
            &format!("sync-bad-id-{name}"),
            format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}"),
        );
    }
    for (name, id) in [("string", "\"x\""), ("float", "2.5"), ("null", "null")] {
        // Validation fails: no 0xFF in front of the error.
        b.add(
            &format!("sync-delimited-bad-id-{name}"),
            format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}"),
        );
    }
    b.add(
        "sync-delimited-missing-id",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{}}",
    );
    b.add(
        "sync-delimited-no-arguments",
        "{\"execute\":\"guest-sync-delimited\"}",
    );
    b.add(
        "sync-delimited-extra-argument",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1,\"y\":2}}",
    );
    b.add(
        "sync-delimited-twice",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":1}}{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":2}}",
    );
    b.add(
        "sync-delimited-then-error",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":5}}{\"execute\":\"guest-nope\"}",
    );
    b.add(
        "sync-delimited-failed-then-ping",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":\"x\"}}{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "sync-delimited-id-object-request-id",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":8},\"id\":{\"z\":1,\"a\":[true,null]}}",
    );
    b.add(
        "sync-request-id-and-argument-id",
        "{\"id\":\"outer\",\"arguments\":{\"id\":99},\"execute\":\"guest-sync\"}",
    );
    b.add(
        "sync-arguments-first",
        "{\"arguments\":{\"id\":5},\"execute\":\"guest-sync\"}",
    );
    b.add(
        "sync-arguments-array",
        "{\"execute\":\"guest-sync\",\"arguments\":[5]}",
    );
    b.add(
        "sync-arguments-number",
        "{\"execute\":\"guest-sync\",\"arguments\":5}",
    );
    b.add(
        "sync-arguments-string",
        "{\"execute\":\"guest-sync\",\"arguments\":\"5\"}",
    );
    b.add(
        "sync-arguments-empty",
        "{\"execute\":\"guest-sync\",\"arguments\":{}}",
    );
    b.add(
        "sync-argument-id-escaped-key",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"\\u0069d\":77}}",
    );
    b.add(
        "sync-argument-id-single-quoted",
        "{'execute':'guest-sync','arguments':{'id':78}}",
    );
    b.add(
        "sync-argument-id-key-with-nul",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\\u0000\":1}}",
    );
    b.add(
        "sync-argument-id-uppercase-key",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"ID\":1}}",
    );
}

fn request_ids(b: &mut Builder) {
    let ids: &[(&str, &str)] = &[
        ("int-zero", "0"),
        ("int-negative", "-17"),
        ("i64-max", "9223372036854775807"),
        ("i64-min", "-9223372036854775808"),
        ("u63", "9223372036854775808"),
        ("u64-max-plus-one", "18446744073709551616"),
        ("huge-int", "123456789012345678901234567890"),
        ("minus-zero-float", "-0.0"),
        ("zero-float", "0.0"),
        ("float-negative-small", "-2.5e-7"),
        ("float-1e300", "1e300"),
        ("float-max", "1.7976931348623157e308"),
        ("float-min-normal", "2.2250738585072014e-308"),
        ("float-denormal-min", "5e-324"),
        ("float-underflow", "1e-400"),
        ("float-overflow-inf", "1e309"),
        ("float-overflow-minus-inf", "-1e309"),
        ("int-310-digits-inf", &"9".repeat(310)),
        ("exp-capital", "1E2"),
        ("exp-plus", "1e+2"),
        ("exp-minus", "1e-2"),
        ("exp-zero", "2e0"),
        ("fraction-third", "0.3333333333333333"),
        ("fraction-long", "3.14159265358979323846264338327950288"),
        ("float-integral", "100.0"),
        ("float-2-pow-53-plus-one", "9007199254740993.0"),
        ("float-17-digits", "1.2345678901234567"),
        ("string-empty", "\"\""),
        ("string-plain", "\"hello world\""),
        ("string-slash", "\"a/b\\/c\""),
        ("string-single-quote", "\"it's\""),
        ("true", "true"),
        ("false", "false"),
        ("array-empty", "[]"),
        ("array-mixed", "[1,\"two\",3.5,true,false,null,[],{}]"),
        ("object-empty", "{}"),
        (
            "object-key-order",
            "{\"b\":1,\"a\":2,\"zz\":[3,2,1],\"key\":{}}",
        ),
        (
            "object-reply-keys",
            "{\"return\":1,\"id\":2,\"error\":3,\"class\":4,\"desc\":5}",
        ),
        (
            "object-nested-order",
            "{\"x\":{\"y\":{\"b\":1,\"a\":2}},\"c\":[{\"q\":1,\"p\":2}]}",
        ),
        ("object-whitespace", "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }"),
        ("object-single-quoted-keys", "{'k1':'v1','k2':\"v2\"}"),
        (
            "object-unicode-keys",
            "{\"\\u00e9\":1,\"\\ud83d\\ude00\":2,\"e\":3}",
        ),
        ("object-empty-key", "{\"\":0}"),
    ];
    for (name, id) in ids {
        b.add(&format!("id-{name}"), ping_id(id));
    }
    // Objects whose keys share a QDict bucket: iteration shows them in reverse insertion order.
    let pairs = same_bucket_pairs(4);
    for (i, (k1, k2)) in pairs.iter().enumerate() {
        b.add(
            &format!("id-object-same-bucket-{i}"),
            ping_id(&format!("{{\"{k1}\":1,\"{k2}\":2,\"m\":3}}")),
        );
        b.add(
            &format!("id-object-same-bucket-{i}-reversed"),
            ping_id(&format!("{{\"{k2}\":2,\"m\":3,\"{k1}\":1}}")),
        );
    }
    // Many keys: the echoed object is in QDict order.
    let mut rng = Rng::from_state(0x1d_5eed);
    for i in 0..4 {
        let n = 6 + i * 4;
        let mut obj = String::from("{");
        for k in 0..n {
            if k > 0 {
                obj.push(',');
            }
            let key = random_key(&mut rng);
            let _ = write!(obj, "\"{key}{k}\":{k}");
        }
        obj.push('}');
        b.add(&format!("id-object-{n}-keys"), ping_id(&obj));
    }
    // The id is echoed for every dispatcher or handler error, and never for parse errors.
    b.add(
        "id-with-unknown-command",
        "{\"execute\":\"guest-nope\",\"id\":[1,{\"b\":2,\"a\":1}]}",
    );
    b.add("id-with-missing-execute", "{\"id\":{\"k\":\"v\"}}");
    b.add(
        "id-with-bad-arguments",
        "{\"execute\":\"guest-ping\",\"arguments\":[],\"id\":1.25}",
    );
    b.add(
        "id-with-argument-error",
        "{\"execute\":\"guest-ping\",\"arguments\":{\"z\":1},\"id\":-5}",
    );
    b.add(
        "id-with-parse-error",
        "{\"execute\":\"guest-ping\",\"id\":7,}",
    );
    b.add(
        "id-between-members",
        "{\"execute\":\"guest-ping\",\"id\":\"mid\",\"arguments\":{}}",
    );
    b.add(
        "id-long-string",
        ping_id(&format!("\"{}\"", "x".repeat(5000))),
    );
}

/// Two-letter-ish keys that fall into the same QDict bucket, found by search (deterministic).
fn same_bucket_pairs(count: usize) -> Vec<(String, String)> {
    let mut by_bucket: std::collections::BTreeMap<u32, String> = std::collections::BTreeMap::new();
    let mut pairs = Vec::new();
    'outer: for a in b'a'..=b'z' {
        for c in b'a'..=b'z' {
            let key = String::from_utf8(vec![a, c]).unwrap_or_default();
            let bucket = crate::qdict::qdict_bucket(key.as_bytes());
            if let Some(other) = by_bucket.remove(&bucket) {
                pairs.push((other, key));
                if pairs.len() == count {
                    break 'outer;
                }
            } else {
                by_bucket.insert(bucket, key);
            }
        }
    }
    pairs
}

fn random_key(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz-_0123456789";
    let len = 1 + rng.below(7);
    (0..len)
        .map(|_| {
            char::from(
                ALPHABET
                    .get(rng.below(ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'a'),
            )
        })
        .collect()
}

fn lexer_stray_bytes(b: &mut Builder) {
    // Every C0 control byte at top level (TAB, LF and CR are whitespace, so they are silent).
    for c in 0u8..0x20 {
        let mut v = vec![c];
        v.extend_from_slice(PING.as_bytes());
        b.add(&format!("stray-control-{c:02x}"), v);
    }
    b.add("stray-space-is-whitespace", format!(" {PING}"));
    b.add("stray-del", format!("\x7f{PING}"));
    for (name, byte) in [
        ("at", b'@'),
        ("hash", b'#'),
        ("plus", b'+'),
        ("dot", b'.'),
        ("star", b'*'),
        ("slash", b'/'),
        ("backslash", b'\\'),
        ("equals", b'='),
        ("less", b'<'),
        ("capital-a", b'A'),
        ("capital-n", b'N'),
        ("ampersand", b'&'),
        ("tilde", b'~'),
        ("backtick", b'`'),
        ("bang", b'!'),
        ("dollar", b'$'),
        ("percent", b'%'),
        ("paren", b'('),
        ("question", b'?'),
        ("semicolon", b';'),
        ("pipe", b'|'),
        ("underscore", b'_'),
    ] {
        let mut v = vec![byte];
        v.extend_from_slice(PING.as_bytes());
        b.add(&format!("stray-{name}"), v);
    }
    for (name, bytes) in [
        ("byte-80", &b"\x80"[..]),
        ("byte-c3-a9", b"\xc3\xa9"),
        ("byte-e2-82-ac", b"\xe2\x82\xac"),
        ("byte-fd", b"\xfd"),
        ("byte-fe", b"\xfe"),
        ("byte-ff-ff", b"\xff\xff"),
        ("byte-fe-ff", b"\xfe\xff"),
        ("bom-twice", b"\xef\xbb\xbf\xef\xbb\xbf"),
        ("nbsp", b"\xc2\xa0"),
    ] {
        let mut v = bytes.to_vec();
        v.extend_from_slice(PING.as_bytes());
        b.add(&format!("stray-{name}"), v);
    }
    b.add(
        "stray-control-bytes-between-requests",
        format!("{PING}\x01\x02{PING}\x1f{PING}"),
    );
    b.add(
        "stray-ff-between-requests",
        b"{\"execute\":\"guest-ping\",\"id\":1}\xff{\"execute\":\"guest-ping\",\"id\":2}",
    );
    b.add(
        "stray-fe-between-requests",
        b"{\"execute\":\"guest-ping\",\"id\":1}\xfe{\"execute\":\"guest-ping\",\"id\":2}",
    );
    b.add(
        "stray-ff-mid-request-after-brace",
        b"{\xff{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "stray-ff-mid-request-after-colon",
        b"{\"execute\":\xff\"guest-ping\"}",
    );
    b.add(
        "stray-ff-mid-request-after-comma",
        b"{\"execute\":\"guest-ping\",\xff\"id\":1}",
    );
    b.add(
        "stray-ff-mid-number",
        b"{\"execute\":\"guest-ping\",\"id\":12\xff34}",
    );
    b.add(
        "stray-ff-mid-keyword",
        b"{\"execute\":\"guest-ping\",\"id\":tr\xffue}",
    );
    b.add(
        "stray-fe-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"\xfe\"}",
    );
    b.add(
        "stray-ff-in-single-quoted-string",
        b"{\"execute\":\"guest-ping\",\"id\":'ab\xffcd'}",
    );
    b.add(
        "stray-ff-after-backslash",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\\\xff\"}",
    );
    b.add(
        "stray-control-mid-request",
        b"{\"execute\":\x02\"guest-ping\"}",
    );
    b.add(
        "stray-nul-mid-request",
        b"{\"execute\":\"guest-ping\"\x00,\"id\":1}",
    );
    b.add("stray-nul-in-string", b"{\"execute\":\"guest-\x00ping\"}");
    b.add(
        "stray-lf-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\nb\"}",
    );
    b.add(
        "stray-cr-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\rb\"}",
    );
    b.add(
        "stray-esc-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"\x1b[0m\"}",
    );
    b.add(
        "stray-tab-in-single-quoted",
        b"{\"execute\":\"guest-ping\",\"id\":'a\tb'}",
    );
    b.add(
        "stray-control-after-backslash",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\\\x01\"}",
    );
    b.add(
        "stray-tab-between-tokens",
        b"{\t\"execute\"\t:\t\"guest-ping\"\t}",
    );
    b.add(
        "stray-crlf-between-tokens",
        b"{\r\n\"execute\"\r\n:\r\n\"guest-ping\"\r\n}\r\n",
    );
}

fn lexer_recovery(b: &mut Builder) {
    b.add("recovery-skips-letters", format!("@@@{PING}"));
    b.add("recovery-skips-quotes", format!("@\"abc\"{PING}"));
    b.add("recovery-skips-space-and-tab", format!("@ \t x{PING}"));
    b.add("recovery-ends-at-colon", format!("@abc:def{PING}"));
    b.add("recovery-ends-at-comma", format!("@abc,{PING}"));
    b.add("recovery-ends-at-close-bracket", format!("@abc]{PING}"));
    b.add("recovery-ends-at-close-brace", format!("@abc}}{PING}"));
    b.add("recovery-ends-at-open-bracket", "@abc[1,2]");
    b.add("recovery-ends-at-control", format!("@abc\x01{PING}"));
    b.add("recovery-ends-at-lf", format!("@abc\n{PING}"));
    b.add("recovery-ends-at-cr", format!("@abc\r{PING}"));
    b.add(
        "recovery-ends-at-nul",
        b"@abc\x00{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "recovery-ends-at-ff",
        b"@abc\xff{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "recovery-ends-at-fe",
        b"@abc\xfe{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "recovery-skips-high-bytes",
        b"@\xc3\xa9\x80\xfd{\"execute\":\"guest-ping\"}",
    );
    b.add(
        "recovery-in-request-then-stray-braces",
        "{\"execute\":\"guest-ping\",\"id\":@}}}",
    );
    b.add(
        "recovery-inside-nested-request",
        "{\"execute\":\"guest-ping\",\"id\":{\"a\":[1,@,3]}}",
    );
    b.add(
        "recovery-error-then-request-same-stream",
        "{\"execute\":\"guest-ping\",\"id\":01}{\"execute\":\"guest-ping\",\"id\":2}",
    );
    b.add("recovery-two-errors", format!("@ # {PING}"));
    b.add(
        "recovery-error-in-recovery-via-control",
        format!("@\x01\x02{PING}"),
    );
    b.add(
        "recovery-ff-then-partial-then-ff",
        b"\xff{\"execute\":\"guest-p\xff{\"execute\":\"guest-ping\",\"id\":3}",
    );
}

fn strings_and_escapes(b: &mut Builder) {
    let printable: String = (0x20u8..0x7f)
        .map(char::from)
        .map(|c| match c {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            c => c.to_string(),
        })
        .collect();
    b.add(
        "string-all-printable-ascii",
        ping_id(&format!("\"{printable}\"")),
    );
    let controls: String = (0u32..0x20).map(|c| format!("\\u{c:04x}")).collect();
    b.add(
        "string-all-control-escapes",
        ping_id(&format!("\"{controls}\"")),
    );
    let cases: &[(&str, &str)] = &[
        ("short-escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
        ("escaped-apostrophe-in-double", "\"\\'\""),
        ("single-quoted-escaped-quote", "'\\\"'"),
        ("single-quoted-raw-double-quote", "'say \"hi\"'"),
        ("single-quoted-escaped-apostrophe", "'it\\'s'"),
        ("single-quoted-empty", "''"),
        ("single-quoted-unicode-escape", "'\\u00e9'"),
        ("unicode-lower-hex", "\"\\u00e9\\u00ff\\u0100\""),
        ("unicode-upper-hex", "\"\\u00E9\\u00FF\\u0100\""),
        ("unicode-mixed-case-hex", "\"\\uAbCd\""),
        ("unicode-ascii-letters", "\"\\u0041\\u0062\""),
        ("unicode-del", "\"\\u007f\""),
        ("unicode-c1", "\"\\u0085\\u009f\""),
        ("unicode-nul", "\"\\u0000\""),
        ("unicode-nul-in-middle", "\"a\\u0000b\""),
        ("unicode-replacement-char", "\"\\ufffd\""),
        ("unicode-bom", "\"\\ufeff\""),
        ("unicode-line-separator", "\"\\u2028\\u2029\""),
        ("unicode-last-bmp", "\"\\uFFFD\\uFFFC\""),
        ("surrogate-pair", "\"\\ud83d\\ude00\""),
        ("surrogate-pair-upper", "\"\\uD83D\\uDE00\""),
        ("surrogate-pair-max", "\"\\uDBFF\\uDFFD\""),
        ("surrogate-pair-first", "\"\\uD800\\uDC00\""),
        ("surrogate-pair-noncharacter-1fffe", "\"\\uD83F\\uDFFE\""),
        ("surrogate-pair-noncharacter-10ffff", "\"\\uDBFF\\uDFFF\""),
        ("surrogate-lone-high-at-end", "\"\\uD83D\""),
        ("surrogate-lone-high-then-letter", "\"\\uD83Dx\""),
        ("surrogate-lone-high-then-bmp-escape", "\"\\uD83D\\u0041\""),
        ("surrogate-high-high", "\"\\uD83D\\uD83D\""),
        ("surrogate-lone-low", "\"\\uDE00\""),
        ("surrogate-reversed", "\"\\uDE00\\uD83D\""),
        ("surrogate-high-then-short-escape", "\"\\uD83D\\uDE\""),
        ("noncharacter-fdd0", "\"\\uFDD0\""),
        ("noncharacter-fdef", "\"\\uFDEF\""),
        ("noncharacter-fffe", "\"\\uFFFE\""),
        ("noncharacter-ffff", "\"\\uFFFF\""),
        ("not-noncharacter-fdcf", "\"\\uFDCF\\uFDF0\""),
        ("short-escape-two-digits", "\"\\u00\""),
        ("short-escape-three-digits", "\"\\u123\""),
        ("short-escape-then-text", "\"\\u12xyz\""),
        ("short-escape-empty", "\"\\u\""),
        ("escape-non-hex", "\"\\uZZZZ\""),
        ("escape-capital-u", "\"\\U0041\""),
        ("escape-x", "\"\\x41\""),
        ("escape-a", "\"\\a\""),
        ("escape-zero", "\"\\0\""),
        ("escape-v", "\"\\v\""),
        ("escape-space", "\"\\ \""),
        ("escape-high-byte", "\"\\\u{e9}\""),
    ];
    for (name, lit) in cases {
        b.add(&format!("string-{name}"), ping_id(lit));
    }
    // A string that never ends until the fence's newline.
    b.add(
        "string-unterminated",
        "{\"execute\":\"guest-ping\",\"id\":\"abc",
    );
    b.add(
        "string-unterminated-single",
        "{\"execute\":\"guest-ping\",\"id\":'abc",
    );
    b.add(
        "string-escape-at-end",
        "{\"execute\":\"guest-ping\",\"id\":\"abc\\",
    );
    b.add(
        "string-raw-del",
        b"{\"execute\":\"guest-ping\",\"id\":\"a\x7fb\"}",
    );
    b.add(
        "string-raw-bom",
        b"{\"execute\":\"guest-ping\",\"id\":\"\xef\xbb\xbf\"}",
    );
    b.add(
        "string-escaped-command-name",
        "{\"execute\":\"guest-p\\u0069ng\"}",
    );
    b.add(
        "string-escaped-command-name-first",
        "{\"execute\":\"\\u0067uest-ping\"}",
    );
    b.add(
        "string-escaped-hyphen",
        "{\"execute\":\"guest\\u002dping\"}",
    );
    b.add(
        "string-escaped-slash-in-name",
        "{\"execute\":\"guest\\/ping\"}",
    );
    b.add("string-single-quoted-command", "{'execute':'guest-ping'}");
    b.add(
        "string-escaped-key-execute",
        "{\"\\u0065xecute\":\"guest-ping\"}",
    );
}

fn invalid_utf8(b: &mut Builder) {
    let cases: &[(&str, &[u8])] = &[
        ("valid-2-byte-min", b"\xc2\x80"),
        ("valid-2-byte-max", b"\xdf\xbf"),
        ("valid-3-byte-min", b"\xe0\xa0\x80"),
        ("valid-3-byte-before-surrogates", b"\xed\x9f\xbf"),
        ("valid-3-byte-after-surrogates", b"\xee\x80\x80"),
        ("valid-3-byte-replacement", b"\xef\xbf\xbd"),
        ("valid-4-byte-min", b"\xf0\x90\x80\x80"),
        ("valid-4-byte-max-usable", b"\xf4\x8f\xbf\xbd"),
        ("modified-nul", b"\xc0\x80"),
        ("modified-nul-in-middle", b"a\xc0\x80b"),
        ("lone-continuation-80", b"\x80"),
        ("lone-continuation-bf", b"\xbf"),
        ("two-continuations", b"\x80\x80"),
        ("truncated-2-byte", b"\xc3"),
        ("truncated-3-byte", b"\xe2\x82"),
        ("truncated-4-byte", b"\xf0\x9f\x98"),
        ("truncated-then-ascii", b"\xc3A"),
        ("truncated-3-then-ascii", b"\xe2\x82A"),
        ("overlong-2-byte-c0-81", b"\xc0\x81"),
        ("overlong-2-byte-c0-af", b"\xc0\xaf"),
        ("overlong-2-byte-c1-bf", b"\xc1\xbf"),
        ("overlong-3-byte-nul", b"\xe0\x80\x80"),
        ("overlong-3-byte-max", b"\xe0\x9f\xbf"),
        ("overlong-4-byte-nul", b"\xf0\x80\x80\x80"),
        ("overlong-4-byte-max", b"\xf0\x8f\xbf\xbf"),
        ("surrogate-high-encoded", b"\xed\xa0\x80"),
        ("surrogate-low-encoded", b"\xed\xbf\xbf"),
        ("surrogate-pair-encoded-cesu", b"\xed\xa0\xbd\xed\xb8\x80"),
        ("above-max-f4-90", b"\xf4\x90\x80\x80"),
        ("above-max-f5", b"\xf5\x80\x80\x80"),
        ("above-max-f7", b"\xf7\xbf\xbf\xbf"),
        ("five-byte", b"\xf8\x88\x80\x80\x80"),
        ("six-byte", b"\xfc\x84\x80\x80\x80\x80"),
        ("noncharacter-ffff", b"\xef\xbf\xbf"),
        ("noncharacter-fffe", b"\xef\xbf\xbe"),
        ("noncharacter-fdd0", b"\xef\xb7\x90"),
        ("noncharacter-fdef", b"\xef\xb7\xaf"),
        ("noncharacter-1fffe", b"\xf0\x9f\xbf\xbe"),
        ("noncharacter-10ffff", b"\xf4\x8f\xbf\xbf"),
        ("lead-byte-fd", b"\xfd"),
        ("latin1-e9", b"caf\xe9"),
    ];
    for (name, raw) in cases {
        let mut id = b"\"".to_vec();
        id.extend_from_slice(raw);
        id.push(b'"');
        b.add(&format!("utf8-{name}"), ping_id_bytes(&id));
    }
    b.add(
        "utf8-invalid-in-key",
        b"{\"execute\":\"guest-ping\",\"id\":{\"\x80\":1}}",
    );
    b.add(
        "utf8-invalid-in-command-name",
        b"{\"execute\":\"guest-\xc3\"}",
    );
    b.add("utf8-valid-in-command-name", "{\"execute\":\"guest-pïng\"}");
    b.add(
        "utf8-modified-nul-in-single-quotes",
        b"{\"execute\":\"guest-ping\",\"id\":'\xc0\x80'}",
    );
}

fn numbers(b: &mut Builder) {
    for (name, lit) in [
        ("leading-zero", "01"),
        ("negative-leading-zero", "-01"),
        ("double-zero", "00"),
        ("minus-alone", "-"),
        ("trailing-dot", "1."),
        ("dot-then-exponent", "1.e5"),
        ("exponent-without-digits", "1e"),
        ("exponent-sign-without-digits", "1e+"),
        ("leading-dot", ".5"),
        ("leading-plus", "+1"),
        ("hex", "0x10"),
        ("two-dots", "1.5.5"),
        ("zero-exponent", "0e0"),
        ("zero-capital-exponent", "0E1"),
        ("zero-fraction-exponent", "0.0e1"),
        ("negative-fraction-capital-exponent", "-0.5E-2"),
        ("minus-zero-positive-exponent", "-0e1"),
        ("zero-fraction", "0.5"),
        ("minus-zero-exponent", "-0e-0"),
        ("big-exponent", "1e99999"),
        ("tiny-exponent", "1e-99999"),
        ("minus-letter", "-a"),
        ("digits-then-letter", "12ab"),
        ("nan-capital", "NaN"),
        ("infinity-capital", "Infinity"),
        ("minus-infinity", "-Infinity"),
    ] {
        b.add(&format!("number-{name}"), ping_id(lit));
    }
    b.add("number-top-level-then-object", format!("1{PING}"));
    b.add("number-top-level-negative-space", "-5 ");
    b.add("number-top-level-float-newline", "1.5e3\n");
    b.add("number-top-level-waits-for-lookahead", "42");
}

fn keywords(b: &mut Builder) {
    for (name, lit) in [
        ("nul", "nul"),
        ("tru", "tru"),
        ("nulll", "nulll"),
        ("truefalse", "truefalse"),
        ("true-then-digit", "true1"),
        ("foo", "foo"),
        ("single-letter", "x"),
        ("null-capital", "NULL"),
        ("false-mixed-case", "fAlse"),
        ("long", &"k".repeat(200)),
        ("undefined", "undefined"),
    ] {
        b.add(&format!("keyword-{name}"), ping_id(lit));
    }
    b.add("keyword-top-level-foo-newline", "foo\n");
    b.add("keyword-top-level-false-space", "false ");
    b.add("keyword-top-level-then-object", format!("null{PING}"));
    b.add("keyword-as-command-name", "{\"execute\":guest}");
}

fn parser_structure(b: &mut Builder) {
    for (name, text) in [
        (
            "trailing-comma-object",
            "{\"execute\":\"guest-ping\",}".to_owned(),
        ),
        ("trailing-comma-array", ping_id("[1,]")),
        (
            "leading-comma-object",
            "{,\"execute\":\"guest-ping\"}".to_owned(),
        ),
        ("comma-only-object", "{,}".to_owned()),
        ("comma-only-array", ping_id("[,]")),
        (
            "double-comma",
            "{\"execute\":\"guest-ping\",,\"id\":1}".to_owned(),
        ),
        (
            "missing-comma-object",
            "{\"execute\":\"guest-ping\" \"id\":1}".to_owned(),
        ),
        ("missing-comma-array", ping_id("[1 2]")),
        ("missing-value", "{\"execute\"}".to_owned()),
        ("missing-key", "{:\"guest-ping\"}".to_owned()),
        ("double-colon", "{\"execute\"::\"guest-ping\"}".to_owned()),
        ("colon-in-array", ping_id("[1:2]")),
        (
            "object-closed-by-bracket",
            "{\"execute\":\"guest-ping\"]".to_owned(),
        ),
        ("array-closed-by-brace", "[\"a\"}".to_owned()),
        ("stray-brace-in-array", ping_id("[}]")),
        ("three-stray-braces", "}}}".to_owned()),
        ("stray-brackets-mixed", "]}]".to_owned()),
        ("extra-close-brace", format!("{PING}}}")),
        ("extra-close-brace-then-ping", format!("{PING}}}{PING}")),
        ("unclosed-object", "{\"execute\":\"guest-ping\"".to_owned()),
        (
            "unclosed-array",
            ping_id("[1,2").trim_end_matches('}').to_owned(),
        ),
        ("colon-top-level", ":".to_owned()),
        ("comma-top-level", ",".to_owned()),
        (
            "value-after-value-in-object",
            "{\"execute\":\"guest-ping\" 1}".to_owned(),
        ),
        ("object-as-value-without-key", "{{}}".to_owned()),
        ("array-as-top-level-member", "{[1]}".to_owned()),
        ("nested-missing-colon", ping_id("{\"a\" 1}")),
        ("nested-separator-in-dict", ping_id("{\"a\":1 \"b\":2}")),
        (
            "empty-array-in-object-position",
            "{\"execute\":\"guest-ping\",[]}".to_owned(),
        ),
    ] {
        b.add(&format!("parse-{name}"), text);
    }
}

fn duplicate_and_non_string_keys(b: &mut Builder) {
    for (name, text) in [
        (
            "dup-top-level-id",
            "{\"execute\":\"guest-ping\",\"id\":1,\"id\":2}",
        ),
        (
            "dup-arguments",
            "{\"execute\":\"guest-ping\",\"arguments\":{},\"arguments\":{}}",
        ),
        (
            "dup-in-arguments",
            "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"id\":2}}",
        ),
        ("dup-in-id", &ping_id("{\"a\":1,\"a\":2}")),
        ("dup-deep-in-id", &ping_id("[{\"x\":{\"k\":1,\"k\":1}}]")),
        (
            "dup-after-unescape",
            "{\"execute\":\"guest-ping\",\"ex\\u0065cute\":\"guest-ping\"}",
        ),
        (
            "dup-single-vs-double-quote",
            "{\"execute\":\"guest-ping\",'execute':'guest-ping'}",
        ),
        ("dup-escaped-slash", &ping_id("{\"a/b\":1,\"a\\/b\":2}")),
        ("dup-empty-key", &ping_id("{\"\":1,\"\":2}")),
        ("dup-nul-escape-vs-modified-utf8", ""),
        ("not-dup-nul-suffix", &ping_id("{\"a\":1,\"a\\u0000\":2}")),
        ("not-dup-case", &ping_id("{\"a\":1,\"A\":2}")),
        ("key-negative-number", "{-1:2}"),
        ("key-float", "{1.5:2}"),
        ("key-true", "{true:1}"),
        ("key-null", "{null:1}"),
        ("key-false-in-id", &ping_id("{false:1}")),
        ("key-array", "{[]:1}"),
        ("key-object", "{{}:1}"),
        ("key-number-after-member", "{\"a\":1,2:3}"),
        ("key-invalid-keyword", "{foo:1}"),
        (
            "key-number-in-arguments",
            "{\"execute\":\"guest-ping\",\"arguments\":{1:2}}",
        ),
    ] {
        if name == "dup-nul-escape-vs-modified-utf8" {
            // "\u0000" is stored as the modified-UTF-8 bytes C0 80, so these keys are equal.
            b.add(
                &format!("key-{name}"),
                ping_id_bytes(b"{\"a\\u0000\":1,\"a\xc0\x80\":2}"),
            );
        } else {
            b.add(&format!("key-{name}"), text);
        }
    }
}

fn nesting(b: &mut Builder) {
    // Depth counts open braces plus open brackets; the request object itself is depth 1.
    let arrays = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    b.add("nesting-1024-arrays-in-id", ping_id(&arrays(1023)));
    b.add("nesting-1025-arrays-in-id", ping_id(&arrays(1024)));
    b.add("nesting-1026-arrays-in-id", ping_id(&arrays(1025)));
    b.add("nesting-1100-arrays-in-id", ping_id(&arrays(1099)));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    b.add("nesting-1024-objects-in-id", ping_id(&objects(1023)));
    b.add("nesting-1025-objects-in-id", ping_id(&objects(1024)));
    b.add("nesting-1024-top-level-array", arrays(1024));
    b.add("nesting-1025-top-level-array", arrays(1025));
    b.add(
        "nesting-1025-then-ping",
        format!("{}{PING}", ping_id(&arrays(1024))),
    );
    b.add("nesting-1025-unclosed", "[".repeat(1025));
    b.add(
        "nesting-1024-mixed",
        ping_id(&format!("{}{}", "[{\"k\":".repeat(511), "0}]".repeat(511))),
    );
    b.add(
        "nesting-1025-mixed",
        ping_id(&format!("{}[]{}", "[{\"k\":".repeat(511), "}]".repeat(511))),
    );
}

fn top_level_scalars(b: &mut Builder) {
    for (name, text) in [
        ("string-double", "\"guest-ping\""),
        ("string-single", "'guest-ping'"),
        ("false-newline", "false\n"),
        ("null-tab", "null\t"),
        ("array-empty", "[]"),
        ("array-of-request", format!("[{PING}]").as_str()),
        ("array-nested", "[[1],[2,[3]]]"),
        ("number-negative-newline", "-7\n"),
        ("number-float-space", "2.5 "),
        ("string-then-object", format!("\"x\"{PING}").as_str()),
        ("many-scalars", "1 2 3\n"),
        ("string-with-escapes", "\"a\\nb\""),
    ] {
        b.add(&format!("scalar-{name}"), text);
    }
}

fn request_shape(b: &mut Builder) {
    for (name, value) in [
        ("number", "1"),
        ("null", "null"),
        ("true", "true"),
        ("array", "[\"guest-ping\"]"),
        ("object", "{\"name\":\"guest-ping\"}"),
        ("float", "1.5"),
    ] {
        b.add(
            &format!("shape-execute-{name}"),
            format!("{{\"execute\":{value}}}"),
        );
        b.add(
            &format!("shape-execute-{name}-with-id"),
            format!("{{\"execute\":{value},\"id\":\"e\"}}"),
        );
    }
    for (name, value) in [
        ("null", "null"),
        ("number", "1"),
        ("string", "\"x\""),
        ("array", "[]"),
        ("true", "true"),
    ] {
        b.add(
            &format!("shape-arguments-{name}"),
            format!("{{\"execute\":\"guest-ping\",\"arguments\":{value}}}"),
        );
    }
    for (name, member) in [
        ("control", "\"control\":{}"),
        ("empty-key", "\"\":1"),
        ("capital-execute", "\"Execute\":\"guest-ping\""),
        ("exec-oob-string", "\"exec-oob\":\"guest-ping\""),
        ("exec-oob-number", "\"exec-oob\":1"),
        ("key-with-nul", "\"exec\\u0000ute\":1"),
        ("unicode-key", "\"\\u00e9\":1"),
        ("id2", "\"id2\":1"),
        ("args", "\"args\":{}"),
    ] {
        b.add(
            &format!("shape-unexpected-{name}"),
            format!("{{\"execute\":\"guest-ping\",{member}}}"),
        );
    }
    b.add(
        "shape-exec-oob-without-execute",
        "{\"exec-oob\":\"guest-ping\",\"id\":1}",
    );
    b.add("shape-lacks-execute-only-arguments", "{\"arguments\":{}}");
    b.add("shape-lacks-execute-only-unknown", "{\"foo\":1}");
    b.add("shape-lacks-execute-id-null", "{\"id\":null}");
    // Several bad members: the dispatcher checks them in QDict order, whatever the input order.
    let members = [
        "\"execute\":1",
        "\"arguments\":2",
        "\"foo\":3",
        "\"id\":4",
        "\"exec-oob\":5",
        "\"zzz\":6",
    ];
    let mut rng = Rng::from_state(0x5a9e_0001);
    let sets: &[&[usize]] = &[
        &[0, 1],
        &[1, 2],
        &[0, 2],
        &[2, 4],
        &[1, 2, 3],
        &[0, 1, 2, 3],
        &[1, 2, 4, 5],
        &[0, 1, 2, 3, 4, 5],
        &[2, 5],
        &[3, 4, 5],
    ];
    for (si, set) in sets.iter().enumerate() {
        let mut order: Vec<usize> = set.to_vec();
        for variant in 0..3 {
            if variant > 0 {
                rng.shuffle(&mut order);
            }
            let body: Vec<&str> = order
                .iter()
                .filter_map(|&i| members.get(i).copied())
                .collect();
            b.add(
                &format!("shape-member-order-{si}-{variant}"),
                format!("{{{}}}", body.join(",")),
            );
        }
    }
    // A valid request with its members in every order.
    let valid = [
        "\"execute\":\"guest-ping\"",
        "\"arguments\":{}",
        "\"id\":\"o\"",
    ];
    for (vi, perm) in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ]
    .iter()
    .enumerate()
    {
        let body: Vec<&str> = perm.iter().filter_map(|&i| valid.get(i).copied()).collect();
        b.add(
            &format!("shape-valid-order-{vi}"),
            format!("{{{}}}", body.join(",")),
        );
    }
}

fn unknown_commands(b: &mut Builder) {
    for (name, cmd) in [
        ("capitalised", "Guest-Ping"),
        ("upper", "GUEST-PING"),
        ("trailing-space", "guest-ping "),
        ("leading-space", " guest-ping"),
        ("underscore", "guest_ping"),
        ("prefix-only", "guest-"),
        ("qmp-capabilities", "qmp_capabilities"),
        ("query-commands", "query-commands"),
        ("quit", "quit"),
        ("long", &format!("guest-{}", "x".repeat(1000))),
        ("with-nul-escape", "guest-sync\\u0000"),
        ("with-newline-escape", "guest-ping\\n"),
        ("with-quote-escape", "guest-\\\"ping"),
        ("with-backslash-escape", "guest-\\\\ping"),
        ("unicode", "guest-p\\u00efng"),
        ("emoji", "guest-\\ud83d\\ude00"),
        ("windows-only-driver-packages", "guest-get-driver-packages"),
        ("windows-only-driver-services", "guest-get-driver-services"),
        ("suffix-sync", "guest-syncx"),
    ] {
        b.add(
            &format!("unknown-{name}"),
            format!("{{\"execute\":\"{cmd}\"}}"),
        );
    }
    b.add(
        "unknown-with-arguments",
        "{\"execute\":\"guest-nope\",\"arguments\":{\"a\":1}}",
    );
    // Lookup happens before argument checks: bad arguments of an unknown command are not reported.
    b.add(
        "unknown-with-bad-arguments",
        "{\"execute\":\"guest-nope\",\"arguments\":{\"id\":\"x\"}}",
    );
    b.add(
        "unknown-with-id-array",
        "{\"execute\":\"guest-nope\",\"id\":[1,2,3]}",
    );
}

/// Wrong values for a member of type `ty`, and the error word qemu-ga uses.
fn wrong_values(ty: Ty) -> &'static [&'static str] {
    match ty {
        Ty::Int => &[
            "\"1\"",
            "true",
            "null",
            "1.5",
            "[]",
            "{}",
            "9223372036854775808",
            "1e3",
        ],
        Ty::Str => &["1", "true", "null", "[]", "{}"],
        Ty::Bool => &["1", "\"true\"", "null", "0", "[]"],
        Ty::ListStr => &[
            "\"x\"",
            "{}",
            "1",
            "null",
            "[1]",
            "[\"a\",2]",
            "[null]",
            "[[]]",
        ],
        Ty::ListVcpu => &["\"x\"", "{}", "null", "[1]", "[[]]", "[\"x\"]"],
        Ty::ListMemBlk => &["\"x\"", "{}", "null", "[1]", "[null]"],
        Ty::Whence => &[
            "1.5",
            "true",
            "null",
            "[]",
            "{}",
            "\"foo\"",
            "\"SET\"",
            "\"\"",
            "9223372036854775808",
            "\" set\"",
        ],
    }
}

/// A value of the right type (only ever sent together with a failing check).
fn valid_value(ty: Ty) -> &'static str {
    match ty {
        Ty::Int => "999999",
        Ty::Str => "\"/nonexistent/qga-test\"",
        Ty::Bool => "false",
        Ty::ListStr => "[\"/nonexistent/qga-test\"]",
        Ty::ListVcpu => "[{\"logical-id\":999999,\"online\":true}]",
        Ty::ListMemBlk => "[{\"phys-index\":999999,\"online\":true}]",
        Ty::Whence => "\"set\"",
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            _ => {
                if !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    let t = out.trim_matches('-').to_owned();
    if t.is_empty() { "empty".to_owned() } else { t }
}

fn short(cmd: &str) -> &str {
    cmd.strip_prefix("guest-").unwrap_or(cmd)
}

fn argument_validation(b: &mut Builder) {
    // The first member of each type gets every wrong value; later members of the same type get
    // a rotating selection of three (the visitor code path is the same).
    let mut seen_types: Vec<Ty> = Vec::new();
    let mut rotation = 0usize;
    for cmd in COMMANDS {
        let name = cmd.name;
        let side = is_side_effect(name);
        if cmd.members.is_empty() {
            if side {
                // No member can fail, so only dispatcher-level rejections, which happen before
                // the command is even looked up. The top-level guard member sorts before
                // `arguments` in QDict order, so it is the member reported.
                for (label, args) in [("array", "[]"), ("number", "1"), ("null", "null")] {
                    b.add(
                        &format!("args-{}-arguments-{label}-top-level-guard", short(name)),
                        format!(
                            "{{\"execute\":\"{name}\",\"arguments\":{args},\"{SAFETY_GUARD}\":1}}"
                        ),
                    );
                }
            } else {
                b.add(
                    &format!("args-{}-unexpected", short(name)),
                    call(name, "{\"x\":1}"),
                );
                b.add(
                    &format!("args-{}-arguments-array", short(name)),
                    call(name, "[]"),
                );
            }
            continue;
        }
        let required: Vec<&Member> = cmd.members.iter().filter(|m| m.required).collect();
        // Missing members: each required one, with the others present and valid.
        for missing in &required {
            let args: Vec<String> = cmd
                .members
                .iter()
                .filter(|m| m.name != missing.name)
                .map(|m| format!("\"{}\":{}", m.name, valid_value(m.ty)))
                .collect();
            b.add(
                &format!("args-{}-missing-{}", short(name), slug(missing.name)),
                call(name, &format!("{{{}}}", args.join(","))),
            );
        }
        if required.len() > 1 {
            b.add(
                &format!("args-{}-missing-all", short(name)),
                call(name, "{}"),
            );
        }
        if !required.is_empty() && !side {
            // No `arguments` member at all: validated like an empty object.
            b.add(
                &format!("args-{}-no-arguments", short(name)),
                format!("{{\"execute\":\"{name}\"}}"),
            );
        }
        // Wrong types: each member, each wrong value; earlier members valid, later ones absent
        // (optional) or valid (required).
        for (mi, member) in cmd.members.iter().enumerate() {
            let all = wrong_values(member.ty);
            let selected: Vec<(usize, &str)> = if seen_types.contains(&member.ty) {
                rotation += 1;
                (0..3)
                    .map(|k| (rotation + k * 2) % all.len())
                    .collect::<std::collections::BTreeSet<usize>>()
                    .into_iter()
                    .filter_map(|i| all.get(i).map(|w| (i, *w)))
                    .collect()
            } else {
                seen_types.push(member.ty);
                all.iter().copied().enumerate().collect()
            };
            for (wi, wrong) in selected {
                let args: Vec<String> = cmd
                    .members
                    .iter()
                    .enumerate()
                    .filter(|(i, m)| *i == mi || m.required)
                    .map(|(i, m)| {
                        if i == mi {
                            format!("\"{}\":{wrong}", m.name)
                        } else {
                            format!("\"{}\":{}", m.name, valid_value(m.ty))
                        }
                    })
                    .collect();
                b.add(
                    &format!(
                        "args-{}-{}-wrong-{wi}-{}",
                        short(name),
                        slug(member.name),
                        slug(wrong)
                    ),
                    call(name, &format!("{{{}}}", args.join(","))),
                );
            }
        }
        // Two wrong members given in reverse schema order: the first in schema order is reported.
        if cmd.members.len() >= 2 {
            let args: Vec<String> = cmd
                .members
                .iter()
                .rev()
                .map(|m| {
                    format!(
                        "\"{}\":{}",
                        m.name,
                        wrong_values(m.ty).first().copied().unwrap_or("null")
                    )
                })
                .collect();
            b.add(
                &format!("args-{}-all-wrong-reversed", short(name)),
                call(name, &format!("{{{}}}", args.join(","))),
            );
        }
        // An unexpected member next to a wrong one: the wrong one wins (visited first).
        if let Some(first) = cmd.members.first() {
            let wrong = wrong_values(first.ty).first().copied().unwrap_or("null");
            b.add(
                &format!("args-{}-unexpected-and-wrong", short(name)),
                call(name, &format!("{{\"zz\":1,\"{}\":{wrong}}}", first.name)),
            );
        }
        // Unexpected members with everything else valid: only for commands without side effects.
        if !side {
            let args: Vec<String> = cmd
                .members
                .iter()
                .filter(|m| m.required)
                .map(|m| format!("\"{}\":{}", m.name, valid_value(m.ty)))
                .chain(std::iter::once("\"zz\":1".to_owned()))
                .collect();
            if name == "guest-sync"
                || name == "guest-sync-delimited"
                || name == "guest-ssh-get-authorized-keys"
                || name == "guest-exec-status"
            {
                b.add(
                    &format!("args-{}-unexpected", short(name)),
                    call(name, &format!("{{{}}}", args.join(","))),
                );
            }
        }
    }
    // guest-file-seek's `whence` is an alternate of int and the enum QGASeek.
    for (label, whence) in [
        ("int-out-of-range", "5"),
        ("negative", "-1"),
        ("enum-end", "\"end\""),
    ] {
        // The visitor accepts any int (the handler checks the range), so here only the guard
        // fails. guest-file-seek on a handle that does not exist changes nothing anyway.
        b.add(
            &format!("args-file-seek-whence-{label}-only-guard-fails"),
            call(
                "guest-file-seek",
                &format!("{{\"handle\":999999,\"offset\":0,\"whence\":{whence}}}"),
            ),
        );
    }
    b.add(
        "args-file-seek-whence-before-handle-in-input",
        call(
            "guest-file-seek",
            "{\"whence\":\"foo\",\"offset\":1,\"handle\":\"h\"}",
        ),
    );
    b.add(
        "args-exec-capture-output-after-bad-path",
        call("guest-exec", "{\"path\":1,\"capture-output\":\"merged\"}"),
    );
    b.add(
        "args-exec-input-data-before-capture-output",
        call(
            "guest-exec",
            "{\"path\":\"/nonexistent/qga-test\",\"input-data\":1,\"capture-output\":\"merged\"}",
        ),
    );
}

fn list_element_paths(b: &mut Builder) {
    let vc = |args: &str| call("guest-set-vcpus", args);
    b.add(
        "path-vcpus-0-missing-online",
        vc("{\"vcpus\":[{\"logical-id\":0}]}"),
    );
    b.add(
        "path-vcpus-0-missing-logical-id",
        vc("{\"vcpus\":[{\"online\":true}]}"),
    );
    b.add("path-vcpus-0-empty-object", vc("{\"vcpus\":[{}]}"));
    b.add(
        "path-vcpus-1-missing-online",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":true},{\"logical-id\":999998}]}"),
    );
    b.add(
        "path-vcpus-1-wrong-logical-id",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":true},{\"logical-id\":\"x\",\"online\":true}]}"),
    );
    b.add(
        "path-vcpus-2-wrong-online",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":true},{\"logical-id\":999998,\"online\":true},{\"logical-id\":999997,\"online\":1}]}"),
    );
    b.add(
        "path-vcpus-0-wrong-can-offline",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":true,\"can-offline\":\"x\"}]}"),
    );
    b.add(
        "path-vcpus-0-unexpected-after-wrong",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":\"no\",\"zz\":1}]}"),
    );
    b.add(
        "path-vcpus-1-not-object",
        vc("{\"vcpus\":[{\"logical-id\":999999,\"online\":true},2]}"),
    );
    b.add(
        "path-vcpus-0-members-reversed",
        vc("{\"vcpus\":[{\"online\":\"x\",\"logical-id\":\"y\"}]}"),
    );
    b.add(
        "path-vcpus-10-missing-online",
        vc(&format!(
            "{{\"vcpus\":[{}{{\"logical-id\":1}}]}}",
            "{\"logical-id\":999999,\"online\":true},".repeat(10)
        )),
    );
    let mb = |args: &str| call("guest-set-memory-blocks", args);
    b.add(
        "path-mem-blks-0-phys-index-string",
        mb("{\"mem-blks\":[{\"phys-index\":\"x\",\"online\":true}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-float",
        mb("{\"mem-blks\":[{\"phys-index\":1.5,\"online\":true}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-null",
        mb("{\"mem-blks\":[{\"phys-index\":null,\"online\":true}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-bool",
        mb("{\"mem-blks\":[{\"phys-index\":true,\"online\":true}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-exponent",
        mb("{\"mem-blks\":[{\"phys-index\":1e2,\"online\":\"x\"}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-above-u64",
        mb("{\"mem-blks\":[{\"phys-index\":18446744073709551616,\"online\":\"x\"}]}"),
    );
    b.add(
        "path-mem-blks-0-phys-index-below-i64",
        mb("{\"mem-blks\":[{\"phys-index\":-9223372036854775809,\"online\":\"x\"}]}"),
    );
    // Negative numbers are accepted for uint64 (wrapped); `online` must then fail.
    b.add(
        "path-mem-blks-0-negative-then-online-wrong",
        mb("{\"mem-blks\":[{\"phys-index\":-1,\"online\":\"x\"}]}"),
    );
    b.add(
        "path-mem-blks-0-i64-min-then-online-wrong",
        mb("{\"mem-blks\":[{\"phys-index\":-9223372036854775808,\"online\":\"x\"}]}"),
    );
    b.add(
        "path-mem-blks-0-u64-max-then-online-wrong",
        mb("{\"mem-blks\":[{\"phys-index\":18446744073709551615,\"online\":\"x\"}]}"),
    );
    b.add(
        "path-mem-blks-0-missing-phys-index",
        mb("{\"mem-blks\":[{\"online\":true}]}"),
    );
    b.add(
        "path-mem-blks-0-missing-online",
        mb("{\"mem-blks\":[{\"phys-index\":999999}]}"),
    );
    b.add(
        "path-mem-blks-1-wrong-can-offline",
        mb("{\"mem-blks\":[{\"phys-index\":999999,\"online\":true},{\"phys-index\":999998,\"online\":true,\"can-offline\":0}]}"),
    );
    let ex = |args: &str| call("guest-exec", args);
    b.add(
        "path-exec-arg-0-number",
        ex("{\"path\":\"/nonexistent/qga-test\",\"arg\":[1]}"),
    );
    b.add(
        "path-exec-arg-1-number",
        ex("{\"path\":\"/nonexistent/qga-test\",\"arg\":[\"a\",1]}"),
    );
    b.add(
        "path-exec-arg-2-null",
        ex("{\"path\":\"/nonexistent/qga-test\",\"arg\":[\"a\",\"b\",null]}"),
    );
    b.add(
        "path-exec-arg-0-object",
        ex("{\"path\":\"/nonexistent/qga-test\",\"arg\":[{}]}"),
    );
    b.add(
        "path-exec-env-0-number",
        ex("{\"path\":\"/nonexistent/qga-test\",\"env\":[1]}"),
    );
    b.add(
        "path-exec-env-after-good-arg",
        ex("{\"path\":\"/nonexistent/qga-test\",\"arg\":[\"-c\"],\"env\":[\"A=1\",false]}"),
    );
    b.add(
        "path-freeze-list-1-number",
        call(
            "guest-fsfreeze-freeze-list",
            "{\"mountpoints\":[\"/nonexistent\",2]}",
        ),
    );
    b.add(
        "path-ssh-add-keys-1-number",
        call(
            "guest-ssh-add-authorized-keys",
            "{\"username\":\"nosuchuser-qga-test\",\"keys\":[\"a\",1]}",
        ),
    );
    b.add(
        "path-ssh-remove-keys-0-bool",
        call(
            "guest-ssh-remove-authorized-keys",
            "{\"username\":\"nosuchuser-qga-test\",\"keys\":[true]}",
        ),
    );
}

/// Key pool for the multiple-unexpected-member cases (includes a non-ASCII key, whose bytes
/// `g_str_hash` adds as signed chars).
const UNEXPECTED_POOL: &[&str] = &[
    "a",
    "b",
    "c",
    "d",
    "e",
    "f",
    "x",
    "y",
    "z",
    "foo",
    "bar",
    "baz",
    "zz",
    "q1",
    "q2",
    "arg",
    "mode",
    "path",
    "time",
    "handle",
    "count",
    "id2",
    "k",
    "kk",
    "kkk",
    "A",
    "B",
    "_",
    "-",
    "0",
    "99",
    "long-key-name",
    "another-one",
    "xyz",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "m9",
    "été",
];

fn json_key(k: &str) -> String {
    let mut out = String::from("\"");
    for c in k.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out.push('"');
    out
}

fn multiple_unexpected_members(b: &mut Builder) {
    let mut rng = Rng::from_state(0x0bad_cafe_f00d);
    let sizes: &[(usize, usize)] = &[
        (2, 7),
        (3, 7),
        (4, 6),
        (5, 5),
        (6, 5),
        (7, 3),
        (8, 3),
        (12, 2),
        (20, 2),
        (40, 1),
    ];
    let mut n = 0;
    for &(size, count) in sizes {
        for _ in 0..count {
            let keys: Vec<&str> = rng.sample(UNEXPECTED_POOL, size);
            // guest-ping: nothing is visited.
            let body: Vec<String> = keys.iter().map(|k| format!("{}:1", json_key(k))).collect();
            b.add_probe(
                &format!("unexpected-multi-ping-{n}-{size}-keys"),
                call("guest-ping", &format!("{{{}}}", body.join(","))),
                UnexpectedProbe {
                    keys: keys.iter().map(|k| (*k).to_owned()).collect(),
                    visited: Vec::new(),
                    prefix: String::new(),
                },
            );
            // guest-sync: `id` is visited (removed) first, at a random input position.
            let mut with_id: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
            let pos = rng.below(with_id.len() + 1);
            with_id.insert(pos, "id".to_owned());
            let body: Vec<String> = with_id
                .iter()
                .map(|k| {
                    if k == "id" {
                        "\"id\":5".to_owned()
                    } else {
                        format!("{}:1", json_key(k))
                    }
                })
                .collect();
            b.add_probe(
                &format!("unexpected-multi-sync-{n}-{size}-keys"),
                call("guest-sync", &format!("{{{}}}", body.join(","))),
                UnexpectedProbe {
                    keys: with_id,
                    visited: vec!["id".to_owned()],
                    prefix: String::new(),
                },
            );
            n += 1;
        }
    }
    // Keys containing U+0000 are stored as modified UTF-8 (C0 80), not cut at the NUL.
    b.add(
        "unexpected-key-with-nul",
        call("guest-ping", "{\"a\\u0000b\":1}"),
    );
    b.add(
        "unexpected-keys-differing-after-nul",
        call("guest-ping", "{\"a\\u0000b\":1,\"a\\u0000c\":2}"),
    );
    b.add(
        "unexpected-key-non-ascii-raw",
        call("guest-ping", "{\"\u{e9}t\u{e9}\":1,\"ete\":2}"),
    );
    // Inside a list element: vcpus[0] has its two known members plus unexpected ones. The
    // element's leftovers are checked before the top-level guard.
    for i in 0..6 {
        let extra: Vec<&str> = rng.sample(UNEXPECTED_POOL, 2 + i % 4);
        let mut keys: Vec<String> = vec!["logical-id".to_owned(), "online".to_owned()];
        keys.extend(extra.iter().map(|k| (*k).to_owned()));
        rng.shuffle(&mut keys);
        let body: Vec<String> = keys
            .iter()
            .map(|k| match k.as_str() {
                "logical-id" => "\"logical-id\":999999".to_owned(),
                "online" => "\"online\":true".to_owned(),
                other => format!("{}:1", json_key(other)),
            })
            .collect();
        b.add_probe(
            &format!("unexpected-multi-vcpus-element-{i}"),
            call(
                "guest-set-vcpus",
                &format!("{{\"vcpus\":[{{{}}}]}}", body.join(",")),
            ),
            UnexpectedProbe {
                keys,
                visited: vec!["logical-id".to_owned(), "online".to_owned()],
                prefix: "vcpus[0].".to_owned(),
            },
        );
    }
}

fn client_patterns(b: &mut Builder) {
    // libvirt: guest-sync with a millisecond timestamp, its own spacing, and a newline.
    let libvirt_sync =
        |id: u64| format!("{{\"execute\":\"guest-sync\", \"arguments\":{{\"id\":{id}}}}}\n");
    b.add("client-libvirt-sync", libvirt_sync(1_732_627_200_123));
    b.add(
        "client-libvirt-sync-then-command",
        format!(
            "{}{{\"execute\":\"guest-ping\"}}\n",
            libvirt_sync(1_732_627_200_124)
        ),
    );
    b.add(
        "client-libvirt-garbage-before-first-sync",
        format!(
            "{{\"execute\":\"guest-get-ti{}",
            libvirt_sync(1_732_627_200_125)
        ),
    );
    b.add(
        "client-libvirt-second-sync-after-garbage",
        format!(
            "{{\"execute\":\"guest-get-ti{}{}",
            libvirt_sync(1_732_627_200_126),
            libvirt_sync(1_732_627_200_127)
        ),
    );
    b.add(
        "client-libvirt-qemu-agent-command",
        "{\"execute\":\"guest-ping\",\"arguments\":{}}\n",
    );
    // Proxmox: guest-sync-delimited and the command in one write, id = pid . "0" . counter.
    let pve = |id: u64, cmd: &str| {
        format!("{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{id}}}}}\n{cmd}")
    };
    b.add("client-proxmox-ping", pve(424_201, PING));
    b.add(
        "client-proxmox-ping-newline",
        pve(424_202, &format!("{PING}\n")),
    );
    b.add(
        "client-proxmox-two-batches",
        format!("{}{}", pve(424_203, PING), pve(424_204, PING)),
    );
    b.add(
        "client-proxmox-bad-arguments",
        pve(424_205, &call("guest-file-read", "{\"handle\":\"1000\"}")),
    );
    b.add(
        "client-proxmox-unknown-command",
        pve(424_206, "{\"execute\":\"guest-network-get-routes\"}"),
    );
    b.add(
        "client-proxmox-after-half-request",
        format!(
            "{{\"execute\":\"guest-get-osinfo\",\"arguments\":{{\"x\":{}",
            pve(424_207, PING)
        ),
    );
    // QEMU's Python client (json.dumps spacing) and its test suite (0xFF, single quotes).
    b.add(
        "client-python-sync",
        "{\"execute\": \"guest-sync\", \"arguments\": {\"id\": 2874614419}}",
    );
    b.add("client-python-ping", "{\"execute\": \"guest-ping\"}");
    b.add(
        "client-python-ff-sync-delimited",
        b"\xff{\"execute\": \"guest-sync-delimited\", \"arguments\": {\"id\": 1234567}}",
    );
    b.add(
        "client-test-qga-sync-delimited-single-quotes",
        b"\xff{'execute': 'guest-sync-delimited', 'arguments': {'id': 4294967295 } }",
    );
    b.add(
        "client-test-qga-sync-single-quotes",
        "{'execute': 'guest-sync', 'arguments': {'id': 2863311530 } }",
    );
    b.add(
        "client-ff-after-half-request",
        b"{\"execute\":\"guest-get-osinfo\",\"arg\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":31337}}",
    );
    b.add(
        "client-ff-mid-request-then-ping",
        b"{\"execute\":\"guest-ping\",\xff{\"execute\":\"guest-ping\",\"id\":\"after\"}",
    );
    // KubeVirt (through libvirt): sync, then polling commands; only ping is host-independent.
    b.add(
        "client-kubevirt-poll",
        format!("{}{PING}\n{PING}\n", libvirt_sync(1_732_627_201_000)),
    );
    b.add(
        "client-kubevirt-after-timeout-resync",
        format!(
            "{{\"execute\":\"guest-info\"{}{}",
            libvirt_sync(1_732_627_202_000),
            libvirt_sync(1_732_627_202_001)
        ),
    );
    // vmtest / qapi-rs: guest-sync with a small random id.
    b.add(
        "client-qapi-rs-sync",
        "{\"execute\":\"guest-sync\",\"arguments\":{\"id\":4711}}",
    );
    // Previous client died mid-string: the new client's bytes land inside the string.
    b.add(
        "client-previous-died-in-string",
        b"{\"execute\":\"guest-ping\",\"id\":\"unterminated{\"execute\":\"guest-sync\",\"arguments\":{\"id\":5}}\n",
    );
    b.add(
        "client-previous-died-in-string-ff-recovers",
        b"{\"execute\":\"guest-ping\",\"id\":\"unterminated\xff{\"execute\":\"guest-sync\",\"arguments\":{\"id\":6}}\n",
    );
}

fn split_and_coalesced(b: &mut Builder) {
    let mixed = format!(
        "{PING}{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":-3}}}}\n{{\"execute\":\"guest-ping\",\"id\":\"\\u00e9\\ud83d\\ude00 \u{e9}\"}}"
    );
    for n in [1, 2, 3, 7] {
        b.add(&format!("split-by-{n}-mixed"), mixed.as_str());
    }
    b.add(
        "split-by-1-sync-delimited",
        "{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":77}}",
    );
    b.add(
        "split-by-1-errors",
        b"@{\"execute\":\"guest-pi\xff\"\xc3\xa9\"{1:2}}",
    );
    b.add(
        "split-by-5-utf8",
        "{\"execute\":\"guest-ping\",\"id\":\"\u{e9}\u{20ac}\u{1f600}\u{e9}\u{20ac}\u{1f600}\"}",
    );
    b.add(
        "split-by-4-number-lookahead",
        "12\n{\"execute\":\"guest-ping\",\"id\":123456}",
    );
    let pings: String = (0..100)
        .map(|i| format!("{{\"execute\":\"guest-ping\",\"id\":{i}}}"))
        .collect();
    b.add("coalesced-100-pings", pings);
    let syncs: String = (0..50)
        .map(|i| {
            format!(
                "{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{}}}}}\n",
                i * 1000 - 25_000
            )
        })
        .collect();
    b.add("coalesced-50-syncs", syncs);
    let mut mixed_many = String::new();
    for i in 0..30 {
        match i % 6 {
            0 => mixed_many.push_str(PING),
            1 => mixed_many.push_str("{\"execute\":\"guest-nope\"}"),
            2 => mixed_many.push('}'),
            3 => {
                let _ = write!(
                    mixed_many,
                    "{{\"execute\":\"guest-sync-delimited\",\"arguments\":{{\"id\":{i}}}}}"
                );
            }
            4 => mixed_many.push_str("{\"execute\":\"guest-ping\",\"arguments\":{\"q\":1}}"),
            _ => mixed_many.push_str("\n\r\t "),
        }
    }
    b.add("coalesced-mixed-30", mixed_many);
    b.add(
        "coalesced-no-separators-scalars",
        format!("1 \"a\"[]{{}}{PING}null true{PING}"),
    );
    b.add(
        "coalesced-whitespace-heavy",
        format!("\n\n\r\n\t  {PING}\n\n\t\r {PING}    \n"),
    );
}

/// Streams that qemu-ga 7.2 and qga legitimately answer differently (see
/// `corpus/known-differences.md`). They are never part of the byte-identical corpus.
pub fn known_difference_streams() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("get-load", b"{\"execute\":\"guest-get-load\"}".to_vec()),
        (
            "get-load-with-id",
            b"{\"execute\":\"guest-get-load\",\"id\":1}".to_vec(),
        ),
        (
            "get-load-bad-arguments",
            b"{\"execute\":\"guest-get-load\",\"arguments\":{\"x\":1}}".to_vec(),
        ),
        (
            "network-get-route",
            b"{\"execute\":\"guest-network-get-route\"}".to_vec(),
        ),
        (
            "network-get-route-bad-arguments",
            b"{\"execute\":\"guest-network-get-route\",\"arguments\":{\"x\":1}}".to_vec(),
        ),
        (
            "get-devices",
            b"{\"execute\":\"guest-get-devices\"}".to_vec(),
        ),
        (
            "get-devices-with-id",
            b"{\"execute\":\"guest-get-devices\",\"id\":5}".to_vec(),
        ),
        (
            "get-devices-bad-arguments",
            b"{\"execute\":\"guest-get-devices\",\"arguments\":{\"x\":1}}".to_vec(),
        ),
        (
            "exec-capture-output-merged",
            call(
                "guest-exec",
                "{\"path\":\"/nonexistent/qga-test\",\"capture-output\":\"merged\"}",
            )
            .into_bytes(),
        ),
        (
            "exec-capture-output-number",
            call(
                "guest-exec",
                "{\"path\":\"/nonexistent/qga-test\",\"capture-output\":1}",
            )
            .into_bytes(),
        ),
        (
            "exec-capture-output-null",
            call(
                "guest-exec",
                "{\"path\":\"/nonexistent/qga-test\",\"capture-output\":null}",
            )
            .into_bytes(),
        ),
        (
            "exec-capture-output-bad-string",
            call(
                "guest-exec",
                "{\"path\":\"/nonexistent/qga-test\",\"capture-output\":\"x\"}",
            )
            .into_bytes(),
        ),
        (
            "exec-status-unknown-pid",
            call("guest-exec-status", "{\"pid\":0}").into_bytes(),
        ),
    ]
}

/// Checks names (charset, uniqueness) and safety of a case list.
pub fn validate_cases(cases: &[Case]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for case in cases {
        if case.name.is_empty()
            || !case
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        {
            return Err(format!("bad case name {:?}", case.name));
        }
        if !seen.insert(case.name.as_str()) {
            return Err(format!("duplicate case name {:?}", case.name));
        }
        if case.bytes.is_empty() {
            return Err(format!("case {:?} has no bytes", case.name));
        }
        crate::corpus::check_stream_safety(&case.bytes)
            .map_err(|e| format!("case {:?}: {e}", case.name))?;
    }
    Ok(())
}

/// File stems `NNN-name` for the cases in order.
pub fn file_stems(cases: &[Case]) -> Vec<String> {
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{i:03}-{}", c.name))
        .collect()
}
