//! Transcript tests: request bytes → exact reply bytes, for the behaviours of spec §1 and the
//! worked examples of §1.10 and §5.3. Every transcript is also replayed with random chunk
//! splits and must give the same bytes; every reply line must be valid JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};

fn run_chunked(input: &[u8], seed: u64, config: Config) -> Vec<u8> {
    let mut frame = vec![0u8; 1 << 16];
    let mut work = vec![0u8; 4096];
    let mut agent = Agent::new(FakeHost::new(), &mut frame[..], &mut work[..], config);
    let mut out = Vec::new();
    let mut rng = seed;
    let mut rest = input;
    while !rest.is_empty() {
        let n = if seed == 0 {
            rest.len()
        } else {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            1 + (rng as usize % rest.len().min(7))
        };
        let (chunk, tail) = rest.split_at(n);
        agent.process(chunk, &mut out).unwrap();
        rest = tail;
    }
    out
}

fn check_with(config: Config, input: &[u8], expect: &[u8]) {
    let got = run_chunked(input, 0, config);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expect),
        "input {:?}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(got, expect);
    for seed in 1..=16u64 {
        assert_eq!(
            run_chunked(input, seed * 0x9E37_79B9, config),
            expect,
            "seed {seed}"
        );
    }
    for line in got.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line.strip_prefix(b"\xff").unwrap_or(line);
        if line.windows(3).any(|w| w == b"inf") {
            continue;
        }
        serde_json::from_slice::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("invalid JSON {e}: {:?}", String::from_utf8_lossy(line)));
    }
}

fn check(input: &[u8], expect: &[u8]) {
    check_with(Config::default(), input, expect);
}

fn err(desc: &str) -> String {
    format!("{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"{desc}\"}}}}\n")
}

#[test]
fn worked_examples_1_10() {
    check(b"{\"execute\":\"guest-ping\"}", b"{\"return\": {}}\n");
    check(
        b"{\"execute\":\"guest-ping\",\"id\":\"abc\"}\n",
        b"{\"return\": {}, \"id\": \"abc\"}\n",
    );
    check(
        b"{\"execute\":\"guest-ping\",\"id\":{\"a\":[1,2]}}",
        b"{\"return\": {}, \"id\": {\"a\": [1, 2]}}\n",
    );
    check(
        b"{\"execute\":\"guest-foo\",\"id\":\"x\"}",
        b"{\"id\": \"x\", \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-foo has not been found\"}}\n",
    );
    check(
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":123456789}}",
        b"{\"return\": 123456789}\n",
    );
    check(
        b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":7},\"id\":\"req\"}",
        b"\xff{\"return\": 7, \"id\": \"req\"}\n",
    );
    check(
        b"{\"execute\":}",
        err("JSON parse error, expecting value").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-ping\",\"id\":\"a\x01b\"}",
        format!(
            "{}{}",
            err("JSON parse error, stray '\\\"a\\u0001'"),
            err("JSON parse error, expecting value")
        )
        .as_bytes(),
    );
    check(
        b"{'execute':'guest-ping','id':'it\\'s \"x\"'}",
        b"{\"return\": {}, \"id\": \"it's \\\"x\\\"\"}\n",
    );
}

