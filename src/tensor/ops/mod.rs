//! Tensor operations, one family per file.

pub mod elementwise;
pub mod index;
pub mod join;
pub mod loss;
pub mod matmul;
pub mod reduce;
pub mod views;
