//! Problems and their wording, below both the checker and the interpreter: a mistake is
//! described by one typed value and rendered by one piece of code, whichever stage finds it
//! (the checker before anything runs, or the run-time check when the checker could not
//! decide).

pub mod binding;
pub mod layers;
mod tensor;

pub use tensor::{RaggedRows, TensorCode, TensorDiagnostic};

use miette::Diagnostic;
use thiserror::Error;

use crate::source::Span;

/// An index past the end of a list or a tensor dimension: `[1, 2][5]`, `randn(2, 3)[5]`.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq)]
#[error("index {index} is out of range for {what}")]
#[diagnostic(code(E0313))]
pub struct IndexOutOfRange {
    /// The index as given.
    pub index: i64,
    /// Length of the indexed value (or tensor dimension).
    pub len: usize,
    /// What was indexed: `list of length 2`, `dimension 0 of size 3`.
    pub what: String,
    /// The index expression.
    #[label("valid indices are -{len}..{len}")]
    pub span: Span,
    /// The calls that led here.
    #[label(collection, "called from here")]
    pub calls: Vec<Span>,
}

/// The candidate within a small edit distance of `name`, closest first: the word for a
/// "did you mean" hint. A swap of two neighbours counts as one edit (optimal string
/// alignment: `widht` is one typo from `width`).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Allow about one typo per three characters, and at least one.
    let length = name.chars().count();
    let limit = (length / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        // The distance is at least the difference in length: skip the sure misses.
        .filter(|c| c.chars().count().abs_diff(length) <= limit)
        .map(|c| (strsim::osa_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn closest_counts_a_swap_as_one_edit() {
        assert_eq!(closest("widht", ["width", "height"]), Some("width"));
        assert_eq!(
            closest("kernal_size", ["kernel_size", "stride"]),
            Some("kernel_size")
        );
        assert_eq!(closest("x", ["width"]), None);
        assert_eq!(closest("width", ["width"]), None);
    }
}
