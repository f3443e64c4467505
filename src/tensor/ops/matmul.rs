//! Matrix products: `mm`, `mv`, `dot`, `matmul` (PyTorch's dispatch over 1-D, 2-D and
//! batched operands with broadcast batch dims) and `linear`.
//!
//! Every product is one call of the `gemm` crate per matrix, which reads any strides, so
//! transposed views (`w.t()`, and the `Bᵀ` of every backward) are never copied.

use crate::tensor::autograd::{record, save_if};
use crate::tensor::broadcast::{broadcast_shape, broadcast_strides};
use crate::tensor::core::Tensor;
use crate::tensor::derivatives::Op;
use crate::tensor::error::{Result, TensorError};
use crate::tensor::storage::{self, Layout, for_each_offset2};

/// Multiply-adds above which `gemm` may split the work over threads.
const PARALLEL_FLOPS: usize = 1 << 18;

/// A matrix inside a storage slice: element `(i, j)` at `offset + i*row_stride + j*col_stride`.
#[derive(Clone, Copy)]
struct MatrixRef<'a> {
    data: &'a [f32],
    offset: usize,
    row_stride: usize,
    col_stride: usize,
}

/// `dst (m×n, row-major) = a (m×k) · b (k×n)`, or `dst += ...` when `accumulate`.
fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    a: MatrixRef,
    b: MatrixRef,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // The last element each operand reads must lie in its slice: a safety precondition of
    // the raw-pointer call below, guaranteed by the layouts that built these references.
    let last_a = a.offset + (m - 1) * a.row_stride + (k - 1) * a.col_stride;
    let last_b = b.offset + (k - 1) * b.row_stride + (n - 1) * b.col_stride;
    assert!(last_a < a.data.len() && last_b < b.data.len() && dst.len() >= m * n);
    let parallelism = if m * n * k >= PARALLEL_FLOPS {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: all pointers stay within their slices (checked above); `dst` does not alias
    // `a` or `b` (it is a fresh buffer owned by the caller).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr().add(a.offset),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr().add(b.offset),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

impl Tensor {
    fn require_rank(&self, op: &'static str, rank: usize, expected: &'static str) -> Result<()> {
        if self.ndim() != rank {
            return Err(TensorError::Rank {
                op,
                expected,
                shape: self.shape().to_vec(),
            });
        }
        Ok(())
    }

    fn inner_mismatch(
        op: &'static str,
        a: &Tensor,
        b: &Tensor,
        lhs_inner: usize,
        rhs_inner: usize,
    ) -> TensorError {
        TensorError::MatmulMismatch {
            op,
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
            lhs_inner,
            rhs_inner,
        }
    }

    /// `a @ b` of two 2-D tensors with no history; `bias` (broadcast to the result) is added
    /// first when given.
    fn mm_raw(&self, other: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (m, k) = (self.shape()[0], self.shape()[1]);
        let n = other.shape()[1];
        let mut out = match bias {
            Some(bias) => bias.broadcast_to("addmm", &[m, n])?.try_to_vec("addmm")?,
            None => storage::alloc_filled("mm", &[m, n], 0.0)?,
        };
        let (a_data, b_data) = (self.storage().data(), other.storage().data());
        let a = MatrixRef {
            data: &a_data,
            offset: self.layout().offset,
            row_stride: self.strides()[0],
            col_stride: self.strides()[1],
        };
        let b = MatrixRef {
            data: &b_data,
            offset: other.layout().offset,
            row_stride: other.strides()[0],
            col_stride: other.strides()[1],
        };
        gemm_into(m, n, k, &mut out, a, b, bias.is_some());
        drop((a_data, b_data));
        Ok(Tensor::from_data(out, &[m, n]))
    }

    /// `mm(b)`: product of two 2-D tensors. E0304 for other ranks, E0307 when the inner
    /// dimensions differ.
    pub fn mm(&self, other: &Tensor) -> Result<Tensor> {
        self.require_rank("mm", 2, "a 2-D tensor")?;
        other.require_rank("mm", 2, "a 2-D tensor")?;
        if self.shape()[1] != other.shape()[0] {
            return Err(Tensor::inner_mismatch(
                "mm",
                self,
                other,
                self.shape()[1],
                other.shape()[0],
            ));
        }
        let out = self.mm_raw(other, None)?;
        Ok(record(out, &[self, other], || {
            let saved = vec![
                save_if(other.requires_grad(), self),
                save_if(self.requires_grad(), other),
            ];
            (Op::Mm, saved)
        }))
    }

    /// `addmm(bias, a, b)`: `bias + a @ b` (what `linear` runs on 2-D input).
    pub fn addmm(bias: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.require_rank("addmm", 2, "a 2-D tensor")?;
        b.require_rank("addmm", 2, "a 2-D tensor")?;
        if a.shape()[1] != b.shape()[0] {
            return Err(Tensor::inner_mismatch(
                "linear",
                a,
                b,
                a.shape()[1],
                b.shape()[0],
            ));
        }
        let out = a.mm_raw(b, Some(bias))?;
        Ok(record(out, &[bias, a, b], || {
            let saved = vec![save_if(b.requires_grad(), a), save_if(a.requires_grad(), b)];
            (
                Op::Addmm {
                    bias: bias.shape().to_vec(),
                },
                saved,
            )
        }))
    }

    /// `mv(v)`: a 2-D tensor times a 1-D one.
    pub fn mv(&self, vector: &Tensor) -> Result<Tensor> {
        self.require_rank("mv", 2, "a 2-D tensor")?;
        vector.require_rank("mv", 1, "a 1-D tensor")?;
        if self.shape()[1] != vector.shape()[0] {
            return Err(Tensor::inner_mismatch(
                "matmul",
                self,
                vector,
                self.shape()[1],
                vector.shape()[0],
            ));
        }
        let column = vector.unsqueeze_raw(1);
        let out = self
            .mm_raw(&column, None)?
            .reshape_raw(&[self.shape()[0]])?;
        Ok(record(out, &[self, vector], || {
            let saved = vec![
                save_if(vector.requires_grad(), self),
                save_if(self.requires_grad(), vector),
            ];
            (Op::Mv, saved)
        }))
    }

    /// `dot(v)`: inner product of two 1-D tensors of the same length.
    pub fn dot(&self, other: &Tensor) -> Result<Tensor> {
        self.require_rank("dot", 1, "a 1-D tensor")?;
        other.require_rank("dot", 1, "a 1-D tensor")?;
        if self.shape() != other.shape() {
            return Err(Tensor::inner_mismatch(
                "matmul",
                self,
                other,
                self.shape()[0],
                other.shape()[0],
            ));
        }
        let (a, b) = (self.try_to_vec("dot")?, other.try_to_vec("dot")?);
        let total: f64 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let out = Tensor::scalar(total as f32);
        Ok(record(out, &[self, other], || {
            let saved = vec![
                save_if(other.requires_grad(), self),
                save_if(self.requires_grad(), other),
            ];
            (Op::Dot, saved)
        }))
    }

    /// A size-1 dimension inserted at `dim` with no history.
    fn unsqueeze_raw(&self, dim: usize) -> Tensor {
        let mut layout = self.layout().clone();
        layout.shape.insert(dim, 1);
        layout.strides.insert(dim, 1);
        Tensor::from_storage(self.storage().clone(), layout)
    }

    /// Batched product of `[..., n, k]` and `[..., k, m]` (both at least 2-D), batch dims
    /// broadcast, with no history.
    pub(crate) fn batch_matmul_raw(&self, other: &Tensor) -> Result<Tensor> {
        let (a_nd, b_nd) = (self.ndim(), other.ndim());
        let (n, k) = (self.shape()[a_nd - 2], self.shape()[a_nd - 1]);
        let (k2, m) = (other.shape()[b_nd - 2], other.shape()[b_nd - 1]);
        if k != k2 {
            return Err(Tensor::inner_mismatch("matmul", self, other, k, k2));
        }
        let batch = broadcast_shape(
            "matmul",
            &self.shape()[..a_nd - 2],
            &other.shape()[..b_nd - 2],
        )?;
        let mut out_shape = batch.clone();
        out_shape.extend([n, m]);
        let mut out = storage::alloc_filled("matmul", &out_shape, 0.0)?;
        let batch_layout = |t: &Tensor| {
            let nd = t.ndim();
            let layout = Layout {
                shape: t.shape()[..nd - 2].to_vec(),
                strides: t.strides()[..nd - 2].to_vec(),
                offset: t.layout().offset,
            };
            broadcast_strides(&layout, &batch)
        };
        let (a_batch, b_batch) = (batch_layout(self), batch_layout(other));
        let (a_data, b_data) = (self.storage().data(), other.storage().data());
        let mut index = 0;
        for_each_offset2(
            &batch,
            (&a_batch, self.layout().offset),
            (&b_batch, other.layout().offset),
            |a_offset, b_offset| {
                let a = MatrixRef {
                    data: &a_data,
                    offset: a_offset,
                    row_stride: self.strides()[a_nd - 2],
                    col_stride: self.strides()[a_nd - 1],
                };
                let b = MatrixRef {
                    data: &b_data,
                    offset: b_offset,
                    row_stride: other.strides()[b_nd - 2],
                    col_stride: other.strides()[b_nd - 1],
                };
                gemm_into(
                    n,
                    m,
                    k,
                    &mut out[index * n * m..(index + 1) * n * m],
                    a,
                    b,
                    false,
                );
                index += 1;
            },
        );
        drop((a_data, b_data));
        Ok(Tensor::from_data(out, &out_shape))
    }

    /// `matmul(b)` / `a @ b`, with PyTorch's rules: 1-D·1-D is a dot product, 2-D@2-D a
    /// matrix product, a 1-D operand gains (then loses) a unit dimension, and higher ranks
    /// multiply batches of matrices with broadcast batch dims.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        // Every shape error comes from one place, the one the checker asks too.
        matmul_shape(self.shape(), other.shape())?;
        match (self.ndim(), other.ndim()) {
            (0, _) | (_, 0) => Err(TensorError::Rank {
                op: "matmul",
                expected: "tensors of at least 1 dimension",
                shape: if self.ndim() == 0 {
                    self.shape().to_vec()
                } else {
                    other.shape().to_vec()
                },
            }),
            (1, 1) => self.dot(other),
            (2, 1) => self.mv(other),
            (2, 2) => self.mm(other),
            (1, 2) => {
                if self.shape()[0] != other.shape()[0] {
                    return Err(Tensor::inner_mismatch(
                        "matmul",
                        self,
                        other,
                        self.shape()[0],
                        other.shape()[0],
                    ));
                }
                self.unsqueeze(0)?.mm(other)?.squeeze_dim(0)
            }
            (_, 1) => self.batched(&other.unsqueeze(-1)?)?.squeeze_dim(-1),
            (1, _) => {
                if self.shape()[0] != other.shape()[other.ndim() - 2] {
                    let inner = other.shape()[other.ndim() - 2];
                    return Err(Tensor::inner_mismatch(
                        "matmul",
                        self,
                        other,
                        self.shape()[0],
                        inner,
                    ));
                }
                self.unsqueeze(0)?.batched(other)?.squeeze_dim(-2)
            }
            _ => self.batched(other),
        }
    }

    fn batched(&self, other: &Tensor) -> Result<Tensor> {
        let out = self.batch_matmul_raw(other)?;
        let name = if self.ndim() == 3 && other.ndim() == 3 && self.shape()[0] == other.shape()[0] {
            "BmmBackward0"
        } else {
            "UnsafeViewBackward0"
        };
        Ok(record(out, &[self, other], || {
            let op = Op::BatchMatmul {
                lhs: self.shape().to_vec(),
                rhs: other.shape().to_vec(),
                name,
            };
            let saved = vec![
                save_if(other.requires_grad(), self),
                save_if(self.requires_grad(), other),
            ];
            (op, saved)
        }))
    }

    /// `linear(x, weight, bias)`: `x @ weightᵀ + bias` over the last dim of `x`
    /// (`[..., in]` → `[..., out]`), with `weight` `[out, in]` and `bias` `[out]`.
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        weight.require_rank("linear", 2, "a 2-D weight [out_features, in_features]")?;
        let (out_features, in_features) = (weight.shape()[0], weight.shape()[1]);
        let last = self.shape().last().copied();
        if last != Some(in_features) {
            return Err(TensorError::MatmulMismatch {
                op: "linear",
                lhs: self.shape().to_vec(),
                rhs: weight.shape().to_vec(),
                lhs_inner: last.unwrap_or(0),
                rhs_inner: in_features,
            });
        }
        if let Some(bias) = bias
            && bias.shape() != [out_features]
            && bias.numel() != 1
        {
            return Err(TensorError::ShapeMismatch {
                op: "linear",
                lhs: bias.shape().to_vec(),
                rhs: vec![out_features],
                detail: " (bias must have one value per output feature)".into(),
            });
        }
        let weight_t = weight.t()?;
        match (self.ndim(), bias) {
            (2, Some(bias)) => Tensor::addmm(bias, self, &weight_t),
            (2, None) => self.mm(&weight_t),
            (1, _) => {
                let out = self.matmul(&weight_t)?;
                match bias {
                    Some(bias) => out.add(bias),
                    None => Ok(out),
                }
            }
            _ => {
                let mut out_shape: Vec<i64> = self.shape()[..self.ndim() - 1]
                    .iter()
                    .map(|&s| s as i64)
                    .collect();
                out_shape.push(out_features as i64);
                let flat = self.reshape(&[-1, in_features as i64])?;
                let out = match bias {
                    Some(bias) => Tensor::addmm(bias, &flat, &weight_t)?,
                    None => flat.mm(&weight_t)?,
                };
                out.reshape(&out_shape)
            }
        }
    }
}

