//! `cnn`: define convolutional networks as layer graphs, check their shapes before anything
//! runs, and execute them with reverse-mode autograd.
//!
//! The pipeline is source → [`syntax`] → eval; the CLI, the REPL and the tests all go
//! through the functions here.

pub mod source;
pub mod syntax;
pub mod tensor;
