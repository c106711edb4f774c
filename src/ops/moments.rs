//! Per-channel batch statistics built from one `H×W` plane at a time.
//!
//! Design notes: `docs/design.md`, "ops::moments".

use crate::ops::simd::plane_sums;

/// Count, mean and sum of squared deviations from the mean of a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Moments {
    count: f64,
    mean: f64,
    squares: f64,
}

impl Moments {
    /// The moments of `plane`, in two passes over it: a first estimate of the mean, then sums
    /// of the values shifted by it, which are small and so keep their precision in `f32` even
    /// when the mean is large against the spread.
    pub(crate) fn of_plane(plane: &[f32]) -> Self {
        if plane.is_empty() {
            return Self::default();
        }
        let count = plane.len() as f64;
        let centre = (plane_sums(plane, 0.0).0 as f64 / count) as f32;
        let (shifted, shifted_squares) = plane_sums(plane, centre);
        let shift = shifted as f64 / count;
        Self {
            count,
            mean: centre as f64 + shift,
            squares: (shifted_squares as f64 - shifted as f64 * shift).max(0.0),
        }
    }

    /// The moments of the union of the two sets.
    pub(crate) fn merge(self, other: Self) -> Self {
        if other.count == 0.0 {
            return self;
        }
        if self.count == 0.0 {
            return other;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        Self {
            count,
            mean: self.mean + delta * (other.count / count),
            squares: self.squares
                + other.squares
                + delta * delta * (self.count * other.count / count),
        }
    }

    /// `(mean, biased variance)`, as batch norm uses them.
    pub(crate) fn mean_variance(&self) -> (f32, f32) {
        let variance = if self.count > 0.0 {
            self.squares / self.count
        } else {
            0.0
        };
        (self.mean as f32, variance as f32)
    }
}

/// Merges the moments of each map of the `[n, moments.len(), plane]` values into `moments`.
pub(crate) fn accumulate(moments: &mut [Moments], values: &[f32], plane: usize) {
    if plane == 0 {
        return;
    }
    for image in values.chunks_exact(moments.len() * plane) {
        for (channel, map) in moments.iter_mut().zip(image.chunks_exact(plane)) {
            *channel = channel.merge(Moments::of_plane(map));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean and biased variance in f64, by their definitions.
    fn reference(values: &[f32]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let variance = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, variance)
    }

    #[test]
    fn merged_plane_moments_give_the_mean_and_variance_of_the_whole() {
        // Two channels, three images, planes of 5; a large offset in channel 1 tests precision.
        let (channels, plane, images) = (2, 5, 3);
        let values: Vec<f32> = (0..channels * plane * images)
            .map(|i| {
                let channel = (i / plane) % channels;
                let wobble = ((i * 7919) % 13) as f32 / 13.0 - 0.5;
                if channel == 1 {
                    1.0e4 + wobble
                } else {
                    wobble * 3.0
                }
            })
            .collect();
        let mut moments = vec![Moments::default(); channels];
        accumulate(&mut moments, &values, plane);
        for (channel, m) in moments.iter().enumerate() {
            let of_channel: Vec<f32> = values
                .chunks_exact(plane)
                .enumerate()
                .filter(|(index, _)| index % channels == channel)
                .flat_map(|(_, map)| map.iter().copied())
                .collect();
            let (mean, variance) = reference(&of_channel);
            let (m_mean, m_variance) = m.mean_variance();
            assert!(
                (m_mean as f64 - mean).abs() <= 1e-6 * mean.abs().max(1.0),
                "{channel}"
            );
            assert!(
                (m_variance as f64 - variance).abs() <= 1e-4 * variance,
                "channel {channel}: {m_variance} against {variance}"
            );
        }
    }

    #[test]
    fn merging_with_nothing_changes_nothing() {
        let m = Moments::of_plane(&[1.0, 2.0, 4.0]);
        assert_eq!(m.merge(Moments::default()), m);
        assert_eq!(Moments::default().merge(m), m);
        assert_eq!(Moments::of_plane(&[]), Moments::default());
    }
}
