//! Tensor operations, one family per file. The spatial kernels (conv, pool, resample) work
//! on contiguous `f32` slices in NCHW layout and know nothing of storage or autograd; shapes
//! come in validated (see [`crate::tensor::shape`] and the `*Geometry` types).

pub mod activation;
pub mod adaptive_pool;
pub mod conv;
pub mod elementwise;
pub mod gemm;
mod im2col;
pub mod index;
pub mod join;
pub mod loss;
pub mod matmul;
pub mod nn;
pub mod norm;
pub mod pool;
pub mod reduce;
pub mod resample;
mod row_norm;
pub mod views;

/// Sums a slice in `f32` with independent partial sums, so the loop vectorises (a single
/// running sum is a serial dependency the compiler may not reorder) and rounding error grows
/// more slowly than with one accumulator.
pub(crate) fn sum_f32(values: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut partial = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (p, v) in partial.iter_mut().zip(chunk) {
            *p += v;
        }
    }
    partial.iter().sum::<f32>() + tail.iter().sum::<f32>()
}