/// The shape of `lhs @ rhs` under PyTorch's rules (see [`Tensor::matmul`]), or the error the
/// product reports: E0304 for a 0-D operand, E0307 when the contracted dims differ, E0306
/// when the batch dims (all but the last two) cannot broadcast. Both operands' full shapes
/// are named in the error, as written, never with the unit dims a 1-D operand gains.
pub fn matmul_shape(lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    if lhs.is_empty() || rhs.is_empty() {
        return Err(TensorError::Rank {
            op: "matmul",
            expected: "tensors of at least 1 dimension",
            shape: if lhs.is_empty() { lhs } else { rhs }.to_vec(),
        });
    }
    let (l, r) = (lhs.len(), rhs.len());
    // A 1-D left operand is a row, a 1-D right operand a column; neither keeps that dim.
    let (lhs_batch, rows, inner) = if l == 1 {
        (&[][..], None, lhs[0])
    } else {
        (&lhs[..l - 2], Some(lhs[l - 2]), lhs[l - 1])
    };
    let (rhs_batch, contracted, cols) = if r == 1 {
        (&[][..], rhs[0], None)
    } else {
        (&rhs[..r - 2], rhs[r - 2], Some(rhs[r - 1]))
    };
    if inner != contracted {
        return Err(TensorError::MatmulMismatch {
            op: "matmul",
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            lhs_inner: inner,
            rhs_inner: contracted,
        });
    }
    let mut out =
        broadcast_shape("matmul", lhs_batch, rhs_batch).map_err(|_| TensorError::Broadcast {
            op: "matmul",
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
        })?;
    out.extend(rows);
    out.extend(cols);
    Ok(out)
}
