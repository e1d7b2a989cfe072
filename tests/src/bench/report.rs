//! Results: per-run values of every metric for qga, qemu-ga and the echo floor, their medians
//! and ratios, the goals, and the two renderings (a text table and JSON).

use std::fmt::Write as _;

use serde_json::{Value, json};

/// Which side a value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The `qga` binary.
    Qga,
    /// The reference agent (qemu-ga).
    Reference,
    /// The in-process echo peer.
    Floor,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Qga => 0,
            Side::Reference => 1,
            Side::Floor => 2,
        }
    }
}

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// Name in the table.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// True if a larger value is better.
    pub higher_is_better: bool,
    /// Decimals shown.
    pub decimals: usize,
}

/// Requests per second.
pub const REQ_PER_S: Metric = Metric {
    name: "throughput",
    unit: "req/s",
    higher_is_better: true,
    decimals: 0,
};
/// Median round trip.
pub const P50: Metric = Metric {
    name: "round trip p50",
    unit: "µs",
    higher_is_better: false,
    decimals: 1,
};
/// 99th percentile round trip.
pub const P99: Metric = Metric {
    name: "round trip p99",
    unit: "µs",
    higher_is_better: false,
    decimals: 1,
};
/// CPU time of the answering side per request.
pub const CPU_PER_REQ: Metric = Metric {
    name: "agent CPU per request",
    unit: "µs",
    higher_is_better: false,
    decimals: 2,
};
/// From spawn to the first byte of the first reply.
pub const FIRST_REPLY: Metric = Metric {
    name: "exec to first reply (p50)",
    unit: "ms",
    higher_is_better: false,
    decimals: 3,
};
/// How long `spawn()` took.
pub const SPAWN: Metric = Metric {
    name: "of which spawn() = fork+execve (p50)",
    unit: "ms",
    higher_is_better: false,
    decimals: 3,
};
/// The agent's CPU time up to its first reply.
pub const CPU_TO_FIRST_REPLY: Metric = Metric {
    name: "agent CPU to first reply (p50)",
    unit: "ms",
    higher_is_better: false,
    decimals: 3,
};
/// Resident set of an idle agent.
pub const IDLE_RSS: Metric = Metric {
    name: "idle RSS (VmRSS)",
    unit: "MiB",
    higher_is_better: false,
    decimals: 2,
};
/// Wall-clock transfer rate.
pub const MIB_PER_S: Metric = Metric {
    name: "throughput (wall)",
    unit: "MiB/s",
    higher_is_better: true,
    decimals: 0,
};
/// Agent CPU per MiB transferred.
pub const CPU_PER_MIB: Metric = Metric {
    name: "agent CPU per MiB",
    unit: "ms",
    higher_is_better: false,
    decimals: 3,
};
/// MiB per second of agent CPU.
pub const MIB_PER_CPU_S: Metric = Metric {
    name: "MiB per agent-CPU second",
    unit: "MiB/s",
    higher_is_better: true,
    decimals: 0,
};
/// The client thread's CPU share of the wall-clock time.
pub const CLIENT_CPU: Metric = Metric {
    name: "client CPU (of wall)",
    unit: "%",
    higher_is_better: false,
    decimals: 0,
};
/// Peak resident set.
pub const PEAK_RSS: Metric = Metric {
    name: "peak RSS (VmHWM)",
    unit: "MiB",
    higher_is_better: false,
    decimals: 2,
};
/// Resident set after a transfer.
pub const RSS_AFTER: Metric = Metric {
    name: "RSS after (VmRSS)",
    unit: "MiB",
    higher_is_better: false,
    decimals: 2,
};
/// File size.
pub const SIZE: Metric = Metric {
    name: "file size",
    unit: "MiB",
    higher_is_better: false,
    decimals: 3,
};

/// One benchmark's metric: every run's value for each side.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable key of the benchmark (`seq/guest-sync`, `read/large`…).
    pub key: String,
    /// What the table shows for the benchmark.
    pub bench: String,
    /// The metric.
    pub metric: Metric,
    values: [Vec<f64>; 3],
}

impl Row {
    /// Every run's value for `side`.
    pub fn values(&self, side: Side) -> &[f64] {
        self.values.get(side.index()).map_or(&[], Vec::as_slice)
    }

    /// The median over the runs for `side`.
    pub fn median(&self, side: Side) -> Option<f64> {
        median(self.values(side))
    }

    /// qga's median divided by `other`'s.
    pub fn ratio(&self, other: Side) -> Option<f64> {
        let q = self.median(Side::Qga)?;
        let o = self.median(other)?;
        (o != 0.0).then_some(q / o)
    }
}

/// The median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

/// All rows, in the order they were first recorded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Adds one run's value.
    pub fn record(&mut self, key: &str, bench: &str, metric: Metric, side: Side, value: f64) {
        let pos = self
            .rows
            .iter()
            .position(|r| r.key == key && r.metric.name == metric.name);
        let row = match pos.and_then(|p| self.rows.get_mut(p)) {
            Some(r) => r,
            None => {
                self.rows.push(Row {
                    key: key.to_owned(),
                    bench: bench.to_owned(),
                    metric,
                    values: Default::default(),
                });
                match self.rows.last_mut() {
                    Some(r) => r,
                    None => return,
                }
            }
        };
        if let Some(v) = row.values.get_mut(side.index()) {
            v.push(value);
        }
    }

    /// The row of `key` and `metric`.
    pub fn row(&self, key: &str, metric: Metric) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.key == key && r.metric.name == metric.name)
    }

    /// All rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

/// Whether a goal is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Met.
    Met,
    /// Missed.
    Missed,
    /// Not measured (reference missing, quick mode, binary not built).
    NotMeasured,
}