#[test]
fn sentinel_and_recovery() {
    check(
        b"\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":12345}}",
        [
            err("JSON parse error, stray '\\uFFFD'").as_bytes(),
            b"\xff{\"return\": 12345}\n",
        ]
        .concat()
        .as_slice(),
    );
    check(
        b"{\"execute\":\"guest-pi\xff{\"execute\":\"guest-ping\"}",
        format!(
            "{}{{\"return\": {{}}}}\n",
            err("JSON parse error, stray '\\\"guest-pi\\uFFFD'")
        )
        .as_bytes(),
    );
    check(
        b"@@@{\"execute\":\"guest-ping\"}",
        format!(
            "{}{{\"return\": {{}}}}\n",
            err("JSON parse error, stray '@'")
        )
        .as_bytes(),
    );
    check(
        b"\x00{\"execute\":\"guest-ping\"}",
        format!(
            "{}{{\"return\": {{}}}}\n",
            err("JSON parse error, stray ''")
        )
        .as_bytes(),
    );
    check(
        b"\x0c{\"execute\":\"guest-ping\"}",
        format!(
            "{}{{\"return\": {{}}}}\n",
            err("JSON parse error, stray '\\f'")
        )
        .as_bytes(),
    );
    check(
        b"\xef\xbb\xbf{\"execute\":\"guest-ping\"}",
        format!(
            "{}{{\"return\": {{}}}}\n",
            err("JSON parse error, stray '\\uFFFD'")
        )
        .as_bytes(),
    );
    check(
        b"garbage\n",
        err("JSON parse error, invalid keyword 'garbage'").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-ping\"}xyz ",
        format!(
            "{{\"return\": {{}}}}\n{}",
            err("JSON parse error, invalid keyword 'xyz'")
        )
        .as_bytes(),
    );
}

#[test]
fn ids_are_normalised() {
    for (id, echo) in [
        ("1.5", "1.5"),
        ("0.1", "0.10000000000000001"),
        ("1e3", "1000"),
        ("-0", "0"),
        ("18446744073709551615", "18446744073709551615"),
        ("-9223372036854775809", "-9.2233720368547758e+18"),
        ("null", "null"),
        ("1e309", "inf"),
        ("-1e309", "-inf"),
        ("1e-400", "0"),
        ("\"\\u00e9\\ud83d\\ude00\"", "\"\\u00E9\\uD83D\\uDE00\""),
        (
            "{\"b\":1,\"a\":2,\"zz\":[3,2,1],\"key\":{}}",
            "{\"key\": {}, \"a\": 2, \"zz\": [3, 2, 1], \"b\": 1}",
        ),
    ] {
        check(
            format!("{{\"execute\":\"guest-ping\",\"id\":{id}}}").as_bytes(),
            format!("{{\"return\": {{}}, \"id\": {echo}}}\n").as_bytes(),
        );
    }
    check(
        b"{\"execute\":\"guest-ping\",\"id\":\"\xc0\x80\"}",
        b"{\"return\": {}, \"id\": \"\\u0000\"}\n",
    );
    // Plain ASCII ids are copied in one piece; what needs escaping still is.
    for (id, echo) in [
        ("'a\"b'", "\"a\\\"b\""),
        ("\"a'b\"", "\"a'b\""),
        ("'\\t\\u007f~'", "\"\\t\\u007F~\""),
        ("\"\x7f\"", "\"\\u007F\""),
        ("\"caf\u{e9}\"", "\"caf\\u00E9\""),
    ] {
        check(
            format!("{{\"execute\":\"guest-ping\",\"id\":{id}}}").as_bytes(),
            format!("{{\"return\": {{}}, \"id\": {echo}}}\n").as_bytes(),
        );
    }
}

