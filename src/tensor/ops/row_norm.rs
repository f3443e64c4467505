//! The slice kernels of the row normalisations (group, layer and instance norm): each of
//! `rows` runs of contiguous elements is normalised by its own mean and biased variance,
//! then scaled and shifted by affine parameters shared along segments of the row.
//!
//! Statistics are accumulated in `f64`; the kernels walk contiguous row slices, one row per
//! rayon item, and allocate nothing per row.

use rayon::prelude::*;

/// Rows per rayon task are chosen so a task has at least this many elements.
const MIN_TASK_ELEMENTS: usize = 1 << 14;

/// How a normalisation splits its contiguous input.
///
/// `rows` runs of `row_len` elements are each normalised on their own. Each row is cut into
/// segments of `segment_len` elements that share one affine weight and bias: element `j` of
/// row `r` uses parameter `(r % groups) · (row_len / segment_len) + j / segment_len`. Group
/// norm has `groups = G` and `segment_len = S` (one parameter per channel); layer norm has
/// `groups = 1` and `segment_len = 1` (one parameter per element of the row).
#[derive(Clone, Copy, Debug)]
pub(super) struct RowLayout {
    pub(super) rows: usize,
    pub(super) row_len: usize,
    pub(super) segment_len: usize,
    pub(super) groups: usize,
}

impl RowLayout {
    fn segments(&self) -> usize {
        self.row_len / self.segment_len.max(1)
    }

    /// The parameter of segment `k` of row `r`.
    fn param(&self, r: usize, k: usize) -> usize {
        (r % self.groups.max(1)) * self.segments() + k
    }

    fn rows_per_task(&self) -> usize {
        MIN_TASK_ELEMENTS.div_ceil(self.row_len.max(1))
    }
}

/// The mean and biased variance of one row, in `f64`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Moments {
    pub(super) mean: f64,
    pub(super) var: f64,
}

/// The mean and biased variance of every row (two passes, so no cancellation).
pub(super) fn row_moments(layout: &RowLayout, x: &[f32]) -> Vec<Moments> {
    if layout.row_len == 0 {
        return vec![
            Moments {
                mean: 0.0,
                var: 0.0
            };
            layout.rows
        ];
    }
    let n = layout.row_len as f64;
    x.par_chunks(layout.row_len)
        .with_min_len(layout.rows_per_task())
        .map(|row| {
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = row
                .iter()
                .map(|&v| {
                    let d = f64::from(v) - mean;
                    d * d
                })
                .sum::<f64>()
                / n;
            Moments { mean, var }
        })
        .collect()
}

/// What the backward pass needs of the forward's statistics: per row, the mean and
/// `1 / sqrt(var + eps)`.
pub(super) struct RowStats {
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

impl RowStats {
    pub(super) fn new(moments: &[Moments], eps: f64) -> RowStats {
        RowStats {
            mean: moments.iter().map(|m| m.mean as f32).collect(),
            rstd: moments
                .iter()
                .map(|m| (1.0 / (m.var + eps).sqrt()) as f32)
                .collect(),
        }
    }
}

/// The affine parameters as slices, ones and zeros standing in for absent ones (one small
/// allocation per call keeps the row loops branch-free).
pub(super) struct Affine {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Affine {
    pub(super) fn new(layout: &RowLayout, weight: Option<&[f32]>, bias: Option<&[f32]>) -> Affine {
        let len = layout.groups.max(1) * layout.segments();
        Affine {
            weight: weight.map_or_else(|| vec![1.0; len], <[f32]>::to_vec),
            bias: bias.map_or_else(|| vec![0.0; len], <[f32]>::to_vec),
        }
    }

