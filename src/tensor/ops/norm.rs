//! Group, layer and instance normalisation, forward and backward.
//!
//! All three normalise runs of contiguous elements ("rows") by their own mean and biased
//! variance, then apply an optional affine weight and bias:
//! - `group_norm` on `[N, C, *]`: one row per (sample, group), `C/G · S` elements long;
//! - `instance_norm`: `group_norm` with one group per channel, one row per (sample,
//!   channel), with running statistics as `batch_norm` keeps them;
//! - `layer_norm`: one row per position of the leading dims, over the trailing
//!   `normalized_shape`, with an elementwise weight and bias of that shape.
//!
//! Statistics are accumulated in `f64`; the kernels walk contiguous row slices, one row per
//! rayon item.

use rayon::prelude::*;

use crate::tensor::autograd::{BackwardFn, Saved, SavedTensor, no_grad, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::ops::nn::{BatchNormArgs, channel_split};
use crate::tensor::shape::ShapeError;

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
struct RowLayout {
    rows: usize,
    row_len: usize,
    segment_len: usize,
    groups: usize,
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
struct Moments {
    mean: f64,
    var: f64,
}

/// The mean and biased variance of every row (two passes, so no cancellation).
fn row_moments(layout: &RowLayout, x: &[f32]) -> Vec<Moments> {
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
struct RowStats {
    mean: Vec<f32>,
    rstd: Vec<f32>,
}

impl RowStats {
    fn new(moments: &[Moments], eps: f64) -> RowStats {
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
struct Affine {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Affine {
    fn new(layout: &RowLayout, weight: Option<&[f32]>, bias: Option<&[f32]>) -> Affine {
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
fn normalize(layout: &RowLayout, stats: &RowStats, x: &[f32], affine: &Affine) -> Vec<f32> {
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
fn for_each_weighted(
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
fn normalize_backward_input(
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
fn normalize_backward_params(
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

/// Backward of the row normalisations; saved `[input, weight?]`. The node's inputs are
/// `[input, weight?, bias?]`, as PyTorch's.
struct RowNormBackward {
    name: &'static str,
    layout: RowLayout,
    stats: RowStats,
    shape: Vec<usize>,
    param_shape: Vec<usize>,
    has_weight: bool,
    has_bias: bool,
}

impl BackwardFn for RowNormBackward {
    fn name(&self) -> &'static str {
        self.name
    }

    fn backward(&self, g: &Tensor, saved: &Saved, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(false);
        let x = saved.get(0)?.to_vec();
        let weight = if self.has_weight {
            Some(saved.get(1)?.to_vec())
        } else {
            None
        };
        let affine = Affine::new(&self.layout, weight.as_deref(), None);
        let dy = g.to_vec();
        let mut out = vec![if need(0) {
            let dx = normalize_backward_input(&self.layout, &self.stats, &x, &affine, &dy);
            Some(Tensor::from_vec(dx, &self.shape)?)
        } else {
            None
        }];
        let (want_w, want_b) = (
            self.has_weight && need(1),
            self.has_bias && need(1 + usize::from(self.has_weight)),
        );
        let (dw, db) = if want_w || want_b {
            let param_len = self.param_shape.iter().product();
            let (dw, db) = normalize_backward_params(&self.layout, &self.stats, &x, &dy, param_len);
            (
                Some(Tensor::from_vec(dw, &self.param_shape)?),
                Some(Tensor::from_vec(db, &self.param_shape)?),
            )
        } else {
            (None, None)
        };
        if self.has_weight {
            out.push(dw.filter(|_| want_w));
        }
        if self.has_bias {
            out.push(db.filter(|_| want_b));
        }
        Ok(out)
    }
}

/// E0306 unless `t` (a weight, bias or running statistic of `op`) has shape `expected`.
fn check_param(op: &'static str, t: Option<&Tensor>, expected: &[usize], what: &str) -> Result<()> {
    match t {
        Some(t) if t.shape() != expected => Err(TensorError::ShapeMismatch {
            op,
            lhs: t.shape().to_vec(),
            rhs: expected.to_vec(),
            detail: format!(" ({what})"),
        }),
        _ => Ok(()),
    }
}

impl Tensor {
    /// Normalises this tensor's rows as `layout` says with the given statistics and records
    /// a node named `name` over `[self, weight?, bias?]`.
    fn normalize_rows(
        &self,
        name: &'static str,
        layout: RowLayout,
        moments: &[Moments],
        eps: f64,
        (weight, bias): (Option<&Tensor>, Option<&Tensor>),
        param_shape: Vec<usize>,
    ) -> Result<Tensor> {
        let stats = RowStats::new(moments, eps);
        let w = weight.map(Tensor::to_vec);
        let b = bias.map(Tensor::to_vec);
        let affine = Affine::new(&layout, w.as_deref(), b.as_deref());
        let y = self.with_slice(|x| normalize(&layout, &stats, x, &affine));
        let out = Tensor::from_vec(y, self.shape())?;
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let shape = self.shape().to_vec();
        Ok(record(out, &inputs, || {
            let mut saved = vec![Some(SavedTensor::new(self))];
            saved.extend(weight.map(|w| Some(SavedTensor::new(w))));
            let backward = RowNormBackward {
                name,
                layout,
                stats,
                shape,
                param_shape,
                has_weight: weight.is_some(),
                has_bias: bias.is_some(),
            };
            (Op::Custom(Box::new(backward)), saved)
        }))
    }

    /// `group_norm(x, num_groups, weight, bias, eps)` on an `[N, C, *]` input: the channels
    /// split into `num_groups` groups, each (sample, group) normalised by its own mean and
    /// biased variance, then `weight[c]·x̂ + bias[c]` per channel (`weight`, `bias`: `[C]`).
    ///
    /// E0304 below 2 dimensions; E0311 when `num_groups` is 0 or does not divide `C`; E0306
    /// for a weight or bias that is not `[C]`.
    pub fn group_norm(
        &self,
        num_groups: usize,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        let op = "group_norm";
        if self.ndim() < 2 {
            return Err(TensorError::Rank {
                op,
                expected: "an [N, C, ...] input of at least 2 dimensions",
                shape: self.shape().to_vec(),
            });
        }
        let (n, c, s) = channel_split(self.shape());
        if num_groups == 0 || c % num_groups != 0 {
            return Err(ShapeError::GroupsNotDividingChannels {
                op,
                num_groups,
                channels: c,
                shape: self.shape().to_vec(),
            }
            .into());
        }
        let per_channel = "weight and bias need one value per channel";
        check_param(op, weight, &[c], per_channel)?;
        check_param(op, bias, &[c], per_channel)?;
        let layout = RowLayout {
            rows: n * num_groups,
            row_len: c / num_groups * s,
            segment_len: s,
            groups: num_groups,
        };
        let moments = self.with_slice(|x| row_moments(&layout, x));
        self.normalize_rows(
            "NativeGroupNormBackward0",
            layout,
            &moments,
            eps,
            (weight, bias),
            vec![c],
        )
    }

    /// `layer_norm(x, normalized_shape, weight, bias, eps)`: each run over the trailing
    /// `normalized_shape` dims normalised by its own mean and biased variance, then
    /// `weight·x̂ + bias` elementwise (`weight`, `bias`: of shape `normalized_shape`).
    ///
    /// E0505 for an empty `normalized_shape`; E0306 when it is not the input's trailing
    /// dims, or for a weight or bias not of its shape.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        let op = "layer_norm";
        let k = normalized_shape.len();
        if k == 0 {
            return Err(TensorError::value(
                op,
                "normalized_shape must have at least one dimension, got []",
            ));
        }
        if self.ndim() < k || self.shape()[self.ndim() - k..] != *normalized_shape {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: normalized_shape.to_vec(),
                detail: format!(
                    " (normalized_shape must equal the input's last {k} dimension{})",
                    if k == 1 { "" } else { "s" }
                ),
            });
        }
        let of_shape = "weight and bias must have the shape normalized_shape";
        check_param(op, weight, normalized_shape, of_shape)?;
        check_param(op, bias, normalized_shape, of_shape)?;
        let layout = RowLayout {
            rows: self.shape()[..self.ndim() - k].iter().product(),
            row_len: normalized_shape.iter().product(),
            segment_len: 1,
            groups: 1,
        };
        let moments = self.with_slice(|x| row_moments(&layout, x));
        self.normalize_rows(
            "NativeLayerNormBackward0",
            layout,
            &moments,
            eps,
            (weight, bias),
            normalized_shape.to_vec(),
        )
    }

    /// `instance_norm(x, running_mean, running_var, weight, bias, use_input_stats,
    /// momentum, eps)` on an `[N, C, *]` input: with `use_input_stats` (the default), each
    /// (sample, channel) plane is normalised by its own mean and biased variance, and the
    /// running statistics, when given, move towards the planes' average (unbiased variance),
    /// as PyTorch's; otherwise the running statistics normalise, as `batch_norm` in eval.
    /// Then `weight[c]·x̂ + bias[c]` per channel.
    ///
    /// E0304 below 2 dimensions; E0306 for a statistic, weight or bias that is not `[C]`;
    /// E0505 for planes of one element with `use_input_stats`, or missing running statistics
    /// without it.
    pub fn instance_norm(&self, args: InstanceNormArgs<'_>) -> Result<Tensor> {
        let op = "instance_norm";
        if self.ndim() < 2 {
            return Err(TensorError::Rank {
                op,
                expected: "an [N, C, ...] input of at least 2 dimensions",
                shape: self.shape().to_vec(),
            });
        }
        let (n, c, s) = channel_split(self.shape());
        for (t, what) in [
            (args.running_mean, "running_mean"),
            (args.running_var, "running_var"),
            (args.weight, "weight"),
            (args.bias, "bias"),
        ] {
            check_param(op, t, &[c], &format!("{what} needs one value per channel"))?;
        }
        let shape: Vec<i64> = self.shape().iter().map(|&d| d as i64).collect();
        if !args.use_input_stats {
            if args.running_mean.is_none() || args.running_var.is_none() {
                return Err(TensorError::value(
                    op,
                    "running_mean and running_var are needed when use_input_stats is false",
                ));
            }
            // PyTorch runs batch_norm in eval mode and views the result back.
            let out = self.batch_norm(BatchNormArgs {
                running_mean: args.running_mean,
                running_var: args.running_var,
                weight: args.weight,
                bias: args.bias,
                training: false,
                momentum: args.momentum,
                eps: args.eps,
            })?;
            return out.view(&shape);
        }
        if s <= 1 {
            return Err(TensorError::value(
                op,
                format!(
                    "expected more than 1 spatial element when using input statistics, got input of shape {:?}",
                    self.shape()
                ),
            ));
        }
        let layout = RowLayout {
            rows: n * c,
            row_len: s,
            segment_len: s,
            groups: c,
        };
        let moments = self.with_slice(|x| row_moments(&layout, x));
        if n > 0 {
            update_running_stats(&args, &moments, n, c, s)?;
        }
        // PyTorch normalises through batch_norm on a [1, N·C, *] view and views the result
        // back: the graph shows both nodes.
        self.normalize_rows(
            "NativeBatchNormBackward0",
            layout,
            &moments,
            args.eps,
            (args.weight, args.bias),
            vec![c],
        )?
        .view(&shape)
    }
}

/// `running ← (1 - momentum)·running + momentum·(average over the batch of each plane's
/// statistic)`, the variance unbiased, in place and outside the graph.
fn update_running_stats(
    args: &InstanceNormArgs<'_>,
    moments: &[Moments],
    n: usize,
    c: usize,
    s: usize,
) -> Result<()> {
    let _no_grad = no_grad();
    let m = args.momentum;
    let unbiased = s as f64 / (s - 1) as f64;
    let update = |running: &Tensor, stat: &dyn Fn(&Moments) -> f64| -> Result<()> {
        let old = running.to_vec();
        let new = (0..c)
            .map(|ch| {
                let batch = (0..n).map(|b| stat(&moments[b * c + ch])).sum::<f64>() / n as f64;
                ((1.0 - m) * f64::from(old[ch]) + m * batch) as f32
            })
            .collect();
        running.copy_(&Tensor::from_vec(new, &[c])?)
    };
    if let Some(rm) = args.running_mean {
        update(rm, &|s| s.mean)?;
    }
    if let Some(rv) = args.running_var {
        update(rv, &|s| s.var * unbiased)?;
    }
    Ok(())
}

/// `instance_norm`'s arguments besides the input. [`Default`] gives `InstanceNorm2d`'s
/// defaults: no running statistics, no affine parameters, input statistics, momentum 0.1,
/// eps 1e-5.
#[derive(Clone, Copy)]
pub struct InstanceNormArgs<'a> {
    /// Running mean `[C]`, updated in place when `use_input_stats`.
    pub running_mean: Option<&'a Tensor>,
    /// Running variance `[C]` (unbiased), updated in place when `use_input_stats`.
    pub running_var: Option<&'a Tensor>,
    /// Scale `[C]`.
    pub weight: Option<&'a Tensor>,
    /// Shift `[C]`.
    pub bias: Option<&'a Tensor>,
    /// Normalise with each plane's own statistics (else with the running ones).
    pub use_input_stats: bool,
    /// Weight of the new statistic in the running average.
    pub momentum: f64,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl Default for InstanceNormArgs<'_> {
    fn default() -> Self {
        InstanceNormArgs {
            running_mean: None,
            running_var: None,
            weight: None,
            bias: None,
            use_input_stats: true,
            momentum: 0.1,
            eps: 1e-5,
        }
    }
}