#[test]
fn request_shape_errors() {
    check(
        b"{\"execute\":1,\"id\":2}",
        b"{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}\n",
    );
    check(
        b"{\"id\":3}",
        b"{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input lacks member 'execute'\"}}\n",
    );
    check(b"{}", err("QMP input lacks member 'execute'").as_bytes());
    check(
        b"{\"execute\":\"guest-ping\",\"arguments\":null}",
        err("QMP input member 'arguments' must be an object").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-ping\",\"foo\":1,\"id\":9}",
        b"{\"id\": 9, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'foo' is unexpected\"}}\n",
    );
    check(
        b"{\"exec-oob\":\"guest-ping\"}",
        err("QMP input member 'exec-oob' is unexpected").as_bytes(),
    );
    for s in [&b"[1,2]"[..], b"\"abc\"", b"null ", b"true\n", b"1\n"] {
        check(s, err("QMP input must be a JSON object").as_bytes());
    }
    check(
        b"{\"execute\":\"guest-ping\",\"execute\":\"guest-info\"}",
        err("JSON parse error, duplicate key").as_bytes(),
    );
    // A key is a duplicate by its decoded text, however either copy is written.
    for dup in [
        &b"{\"execute\":\"guest-ping\",\"ex\\u0065cute\":\"guest-info\"}"[..],
        b"{'id':1,\"id\":2,\"execute\":\"guest-ping\"}",
        b"{\"\\u00e9\":1,\"\xc3\xa9\":2}",
    ] {
        check(dup, err("JSON parse error, duplicate key").as_bytes());
    }
    // The members checked in QDict order, whichever way they are written: the first problem in
    // that order is the one reported.
    check(
        b"{\"arguments\":1,\"execute\":2,\"id\":3}",
        b"{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'execute' must be a string\"}}\n",
    );
    check(
        b"{\"exe\\u0063ute\":\"guest-ping\",'id':'x'}",
        b"{\"return\": {}, \"id\": \"x\"}\n",
    );
    check(
        b"{\"execute\" \"guest-ping\"}",
        err("JSON parse error, missing : in object pair").as_bytes(),
    );
    check(
        b"{1:2}",
        err("JSON parse error, key is not a string in object").as_bytes(),
    );
    check(b"}", err("JSON parse error, expecting value").as_bytes());
    check(
        b"{\"execute\":\"\"}",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command  has not been found\"}}\n",
    );
    check(
        b"{\"execute\":\"guest-sync\\u0000\"}",
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command guest-sync\\u0000 has not been found\"}}\n",
    );
}

#[test]
fn argument_validation() {
    check(
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":-1}}",
        b"{\"return\": -1}\n",
    );
    check(
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1.0}}",
        err("Invalid parameter type for 'id', expected: integer").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-sync\"}",
        err("Parameter 'id' is missing").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-sync\",\"arguments\":{\"id\":1,\"x\":2}}",
        err("Parameter 'x' is unexpected").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":42}}",
        b"\xff{\"return\": 42}\n",
    );
    check(
        b"{\"execute\":\"guest-shutdown\",\"arguments\":{\"mode\":\"foo\"}}",
        err("mode is invalid (valid values are: halt|powerdown|reboot").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-set-vcpus\",\"arguments\":{\"vcpus\":[{\"logical-id\":0}]}}",
        err("Parameter 'vcpus[0].online' is missing").as_bytes(),
    );
    check(
        b"{\"execute\":\"guest-file-seek\",\"arguments\":{\"handle\":1,\"offset\":0,\"whence\":\"foo\"}}",
        err("Parameter 'whence' does not accept value 'foo'").as_bytes(),
    );
}

#[test]
fn limits_and_follow_up_errors() {
    let mut deep = Vec::new();
    deep.push(b'{');
    deep.extend(std::iter::repeat_n(b'[', 1023));
    deep.extend(std::iter::repeat_n(b']', 1023));
    deep.push(b'}');
    check(
        &deep,
        err("JSON parse error, key is not a string in object").as_bytes(),
    );

    let mut deeper = Vec::new();
    deeper.push(b'{');
    deeper.extend(std::iter::repeat_n(b'[', 1024));
    deeper.extend(std::iter::repeat_n(b']', 1024));
    deeper.push(b'}');
    let mut expect = err("JSON nesting depth limit exceeded");
    for _ in 0..1025 {
        expect.push_str(&err("JSON parse error, expecting value"));
    }
    check(&deeper, expect.as_bytes());
}

#[test]
fn blocked_and_frozen() {
    let mut config = Config::default();
    assert!(config.block("guest-ping"));
    assert!(!config.block("guest-nonsense"));
    check_with(
        config,
        b"{\"execute\":\"guest-ping\",\"id\":5}",
        b"{\"id\": 5, \"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-ping has been disabled\"}}\n",
    );
}

#[test]
fn reply_without_success_response() {
    check(b"{\"execute\":\"guest-shutdown\"}", b"");
}

