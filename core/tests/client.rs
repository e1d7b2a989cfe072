//! The client state machine against the real agent (in process) and against hostile byte
//! streams: garbage before and after, half-written replies, stale replies, oversized replies,
//! never-ending strings, wrong ids, non-JSON lines, 0xFF storms, silence. Every case ends in a
//! clean outcome within the deadline, with memory bounded by the client's buffer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use qga_core::client::{Client, ClientConfig, ClientError, Outcome, ProtocolError, SyncMode};
use qga_core::testing::FakeHost;
use qga_core::{Agent, Config};

const SYNC_ERR: &[u8] =
    b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\uFFFD'\"}}\n";

/// Feeds `input` in chunks of `chunk` bytes until an outcome (or the input ends).
fn feed<B: qga_core::FrameBuffer>(
    c: &mut Client<B>,
    now: u64,
    input: &[u8],
    chunk: usize,
) -> Option<Outcome> {
    let mut rest = input;
    while !rest.is_empty() {
        let n = chunk.min(rest.len());
        let (used, out) = c.handle_input(now, &rest[..n]);
        if out.is_some() {
            return out;
        }
        assert_eq!(used, n, "input consumed while no outcome");
        rest = &rest[n..];
    }
    None
}

fn synced(buf: &mut [u8]) -> Client<&mut [u8]> {
    let mut c = Client::new(buf, ClientConfig::default());
    let mut wire = Vec::new();
    c.write_sync(0, 77, &mut wire).unwrap();
    let mut answer = SYNC_ERR.to_vec();
    answer.extend_from_slice(b"\xff{\"return\": 77}\n");
    assert_eq!(feed(&mut c, 1, &answer, 1000), Some(Outcome::Synced));
    c
}

#[test]
fn sync_survives_garbage_stale_replies_and_odd_splits() {
    let streams: [&[u8]; 5] = [
        // Garbage, a stale reply to an abandoned request, an old sync reply, then ours.
        b"garbage\n{\"return\": {}, \"id\": 3}\n\xff{\"return\": 1}\n\xff{\"return\": 42}\n",
        // Half of an old reply, then the error for our 0xFF, then ours.
        b"{\"return\": {\"count\": 3, \"buf-b6\xff{\"return\": 42}\n",
        // A 0xFF storm before the reply.
        b"\xff\xff\xff\xff\xff{\"return\": 42}\n",
        // A delimited reply with the wrong id, then a non-JSON line, then ours.
        b"\xff{\"return\": 41}\n\xff@@@ not json\n\xff{\"return\": 42}\ntrailing",
        // Replies that look right but are not ours: a string, an id member.
        b"\xff{\"return\": \"42\"}\n\xff{\"return\": 42, \"id\": 1}\n\xff{\"return\": 42}\n",
    ];
    for stream in streams {
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let mut buf = [0u8; 512];
            let mut c = Client::new(&mut buf[..], ClientConfig::default());
            c.write_sync(0, 42, &mut Vec::new()).unwrap();
            assert_eq!(
                feed(&mut c, 1, stream, chunk),
                Some(Outcome::Synced),
                "{stream:?} / {chunk}"
            );
            assert!(c.is_ready());
        }
    }
}

#[test]
fn plain_sync_mode() {
    let mut buf = [0u8; 512];
    let cfg = ClientConfig {
        sync: SyncMode::Plain,
        ..ClientConfig::default()
    };
    let mut c = Client::new(&mut buf[..], cfg);
    let mut wire = Vec::new();
    c.write_sync(0, 5, &mut wire).unwrap();
    assert_eq!(
        wire,
        b"{\"execute\": \"guest-sync\", \"arguments\": {\"id\": 5}}\n"
    );
    assert_eq!(
        feed(
            &mut c,
            1,
            b"{\"return\": 4}\n{\"return\": {}, \"id\": 9}\n{\"return\": 5}\n",
            3
        ),
        Some(Outcome::Synced)
    );
}

