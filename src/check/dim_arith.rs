//! `SymDim` implements the output-size formulas' dim trait, so `conv_output_size` and the
//! others run on symbols exactly as they run on integers in the kernels.

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
