//! Located reports of failed tensor operations: what the run-time check and the static
//! checker both say when shapes do not fit. One struct carries every such report; its
//! [`TensorCode`] fixes the code.

use std::fmt;

use miette::{Diagnostic, LabeledSpan};

use crate::source::Span;

/// The codes of [`TensorDiagnostic`], one per kind of tensor failure (LANGUAGE.md §10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorCode {
    /// A kernel larger than the padded input: `conv2d(randn(1, 1, 2, 2), randn(1, 1, 3, 3))`
    /// or `MaxPool2d(4)(randn(1, 1, 3, 3))`.
    ConvOutputEmpty,
    /// A transposed convolution that crops more than it makes:
    /// `ConvTranspose2d(1, 1, 2, padding=2)(randn(1, 1, 2, 2))`.
    TransposedOutputEmpty,
    /// An input whose channels are not the layer's: `Conv2d(3, 8, 3)(randn(1, 4, 8, 8))`.
    ChannelMismatch,
    /// A tensor of the wrong rank: `Conv2d(1, 8, 3)(randn(28, 28))`.
    WrongRank,
    /// A `Linear` whose in_features differ from the input's last dim:
    /// `Linear(10, 2)(randn(4, 16, 5, 5))`.
    LinearFeatures,
    /// Shapes that cannot broadcast: `randn(2, 3) + randn(4, 3)`.
    Broadcast,
    /// A matrix product whose inner dims differ: `randn(2, 3) @ randn(4, 5)`.
    MatmulMismatch,
    /// A reshape to another element count: `randn(2, 3).reshape(4, 2)`.
    ReshapeCount,
    /// A dim outside `-ndim..ndim`: `randn(2, 3).sum(dim=2)`.
    DimOutOfRange,
    /// Rows of different lengths in a literal: `tensor([[1, 2], [3]])`.
    RaggedLiteral,
    /// Arguments a layer cannot have: `Conv2d(6, 8, 3, groups=4)`, `MaxPool2d(2, padding=2)`.
    InvalidConfig,
    /// A loss whose input and target do not fit: `mse_loss(randn(4, 3), randn(4))`.
    LossShape,
    /// `backward()` on a tensor that does not require grad: `(ones(3) * 2).sum().backward()`.
    BackwardWithoutGrad,
    /// `backward()` without `gradient` on many elements: `(w * 2).backward()`.
    NonScalarBackward,
    /// An in-place op on a leaf that requires grad: `w += 1` for `w = ones(3,
    /// requires_grad=true)`.
    InPlaceOnLeaf,
    /// A tensor saved for backward was changed in place:
    /// `let y = x.exp(); y.add_(1); y.sum().backward()`.
    SavedTensorModified,
    /// A second backward through a freed graph: `y.backward(); y.backward()`.
    GraphFreed,
    /// An allocation too large for memory: `zeros(100000, 100000, 100000)`.
    TooLarge,
    /// A size that differs from the `let` annotation's: `let x: [2, 4] = randn(2, 3)`.
    DeclaredSize,
}

impl TensorCode {
    /// Every code, for the uniqueness test.
    pub const ALL: [TensorCode; 19] = [
        TensorCode::ConvOutputEmpty,
        TensorCode::TransposedOutputEmpty,
        TensorCode::ChannelMismatch,
        TensorCode::WrongRank,
        TensorCode::LinearFeatures,
        TensorCode::Broadcast,
        TensorCode::MatmulMismatch,
        TensorCode::ReshapeCount,
        TensorCode::DimOutOfRange,
        TensorCode::RaggedLiteral,
        TensorCode::InvalidConfig,
        TensorCode::LossShape,
        TensorCode::BackwardWithoutGrad,
        TensorCode::NonScalarBackward,
        TensorCode::InPlaceOnLeaf,
        TensorCode::SavedTensorModified,
        TensorCode::GraphFreed,
        TensorCode::TooLarge,
        TensorCode::DeclaredSize,
    ];

