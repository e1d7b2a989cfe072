//! The on-disk corpus: `corpus/protocol/NNN-short-name.bin` (raw request streams) and
//! `corpus/protocol-reference/NNN-short-name.out` (what qemu-ga 7.2 answered, fence included).

use std::path::{Path, PathBuf};

use crate::Delivery;

/// `tests/corpus`.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// `tests/corpus/protocol`: one raw byte stream per file.
pub fn protocol_dir() -> PathBuf {
    corpus_dir().join("protocol")
}

/// `tests/corpus/protocol-reference`: qemu-ga's recorded answer to each stream.
pub fn reference_dir() -> PathBuf {
    corpus_dir().join("protocol-reference")
}

/// Environment variable: only corpus entries whose name contains this substring are run.
pub const FILTER_ENV: &str = "QGA_CORPUS_FILTER";

/// Fence ids of corpus entries are this plus the entry number, so they are the same on every
/// side and in the recordings, and differ from every id used inside the corpus.
pub const FENCE_BASE: u64 = 8_800_000_000;

/// One stream of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusEntry {
    /// The `NNN` prefix.
    pub number: u32,
    /// The file stem, `NNN-short-name`.
    pub name: String,
    /// The raw stream.
    pub bytes: Vec<u8>,
}

impl CorpusEntry {
    /// The fence id used for this entry on every side.
    pub fn fence_id(&self) -> u64 {
        FENCE_BASE + u64::from(self.number)
    }

    /// How to deliver the stream: entries named `...-split-by-N...` are written in pieces of N
    /// bytes, everything else in one piece.
    pub fn delivery(&self) -> Delivery {
        delivery_for_name(&self.name)
    }

    /// Where qemu-ga's recorded answer lives.
    pub fn reference_path(&self) -> PathBuf {
        reference_dir().join(format!("{}.out", self.name))
    }
}

/// See [`CorpusEntry::delivery`].
pub fn delivery_for_name(name: &str) -> Delivery {
    name.split_once("split-by-")
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<usize>().ok()
        })
        .filter(|&n| n > 0)
        .map_or(Delivery::Whole, Delivery::Chunks)
}

/// Loads every `NNN-name.bin` of `dir`, sorted by name. Fails on a malformed file name or a
/// duplicate number.
pub fn load_dir(dir: &Path) -> Result<Vec<CorpusEntry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut entries = Vec::new();
    for item in read {
        let path = item
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("bin") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("non-UTF-8 file name {}", path.display()))?
            .to_owned();
        let number = name
            .split_once('-')
            .and_then(|(n, _)| n.parse::<u32>().ok())
            .ok_or_else(|| format!("{}: expected NNN-short-name.bin", path.display()))?;
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        entries.push(CorpusEntry {
            number,
            name,
            bytes,
        });
    }
    entries.sort_by(|a, b| a.number.cmp(&b.number).then_with(|| a.name.cmp(&b.name)));
    for pair in entries.windows(2) {
        if let [a, b] = pair
            && a.number == b.number
        {
            return Err(format!(
                "duplicate corpus number in {} and {}",
                a.name, b.name
            ));
        }
    }
    Ok(entries)
}

/// Loads `corpus/protocol`, keeping only entries matching `$QGA_CORPUS_FILTER` when it is set.
pub fn load_protocol_corpus() -> Result<Vec<CorpusEntry>, String> {
    let mut entries = load_dir(&protocol_dir())?;
    if let Ok(filter) = std::env::var(FILTER_ENV)
        && !filter.is_empty()
    {
        entries.retain(|e| e.name.contains(&filter));
    }
    Ok(entries)
}

/// Commands that change the system itself: shut down, suspend, freeze, trim, or change time, CPUs,
/// memory, users or keys, or run programs. The black-box tests never send them at all.
pub const SYSTEM_COMMANDS: &[&str] = &[
    "guest-shutdown",
    "guest-suspend-disk",
    "guest-suspend-ram",
    "guest-suspend-hybrid",
    "guest-fsfreeze-freeze",
    "guest-fsfreeze-freeze-list",
    "guest-fsfreeze-thaw",
    "guest-fstrim",
    "guest-set-time",
    "guest-set-vcpus",
    "guest-set-memory-blocks",
    "guest-set-user-password",
    "guest-ssh-add-authorized-keys",
    "guest-ssh-remove-authorized-keys",
    "guest-exec",
];

/// The file commands, which touch the guest's files.
pub const FILE_COMMANDS: &[&str] = &[
    "guest-file-open",
    "guest-file-write",
    "guest-file-close",
    "guest-file-seek",
    "guest-file-flush",
    "guest-file-read",
];

/// Commands that change the system when they run ([`SYSTEM_COMMANDS`] and [`FILE_COMMANDS`]).
/// The corpus only ever sends them requests that fail argument validation, and each such request
/// carries [`SAFETY_GUARD`].
pub fn side_effect_commands() -> impl Iterator<Item = &'static str> {
    SYSTEM_COMMANDS.iter().chain(FILE_COMMANDS).copied()
}

/// An unexpected argument member that every request to a [`side_effect_commands`] entry carries.
/// The QAPI input visitor rejects unexpected members after visiting the known ones and before
/// the handler runs, so even a request whose other arguments turned out to be valid fails.
pub const SAFETY_GUARD: &str = "qga-test-guard";

/// Refuses a stream that names a side-effect command (anywhere in the stream, unless the name
/// continues as a longer name such as `guest-exec-status`) without a [`SAFETY_GUARD`] after it.
/// Names spelled with `\uXXXX` escapes of ASCII characters are decoded first, so an escaped name
/// is caught too. This is a lint on how the corpus is written, checked before anything is sent
/// to a real agent; the second line of defence is running the agent unprivileged
/// ([`crate::Privileges`]).
pub fn check_stream_safety(stream: &[u8]) -> Result<(), String> {
    let decoded = decode_ascii_escapes(stream);
    for haystack in [stream, decoded.as_slice()] {
        for name in side_effect_commands() {
            let mut from = 0;
            while let Some(pos) =
                crate::socket::find(haystack.get(from..).unwrap_or_default(), name.as_bytes())
            {
                let at = from + pos;
                let next = haystack.get(at + name.len()).copied();
                let longer_name =
                    matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
                let after = haystack.get(at..).unwrap_or_default();
                if !longer_name && crate::socket::find(after, SAFETY_GUARD.as_bytes()).is_none() {
                    return Err(format!(
                        "stream names {name} at byte {at} without a later \"{SAFETY_GUARD}\" argument"
                    ));
                }
                from = at + 1;
            }
        }
    }
    Ok(())
}

/// Replaces `\uXXXX` escapes of printable ASCII characters by the characters themselves.
fn decode_ascii_escapes(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len());
    let mut i = 0;
    while let Some(&b) = stream.get(i) {
        if b == b'\\'
            && matches!(stream.get(i + 1), Some(b'u' | b'U'))
            && let Some(hex) = stream.get(i + 2..i + 6)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(code) = u8::from_str_radix(text, 16)
            && (0x20..0x7f).contains(&code)
        {
            out.push(code);
            i += 6;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}
