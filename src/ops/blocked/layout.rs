//! How one image's activation lies in memory between the layers of the blocked path.

/// Channels per block: one 16-lane vector at AVX-512, two at AVX2, four at NEON.
pub(crate) const BLOCK: usize = 16;

/// The order of an activation's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Packing {
    /// `[C][H][W]`: the network's input, as the images come.
    Planes,
    /// `[⌈C/16⌉][H][W][16]`: every activation after the first layer; channels past `C` in
    /// the last block hold zeros.
    Blocked,
}

/// One image's activation: `channels` maps of `height × width` values with a zero `border`
/// around each, for the padding of the convolution that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Map {
    pub packing: Packing,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub border: [usize; 2],
}

/// Distances between values of a [`Map`], in values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strides {
    /// From one block (or, for planes, from the one pseudo-block) to the next.
    pub block: usize,
    /// From one row to the next.
    pub row: usize,
    /// From one pixel to the next in a row.
    pub pixel: usize,
    /// From one channel to the next within a block.
    pub channel: usize,
    /// Channels in a block: 16, or all of them for planes.
    pub channels_per_block: usize,
    /// Blocks: `⌈C/16⌉`, or 1 for planes.
    pub blocks: usize,
}

impl Map {
    /// Rows and columns with the border: `[height + 2·border, width + 2·border]`.
    pub(crate) fn padded(&self) -> [usize; 2] {
        [
            self.height + 2 * self.border[0],
            self.width + 2 * self.border[1],
        ]
    }

    pub(crate) fn strides(&self) -> Strides {
        let [rows, columns] = self.padded();
        match self.packing {
            Packing::Planes => Strides {
                block: 0,
                row: columns,
                pixel: 1,
                channel: rows * columns,
                channels_per_block: self.channels,
                blocks: 1,
            },
            Packing::Blocked => Strides {
                block: rows * columns * BLOCK,
                row: columns * BLOCK,
                pixel: BLOCK,
                channel: 1,
                channels_per_block: BLOCK,
                blocks: self.channels.div_ceil(BLOCK),
            },
        }
    }

    /// Values the map takes, border included.
    pub(crate) fn len(&self) -> usize {
        let [rows, columns] = self.padded();
        match self.packing {
            Packing::Planes => self.channels * rows * columns,
            Packing::Blocked => self.channels.div_ceil(BLOCK) * rows * columns * BLOCK,
        }
    }

    /// Offset of the first interior value (row `border`, column `border`) of the first block.
    pub(crate) fn interior(&self) -> usize {
        let s = self.strides();
        self.border[0] * s.row + self.border[1] * s.pixel
    }

    /// Sets the border of every block (or plane) of `data` to zero; the interior is left as it is.
    pub(crate) fn clear_border(&self, data: &mut [f32]) {
        let [top, left] = self.border;
        if top == 0 && left == 0 {
            return;
        }
        let s = self.strides();
        let [rows, _] = self.padded();
        let planes = match self.packing {
            Packing::Planes => self.channels,
            Packing::Blocked => s.blocks,
        };
        let plane_len = rows * s.row;
        for plane in data[..self.len()].chunks_exact_mut(plane_len) {
            let (head, rest) = plane.split_at_mut(top * s.row);
            head.fill(0.0);
            let (body, tail) = rest.split_at_mut(self.height * s.row);
            tail.fill(0.0);
            for row in body.chunks_exact_mut(s.row) {
                let (start, rest) = row.split_at_mut(left * s.pixel);
                start.fill(0.0);
                let end = rest.len() - left * s.pixel;
                rest[end..].fill(0.0);
            }
        }
        debug_assert_eq!(planes * plane_len, self.len());
    }
}

/// Copies one image's planes (`[C][H][W]`, row-major) into the interior of `map` (planes with
/// a border) in `data`, and clears the border.
pub(crate) fn planes_with_border(image: &[f32], map: &Map, data: &mut [f32]) {
    debug_assert_eq!(map.packing, Packing::Planes);
    map.clear_border(data);
    let s = map.strides();
    let width = map.width;
    for (channel, plane) in image.chunks_exact(map.height * width).enumerate() {
        let start = channel * s.channel + map.interior();
        for (y, row) in plane.chunks_exact(width).enumerate() {
            let at = start + y * s.row;
            data[at..at + width].copy_from_slice(row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borders_are_cleared_and_interiors_kept() {
        let map = Map {
            packing: Packing::Blocked,
            channels: 20,
            height: 3,
            width: 2,
            border: [1, 2],
        };
        assert_eq!(map.padded(), [5, 6]);
        assert_eq!(map.len(), 2 * 5 * 6 * BLOCK);
        let mut data = vec![1.0; map.len()];
        map.clear_border(&mut data);
        let s = map.strides();
        for block in 0..2 {
            for y in 0..5 {
                for x in 0..6 {
                    let inside = (1..4).contains(&y) && (2..4).contains(&x);
                    let at = block * s.block + y * s.row + x * s.pixel;
                    let expected = if inside { 1.0 } else { 0.0 };
                    assert!(
                        data[at..at + BLOCK].iter().all(|&v| v == expected),
                        "{y} {x}"
                    );
                }
            }
        }
    }

    #[test]
    fn planes_land_inside_their_border() {
        let map = Map {
            packing: Packing::Planes,
            channels: 2,
            height: 2,
            width: 3,
            border: [1, 1],
        };
        let image: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let mut data = vec![9.0; map.len()];
        planes_with_border(&image, &map, &mut data);
        #[rustfmt::skip]
        let expected = [
            0., 0., 0., 0., 0.,
            0., 1., 2., 3., 0.,
            0., 4., 5., 6., 0.,
            0., 0., 0., 0., 0.,
            0., 0., 0., 0., 0.,
            0., 7., 8., 9., 0.,
            0., 10., 11., 12., 0.,
            0., 0., 0., 0., 0.,
        ];
        assert_eq!(data, expected);
    }
}
