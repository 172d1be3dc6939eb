//! Curves made ready to draw: smoothing and downsampling to a chart's width, for the TUI's
//! braille charts and `lab report`'s figures alike.

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
    fn smoothing_is_debiased_and_off_at_zero() {
        let pts = vec![(0.0, 1.0), (1.0, 1.0), (2.0, 1.0)];
        assert_eq!(smooth(&pts, 0.0), pts);
        for (_, y) in smooth(&pts, 0.9) {
            assert!((y - 1.0).abs() < 1e-12);
        }
    }
}
