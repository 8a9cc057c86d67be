//! Sparklines as inline SVG, drawn on the server: they need no script and no library,
//! and show with JavaScript off.

use std::fmt::Write as _;

const WIDTH: f64 = 120.0;
const HEIGHT: f64 = 24.0;

/// An SVG polyline of `points` (oldest first), scaled to its own maximum; the caller
/// marks it safe (it holds numbers only).
pub fn svg(points: &[f64]) -> String {
    let max = points.iter().copied().fold(0.0, f64::max);
    let step = if points.len() > 1 {
        WIDTH / (points.len() - 1) as f64
    } else {
        0.0
    };
    let mut line = String::new();
    for (i, p) in points.iter().enumerate() {
        let y = if max > 0.0 {
            HEIGHT - 1.0 - (p / max) * (HEIGHT - 2.0)
        } else {
            HEIGHT - 1.0
        };
        let _ = write!(line, "{:.1},{:.1} ", i as f64 * step, y);
    }
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"last {} minutes, peak {max:.2}\"><polyline fill=\"none\" \
         stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/></svg>",
        points.len(),
        line.trim_end()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn points_scale_to_the_peak() {
        let svg = super::svg(&[0.0, 5.0, 10.0]);
        assert!(
            svg.contains("points=\"0.0,23.0 60.0,12.0 120.0,1.0\""),
            "{svg}"
        );
        assert!(super::svg(&[]).contains("points=\"\""));
    }
}