fn run_with(
    host: FakeHost,
    frame_len: usize,
    work_len: usize,
    frozen: bool,
    input: &[u8],
) -> Vec<u8> {
    let mut frame = vec![0u8; frame_len];
    let mut work = vec![0u8; work_len];
    let mut agent = Agent::new(host, &mut frame[..], &mut work[..], Config::default());
    agent.set_frozen(frozen);
    let mut out = Vec::new();
    agent.process(input, &mut out).unwrap();
    out
}

#[test]
fn request_larger_than_the_frame_buffer_keeps_the_stream_in_sync() {
    let big = format!(
        "{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":1,\"pad\":\"{}\"}}}}{{\"execute\":\"guest-ping\"}}",
        "x".repeat(1000)
    );
    let out = run_with(FakeHost::new(), 256, 256, false, big.as_bytes());
    // Like qemu-ga past its limit: one size error, then the leftover closing braces each give
    // 'expecting value', and the next request is served normally.
    let expect = format!(
        "{}{}{}{{\"return\": {{}}}}\n",
        err("JSON token size limit exceeded"),
        err("JSON parse error, expecting value"),
        err("JSON parse error, expecting value"),
    );
    assert_eq!(String::from_utf8_lossy(&out), expect);
}

#[test]
fn unsupported_and_disabled_commands() {
    let out = run_with(
        FakeHost::new(),
        4096,
        512,
        false,
        b"{\"execute\":\"guest-get-vcpus\",\"id\":1}",
    );
    assert_eq!(
        out,
        b"{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"this feature or command is not currently supported\"}}\n"
    );
    let mut host = FakeHost::new();
    host.unsupported.insert(qga_core::CommandId::GetVcpus);
    let out = run_with(host, 4096, 512, false, b"{\"execute\":\"guest-get-vcpus\"}");
    assert_eq!(
        out,
        b"{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-vcpus has been disabled\"}}\n"
    );
}

#[test]
fn frozen_state_allows_six_commands() {
    let out = run_with(
        FakeHost::new(),
        4096,
        512,
        true,
        b"{\"execute\":\"guest-fsfreeze-status\"}{\"execute\":\"guest-get-time\"}{\"execute\":\"guest-fsfreeze-thaw\"}{\"execute\":\"guest-get-time\"}",
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"return\": \"frozen\"}\n\
         {\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Command guest-get-time has been disabled: the agent is in frozen state\"}}\n\
         {\"return\": 0}\n\
         {\"return\": 1795690610553972000}\n"
    );
    // guest-info lists exactly the six freeze-safe commands as enabled.
    let out = run_with(
        FakeHost::new(),
        4096,
        512,
        true,
        b"{\"execute\":\"guest-info\"}",
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let cmds = v["return"]["supported_commands"].as_array().unwrap();
    let enabled: Vec<&str> = cmds
        .iter()
        .filter(|c| c["enabled"] == true)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        enabled,
        [
            "guest-fsfreeze-thaw",
            "guest-fsfreeze-status",
            "guest-info",
            "guest-ping",
            "guest-sync",
            "guest-sync-delimited"
        ]
    );
}

