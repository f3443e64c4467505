//! Losses (all with PyTorch's default mean reduction) and dropout.

use crate::tensor::autograd::{SavedTensor, record};
use crate::tensor::checks;
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::random;

impl Tensor {
    fn same_shape_loss(&self, target: &Tensor, op: &'static str) -> Result<()> {
        if self.shape() != target.shape() {
            return Err(TensorError::LossShape {
                op,
                input: self.shape().to_vec(),
                target: target.shape().to_vec(),
                detail: " (they must have the same shape)".into(),
            });
        }
        Ok(())
    }

    fn saving_loss(&self, target: &Tensor, value: f64, op: Op) -> Tensor {
        let out = Tensor::scalar(value as f32);
        record(out, &[self, target], || {
            (
                op,
                vec![Some(SavedTensor::new(self)), Some(SavedTensor::new(target))],
            )
        })
    }

    /// `mse_loss(input, target)`: `mean((input - target)²)`. E0314 unless the shapes match.
    pub fn mse_loss(&self, target: &Tensor) -> Result<Tensor> {
        self.same_shape_loss(target, "mse_loss")?;
        let (x, t) = (self.try_to_vec("mse_loss")?, target.try_to_vec("mse_loss")?);
        let sum: f64 = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| f64::from(x - t).powi(2))
            .sum();
        Ok(self.saving_loss(target, sum / x.len() as f64, Op::MseLoss))
    }

    /// `l1_loss(input, target)`: `mean(|input - target|)`.
    pub fn l1_loss(&self, target: &Tensor) -> Result<Tensor> {
        self.same_shape_loss(target, "l1_loss")?;
        let (x, t) = (self.try_to_vec("l1_loss")?, target.try_to_vec("l1_loss")?);
        let sum: f64 = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| f64::from((x - t).abs()))
            .sum();
        Ok(self.saving_loss(target, sum / x.len() as f64, Op::L1Loss))
    }

    /// `binary_cross_entropy_with_logits(input, target)`:
    /// `mean(max(x, 0) - x·t + log(1 + e^-|x|))`, stable for any logit.
    pub fn binary_cross_entropy_with_logits(&self, target: &Tensor) -> Result<Tensor> {
        self.same_shape_loss(target, "binary_cross_entropy_with_logits")?;
        let (x, t) = (
            self.try_to_vec("binary_cross_entropy_with_logits")?,
            target.try_to_vec("binary_cross_entropy_with_logits")?,
        );
        let sum: f64 = x
            .iter()
            .zip(&t)
            .map(|(&x, &t)| {
                let (x, t) = (f64::from(x), f64::from(t));
                x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
            })
            .sum();
        Ok(self.saving_loss(target, sum / x.len() as f64, Op::BceWithLogits))
    }

    /// `nll_loss(log_probs, target)`: `-mean(log_probs[n, target[n], ...])` for log
    /// probabilities `[N, C, ...]` (or `[C]`) and class indices `[N, ...]` (or `[]`) held as
    /// floats. E0314 when the shapes do not fit, E0313 for a class out of range.
    pub fn nll_loss(&self, target: &Tensor) -> Result<Tensor> {
        let op = "nll_loss";
        checks::class_target(op, self.shape(), target.shape())?;
        // Class dim 1 of [N, C, ...]; a [C] input is one sample with a [] target.
        let (batch, classes, spatial): (usize, usize, usize) = match self.ndim() {
            1 => (1, self.shape()[0], 1),
            _ => (
                self.shape()[0],
                self.shape()[1],
                self.shape()[2..].iter().product(),
            ),
        };
        let log_probs = self.to_vec();
        let classes_of = target.to_vec();
        let mut picks = Vec::with_capacity(classes_of.len());
        let mut sum = 0f64;
        for n in 0..batch {
            for s in 0..spatial {
                let class = classes_of[n * spatial + s];
                if class.fract() != 0.0 {
                    return Err(TensorError::value(
                        op,
                        format!("target values must be class indices, got {class}"),
                    ));
                }
                if class < 0.0 || class >= classes as f32 {
                    return Err(TensorError::IndexOutOfRange {
                        op,
                        index: class as i64,
                        dim: 1,
                        size: classes,
                    });
                }
                let pick = (n * classes + class as usize) * spatial + s;
                sum += f64::from(log_probs[pick]);
                picks.push(pick);
            }
        }
        let count = picks.len();
        let out = Tensor::scalar((-sum / count as f64) as f32);
        let input = self.shape().to_vec();
        Ok(record(out, &[self, target], || {
            (
                Op::NllLoss {
                    input,
                    picks,
                    count,
                },
                Vec::new(),
            )
        }))
    }

    /// `cross_entropy(logits, target)`: `nll_loss(log_softmax(logits, 1), target)` for class
    /// indices; when `target` has the logits' shape it holds class probabilities instead,
    /// and the loss is `-Σ target·log_softmax(logits) / N`.
    pub fn cross_entropy(&self, target: &Tensor) -> Result<Tensor> {
        checks::cross_entropy_target(self.shape(), target.shape())?;
        let class_dim = if self.ndim() == 1 { 0 } else { 1 };
        let log_probs = self.log_softmax(class_dim)?;
        if target.shape() == self.shape() && self.ndim() > 1 {
            let samples = (self.numel() / self.shape()[1].max(1)) as f64;
            return log_probs.mul(target)?.sum()?.neg()?.div_scalar(samples);
        }
        log_probs.nll_loss(target).map_err(|error| match error {
            TensorError::IndexOutOfRange {
                index, dim, size, ..
            } => TensorError::IndexOutOfRange {
                op: "cross_entropy",
                index,
                dim,
                size,
            },
            other => other,
        })
    }

    /// `dropout(x, p, train)`: in training, zeroes each element with probability `p` and
    /// scales the rest by `1/(1-p)`; otherwise returns `x` itself. E0505 unless `0 ≤ p ≤ 1`.
    pub fn dropout(&self, p: f64, train: bool) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&p) {
            return Err(TensorError::value(
                "dropout",
                format!("p must be between 0 and 1, got {p}"),
            ));
        }
        if !train || p == 0.0 {
            return Ok(self.clone());
        }
        let mut mask = crate::tensor::storage::alloc_filled("dropout", self.shape(), 0.0)?;
        random::fill_uniform(&mut mask, 0.0, 1.0);
        let keep = (1.0 - p) as f32;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        for m in &mut mask {
            *m = if *m < keep { scale } else { 0.0 };
        }
        let mask = Tensor::from_data(mask, self.shape());
        let out = Tensor::zip("dropout", self, &mask, |x, m| x * m)?;
        Ok(record(out, &[self], || {
            (Op::Dropout, vec![Some(SavedTensor::new(&mask))])
        }))
    }
    /// `dropout2d(x, p, train)`: in training, zeroes each whole channel (each `[n, c]`
    /// slice) with probability `p` and scales the others by `1/(1-p)`; otherwise returns
    /// `x` itself. The mask is drawn from the same stream as [`Tensor::dropout`]'s, one
    /// number per channel. As in PyTorch, a 3-D input is taken as `[N, C, L]` (channel-wise
    /// 1-D dropout). E0304 unless 3-D or 4-D; E0505 unless `0 ≤ p ≤ 1`.
    pub fn dropout2d(&self, p: f64, train: bool) -> Result<Tensor> {
        dropout2d_check(self.shape(), p)?;
        if !train || p == 0.0 || self.numel() == 0 {
            return Ok(self.clone());
        }
        // One draw per channel, broadcast over the channel's elements.
        let mut mask_shape = vec![1; self.ndim()];
        mask_shape[..2].copy_from_slice(&self.shape()[..2]);
        let mut mask = crate::tensor::storage::alloc_filled("dropout2d", &mask_shape, 0.0)?;
        random::fill_uniform(&mut mask, 0.0, 1.0);
        let keep = (1.0 - p) as f32;
        let scale = if keep > 0.0 { 1.0 / keep } else { 0.0 };
        for m in &mut mask {
            *m = if *m < keep { scale } else { 0.0 };
        }
        // PyTorch multiplies by the noise tensor: the node is `MulBackward0`.
        self.mul(&Tensor::from_data(mask, &mask_shape))
    }
}

/// The checks `dropout2d` makes of its input's shape and `p` (it keeps the shape), in
/// training or not: E0505 unless `0 ≤ p ≤ 1`, E0304 unless the input is 3-D or 4-D.
pub fn dropout2d_check(input: &[usize], p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(TensorError::value(
            "dropout2d",
            format!("p must be between 0 and 1, got {p}"),
        ));
    }
    if !matches!(input.len(), 3 | 4) {
        return Err(TensorError::Rank {
            op: "dropout2d",
            expected: "a 3-D [N, C, L] or 4-D [N, C, H, W] input",
            shape: input.to_vec(),
        });
    }
    Ok(())
}
