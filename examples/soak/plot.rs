//! The PNG plot of the per-second series: resident memory (with the
//! fitted trend after warm-up), file descriptors and open connections,
//! latency, and answers by class; seconds with a fault on are shaded.

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;

use crate::sampler::Sample;

/// Loads the TTF every label is drawn with. The plot needs no system font
/// library: the font is read from `path` (Debian: fonts-dejavu-core).
pub fn load_font(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read the plot font {}: {e} (install Debian's fonts-dejavu-core, or pass --font FILE.ttf)",
            path.display()
        )
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
}

/// What the plot shows beside the samples.
pub struct Marks {
    /// End of the warm-up, s.
    pub warmup: u64,
    /// The fitted RSS line after warm-up: KiB at `warmup`, KiB per minute.
    pub fit: Option<(f64, f64)>,
    /// The title.
    pub title: String,
}

const GREY: RGBColor = RGBColor(232, 232, 232);
const ORANGE: RGBColor = RGBColor(230, 120, 0);
const GREEN: RGBColor = RGBColor(0, 140, 60);
const PURPLE: RGBColor = RGBColor(120, 60, 170);

/// Width and height of the plot, pixels.
const SIZE: (u32, u32) = (1200, 1200);

/// Draws the plot into `out` (PNG).
pub fn draw(out: &Path, samples: &[Sample], marks: &Marks) -> Result<(), Box<dyn Error>> {
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw_panels(&mut rgb, samples, marks)?;
    let file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let png = image::codecs::png::PngEncoder::new_with_quality(
        file,
        image::codecs::png::CompressionType::Best,
        image::codecs::png::FilterType::Adaptive,
    );
    image::ImageEncoder::write_image(png, &rgb, SIZE.0, SIZE.1, image::ColorType::Rgb8)?;
    Ok(())
}

fn draw_panels(rgb: &mut [u8], samples: &[Sample], marks: &Marks) -> Result<(), Box<dyn Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, rest) = root.split_vertically(40);
    title.draw_text(
        &marks.title,
        &("sans-serif", 22).into_text_style(&title),
        (20, 10),
    )?;
    let panels = rest.split_evenly((4, 1));
    let t_max = samples.last().map_or(1, |s| s.t) as f64;
    let faults: Vec<f64> = samples
        .iter()
        .filter(|s| !s.fault.is_empty())
        .map(|s| s.t as f64)
        .collect();
    let shade = |lo: f64, hi: f64| {
        faults
            .iter()
            .map(move |t| Rectangle::new([(t - 1.0, lo), (*t, hi)], GREY.filled()))
            .collect::<Vec<_>>()
    };

    // Resident memory.
    let rss: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t as f64, s.rss_kib as f64 / 1024.0))
        .collect();
    let top = rss.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut c = chart(
        &panels[0],
        "Resident memory (MiB); shaded: a fault is on",
        t_max,
        0.0..top,
    )?;
    c.draw_series(shade(0.0, top))?;
    c.draw_series(LineSeries::new(rss, &BLUE))?
        .label("VmRSS")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new(
        vec![(marks.warmup as f64, 0.0), (marks.warmup as f64, top)],
        BLACK.mix(0.4),
    ))?
    .label("end of warm-up")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    if let Some((at_warmup, per_min)) = marks.fit {
        let line = |t: f64| {
            (
                t,
                (at_warmup + per_min * (t - marks.warmup as f64) / 60.0) / 1024.0,
            )
        };
        c.draw_series(LineSeries::new(
            vec![line(marks.warmup as f64), line(t_max)],
            RED.stroke_width(2),
        ))?
        .label(format!("least-squares trend: {per_min:+.1} KiB/min"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    legend(&mut c, SeriesLabelPosition::LowerLeft)?;

    // File descriptors and connections.
    let fds: Vec<(f64, f64)> = samples.iter().map(|s| (s.t as f64, s.fds as f64)).collect();
    let conns: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.t as f64, s.open_connections?)))
        .collect();
    let top = fds.iter().chain(&conns).map(|p| p.1).fold(1.0, f64::max) * 1.2;
    let mut c = chart(
        &panels[1],
        "Open file descriptors and client connections",
        t_max,
        0.0..top,
    )?;
    c.draw_series(shade(0.0, top))?;
    c.draw_series(LineSeries::new(fds, &BLUE))?
        .label("open fds (/proc/PID/fd)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    c.draw_series(LineSeries::new(conns, &ORANGE))?
        .label("permgate_open_connections")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ORANGE));
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;

    // Latency, log scale.
    let floor = 0.05;
    let p50: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t as f64, s.p50_ms.max(floor)))
        .collect();
    let p99: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.t as f64, s.p99_ms.max(floor)))
        .collect();
    let top = p99.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let mut c = ChartBuilder::on(&panels[2])
        .caption("Latency per second (ms, log scale)", ("sans-serif", 16))
        .margin(8)
        .margin_right(24)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, (floor..top).log_scale())?;
    c.configure_mesh()
        .x_desc("seconds")
        .light_line_style(WHITE)
        .draw()?;
    c.draw_series(
        faults
            .iter()
            .map(|t| Rectangle::new([(t - 1.0, floor), (*t, top)], GREY.filled())),
    )?;
    c.draw_series(LineSeries::new(p50, &GREEN))?
        .label("p50")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    c.draw_series(LineSeries::new(p99, &RED))?
        .label("p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;

    // Answers by class.
    let groups: [(&str, &[usize], RGBColor); 4] = [
        ("forwarded (2xx)", &[0], GREEN),
        (
            "refused by the gateway (400, 401, 403, 413)",
            &[1, 2, 3, 4],
            BLUE,
        ),
        ("faults (502, 503, 504)", &[5, 6, 7], ORANGE),
        ("other status or no answer", &[8, 9], PURPLE),
    ];
    let series: Vec<Vec<(f64, f64)>> = groups
        .iter()
        .map(|(_, idx, _)| {
            samples
                .iter()
                .map(|s| {
                    (
                        s.t as f64,
                        idx.iter().map(|i| s.classes[*i]).sum::<u64>() as f64,
                    )
                })
                .collect()
        })
        .collect();
    let top = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.3;
    let mut c = chart(&panels[3], "Answers per second by class", t_max, 0.0..top)?;
    c.draw_series(shade(0.0, top))?;
    for ((name, _, color), points) in groups.iter().zip(series) {
        let color = *color;
        c.draw_series(LineSeries::new(points, color))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    legend(&mut c, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

type Chart<'a> = ChartContext<
    'a,
    BitMapBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn chart<'a>(
    area: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
    caption: &str,
    t_max: f64,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a>, Box<dyn Error>> {
    let mut c = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(8)
        .margin_right(24)
        .x_label_area_size(28)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, y)?;
    c.configure_mesh()
        .x_desc("seconds")
        .light_line_style(WHITE)
        .draw()?;
    Ok(c)
}

fn legend<'a, CT: CoordTranslate>(
    c: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    at: SeriesLabelPosition,
) -> Result<(), Box<dyn Error>> {
    c.configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}
