//! `SymDim` implements the output-size formulas' dim trait, so `conv_output_size` and the
//! others run on symbols exactly as they run on integers in the kernels.
//!
//! Not yet in the module tree: `src/tensor/shape.rs` (and its `DimArith`) lives on the
//! `kernels` branch. After merging both, add `mod dim_arith;` to `src/check/mod.rs`. The
//! same two-line impl is exercised today by `tests/dim.rs` against a copy of the trait.

use super::dim::SymDim;
use crate::tensor::shape::DimArith;

impl DimArith for SymDim {
    fn floor_div(self, divisor: i64) -> Self {
        SymDim::floor_div(self, divisor)
    }

    fn ceil_div(self, divisor: i64) -> Self {
        SymDim::ceil_div(self, divisor)
    }
}
