//! Human output of a [`RunFile`]: the Markdown table (with tierkv's ratio to the fastest peer per
//! workload), and two SVG bar charts (ops/s per engine per workload; latency percentiles). Hand-written
//! SVG, no dependency.

use std::fmt::Write as _;

use crate::result::{BenchResult, RunFile};

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.prec$}"))
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else if v >= 1.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1 << 20) as f64)
}

/// Workloads in first-seen order.
fn workloads(run: &RunFile) -> Vec<String> {
    let mut w: Vec<String> = Vec::new();
    for r in &run.results {
        if !w.contains(&r.workload) {
            w.push(r.workload.clone());
        }
    }
    w
}

/// Engines in first-seen order.
fn engines(run: &RunFile) -> Vec<String> {
    let mut e: Vec<String> = Vec::new();
    for r in &run.results {
        if !e.contains(&r.engine) {
            e.push(r.engine.clone());
        }
    }
    e
}

fn find<'a>(run: &'a RunFile, w: &str, e: &str) -> Option<&'a BenchResult> {
    run.results
        .iter()
        .find(|r| r.workload == w && r.engine == e)
}

/// tierkv's ops/s ÷ the fastest other engine's on workload `w`, with that engine's name.
pub fn ratio_to_best_peer(run: &RunFile, w: &str) -> Option<(f64, String)> {
    let ours = find(run, w, "tierkv")?;
    let best = run
        .results
        .iter()
        .filter(|r| {
            r.workload == w && r.engine != "tierkv" && r.engine != "null" && r.ops_per_sec > 0.0
        })
        .max_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec))?;
    Some((ours.ops_per_sec / best.ops_per_sec, best.engine.clone()))
}

/// The Markdown report: machine, results table, ratios, notes.
pub fn markdown(run: &RunFile) -> String {
    let m = &run.machine;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Machine: {} × {}, {:.1} GiB RAM, Linux {}, {} on {} (`{}`), commit {}.\n",
        m.cores,
        m.cpu,
        m.memory_bytes as f64 / (1u64 << 30) as f64,
        m.kernel,
        m.file_system,
        m.device,
        m.dir,
        m.git_commit.get(..10).unwrap_or("unknown"),
    );
    let _ = writeln!(s, "Command: `{}`\n", run.command);
    s.push_str(
        "| workload | engine | keys | value B | ops/s | p50 µs | p99 µs | p99.9 µs | written ÷ user bytes | disk MiB | peak RSS MiB | DRAM B/key | repeats (ops/s) |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for w in workloads(run) {
        for e in engines(run) {
            let Some(r) = find(run, &w, &e) else { continue };
            let reps: Vec<String> = r.repeats_ops_per_sec.iter().map(|v| si(*v)).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | **{}** | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
                w,
                e,
                r.keys,
                r.value_bytes,
                si(r.ops_per_sec),
                opt(r.p50_us, 2),
                opt(r.p99_us, 1),
                opt(r.p999_us, 1),
                r.write_amplification,
                mib(r.disk_bytes),
                mib(r.peak_rss_bytes),
                opt(r.dram_bytes_per_key, 1),
                reps.join(", "),
            );
        }
    }
    let ratios: Vec<String> = workloads(run)
        .iter()
        .filter_map(|w| ratio_to_best_peer(run, w).map(|(x, e)| format!("| {w} | {x:.2}× | {e} |")))
        .collect();
    if !ratios.is_empty() {
        s.push_str(
            "\n| workload | tierkv ÷ fastest peer (ops/s) | fastest peer |\n|---|--:|---|\n",
        );
        s.push_str(&ratios.join("\n"));
        s.push('\n');
    }
    let tk: Vec<&BenchResult> = run
        .results
        .iter()
        .filter(|r| r.engine == "tierkv")
        .collect();
    if !tk.is_empty() {
        s.push_str("\ntierkv counters:\n\n| workload | reads per get | index reads per get | write amp. per tier (log / index / data) |\n|---|--:|--:|---|\n");
        for r in tk {
            let c = r.engine_counters.clone().unwrap_or_default();
            let f = |p: &str| c.pointer(p).and_then(|v| v.as_f64());
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} / {} / {} |",
                r.workload,
                opt(f("/reads_per_get").filter(|_| r.gets > 0), 2),
                opt(f("/index_reads_per_get").filter(|_| r.gets > 0), 2),
                opt(f("/write_amplification_per_tier/log"), 2),
                opt(f("/write_amplification_per_tier/index"), 2),
                opt(f("/write_amplification_per_tier/data"), 2),
            );
        }
    }
    let mut notes: Vec<String> = Vec::new();
    for r in &run.results {
        let n = format!("- **{}** ({}): {}", r.engine, r.workload, r.notes);
        if !r.notes.is_empty() && !notes.contains(&n) {
            notes.push(n);
        }
    }
    if !notes.is_empty() {
        s.push_str("\nHow each engine ran:\n\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    if !run.skipped.is_empty() {
        s.push_str("\nNot run:\n\n");
        for k in &run.skipped {
            let _ = writeln!(s, "- {}", k.lines().next().unwrap_or_default());
        }
    }
    s
}

