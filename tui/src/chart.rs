//! Curves made ready to draw: smoothing and downsampling to the chart's width, so 20 runs of
//! 10,000 points each draw in well under a frame.

/// Exponential moving average, debiased like TensorBoard's smoothing slider (`weight` in [0, 1);
/// 0 leaves the curve as it is).
pub fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    if weight <= 0.0 {
        return points.to_vec();
    }
    let mut last = 0.0;
    let mut debias = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            last = last * weight + (1.0 - weight) * y;
            debias = debias * weight + (1.0 - weight);
            (x, last / debias)
        })
        .collect()
}

/// Keeps at most about `4 * buckets` points: for each of `buckets` equal slices of the x range,
/// its first, lowest, highest and last point, so spikes survive and the shape is exact at the
/// chart's resolution.
pub fn downsample(points: &[(f64, f64)], buckets: usize) -> Vec<(f64, f64)> {
    if buckets == 0 || points.len() <= buckets.saturating_mul(4) {
        return points.to_vec();
    }
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let width = (x1 - x0).max(f64::MIN_POSITIVE);
    let mut out = Vec::with_capacity(buckets * 4);
    let mut start = 0;
    while start < points.len() {
        let bucket = (((points[start].0 - x0) / width) * buckets as f64) as usize;
        let mut end = start + 1;
        while end < points.len()
            && ((((points[end].0 - x0) / width) * buckets as f64) as usize).min(buckets - 1)
                == bucket.min(buckets - 1)
        {
            end += 1;
        }
        let slice = &points[start..end];
        let mut lo = 0;
        let mut hi = 0;
        for (i, p) in slice.iter().enumerate() {
            if p.1 < slice[lo].1 {
                lo = i;
            }
            if p.1 > slice[hi].1 {
                hi = i;
            }
        }
        let mut keep = [0, lo, hi, slice.len() - 1];
        keep.sort_unstable();
        let mut previous = usize::MAX;
        for k in keep {
            if k != previous {
                out.push(slice[k]);
                previous = k;
            }
        }
        start = end;
    }
    out
}

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
    fn downsampling_keeps_extremes_and_ends() {
        let mut pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        pts[5_000].1 = 100.0;
        pts[7_000].1 = -50.0;
        let d = downsample(&pts, 50);
        assert!(d.len() <= 200, "{}", d.len());
        assert_eq!(d.first(), pts.first());
        assert_eq!(d.last(), pts.last());
        assert!(d.contains(&(5_000.0, 100.0)));
        assert!(d.contains(&(7_000.0, -50.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        // Short curves are left alone.
        assert_eq!(downsample(&pts[..10], 50), pts[..10].to_vec());
    }

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

    #[test]
    fn smoothing_is_debiased_and_off_at_zero() {
        let pts = vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0)];
        assert_eq!(smooth(&pts, 0.0), pts);
        for (_, y) in smooth(&pts, 0.9) {
            assert!((y - 1.0).abs() < 1e-12);
        }
    }
}