    /// The weights and biases of row `r`'s segments.
    fn row(&self, layout: &RowLayout, r: usize) -> (&[f32], &[f32]) {
        let start = layout.param(r, 0);
        let end = start + layout.segments();
        (&self.weight[start..end], &self.bias[start..end])
    }
}

/// `y = (x - mean)·rstd·weight + bias`, row by row.
pub(super) fn normalize(
    layout: &RowLayout,
    stats: &RowStats,
    x: &[f32],
    affine: &Affine,
) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if x.is_empty() {
        return y;
    }
    let seg = layout.segment_len;
    y.par_chunks_mut(layout.row_len)
        .zip(x.par_chunks(layout.row_len))
        .enumerate()
        .with_min_len(layout.rows_per_task())
        .for_each(|(r, (y_row, x_row))| {
            let (mean, rstd) = (stats.mean[r], stats.rstd[r]);
            let (ws, bs) = affine.row(layout, r);
            if seg == 1 {
                // One parameter per element (layer norm): a flat, vectorisable loop.
                let params = ws.iter().zip(bs);
                for ((y, &x), (&w, &b)) in y_row.iter_mut().zip(x_row).zip(params) {
                    *y = (x - mean) * (rstd * w) + b;
                }
                return;
            }
            let segments = y_row.chunks_mut(seg).zip(x_row.chunks(seg));
            for ((ys, xs), (&w, &b)) in segments.zip(ws.iter().zip(bs)) {
                let scale = rstd * w;
                for (y, &x) in ys.iter_mut().zip(xs) {
                    *y = (x - mean) * scale + b;
                }
            }
        });
    y
}

/// Calls `f(x, g, w)` for every element of a row with its segment's weight.
pub(super) fn for_each_weighted(
    seg: usize,
    x_row: &[f32],
    dy_row: &[f32],
    ws: &[f32],
    mut f: impl FnMut(usize, f32, f32, f32),
) {
    if seg == 1 {
        for (j, ((&x, &g), &w)) in x_row.iter().zip(dy_row).zip(ws).enumerate() {
            f(j, x, g, w);
        }
        return;
    }
    let segments = x_row.chunks(seg).zip(dy_row.chunks(seg)).zip(ws);
    for (k, ((xs, gs), &w)) in segments.enumerate() {
        for (i, (&x, &g)) in xs.iter().zip(gs).enumerate() {
            f(k * seg + i, x, g, w);
        }
    }
}

/// With `x̂ = (x - mean)·rstd` and `y = w·x̂ + b` over the `K` elements of a row:
/// `dx = rstd·(g·w - Σ(g·w)/K - x̂·Σ(g·w·x̂)/K)`.
pub(super) fn normalize_backward_input(
    layout: &RowLayout,
    stats: &RowStats,
    x: &[f32],
    affine: &Affine,
    dy: &[f32],
) -> Vec<f32> {
    let mut dx = vec![0.0f32; x.len()];
    if x.is_empty() {
        return dx;
    }
    let len = layout.row_len as f64;
    let seg = layout.segment_len;
    dx.par_chunks_mut(layout.row_len)
        .zip(x.par_chunks(layout.row_len))
        .zip(dy.par_chunks(layout.row_len))
        .enumerate()
        .with_min_len(layout.rows_per_task())
        .for_each(|(r, ((dx_row, x_row), dy_row))| {
            let (mean, rstd) = (stats.mean[r], stats.rstd[r]);
            let (ws, _) = affine.row(layout, r);
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for_each_weighted(seg, x_row, dy_row, ws, |_, x, g, w| {
                let gw = f64::from(g * w);
                sum_g += gw;
                sum_gx += gw * f64::from((x - mean) * rstd);
            });
            let (mean_g, mean_gx) = ((sum_g / len) as f32, (sum_gx / len) as f32);
            for_each_weighted(seg, x_row, dy_row, ws, |j, x, g, w| {
                let xhat = (x - mean) * rstd;
                dx_row[j] = rstd * (g * w - mean_g - xhat * mean_gx);
            });
        });
    dx
}

/// `dw = Σ g·x̂` and `db = Σ g` per parameter, over every element that uses it.
pub(super) fn normalize_backward_params(
    layout: &RowLayout,
    stats: &RowStats,
    x: &[f32],
    dy: &[f32],
    param_len: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut dw = vec![0.0f64; param_len];
    let mut db = vec![0.0f64; param_len];
    let seg = layout.segment_len;
    if !x.is_empty() {
        let rows = x.chunks(layout.row_len).zip(dy.chunks(layout.row_len));
        for (r, (x_row, dy_row)) in rows.enumerate() {
            let (mean, rstd) = (stats.mean[r], stats.rstd[r]);
            let start = layout.param(r, 0);
            let dw_row = &mut dw[start..start + layout.segments()];
            let db_row = &mut db[start..start + layout.segments()];
            if seg == 1 {
                let sums = dw_row.iter_mut().zip(db_row.iter_mut());
                for ((dw, db), (&x, &g)) in sums.zip(x_row.iter().zip(dy_row)) {
                    *dw += f64::from(g * ((x - mean) * rstd));
                    *db += f64::from(g);
                }
                continue;
            }
            let segments = x_row.chunks(seg).zip(dy_row.chunks(seg));
            for ((dw, db), (xs, gs)) in dw_row.iter_mut().zip(db_row.iter_mut()).zip(segments) {
                let (mut sum_gx, mut sum_g) = (0.0f64, 0.0f64);
                for (&x, &g) in xs.iter().zip(gs) {
                    sum_gx += f64::from(g * ((x - mean) * rstd));
                    sum_g += f64::from(g);
                }
                *dw += sum_gx;
                *db += sum_g;
            }
        }
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    (to_f32(dw), to_f32(db))
}
