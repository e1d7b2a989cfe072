//! The in-process side: `qga_core::Agent` with the in-memory `FakeHost`.

use qga_core::testing::FakeHost;
use qga_core::{Agent, Config, FrameBuffer, Host};

use crate::{AgentUnderTest, Delivery, fence};

/// Size of the frame buffer given to the core (the request being assembled).
pub const FRAME_SIZE: usize = 1 << 20;
/// Size of the core's work buffer.
pub const WORK_SIZE: usize = 8192;

/// Caller-owned storage for a core agent (the agent borrows it).
#[derive(Debug)]
pub struct CoreBuffers {
    frame: Vec<u8>,
    work: Vec<u8>,
}

impl CoreBuffers {
    /// A [`FRAME_SIZE`] frame buffer and a [`WORK_SIZE`] work buffer.
    pub fn new() -> Self {
        Self {
            frame: vec![0u8; FRAME_SIZE],
            work: vec![0u8; WORK_SIZE],
        }
    }
}

impl Default for CoreBuffers {
    fn default() -> Self {
        Self::new()
    }
}

/// The core agent as the tests build it: `FakeHost`, `Config::default()`, borrowed buffers.
pub type TestCoreAgent<'w> = Agent<'w, FakeHost, &'w mut [u8]>;

/// Builds a fresh core agent on `buffers`.
pub fn new_core_agent(buffers: &mut CoreBuffers) -> TestCoreAgent<'_> {
    Agent::new(
        FakeHost::new(),
        &mut buffers.frame[..],
        &mut buffers.work[..],
        Config::default(),
    )
}

/// Feeds `stream` to `agent` in one call and returns every byte it wrote. Panics if the core
/// reports an error (writing to a `Vec` cannot fail, so any error is a core bug).
pub fn core_exchange<H: Host, B: FrameBuffer>(
    agent: &mut Agent<'_, H, B>,
    stream: &[u8],
) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    if let Err(e) = agent.process(stream, &mut out) {
        panic!("qga_core::Agent::process failed: {e:?}");
    }
    out
}

/// Feeds `stream` in pieces of `chunk` bytes (one `process` call each) and returns the output.
pub fn core_exchange_chunked<H: Host, B: FrameBuffer>(
    agent: &mut Agent<'_, H, B>,
    stream: &[u8],
    chunk: usize,
) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    for piece in stream.chunks(chunk.max(1)) {
        if let Err(e) = agent.process(piece, &mut out) {
            panic!("qga_core::Agent::process failed: {e:?}");
        }
    }
    out
}

/// The core as a side of a comparison. The same fence as for socket agents is appended, so that
/// outputs are comparable byte for byte and parser state is reset between streams.
pub struct CoreAgent<'w> {
    agent: TestCoreAgent<'w>,
}

impl<'w> CoreAgent<'w> {
    /// A fresh core agent on `buffers`.
    pub fn new(buffers: &'w mut CoreBuffers) -> Self {
        Self {
            agent: new_core_agent(buffers),
        }
    }

    /// The wrapped agent.
    pub fn agent(&mut self) -> &mut TestCoreAgent<'w> {
        &mut self.agent
    }
}

impl AgentUnderTest for CoreAgent<'_> {
    fn label(&self) -> &str {
        "qga-core"
    }

    fn exchange_fenced(
        &mut self,
        stream: &[u8],
        fence_id: u64,
        delivery: Delivery,
    ) -> Result<Vec<u8>, String> {
        let fence = fence(fence_id);
        Ok(match delivery {
            Delivery::Whole => {
                // One call with the stream and the fence, as one write reaches a socket agent.
                let mut all = Vec::with_capacity(stream.len() + fence.len());
                all.extend_from_slice(stream);
                all.extend_from_slice(&fence);
                core_exchange(&mut self.agent, &all)
            }
            Delivery::Chunks(n) => {
                let mut out = core_exchange_chunked(&mut self.agent, stream, n);
                out.extend_from_slice(&core_exchange(&mut self.agent, &fence));
                out
            }
        })
    }
}