const COLORS: &[&str] = &[
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf",
];

/// A grouped bar chart: one group per label, one bar per series; log scale when `log`.
pub fn bars(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<Option<f64>>)],
    log: bool,
) -> String {
    let w = (100.0 + 14.0 * (groups.len() * series.len()) as f64).max(960.0);
    let (h, left, bottom, top) = (420.0, 80.0, 90.0, 40.0);
    let plot_h = h - bottom - top;
    let plot_w = w - left - 20.0;
    let vals: Vec<f64> = series
        .iter()
        .flat_map(|s| s.1.iter().flatten().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let max = vals.iter().copied().fold(0.0, f64::max).max(1e-9);
    let min = vals.iter().copied().fold(f64::INFINITY, f64::min).min(max);
    let (lo, hi) = if log {
        (
            min.log10().floor(),
            max.log10().ceil().max(min.log10().floor() + 1.0),
        )
    } else {
        (0.0, max * 1.1)
    };
    let y = |v: f64| {
        let f = if log {
            (v.max(1e-12).log10() - lo) / (hi - lo)
        } else {
            v / hi
        };
        top + plot_h * (1.0 - f.clamp(0.0, 1.0))
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" font-size=\"14\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"translate(15,{}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        w / 2.0,
        esc(title),
        top + plot_h / 2.0,
        esc(y_label)
    );
    // Grid and ticks.
    let ticks: Vec<f64> = if log {
        (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| hi * i as f64 / 5.0).collect()
    };
    for t in ticks {
        let yy = y(t);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 4.0,
            yy + 4.0,
            si(t)
        );
    }
    let gw = plot_w / groups.len().max(1) as f64;
    let bw = (gw * 0.8) / series.len().max(1) as f64;
    for (gi, g) in groups.iter().enumerate() {
        let gx = left + gw * gi as f64 + gw * 0.1;
        for (si_, (_, vs)) in series.iter().enumerate() {
            if let Some(Some(v)) = vs.get(gi) {
                let (y0, y1) = (y(*v), top + plot_h);
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
                    gx + bw * si_ as f64,
                    (bw - 1.0).max(1.0),
                    (y1 - y0).max(0.0),
                    COLORS[si_ % COLORS.len()],
                    si(*v)
                );
            }
        }
        let _ = writeln!(
            s,
            "<text transform=\"translate({:.1},{:.1}) rotate(-30)\" text-anchor=\"end\">{}</text>",
            gx + gw * 0.4,
            top + plot_h + 14.0,
            esc(g)
        );
    }
    for (i, (name, _)) in series.iter().enumerate() {
        let x = left + 10.0 + 110.0 * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            h - 18.0,
            COLORS[i % COLORS.len()],
            x + 14.0,
            h - 9.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// ops/s per engine per workload (log scale).
pub fn svg_ops(run: &RunFile) -> String {
    let ws = workloads(run);
    let series: Vec<(String, Vec<Option<f64>>)> = engines(run)
        .into_iter()
        .map(|e| {
            let v = ws
                .iter()
                .map(|w| find(run, w, &e).map(|r| r.ops_per_sec))
                .collect();
            (e, v)
        })
        .collect();
    bars(
        "Throughput per engine and workload",
        "ops/s (log)",
        &ws,
        &series,
        true,
    )
}

/// p50 / p99 / p99.9 per engine and workload (log scale).
pub fn svg_latency(run: &RunFile) -> String {
    let mut groups = Vec::new();
    let mut p = [Vec::new(), Vec::new(), Vec::new()];
    for w in workloads(run) {
        for e in engines(run) {
            if let Some(r) = find(run, &w, &e) {
                groups.push(format!("{w} {e}"));
                p[0].push(r.p50_us);
                p[1].push(r.p99_us);
                p[2].push(r.p999_us);
            }
        }
    }
    let [a, b, c] = p;
    let series = vec![
        ("p50".to_string(), a),
        ("p99".to_string(), b),
        ("p99.9".to_string(), c),
    ];
    bars("Latency percentiles", "µs (log)", &groups, &series, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_charts_render() {
        let mut run = RunFile::default();
        for (e, ops) in [("tierkv", 2e6), ("redb", 5e5)] {
            run.results.push(BenchResult {
                engine: e.into(),
                workload: "get-uniform".into(),
                ops_per_sec: ops,
                p50_us: Some(1.0),
                p99_us: Some(10.0),
                p999_us: None,
                ..Default::default()
            });
        }
        let md = markdown(&run);
        assert!(
            md.contains("| get-uniform | tierkv |") && md.contains("4.00×"),
            "{md}"
        );
        for svg in [svg_ops(&run), svg_latency(&run)] {
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            assert!(svg.contains("<rect x="));
        }
        assert_eq!(ratio_to_best_peer(&run, "get-uniform").unwrap().1, "redb");
    }
}
