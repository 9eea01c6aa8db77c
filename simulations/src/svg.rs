//! Hand-written SVG line charts: axes with ticks (linear or log), several series, a legend. Enough
//! for the simulations' curves; no dependency.

use std::fmt::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// One named series of `(x, y)` points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points; non-finite ones (and non-positive ones on a log axis) are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Title.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub x_log: bool,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// Series.
    pub series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 440.0;
const L: f64 = 80.0;
const R: f64 = 190.0;
const T: f64 = 40.0;
const B: f64 = 60.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Axis mapping and ticks.
struct Axis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            let v = if log { v.log10() } else { v };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if log {
            lo = lo.floor();
            hi = hi.ceil().max(lo + 1.0);
        } else {
            if lo > 0.0 && lo < 0.5 * hi {
                lo = 0.0;
            }
            if hi - lo < 1e-12 {
                hi = lo + 1.0;
            }
            let pad = (hi - lo) * 0.05;
            hi += pad;
            if lo != 0.0 {
                lo -= pad;
            }
        }
        Axis { log, lo, hi }
    }

    fn frac(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        (v - self.lo) / (self.hi - self.lo)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let step = ((self.hi - self.lo) / 8.0).ceil().max(1.0);
            let mut t = Vec::new();
            let mut e = self.lo;
            while e <= self.hi + 1e-9 {
                t.push(10f64.powf(e));
                e += step;
            }
            t
        } else {
            let raw = (self.hi - self.lo) / 6.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(raw);
            let mut t = Vec::new();
            let mut v = (self.lo / step).ceil() * step;
            while v <= self.hi + 1e-12 {
                t.push(v);
                v += step;
            }
            t
        }
    }
}

impl Chart {
    fn usable(&self, p: &(f64, f64)) -> bool {
        p.0.is_finite()
            && p.1.is_finite()
            && (!self.x_log || p.0 > 0.0)
            && (!self.y_log || p.1 > 0.0)
    }

    /// The SVG text.
    pub fn render(&self) -> String {
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .filter(|p| self.usable(p))
        };
        let xa = Axis::new(pts().map(|p| p.0), self.x_log);
        let ya = Axis::new(pts().map(|p| p.1), self.y_log);
        let (pw, ph) = (W - L - R, H - T - B);
        let x = |v: f64| L + xa.frac(v) * pw;
        let y = |v: f64| T + (1.0 - ya.frac(v)) * ph;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            L + pw / 2.0,
            esc(&self.title)
        );
        let _ = writeln!(
            s,
            r##"<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
        );
        for t in xa.ticks() {
            let px = x(t);
            let _ = writeln!(
                s,
                r##"<line x1="{px:.1}" y1="{T}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                T + ph,
                T + ph + 16.0,
                fmt_tick(t)
            );
        }
        for t in ya.ticks() {
            let py = y(t);
            let _ = writeln!(
                s,
                r##"<line x1="{L}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                L + pw,
                L - 6.0,
                py + 4.0,
                fmt_tick(t)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            L + pw / 2.0,
            H - 18.0,
            esc(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
            T + ph / 2.0,
            T + ph / 2.0,
            esc(&self.y_label)
        );
        for (i, ser) in self.series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let path: Vec<String> = ser
                .points
                .iter()
                .filter(|p| self.usable(p))
                .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
                .collect();
            if !path.is_empty() {
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                    path.join(" ")
                );
            }
            let ly = T + 10.0 + i as f64 * 18.0;
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                W - R + 10.0,
                W - R + 30.0,
                W - R + 36.0,
                ly + 4.0,
                esc(&ser.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// Writes the SVG to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.render()).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_series_and_skips_bad_points() {
        let c = Chart {
            title: "a < b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_log: true,
            y_log: false,
            series: vec![Series {
                name: "s".into(),
                points: vec![(0.0, 1.0), (1.0, 2.0), (10.0, f64::NAN), (100.0, 3.0)],
            }],
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        let poly = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(poly.matches(',').count(), 2, "{poly}");
    }
}
