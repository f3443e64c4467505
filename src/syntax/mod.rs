//! Source text to AST: a newline pre-pass, the pest grammar in `grammar/cnn.pest`, and the
//! lowering of pest pairs into [`ast`] nodes with a Pratt parser.

pub mod ast;
