//! `guest-info`: the version and every command with its current state, streamed straight from
//! the command table (reverse registration order, as qemu-ga lists them).

use crate::agent::{Config, command_disabled};
use crate::command::COMMANDS;
#[cfg(test)]
use crate::command::Spec;
use crate::host::{Host, Out};
use crate::json::write::JsonWriter;
#[cfg(test)]
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

/// `embedded_io::Write` onto an [`Out`] (which keeps any failure itself), for the few pieces
/// that need the JSON writer.
struct OutWrite<'o, 's>(&'o mut Out<'s>);

impl embedded_io::ErrorType for OutWrite<'_, '_> {
    type Error = core::convert::Infallible;
}

impl embedded_io::Write for OutWrite<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.raw(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Writes the `guest-info` value. Each command's entry is assembled from the table's static
/// pieces and written in one piece: 43 entries through the general serializer cost several
/// writes each, and `guest-info` is what management stacks call first. The result is byte for
/// byte what serialising [`Info`] gives (checked by the tests).
pub(crate) fn write(info: &Info<'_, impl Host + ?Sized>, out: &mut Out<'_>) {
    out.raw(b"{\"version\": ");
    let _ = JsonWriter::new(&mut OutWrite(out)).string(info.config.version.as_bytes());
    out.raw(b", \"supported_commands\": [");
    for (i, spec) in COMMANDS.iter().rev().enumerate() {
        let enabled = command_disabled(info.host, info.config, info.frozen, spec).is_none();
        let mut entry = [0u8; 128];
        let mut at = 0;
        let mut put = |piece: &[u8]| {
            if let Some(dst) = entry.get_mut(at..at + piece.len()) {
                dst.copy_from_slice(piece);
            }
            at += piece.len();
        };
        if i > 0 {
            put(b", ");
        }
        put(if enabled {
            b"{\"enabled\": true, \"name\": \""
        } else {
            b"{\"enabled\": false, \"name\": \""
        });
        // Table names are plain ASCII (checked by a test): no escaping needed.
        put(spec.name.as_bytes());
        put(if spec.success_response {
            b"\", \"success-response\": true}"
        } else {
            b"\", \"success-response\": false}"
        });
        out.raw(entry.get(..at).unwrap_or(&[]));
    }
    out.raw(b"]}");
}

/// `GuestAgentInfo`, computed while it is written.
pub(crate) struct Info<'a, H: Host + ?Sized> {
    pub host: &'a H,
    pub config: &'a Config,
    pub frozen: bool,
}

#[cfg(test)]
struct Commands<'a, H: Host + ?Sized>(&'a Info<'a, H>);

#[cfg(test)]
struct CommandInfo<'a> {
    spec: &'a Spec,
    enabled: bool,
}

// The serde form: the reference the tests compare the writer against.
#[cfg(test)]
impl<H: Host + ?Sized> Serialize for Info<'_, H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // QDict order: version, supported_commands.
        let mut st = s.serialize_struct("GuestAgentInfo", 2)?;
        st.serialize_field("version", self.config.version)?;
        st.serialize_field("supported_commands", &Commands(self))?;
        st.end()
    }
}

#[cfg(test)]
impl<H: Host + ?Sized> Serialize for Commands<'_, H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let info = self.0;
        let mut seq = s.serialize_seq(Some(COMMANDS.len()))?;
        for spec in COMMANDS.iter().rev() {
            let enabled = command_disabled(info.host, info.config, info.frozen, spec).is_none();
            seq.serialize_element(&CommandInfo { spec, enabled })?;
        }
        seq.end()
    }
}

#[cfg(test)]
impl Serialize for CommandInfo<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // QDict order: enabled, name, success-response.
        let mut st = s.serialize_struct("GuestAgentCommandInfo", 3)?;
        st.serialize_field("enabled", &self.enabled)?;
        st.serialize_field("name", self.spec.name)?;
        st.serialize_field("success-response", &self.spec.success_response)?;
        st.end()
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::host::ByteSink;
    use crate::json::ser::to_writer;
    use crate::testing::FakeHost;

    /// A sink into a fixed buffer.
    struct Buf {
        data: [u8; 8192],
        len: usize,
    }

    impl ByteSink for Buf {
        fn put(&mut self, bytes: &[u8]) -> Result<(), ()> {
            let dst = self
                .data
                .get_mut(self.len..self.len + bytes.len())
                .ok_or(())?;
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
            Ok(())
        }
    }

    fn both(config: &Config, frozen: bool) -> (std::vec::Vec<u8>, std::vec::Vec<u8>) {
        let host = FakeHost::new();
        let info = Info {
            host: &host,
            config,
            frozen,
        };
        let mut sink = Buf {
            data: [0; 8192],
            len: 0,
        };
        let mut out = Out::new(&mut sink, false);
        write(&info, &mut out);
        assert!(out.finish());
        let fast = sink.data[..sink.len].to_vec();
        // Out opens the reply envelope (the agent closes it, with the id).
        let mut reference = b"{\"return\": ".to_vec();
        to_writer(&info, &mut JsonWriter::new(&mut reference)).unwrap();
        (fast, reference)
    }

    #[test]
    fn names_need_no_escaping_and_fit_an_entry() {
        for spec in COMMANDS {
            assert!(spec.name.len() <= 48, "{}", spec.name);
            assert!(
                spec.name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn written_like_the_serializer_writes_it() {
        let mut blocked = Config::default();
        assert!(blocked.block("guest-file-open"));
        assert!(blocked.block("guest-shutdown"));
        let mut allowed = Config::default();
        assert!(allowed.allow("guest-ping"));
        let quoted = Config {
            version: "1.0 \"test\"\\\u{e9}",
            ..Config::default()
        };
        let long = Config {
            version: "a very long version string, longer than any piece the writer stages on the stack at once, \\ with escapes \u{1F600}",
            ..Config::default()
        };
        for config in [&Config::default(), &blocked, &allowed, &quoted, &long] {
            for frozen in [false, true] {
                let (fast, reference) = both(config, frozen);
                let at = fast
                    .iter()
                    .zip(&reference)
                    .position(|(a, b)| a != b)
                    .unwrap_or(fast.len().min(reference.len()));
                assert!(
                    fast == reference,
                    "version {:?}, frozen {frozen}: first difference at {at}: {:?} / {:?}",
                    config.version,
                    std::string::String::from_utf8_lossy(&fast[at.saturating_sub(40)..]),
                    std::string::String::from_utf8_lossy(&reference[at.saturating_sub(40)..]),
                );
            }
        }
    }
}
