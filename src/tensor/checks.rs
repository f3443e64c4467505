//! The checks an op makes of its operands' shapes before computing anything, as functions
//! of the shapes alone: the kernels call them, and so does the static checker whenever it
//! knows the shapes, so a mistake found before the run is the same error, with the same
//! words, as the one the run would give.

use super::{Result, TensorError};

/// Normalises a possibly negative `dim` against `range` dims (`ndim`, or `ndim + 1` for an
/// op that inserts one) of a tensor of `shape`, for `op`.
pub fn dim_index(op: &'static str, dim: i64, shape: &[usize], range: usize) -> Result<usize> {
    let wrapped = if dim < 0 {
        dim.checked_add(range as i64)
    } else {
        Some(dim)
    };
    match wrapped {
        Some(d) if range > 0 && d >= 0 && d < range as i64 => Ok(d as usize),
        // PyTorch treats a 0-dim tensor as having one dimension for `dim` arguments.
        _ if range == 0 && (dim == 0 || dim == -1) => Ok(0),
        _ => Err(TensorError::DimOutOfRange {
            op,
            dim,
            shape: shape.to_vec(),
            range: range.max(1),
        }),
    }
}

/// The target `op` (`nll_loss`, `cross_entropy`) takes for class scores of `input`'s shape:
/// `[N]` for `[N, C]` (`[N, d1, ...]` for `[N, C, d1, ...]`), `[]` for `[C]`.
pub fn class_target(op: &'static str, input: &[usize], target: &[usize]) -> Result<()> {
    let shape_error = |detail: String| TensorError::LossShape {
        op,
        input: input.to_vec(),
        target: target.to_vec(),
        detail,
    };
    match input.len() {
        0 => Err(shape_error(" (the input needs a class dimension)".into())),
        1 if !target.is_empty() => Err(shape_error(" (a [C] input takes a 0-dim target)".into())),
        1 => Ok(()),
        _ => {
            let mut expected = vec![input[0]];
            expected.extend_from_slice(&input[2..]);
            if target != expected.as_slice() {
                return Err(shape_error(format!(
                    " (the target should have shape {expected:?})"
                )));
            }
            Ok(())
        }
    }
}

/// `cross_entropy(input, target)`: class indices as [`class_target`] says, or class
/// probabilities of the input's own shape.
pub fn cross_entropy_target(input: &[usize], target: &[usize]) -> Result<()> {
    if input.len() > 1 && input == target {
        return Ok(());
    }
    class_target("cross_entropy", input, target)
}

/// `backward()` without `gradient` starts from a seed of ones, which only a tensor of one
/// element has an obvious one of.
pub fn implicit_seed(shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() == 1 {
        Ok(())
    } else {
        Err(TensorError::NonScalarBackward {
            shape: shape.to_vec(),
        })
    }
}