#[test]
fn replies_left_over_from_a_timed_out_request_are_dropped() {
    let mut buf = [0u8; 1024];
    let mut c = synced(&mut buf);
    c.write_request(10, "guest-get-time", None::<&()>, 100, &mut Vec::new())
        .unwrap();
    let deadline = c.deadline().unwrap();
    assert_eq!(c.handle_timeout(deadline - 1), None);
    assert_eq!(
        c.handle_timeout(deadline),
        Some(Outcome::Failed(ClientError::Timeout))
    );
    // The late reply arrives while resyncing: skipped.
    c.write_sync(deadline, 78, &mut Vec::new()).unwrap();
    let late = b"{\"return\": 123, \"id\": 100}\n";
    let mut answer = late.to_vec();
    answer.extend_from_slice(SYNC_ERR);
    answer.extend_from_slice(b"\xff{\"return\": 78}\n");
    assert_eq!(
        feed(&mut c, deadline + 1, &answer, 5),
        Some(Outcome::Synced)
    );
    // A stale reply with an old id before ours is dropped too.
    c.write_request(20, "guest-get-time", None::<&()>, 101, &mut Vec::new())
        .unwrap();
    let out = feed(
        &mut c,
        21,
        b"{\"return\": 1, \"id\": 100}\n{\"return\": 2, \"id\": 101}\n",
        4,
    );
    assert_eq!(out, Some(Outcome::Return));
    assert_eq!(c.decode::<i64>().unwrap(), 2);
    // The late reply was skipped as bytes before the 0xFF; the stale id-100 reply was parsed
    // and dropped.
    assert_eq!(c.dropped(), 1);
}

#[test]
fn hostile_agent_cases_end_cleanly() {
    // (name, bytes sent by the "agent" after a good sync, expected outcome)
    let huge_string = {
        let mut v = b"{\"return\": \"".to_vec();
        v.extend(std::iter::repeat_n(b'A', 100_000));
        v
    };
    let oversized = {
        let mut v = b"{\"return\": \"".to_vec();
        v.extend(std::iter::repeat_n(b'A', 5000));
        v.extend_from_slice(b"\", \"id\": 1}\n");
        v
    };
    let cases: Vec<(&str, Vec<u8>, Option<Outcome>)> = vec![
        (
            "oversized reply",
            oversized,
            Some(Outcome::Failed(ClientError::ReplyTooLarge)),
        ),
        ("never-ending string", huge_string, None),
        (
            "wrong ids only",
            b"{\"return\": 1, \"id\": 2}\n{\"return\": 1, \"id\": 3}\n".to_vec(),
            None,
        ),
        (
            "non-JSON line",
            b"hello from the guest console\n".to_vec(),
            Some(Outcome::Failed(ClientError::Protocol(
                ProtocolError::NotJson,
            ))),
        ),
        (
            "JSON that is not a reply",
            b"{\"event\": \"x\"}\n".to_vec(),
            Some(Outcome::Failed(ClientError::Protocol(
                ProtocolError::NotAReply,
            ))),
        ),
        (
            "malformed error",
            b"{\"error\": 5, \"id\": 1}\n".to_vec(),
            Some(Outcome::Failed(ClientError::Protocol(
                ProtocolError::BadError,
            ))),
        ),
        ("0xFF storm", vec![0xFF; 10_000], None),
        ("nothing at all", Vec::new(), None),
        (
            "half a reply",
            b"{\"return\": {\"count\": 3, \"buf".to_vec(),
            None,
        ),
    ];
    for (name, bytes, expect) in cases {
        let mut buf = [0u8; 4096];
        let mut c = synced(&mut buf);
        c.write_request(10, "guest-info", None::<&()>, 1, &mut Vec::new())
            .unwrap();
        let got = feed(&mut c, 11, &bytes, 333);
        assert_eq!(got, expect, "{name}");
        if got.is_none() {
            // Whatever was sent, the deadline ends the exchange.
            let d = c.deadline().unwrap();
            assert_eq!(
                c.handle_timeout(d),
                Some(Outcome::Failed(ClientError::Timeout)),
                "{name}"
            );
        }
        assert!(!c.is_ready(), "{name}: a failed exchange needs a new sync");
    }
}

#[test]
fn sync_never_completes_on_hostile_input_but_times_out() {
    for bytes in [
        vec![0xFFu8; 5000],
        b"\xff{\"return\": 1}\n".repeat(200),
        b"\xff\""
            .iter()
            .chain([b'x'; 20_000].iter())
            .copied()
            .collect(),
    ] {
        let mut buf = [0u8; 256];
        let mut c = Client::new(&mut buf[..], ClientConfig::default());
        c.write_sync(0, 9, &mut Vec::new()).unwrap();
        assert_eq!(feed(&mut c, 1, &bytes, 100), None);
        assert_eq!(
            c.handle_timeout(5_000),
            Some(Outcome::Failed(ClientError::Timeout))
        );
    }
}

