//! Numeric kernels on contiguous `f32` slices in NCHW layout: convolution, pooling and
//! resampling, forward and backward. They know nothing of storage or autograd; shapes come
//! in validated (see [`crate::tensor::shape`] and the `*Geometry` types).

pub mod conv;
pub mod gemm;
mod im2col;
pub mod pool;
pub mod resample;

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
