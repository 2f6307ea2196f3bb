//! Draws the peer table of `benches/peers.sh` as a PNG bar chart: one
//! horizontal bar of requests/s per setup and test, permgate's bars in
//! another colour, each labelled with its ratio to its peer.
//!
//!   peer_chart PEERS_CSV OUT_PNG [FONT_TTF]
//!
//! The font defaults to Debian's DejaVu Sans (fonts-dejavu-core); it is read
//! at run time, so no system font library is needed.

use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

struct Row {
    label: String,
    rps: f64,
    ratio: Option<String>,
    permgate: bool,
}

/// The load rows of the CSV (`group,setup,rps,ratio,peer,...`); memory rows
/// and the header are skipped.
fn rows(csv: &str) -> Vec<Row> {
    csv.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() < 5 || f[0] == "memory" {
                return None;
            }
            Some(Row {
                label: format!("{}: {}", f[0], f[1]),
                rps: f[2].parse().ok()?,
                ratio: (f[3] != "-").then(|| format!("{}x {}", f[3], f[4])),
                permgate: f[1].starts_with("permgate"),
            })
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(csv), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: peer_chart PEERS_CSV OUT_PNG [FONT_TTF]".into());
    };
    let font_path = args.next().unwrap_or_else(|| DEFAULT_FONT.to_owned());
    let font = std::fs::read(&font_path).map_err(|e| format!("{font_path}: {e}"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("{font_path}: not a usable TrueType font"))?;

    let mut rows = rows(&std::fs::read_to_string(&csv).map_err(|e| format!("{csv}: {e}"))?);
    // The y axis counts upwards: reversed, the table's first row is on top.
    rows.reverse();
    if rows.is_empty() {
        return Err(format!("{csv}: no load rows").into());
    }
    let n = rows.len();
    let max = rows.iter().map(|r| r.rps).fold(0.0, f64::max);
    let height = 120 + 34 * u32::try_from(n)?;
    let root = BitMapBackend::new(&out, (1200, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "permgate beside nginx and haproxy (requests/s, one pinned core each)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(430)
        .build_cartesian_2d(0.0..max * 1.25, (0..n).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => rows.get(*i).map_or(String::new(), |r| r.label.clone()),
            _ => String::new(),
        })
        .x_label_formatter(&|v| format!("{v:.0}"))
        .x_desc("requests/s (median of the rounds)")
        .label_style(("sans-serif", 14))
        .draw()?;
    let permgate = RGBColor(0xd9, 0x5f, 0x02);
    let peer = RGBColor(0x75, 0x70, 0xb3);
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let colour = if r.permgate { permgate } else { peer };
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (r.rps, SegmentValue::Exact(i + 1)),
            ],
            colour.filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        bar
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, r)| {
        let text = match &r.ratio {
            Some(ratio) => format!("{:.0}  ({ratio})", r.rps),
            None => format!("{:.0}", r.rps),
        };
        Text::new(
            text,
            (r.rps + max * 0.01, SegmentValue::CenterOf(i)),
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    root.present()?;
    Ok(())
}