#[test]
fn commands_without_success_reply() {
    let mut buf = [0u8; 1024];
    let mut c = synced(&mut buf);
    c.write_request(0, "guest-shutdown", None::<&()>, 5, &mut Vec::new())
        .unwrap();
    assert_eq!(c.handle_eof(), Some(Outcome::Done));

    let mut buf = [0u8; 1024];
    let mut c = synced(&mut buf);
    c.write_request(0, "guest-suspend-ram", None::<&()>, 6, &mut Vec::new())
        .unwrap();
    let d = c.deadline().unwrap();
    assert_eq!(d, 60_000);
    assert_eq!(c.handle_timeout(d), Some(Outcome::Done));

    let mut buf = [0u8; 1024];
    let mut c = synced(&mut buf);
    c.write_request(0, "guest-shutdown", None::<&()>, 7, &mut Vec::new())
        .unwrap();
    let err = b"{\"id\": 7, \"error\": {\"class\": \"GenericError\", \"desc\": \"child process has failed to shutdown\"}}\n";
    assert_eq!(feed(&mut c, 1, err, 10), Some(Outcome::Error));
    let r = c.reply().unwrap();
    assert_eq!(r.error_class().unwrap(), b"\"GenericError\"");
}

#[test]
fn requests_outside_the_protocol_state_are_refused() {
    let mut buf = [0u8; 256];
    let mut c = Client::new(&mut buf[..], ClientConfig::default());
    assert!(matches!(
        c.write_request(0, "guest-ping", None::<&()>, 1, &mut Vec::new()),
        Err(qga_core::client::RequestError::State)
    ));
}

/// The client against the real agent, in process: sync, then typed requests.
#[test]
fn against_the_agent() {
    let mut frame = vec![0u8; 65536];
    let mut work = vec![0u8; 4096];
    let mut agent = Agent::new(
        FakeHost::new(),
        &mut frame[..],
        &mut work[..],
        Config::default(),
    );
    let mut buf = vec![0u8; 65536];
    let mut c = Client::new(&mut buf[..], ClientConfig::default());

    // Leave the agent with half a request from an "earlier client".
    agent
        .process(b"{\"execute\":\"guest-pi", &mut Vec::new())
        .unwrap();

    let mut wire = Vec::new();
    c.write_sync(0, 0x1234_5678_9abc, &mut wire).unwrap();
    let mut reply = Vec::new();
    agent.process(&wire, &mut reply).unwrap();
    assert_eq!(feed(&mut c, 1, &reply, 9), Some(Outcome::Synced));

    #[derive(serde::Serialize)]
    struct Open<'a> {
        path: &'a str,
        mode: &'a str,
    }
    for (cmd, expect_ok) in [("guest-get-time", true), ("guest-bogus", false)] {
        wire.clear();
        reply.clear();
        c.write_request(2, cmd, None::<&()>, 500, &mut wire)
            .unwrap();
        agent.process(&wire, &mut reply).unwrap();
        let out = feed(&mut c, 3, &reply, 5);
        assert_eq!(
            out,
            Some(if expect_ok {
                Outcome::Return
            } else {
                Outcome::Error
            })
        );
    }
    wire.clear();
    reply.clear();
    c.write_request(
        4,
        "guest-file-open",
        Some(&Open {
            path: "/x",
            mode: "w",
        }),
        501,
        &mut wire,
    )
    .unwrap();
    agent.process(&wire, &mut reply).unwrap();
    assert_eq!(feed(&mut c, 5, &reply, 1), Some(Outcome::Return));
    assert_eq!(c.decode::<i64>().unwrap(), 1000);
}

#[test]
fn raw_arguments_are_checked_and_sent_verbatim() {
    let mut buf = [0u8; 1024];
    let mut c = synced(&mut buf);
    let mut wire = Vec::new();
    for bad in [
        &b"[1]"[..],
        b"{\"a\":",
        b"{} {}",
        b"\"x\"",
        b"{\"a\":1,\"a\":2}",
    ] {
        assert!(matches!(
            c.write_request_raw(0, "guest-sync", Some(bad), 1, &mut wire),
            Err(qga_core::client::RequestError::Arguments)
        ));
    }
    assert!(wire.is_empty());
    c.write_request_raw(0, "guest-sync", Some(b" {\"id\": 5} "), 9, &mut wire)
        .unwrap();
    assert_eq!(
        wire,
        b"{\"execute\": \"guest-sync\", \"arguments\":  {\"id\": 5} , \"id\": 9}\n"
    );
}

#[test]
fn assume_synced_and_release() {
    let mut buf = [0u8; 256];
    let mut c = Client::new(&mut buf[..], ClientConfig::default());
    c.assume_synced();
    assert!(c.is_ready());
    let mut wire = Vec::new();
    c.write_request(0, "guest-ping", None::<&()>, 3, &mut wire)
        .unwrap();
    assert_eq!(
        feed(&mut c, 1, b"{\"return\": {}, \"id\": 3}\n", 4),
        Some(Outcome::Return)
    );
    assert!(c.reply().is_some());
    c.release();
    assert!(c.reply().is_none());
}
