//! The tensor engine: float32 storage shared by views, broadcasting ops, and reverse-mode
//! autograd with PyTorch's semantics.
//!
//! This layer knows nothing of the language: errors name the op and the shapes
//! ([`TensorError`]), and call sites are opaque numbers ([`Site`]) that the interpreter
//! maps to source spans.

#![warn(missing_docs)]

pub mod autograd;
pub mod broadcast;
pub mod checks;
mod core;
mod create;
pub mod derivatives;
pub mod display;
pub mod error;
pub mod memory;
pub mod npy;
pub mod ops;
pub mod optim;
pub mod random;
pub mod receptive_field;
pub mod shape;
pub mod storage;

pub use autograd::{
    BackwardFn, GradModeGuard, Site, current_site, enable_grad, is_grad_enabled, no_grad,
    set_current_site, set_grad_enabled,
};
pub use core::{NestedList, Tensor};
pub use error::{Result, TensorError};
pub use ops::activation::GeluApproximate;
pub use ops::elementwise::Comparison;
pub use ops::index::IndexItem;
pub use random::seed;
