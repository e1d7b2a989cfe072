//! A one-line progress bar on standard error (only when it is a terminal).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::client::Progress;

/// Redraw at most this often.
const INTERVAL: Duration = Duration::from_millis(100);
/// Width of the bar itself.
const WIDTH: u64 = 24;

/// Draws `label [#####.....] 42%  1.5 MiB / 3.6 MiB  12.0 MiB/s` and redraws it in place.
#[derive(Debug)]
pub struct Bar {
    label: String,
    enabled: bool,
    start: Instant,
    last: Option<Instant>,
    width: usize,
}

impl Bar {
    /// A bar for copying `label`, drawn only when standard error is a terminal.
    pub fn new(label: String) -> Self {
        Bar {
            label,
            enabled: std::io::stderr().is_terminal(),
            start: Instant::now(),
            last: None,
            width: 0,
        }
    }

    /// Ends the line (when something was drawn).
    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            let _ = writeln!(std::io::stderr());
            self.last = None;
        }
    }

    fn draw(&mut self, done: u64, total: Option<u64>) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            size(done as f64 / elapsed)
        } else {
            String::from("-")
        };
        let mut line = format!("{} ", self.label);
        match total {
            Some(total) if total > 0 => {
                let filled = (done.min(total) * WIDTH / total) as usize;
                let pct = done.min(total) * 100 / total;
                line.push('[');
                line.extend(std::iter::repeat_n('#', filled));
                line.extend(std::iter::repeat_n(
                    '.',
                    WIDTH as usize - filled.min(WIDTH as usize),
                ));
                line.push_str(&format!(
                    "] {pct:3}%  {} / {}",
                    size(done as f64),
                    size(total as f64)
                ));
            }
            _ => line.push_str(&size(done as f64)),
        }
        line.push_str(&format!("  {rate}/s"));
        // Pad over what a longer previous line left behind.
        let len = line.chars().count();
        let pad = self.width.saturating_sub(len);
        self.width = len;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}{:pad$}", "");
        let _ = err.flush();
    }
}

impl Progress for Bar {
    fn update(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let finished = total.is_some_and(|t| done >= t);
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < INTERVAL && !finished)
        {
            return;
        }
        self.last = Some(now);
        self.draw(done, total);
    }

    fn wants_total(&self) -> bool {
        self.enabled
    }
}

/// `1.5 MiB`.
pub fn size(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{v:.0} {name}")
    } else {
        format!("{v:.1} {name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0.0), "0 B");
        assert_eq!(size(1023.0), "1023 B");
        assert_eq!(size(1536.0), "1.5 KiB");
        assert_eq!(size(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