#[test]
fn guest_info_lists_43_commands_newest_first() {
    let out = run_with(
        FakeHost::new(),
        4096,
        512,
        false,
        b"{\"execute\":\"guest-info\"}",
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(&format!(
        "{{\"return\": {{\"version\": \"{}\", \"supported_commands\": [{{\"enabled\": true, \"name\": \"guest-network-get-route\", \"success-response\": true}}, ",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(text.ends_with(
        "{\"enabled\": true, \"name\": \"guest-sync-delimited\", \"success-response\": true}]}}\n"
    ));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cmds = v["return"]["supported_commands"].as_array().unwrap();
    assert_eq!(cmds.len(), 43);
    let silent: Vec<&str> = cmds
        .iter()
        .filter(|c| c["success-response"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        silent,
        [
            "guest-suspend-hybrid",
            "guest-suspend-ram",
            "guest-suspend-disk",
            "guest-shutdown"
        ]
    );
}

#[test]
fn large_file_read_streams_through_a_small_work_buffer() {
    use base64::Engine as _;
    let data: Vec<u8> = (0..4000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let mut host = FakeHost::new();
    assert!(host.put_file(b"/big", &data));
    let input = b"{\"execute\":\"guest-file-open\",\"arguments\":{\"path\":\"/big\"}}\
                  {\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000,\"count\":5000}}\
                  {\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000}}";
    // 64 bytes of work buffer for a 4000-byte read: the payload is streamed in pieces.
    let out = run_with(host, 4096, 64, false, input);
    let expect = format!(
        "{{\"return\": 1000}}\n{{\"return\": {{\"count\": 4000, \"buf-b64\": \"{}\", \"eof\": true}}}}\n\
         {{\"return\": {{\"count\": 0, \"buf-b64\": \"\", \"eof\": true}}}}\n",
        base64::engine::general_purpose::STANDARD.encode(&data)
    );
    assert_eq!(String::from_utf8_lossy(&out), expect);
}

#[test]
fn file_commands_errors() {
    let out = run_with(
        FakeHost::new(),
        4096,
        512,
        false,
        b"{\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000,\"count\":50331649}}\
          {\"execute\":\"guest-file-read\",\"arguments\":{\"handle\":1000,\"count\":-1}}",
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!(
            "{}{}",
            err("value '50331649' is invalid for argument count"),
            err("value '-1' is invalid for argument count")
        )
    );
}

#[test]
fn scripted_results() {
    use qga_core::testing::Scripted;
    let mut host = FakeHost::new();
    assert!(host.script(
        qga_core::CommandId::GetVcpus,
        Scripted::Return("[{\"online\": true, \"can-offline\": false, \"logical-id\": 0}]"),
    ));
    assert!(host.script(
        qga_core::CommandId::Shutdown,
        Scripted::Fail(qga_core::HostError::Message(
            "child process has failed to shutdown"
        )),
    ));
    let out = run_with(
        host,
        4096,
        512,
        false,
        b"{\"execute\":\"guest-get-vcpus\",\"id\":\"v\"}{\"execute\":\"guest-shutdown\",\"id\":2}",
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"return\": [{\"online\": true, \"can-offline\": false, \"logical-id\": 0}], \"id\": \"v\"}\n\
         {\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"child process has failed to shutdown\"}}\n"
    );
}

#[test]
fn host_described_errors_and_empty_freeze() {
    use qga_core::testing::Scripted;
    let mut host = FakeHost::new();
    host.error_text = "failed to open file '/x\u{e9}' (mode: 'r'): No such file or directory";
    host.script(
        qga_core::CommandId::GetTime,
        Scripted::Fail(qga_core::HostError::Described),
    );
    host.freezable = 0;
    let out = run_with(
        host,
        4096,
        512,
        false,
        b"{\"execute\":\"guest-get-time\"}{\"execute\":\"guest-fsfreeze-freeze\"}{\"execute\":\"guest-fsfreeze-status\"}",
    );
    assert_eq!(
        String::from_utf8_lossy(&out),
        format!(
            "{}{{\"return\": 0}}\n{{\"return\": \"thawed\"}}\n",
            err("failed to open file '/x\\u00E9' (mode: 'r'): No such file or directory")
        )
    );
}

#[test]
fn long_invalid_keyword_is_cut_like_qemus_message_buffer() {
    for len in [1004usize, 1005, 1006, 1007, 3000] {
        let kw = "x".repeat(len);
        let mut input = kw.clone().into_bytes();
        input.push(b'\n');
        let shown = &kw[..len.min(1006)];
        let quote = if len <= 1005 { "'" } else { "" };
        check(
            &input,
            err(&format!(
                "JSON parse error, invalid keyword '{shown}{quote}"
            ))
            .as_bytes(),
        );
    }
}
