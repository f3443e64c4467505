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
//! The slice kernels are in `row_norm.rs`; this file checks shapes, runs them and
//! records the backward node.

use crate::tensor::autograd::{BackwardFn, Saved, SavedTensor, no_grad, record};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::ops::nn::{BatchNormArgs, channel_split};
use crate::tensor::shape::ShapeError;

use crate::tensor::ops::row_norm::{
    Affine, Moments, RowLayout, RowStats, normalize, normalize_backward_input,
    normalize_backward_params, row_moments,
};

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

/// E0306 unless `shape` (of a weight, bias or running statistic of `op`) is `expected`.
fn check_param(
    op: &'static str,
    shape: Option<&[usize]>,
    expected: &[usize],
    what: &str,
) -> Result<()> {
    match shape {
        Some(shape) if shape != expected => Err(TensorError::ShapeMismatch {
            op,
            lhs: shape.to_vec(),
            rhs: expected.to_vec(),
            detail: format!(" ({what})"),
        }),
        _ => Ok(()),
    }
}

/// E0304 unless `input` is `[N, C, ...]`.
fn check_channels(op: &'static str, input: &[usize]) -> Result<()> {
    if input.len() < 2 {
        return Err(TensorError::Rank {
            op,
            expected: "an [N, C, ...] input of at least 2 dimensions",
            shape: input.to_vec(),
        });
    }
    Ok(())
}

/// The checks `group_norm` makes of its operands' shapes (it keeps the input's shape):
/// E0304 below 2 dimensions, E0311 when `num_groups` is 0 or does not divide the channels,
/// E0306 for a weight or bias that is not `[C]`.
pub fn group_norm_check(
    input: &[usize],
    num_groups: usize,
    weight: Option<&[usize]>,
    bias: Option<&[usize]>,
) -> Result<()> {
    let op = "group_norm";
    check_channels(op, input)?;
    let c = input[1];
    if num_groups == 0 || !c.is_multiple_of(num_groups) {
        return Err(ShapeError::GroupsNotDividingChannels {
            op,
            num_groups,
            channels: c,
            shape: input.to_vec(),
        }
        .into());
    }
    let per_channel = "weight and bias need one value per channel";
    check_param(op, weight, &[c], per_channel)?;
    check_param(op, bias, &[c], per_channel)
}

/// The checks `layer_norm` makes of its operands' shapes (it keeps the input's shape):
/// E0505 for an empty `normalized_shape`, E0306 when it is not the input's trailing dims or
/// for a weight or bias not of its shape.
pub fn layer_norm_check(
    input: &[usize],
    normalized_shape: &[usize],
    weight: Option<&[usize]>,
    bias: Option<&[usize]>,
) -> Result<()> {
    let op = "layer_norm";
    let k = normalized_shape.len();
    if k == 0 {
        return Err(TensorError::value(
            op,
            "normalized_shape must have at least one dimension, got []",
        ));
    }
    if input.len() < k || input[input.len() - k..] != *normalized_shape {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: input.to_vec(),
            rhs: normalized_shape.to_vec(),
            detail: format!(
                " (normalized_shape must equal the input's last {k} dimension{})",
                if k == 1 { "" } else { "s" }
            ),
        });
    }
    let of_shape = "weight and bias must have the shape normalized_shape";
    check_param(op, weight, normalized_shape, of_shape)?;
    check_param(op, bias, normalized_shape, of_shape)
}

/// The checks `instance_norm` makes of its operands' shapes (it keeps the input's shape):
/// E0304 below 2 dimensions, E0306 for a running statistic, weight or bias that is not
/// `[C]`, E0505 for planes of one element with `use_input_stats` or for missing running
/// statistics without it.
pub fn instance_norm_check(
    input: &[usize],
    running_mean: Option<&[usize]>,
    running_var: Option<&[usize]>,
    weight: Option<&[usize]>,
    bias: Option<&[usize]>,
    use_input_stats: bool,
) -> Result<()> {
    let op = "instance_norm";
    check_channels(op, input)?;
    let c = input[1];
    for (shape, what) in [
        (running_mean, "running_mean"),
        (running_var, "running_var"),
        (weight, "weight"),
        (bias, "bias"),
    ] {
        check_param(
            op,
            shape,
            &[c],
            &format!("{what} needs one value per channel"),
        )?;
    }
    if !use_input_stats && (running_mean.is_none() || running_var.is_none()) {
        return Err(TensorError::value(
            op,
            "running_mean and running_var are needed when use_input_stats is false",
        ));
    }
    if use_input_stats && input[2..].iter().product::<usize>() <= 1 {
        return Err(TensorError::value(
            op,
            format!(
                "expected more than 1 spatial element when using input statistics, got input of shape {input:?}"
            ),
        ));
    }
    Ok(())
}

fn shape_of(t: Option<&Tensor>) -> Option<&[usize]> {
    t.map(Tensor::shape)
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
        group_norm_check(self.shape(), num_groups, shape_of(weight), shape_of(bias))?;
        let (n, c, s) = channel_split(self.shape());
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
        layer_norm_check(
            self.shape(),
            normalized_shape,
            shape_of(weight),
            shape_of(bias),
        )?;
        let k = normalized_shape.len();
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
        instance_norm_check(
            self.shape(),
            shape_of(args.running_mean),
            shape_of(args.running_var),
            shape_of(args.weight),
            shape_of(args.bias),
            args.use_input_stats,
        )?;
        let (n, c, s) = channel_split(self.shape());
        let shape: Vec<i64> = self.shape().iter().map(|&d| d as i64).collect();
        if !args.use_input_stats {
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
