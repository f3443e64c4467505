//! Printing, following PyTorch's `repr` (`torch/_tensor_str.py`) rule for rule: one
//! formatter for the whole tensor chooses integer, fixed (4 decimals) or scientific mode
//! from the nonzero finite values; every element is padded to the widest; rows wrap at 80
//! columns; tensors above 1000 elements are summarised with `...` keeping 3 items at each
//! edge. The one difference is the language's lowercase `requires_grad=true`.

use super::core::Tensor;
use std::fmt;

/// PyTorch's `precision`: digits after the point.
const PRECISION: usize = 4;
/// PyTorch's `threshold`: above this many elements, print a summary.
const THRESHOLD: usize = 1000;
/// PyTorch's `edgeitems`: items kept at each end of a summarised dimension.
const EDGE_ITEMS: usize = 3;
/// PyTorch's `linewidth`.
const LINE_WIDTH: usize = 80;

/// Python's `{:.4e}`: at least two exponent digits, always signed (`1.0000e-05`).
fn scientific(value: f64) -> String {
    if !value.is_finite() {
        return non_finite(value);
    }
    let rust = format!("{value:.PRECISION$e}");
    let (mantissa, exponent) = rust.split_once('e').unwrap_or((&rust, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Python's spelling of inf and nan.
fn non_finite(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// PyTorch's `_Formatter` for floating tensors.
struct Formatter {
    int_mode: bool,
    sci_mode: bool,
    max_width: usize,
}

impl Formatter {
    fn new(values: &[f32]) -> Formatter {
        let mut formatter = Formatter {
            int_mode: true,
            sci_mode: false,
            max_width: 1,
        };
        let nonzero_finite: Vec<f64> = values
            .iter()
            .filter(|v| v.is_finite() && **v != 0.0)
            .map(|&v| f64::from(v))
            .collect();
        if nonzero_finite.is_empty() {
            return formatter;
        }
        let abs_min = nonzero_finite
            .iter()
            .map(|v| v.abs())
            .fold(f64::INFINITY, f64::min);
        let abs_max = nonzero_finite.iter().map(|v| v.abs()).fold(0.0, f64::max);
        formatter.int_mode = nonzero_finite.iter().all(|v| v.ceil() == *v);
        let widths: Vec<usize>;
        if formatter.int_mode {
            if abs_max / abs_min > 1000.0 || abs_max > 1.0e8 {
                formatter.sci_mode = true;
                widths = nonzero_finite
                    .iter()
                    .map(|&v| scientific(v).len())
                    .collect();
            } else {
                // One more for the "." that marks a float.
                widths = nonzero_finite
                    .iter()
                    .map(|v| format!("{v:.0}").len() + 1)
                    .collect();
            }
        } else if abs_max / abs_min > 1000.0 || abs_max > 1.0e8 || abs_min < 1.0e-4 {
            formatter.sci_mode = true;
            widths = nonzero_finite
                .iter()
                .map(|&v| scientific(v).len())
                .collect();
        } else {
            widths = nonzero_finite
                .iter()
                .map(|v| format!("{v:.PRECISION$}").len())
                .collect();
        }
        formatter.max_width = widths.into_iter().fold(1, usize::max);
        formatter
    }

    fn format(&self, value: f32) -> String {
        let value = f64::from(value);
        let text = if self.sci_mode {
            scientific(value)
        } else if !value.is_finite() {
            non_finite(value)
        } else if self.int_mode {
            format!("{value:.0}.")
        } else {
            format!("{value:.PRECISION$}")
        };
        format!("{text:>width$}", width = self.max_width)
    }
}

/// The positions a print shows along a dimension of `size`: all of them, or when
/// summarising a long one, `EDGE_ITEMS` at each end.
fn shown_positions(size: usize, summarize: bool) -> Vec<usize> {
    if summarize && size > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS).chain(size - EDGE_ITEMS..size).collect()
    } else {
        (0..size).collect()
    }
}

/// The values a print shows, row-major (PyTorch's `get_summarized_data`), read straight
/// from storage so that summarising a large tensor copies only what is shown.
fn shown_values(tensor: &Tensor, summarize: bool) -> Vec<f32> {
    let layout = tensor.layout();
    let positions: Vec<Vec<usize>> = layout
        .shape
        .iter()
        .map(|&size| shown_positions(size, summarize))
        .collect();
    let data = tensor.storage().data();
    let mut out = Vec::new();
    let mut stack = vec![(0usize, layout.offset)];
    // Depth-first over the shown positions, last dimension innermost.
    while let Some((dim, offset)) = stack.pop() {
        if dim == positions.len() {
            out.push(data[offset]);
            continue;
        }
        for &i in positions[dim].iter().rev() {
            stack.push((dim + 1, offset + i * layout.strides[dim]));
        }
    }
    out
}

/// PyTorch's `_tensor_str_with_formatter`, over the shown `values` (laid out with
/// `shown[d]` entries per dimension) of a tensor of `shape`.
fn tensor_str(
    values: &[f32],
    shape: &[usize],
    shown: &[usize],
    indent: usize,
    formatter: &Formatter,
) -> String {
    match shape.len() {
        0 => formatter.format(values[0]),
        1 => vector_str(values, shape[0], indent, formatter),
        ndim => {
            let chunk: usize = shown[1..].iter().product();
            let row = |i: usize| {
                tensor_str(
                    &values[i * chunk..(i + 1) * chunk],
                    &shape[1..],
                    &shown[1..],
                    indent + 1,
                    formatter,
                )
            };
            let slices: Vec<String> = if shown[0] < shape[0] {
                (0..EDGE_ITEMS)
                    .map(row)
                    .chain(std::iter::once("...".to_string()))
                    .chain((EDGE_ITEMS..2 * EDGE_ITEMS).map(row))
                    .collect()
            } else {
                (0..shape[0]).map(row).collect()
            };
            let separator = format!(",{}{}", "\n".repeat(ndim - 1), " ".repeat(indent + 1));
            format!("[{}]", slices.join(&separator))
        }
    }
}

/// PyTorch's `_vector_str`, over the shown `values` of a dimension of `size`.
fn vector_str(values: &[f32], size: usize, indent: usize, formatter: &Formatter) -> String {
    let element_length = formatter.max_width + 2;
    let per_line = (LINE_WIDTH.saturating_sub(indent) / element_length).max(1);
    let data: Vec<String> = if values.len() < size {
        values[..EDGE_ITEMS]
            .iter()
            .map(|&v| formatter.format(v))
            .chain(std::iter::once(" ...".to_string()))
            .chain(values[EDGE_ITEMS..].iter().map(|&v| formatter.format(v)))
            .collect()
    } else {
        values.iter().map(|&v| formatter.format(v)).collect()
    };
    let lines: Vec<String> = data.chunks(per_line).map(|line| line.join(", ")).collect();
    format!(
        "[{}]",
        lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
    )
}

/// PyTorch's `_add_suffixes`, including its count of the last line's length.
fn add_suffixes(tensor_str: String, suffixes: &[String], indent: usize) -> String {
    let mut out = tensor_str;
    // Python: len(s) - s.rfind("\n") + 1, where rfind gives -1 when there is no newline.
    let mut last_line_len = match out.rfind('\n') {
        Some(at) => out.chars().count() - out[..at].chars().count() + 1,
        None => out.chars().count() + 2,
    };
    for suffix in suffixes {
        let suffix_len = suffix.chars().count();
        if last_line_len + suffix_len + 2 > LINE_WIDTH {
            out.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
            last_line_len = indent + suffix_len;
        } else {
            out.push_str(&format!(", {suffix}"));
            last_line_len += suffix_len + 2;
        }
    }
    out.push(')');
    out
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = "tensor(";
        let indent = prefix.len();
        let mut suffixes = Vec::new();
        let body = if self.numel() == 0 {
            if self.ndim() != 1 {
                let dims: Vec<String> = self.shape().iter().map(usize::to_string).collect();
                suffixes.push(format!("size=({})", dims.join(", ")));
            }
            "[]".to_string()
        } else {
            let summarize = self.numel() > THRESHOLD;
            let values = shown_values(self, summarize);
            let shown: Vec<usize> = self
                .shape()
                .iter()
                .map(|&size| shown_positions(size, summarize).len())
                .collect();
            tensor_str(
                &values,
                self.shape(),
                &shown,
                indent,
                &Formatter::new(&values),
            )
        };
        if let Some(name) = self.grad_fn_name() {
            suffixes.push(format!("grad_fn=<{name}>"));
        } else if self.requires_grad() {
            suffixes.push("requires_grad=true".into());
        }
        f.write_str(&add_suffixes(format!("{prefix}{body}"), &suffixes, indent))
    }
}
