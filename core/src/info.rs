//! `guest-info`: the version and every command with its current state, streamed straight from
//! the command table (reverse registration order, as qemu-ga lists them).

use crate::agent::{Config, command_disabled};
use crate::command::{COMMANDS, Spec};
use crate::host::Host;
use serde::ser::{Serialize, SerializeSeq, SerializeStruct, Serializer};

/// `GuestAgentInfo`, computed while it is written.
pub(crate) struct Info<'a, H: Host + ?Sized> {
    pub host: &'a H,
    pub config: &'a Config,
    pub frozen: bool,
}

struct Commands<'a, H: Host + ?Sized>(&'a Info<'a, H>);

struct CommandInfo<'a> {
    spec: &'a Spec,
    enabled: bool,
}

impl<H: Host + ?Sized> Serialize for Info<'_, H> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // QDict order: version, supported_commands.
        let mut st = s.serialize_struct("GuestAgentInfo", 2)?;
        st.serialize_field("version", self.config.version)?;
        st.serialize_field("supported_commands", &Commands(self))?;
        st.end()
    }
}

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
