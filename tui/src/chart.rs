//! Curves made ready to draw: smoothing and downsampling to the chart's width, so 20 runs of
//! 10,000 points each draw in well under a frame.

pub use lab::curves::{downsample, smooth};

/// Bounds of all points, widened a little so flat curves still show.
pub fn bounds<'a>(
    curves: impl IntoIterator<Item = &'a [(f64, f64)]>,
) -> Option<([f64; 2], [f64; 2])> {
    let mut b: Option<([f64; 2], [f64; 2])> = None;
    for c in curves {
        for &(x, y) in c {
            if !x.is_finite() || !y.is_finite() {
                continue;
            }
            let e = b.get_or_insert(([x, x], [y, y]));
            e.0[0] = e.0[0].min(x);
            e.0[1] = e.0[1].max(x);
            e.1[0] = e.1[0].min(y);
            e.1[1] = e.1[1].max(y);
        }
    }
    b.map(|(mut x, mut y)| {
        if x[1] - x[0] < 1e-12 {
            x = [x[0] - 1.0, x[1] + 1.0];
        }
        let pad = if y[1] - y[0] < 1e-12 {
            (y[0].abs() * 0.1).max(0.5)
        } else {
            (y[1] - y[0]) * 0.05
        };
        y = [y[0] - pad, y[1] + pad];
        (x, y)
    })
}

/// A compact axis label.
pub fn label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_runs_of_ten_thousand_points_are_instant() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i as f64).sin())).collect();
        let start = std::time::Instant::now();
        for _ in 0..20 {
            let s = smooth(&pts, 0.9);
            assert!(downsample(&s, 120).len() <= 480);
        }
        // Generous for a debug build on a loaded 2-core machine; a frame is ~16 ms.
        assert!(start.elapsed().as_millis() < 250, "{:?}", start.elapsed());
    }
}
