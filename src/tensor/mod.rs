//! Tensors and their numeric kernels. This layer knows nothing of the language: no spans, no
//! diagnostics, only shapes and numbers.

pub mod ops;
pub mod shape;