    /// The diagnostic code, `E0301` ...
    pub fn as_str(self) -> &'static str {
        match self {
            TensorCode::ConvOutputEmpty => "E0301",
            TensorCode::TransposedOutputEmpty => "E0302",
            TensorCode::ChannelMismatch => "E0303",
            TensorCode::WrongRank => "E0304",
            TensorCode::LinearFeatures => "E0305",
            TensorCode::Broadcast => "E0306",
            TensorCode::MatmulMismatch => "E0307",
            TensorCode::ReshapeCount => "E0308",
            TensorCode::DimOutOfRange => "E0309",
            TensorCode::RaggedLiteral => "E0310",
            TensorCode::InvalidConfig => "E0311",
            TensorCode::LossShape => "E0314",
            TensorCode::BackwardWithoutGrad => "E0401",
            TensorCode::NonScalarBackward => "E0402",
            TensorCode::InPlaceOnLeaf => "E0403",
            TensorCode::SavedTensorModified => "E0404",
            TensorCode::GraphFreed => "E0405",
            TensorCode::TooLarge => "E0503",
            // Two dims that must be equal and are not: the declared one and the value's.
            // E0303 is a layer's channels and E0304 the number of dims; E0312 is the code
            // of "dims must be equal", whether the checker or the run finds them apart.
            TensorCode::DeclaredSize => "E0312",
        }
    }
}

/// A failed tensor operation, located in the source.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDiagnostic {
    /// Which failure.
    pub code: TensorCode,
    /// The one-line message (the tensor error's text, or a better one).
    pub message: String,
    /// The expression that failed.
    pub span: Span,
    /// The label on it.
    pub label: String,
    /// Further labelled spans: the argument at fault, where an input came from, ...
    pub related: Vec<(Span, String)>,
    /// The fix (and the formula with its numbers, where one failed).
    pub help: Option<String>,
    /// The calls that led here, innermost first.
    pub calls: Vec<Span>,
    /// For E0310: where in the literal argument the rows are, so the interpreter can move
    /// the label onto the row that differs.
    pub ragged: Option<RaggedRows>,
}

/// The rows of a ragged literal, as index paths into the nested list (`[1]` is the second
/// row of the outermost list).
#[derive(Clone, Debug, PartialEq)]
pub struct RaggedRows {
    /// The row whose length differs.
    pub path: Vec<usize>,
    /// The first row at the same depth, whose length the others must have.
    pub first_path: Vec<usize>,
    /// The label for that first row.
    pub first_label: String,
}

impl TensorDiagnostic {
    /// A report of `code` at `span`.
    pub fn new(
        code: TensorCode,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> TensorDiagnostic {
        TensorDiagnostic {
            code,
            message: message.into(),
            span,
            label: label.into(),
            related: Vec::new(),
            help: None,
            calls: Vec::new(),
            ragged: None,
        }
    }

    /// Adds a labelled span.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.related.push((span, text.into()));
        self
    }

    /// Puts a loss's shape mistake on its operands: the target labelled as at fault, the
    /// input beside it.
    pub fn on_loss_operands(mut self, input: (Span, &[usize]), target: (Span, &[usize])) -> Self {
        self.span = target.0;
        self.label = format!("target is {:?}", target.1);
        self.related
            .push((input.0, format!("input is {:?}", input.1)));
        self
    }

    /// Sets the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for TensorDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TensorDiagnostic {}

impl Diagnostic for TensorDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        // The renderer cannot draw one underline inside another, so a label overlapping
        // one already shown is dropped (the primary label first, then in order).
        let overlap =
            |a: Span, b: Span| a.start < b.end.max(b.start + 1) && b.start < a.end.max(a.start + 1);
        let mut shown = vec![self.span];
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(self.label.clone()),
            self.span,
        )];
        let calls = self
            .calls
            .iter()
            .map(|s| (*s, "called from here".to_string()));
        let others = self.related.iter().cloned().chain(calls);
        for (span, text) in others {
            if !shown.iter().any(|s| overlap(*s, span)) {
                shown.push(span);
                labels.push(LabeledSpan::new_with_span(Some(text), span));
            }
        }
        Some(Box::new(labels.into_iter()))
    }
}