impl Status {
    fn text(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::Missed => "MISSED",
            Status::NotMeasured => "n/a",
        }
    }
}

/// A target and where qga stands.
#[derive(Debug, Clone)]
pub struct Goal {
    /// What is measured.
    pub name: String,
    /// The target.
    pub target: String,
    /// The measured value (with the figures it comes from).
    pub measured: String,
    /// Met or not.
    pub status: Status,
}

/// Everything the benchmark produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// Lines describing the setup (machine, agents, placement, command).
    pub header: Vec<(String, String)>,
    /// The same, as JSON.
    pub setup: Value,
    /// Sequential commands skipped, with the reason.
    pub skipped: Vec<(String, String)>,
    /// The results.
    pub table: Table,
    /// The goals.
    pub goals: Vec<Goal>,
    /// Whether the reference agent took part.
    pub with_reference: bool,
    /// Remarks printed after the table.
    pub notes: Vec<String>,
}

/// Formats `v` with `decimals` decimals and thousands separators.
fn number(v: f64, decimals: usize) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// A ratio with enough digits to read small ones.
pub fn ratio_text(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => {
            if r >= 100.0 {
                format!("{r:.0}x")
            } else if r >= 10.0 {
                format!("{r:.1}x")
            } else if r >= 0.1 {
                format!("{r:.2}x")
            } else {
                format!("{r:.3}x")
            }
        }
        _ => "-".to_owned(),
    }
}

/// A metric's value with its unit.
pub fn value_text(metric: Metric, v: Option<f64>) -> String {
    v.map_or_else(
        || "-".to_owned(),
        |v| format!("{} {}", number(v, metric.decimals), metric.unit),
    )
}

fn json_number(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite()).map_or(Value::Null, Value::from)
}

impl Report {
    /// The text rendering: setup, the table, the goals.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.header {
            let _ = writeln!(out, "{k:<14} {v}");
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "skipped:");
            for (c, why) in &self.skipped {
                let _ = writeln!(out, "  {c}: {why}");
            }
        }
        out.push('\n');
        let mut lines: Vec<[String; 8]> = vec![[
            "benchmark".into(),
            "metric".into(),
            "unit".into(),
            "qga".into(),
            "qemu-ga".into(),
            "qga/qemu-ga".into(),
            "floor".into(),
            "qga/floor".into(),
        ]];
        let mut last_bench = String::new();
        for row in self.table.rows() {
            let m = row.metric;
            let show = |side| {
                row.median(side)
                    .map_or_else(|| "-".to_owned(), |v| number(v, m.decimals))
            };
            let bench = if row.bench == last_bench {
                String::new()
            } else {
                row.bench.clone()
            };
            last_bench.clone_from(&row.bench);
            let direction = if m.higher_is_better { "↑" } else { "↓" };
            lines.push([
                bench,
                format!("{} {direction}", m.name),
                m.unit.to_owned(),
                show(Side::Qga),
                show(Side::Reference),
                ratio_text(row.ratio(Side::Reference)),
                show(Side::Floor),
                ratio_text(row.ratio(Side::Floor)),
            ]);
        }
        let mut widths = [0usize; 8];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for (i, line) in lines.iter().enumerate() {
            let mut text = String::new();
            for (c, (cell, w)) in line.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                if c < 3 {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                } else {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                }
                text.push_str("  ");
            }
            let _ = writeln!(out, "{}", text.trim_end());
            if i == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * 7;
                let _ = writeln!(out, "{}", "-".repeat(total));
            }
        }
        out.push_str(
            "\n↑ higher is better, ↓ lower is better. Values are medians over the runs; ratios \
             are qga's median over the other side's median.\n",
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out.push_str("\ngoals:\n");
        let width = self
            .goals
            .iter()
            .map(|g| g.name.chars().count())
            .max()
            .unwrap_or(0);
        for g in &self.goals {
            let pad = width.saturating_sub(g.name.chars().count());
            let _ = writeln!(
                out,
                "  [{:<6}] {}{}  target {}; measured {}",
                g.status.text(),
                g.name,
                " ".repeat(pad),
                g.target,
                g.measured
            );
        }
        out
    }

    /// The JSON rendering.
    pub fn json(&self) -> Value {
        let side = |row: &Row, s: Side| {
            json!({
                "median": json_number(row.median(s)),
                "runs": row.values(s).iter().map(|&v| json_number(Some(v))).collect::<Vec<_>>(),
            })
        };
        let rows: Vec<Value> = self
            .table
            .rows()
            .iter()
            .map(|r| {
                json!({
                    "key": r.key,
                    "benchmark": r.bench,
                    "metric": r.metric.name,
                    "unit": r.metric.unit,
                    "higher_is_better": r.metric.higher_is_better,
                    "qga": side(r, Side::Qga),
                    "qemu-ga": side(r, Side::Reference),
                    "floor": side(r, Side::Floor),
                    "qga/qemu-ga": json_number(r.ratio(Side::Reference)),
                    "qga/floor": json_number(r.ratio(Side::Floor)),
                })
            })
            .collect();
        let goals: Vec<Value> = self
            .goals
            .iter()
            .map(|g| {
                json!({
                    "goal": g.name,
                    "target": g.target,
                    "measured": g.measured,
                    "status": match g.status {
                        Status::Met => "met",
                        Status::Missed => "missed",
                        Status::NotMeasured => "not measured",
                    },
                })
            })
            .collect();
        let skipped: Vec<Value> = self
            .skipped
            .iter()
            .map(|(c, why)| json!({"command": c, "reason": why}))
            .collect();
        json!({
            "setup": self.setup,
            "with_reference": self.with_reference,
            "skipped": skipped,
            "rows": rows,
            "goals": goals,
            "notes": self.notes,
        })
    }
}
