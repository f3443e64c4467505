//! Long explanations of diagnostic codes, printed by `cnn explain CODE`.
//!
//! Each code of LANGUAGE.md §10 has one text in `src/explain/CODE.md`, compiled in with
//! `include_str!`. A text starts with the title line `CODE: summary`, explains the
//! diagnostic for someone learning CNNs, and carries two examples, each a fenced ```` ```cnn ````
//! block right after a marker line: `Erroneous example:` (a script that reports exactly
//! that code) and `Fixed:` (the same script, corrected, reporting nothing). [`examples`]
//! extracts them so the tests can run both through the interpreter.

/// One diagnostic code: its §10 summary and its long text.
struct Entry {
    code: &'static str,
    summary: &'static str,
    text: &'static str,
}

/// An [`Entry`] whose text is `src/explain/$code.md`.
macro_rules! entry {
    ($code:literal, $summary:literal) => {
        Entry {
            code: $code,
            summary: $summary,
            text: include_str!(concat!("explain/", $code, ".md")),
        }
    };
}

/// Every code of LANGUAGE.md §10, in the table's order, with the table's wording.
const ENTRIES: &[Entry] = &[
    entry!(
        "E0101",
        "syntax error: unexpected token, with what was expected"
    ),
    entry!("E0102", "unclosed `(`, `[` or `{` (label on the opener)"),
    entry!("E0103", "invalid literal"),
    entry!(
        "E0104",
        "statement not allowed here (`input` outside a net, `return` outside fn/net, `break` outside a loop)"
    ),
    entry!("E0201", "undefined name (suggest the closest)"),
    entry!(
        "E0202",
        "no such field or method on this type (suggest the closest)"
    ),
    entry!("E0203", "wrong number of positional arguments"),
    entry!("E0204", "unknown keyword argument (suggest the closest)"),
    entry!("E0205", "missing required argument"),
    entry!("E0206", "argument given twice"),
    entry!("E0207", "wrong type (expected int, got tensor, ...)"),
    entry!("E0208", "assignment to an undeclared name (use `let`)"),
    entry!(
        "E0301",
        "convolution or pooling output is empty: kernel larger than padded input"
    ),
    entry!(
        "E0302",
        "transposed convolution output size is not positive"
    ),
    entry!(
        "E0303",
        "channel mismatch: layer expects C channels, input has C'"
    ),
    entry!(
        "E0304",
        "wrong number of dimensions (hint `unsqueeze(0)` where one is missing)"
    ),
    entry!(
        "E0305",
        "Linear feature mismatch (hint `Flatten()`, with the computed feature count)"
    ),
    entry!("E0306", "shapes cannot broadcast"),
    entry!("E0307", "matmul inner dimensions differ"),
    entry!("E0308", "reshape to a different number of elements"),
    entry!("E0309", "dimension out of range"),
    entry!(
        "E0310",
        "ragged tensor literal (label the row that differs)"
    ),
    entry!(
        "E0311",
        "invalid layer configuration (groups, output_padding, stride <= 0, pooling padding)"
    ),
    entry!(
        "E0312",
        "dims must be equal and may differ (counterexample)"
    ),
    entry!("E0313", "index out of range"),
    entry!("E0314", "loss input and target shapes do not fit"),
    entry!("E0315", "argument does not match the net's declared input"),
    entry!("E0401", "backward on a tensor that does not require grad"),
    entry!(
        "E0402",
        "backward on a non-scalar without a gradient argument"
    ),
    entry!("E0403", "in-place op on a leaf that requires grad"),
    entry!(
        "E0404",
        "a tensor saved for backward was modified in place (labels: saved here, modified here)"
    ),
    entry!(
        "E0405",
        "backward through a freed graph (hint `retain_graph=true`)"
    ),
    entry!("W0406", "reading `.grad` of a non-leaf tensor (it is none)"),
    entry!("E0501", "file cannot be read or written"),
    entry!("E0502", "file is not a valid npy / safetensors / image"),
    entry!(
        "E0503",
        "over the memory budget (an allocation that would not fit is refused first, never an abort)"
    ),
    entry!(
        "E0504",
        "assertion failed (for `assert_close`: worst element, its index, both values)"
    ),
    entry!(
        "E0505",
        "value error (`item()` of a many-element tensor, division by zero, ...)"
    ),
    entry!("E0506", "interrupted (Ctrl-C)"),
    entry!("E0507", "a net's layer structure changed between calls"),
    entry!("W0301", "strided window drops input rows or columns"),
];

/// Codes whose erroneous example reports its code only when the run is interrupted with
/// Ctrl-C (SIGINT); without the signal it runs for a very long time. A test must send the
/// signal, or skip the erroneous example of these codes.
pub const NEEDS_INTERRUPT: &[&str] = &["E0506"];

/// The line that precedes the erroneous example's ```` ```cnn ```` block.
pub const ERRONEOUS_MARKER: &str = "Erroneous example:";

/// The line that precedes the corrected example's ```` ```cnn ```` block.
pub const FIXED_MARKER: &str = "Fixed:";

/// The canonical spelling of a code as a user may type it: case-insensitive (`e0302`),
/// surrounding whitespace ignored, and the prefix letter optional when the digits name
/// one code only (`0302` is E0302; `0301` is both E0301 and W0301, so it gives `None`).
pub fn canonical(query: &str) -> Option<&'static str> {
    let query = query.trim();
    if let Some(entry) = ENTRIES.iter().find(|e| e.code.eq_ignore_ascii_case(query)) {
        return Some(entry.code);
    }
    if query.len() != 4 || !query.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut matches = ENTRIES.iter().filter(|e| &e.code[1..] == query);
    match (matches.next(), matches.next()) {
        (Some(entry), None) => Some(entry.code),
        _ => None,
    }
}

fn entry(code: &str) -> Option<&'static Entry> {
    let code = canonical(code)?;
    ENTRIES.iter().find(|e| e.code == code)
}

/// The long explanation of `code` (see [`canonical`] for the spellings accepted), as
/// printed by `cnn explain CODE`; `None` for an unknown code.
pub fn explain(code: &str) -> Option<&'static str> {
    entry(code).map(|e| e.text)
}

/// The one-line meaning of `code` from LANGUAGE.md §10's table; `None` for an unknown code.
pub fn summary(code: &str) -> Option<&'static str> {
    entry(code).map(|e| e.summary)
}

/// Every diagnostic code, in the order of LANGUAGE.md §10.
pub fn codes() -> impl Iterator<Item = &'static str> {
    ENTRIES.iter().map(|e| e.code)
}

/// The two `.cnn` scripts of one explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Examples {
    /// A self-contained script that reports exactly the explained code (at check time or,
    /// for run-time diagnostics, when run). See [`NEEDS_INTERRUPT`] for the exception.
    pub erroneous: &'static str,
    /// The same script corrected: it checks and runs with no diagnostic at all.
    pub fixed: &'static str,
}

/// The erroneous and fixed examples of `code`, each the text of its ```` ```cnn ```` block
/// (ending with a newline); `None` for an unknown code or a text without both blocks.
pub fn examples(code: &str) -> Option<Examples> {
    let text = explain(code)?;
    Some(Examples {
        erroneous: block_after(text, ERRONEOUS_MARKER)?,
        fixed: block_after(text, FIXED_MARKER)?,
    })
}

/// The body of the ```` ```cnn ```` block on the line right after the line `marker`.
fn block_after(text: &'static str, marker: &str) -> Option<&'static str> {
    let mut offset = 0;
    let mut lines = text.split_inclusive('\n');
    for line in lines.by_ref() {
        offset += line.len();
        if line.trim_end() == marker {
            break;
        }
    }
    if lines.next()?.trim_end() != "```cnn" {
        return None;
    }
    let start = offset + "```cnn\n".len();
    let mut end = start;
    for line in lines {
        if line.trim_end() == "```" {
            return Some(&text[start..end]);
        }
        end += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LANGUAGE.md §10's codes, written out by hand so a code dropped from (or added to)
    /// the table here is caught.
    const SPEC_CODES: &[&str] = &[
        "E0101", "E0102", "E0103", "E0104", //
        "E0201", "E0202", "E0203", "E0204", "E0205", "E0206", "E0207", "E0208", //
        "E0301", "E0302", "E0303", "E0304", "E0305", "E0306", "E0307", "E0308", "E0309", "E0310",
        "E0311", "E0312", "E0313", "E0314", "E0315", //
        "E0401", "E0402", "E0403", "E0404", "E0405", "W0406", //
        "E0501", "E0502", "E0503", "E0504", "E0505", "E0506", "E0507", //
        "W0301",
    ];

    #[test]
    fn codes_match_the_spec_in_order() {
        assert_eq!(codes().collect::<Vec<_>>(), SPEC_CODES);
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in codes() {
            assert!(seen.insert(code), "{code} appears twice");
        }
    }

    #[test]
    fn every_code_has_a_text_and_a_summary() {
        for &code in SPEC_CODES {
            assert!(explain(code).is_some(), "{code} has no text");
            assert!(summary(code).is_some(), "{code} has no summary");
        }
    }

    #[test]
    fn every_text_starts_with_its_code_and_summary() {
        for code in codes() {
            let title = explain(code).unwrap().lines().next().unwrap();
            assert_eq!(title, format!("{code}: {}", summary(code).unwrap()));
        }
    }

    #[test]
    fn every_text_has_an_erroneous_and_a_fixed_example() {
        for code in codes() {
            let text = explain(code).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for marker in [ERRONEOUS_MARKER, FIXED_MARKER] {
                let at = lines.iter().position(|l| *l == marker);
                let at = at.unwrap_or_else(|| panic!("{code}: no `{marker}` line"));
                assert_eq!(
                    lines.get(at + 1),
                    Some(&"```cnn"),
                    "{code}: `{marker}` block"
                );
            }
            let examples = examples(code).unwrap_or_else(|| panic!("{code}: unclosed block"));
            assert!(
                !examples.erroneous.trim().is_empty(),
                "{code}: empty erroneous"
            );
            assert!(!examples.fixed.trim().is_empty(), "{code}: empty fixed");
            assert_ne!(
                examples.erroneous, examples.fixed,
                "{code}: nothing was fixed"
            );
            assert!(examples.erroneous.ends_with('\n') && examples.fixed.ends_with('\n'));
        }
    }

    #[test]
    fn fences_are_the_two_cnn_blocks_only() {
        for code in codes() {
            let fences: Vec<&str> = explain(code)
                .unwrap()
                .lines()
                .filter(|l| l.trim_start().starts_with("```"))
                .collect();
            assert_eq!(fences, ["```cnn", "```", "```cnn", "```"], "{code}: fences");
        }
    }

    #[test]
    fn texts_are_short_and_fit_a_terminal() {
        for code in codes() {
            let text = explain(code).unwrap();
            let count = text.lines().count();
            assert!((20..=50).contains(&count), "{code}: {count} lines");
            for line in text.lines().skip(1) {
                assert!(line.chars().count() <= 92, "{code}: long line {line:?}");
            }
            assert!(
                text.ends_with('\n') && !text.ends_with("\n\n"),
                "{code}: ending"
            );
        }
    }

    #[test]
    fn lookup_accepts_the_usual_spellings() {
        let e0302 = explain("E0302").unwrap();
        assert_eq!(explain("e0302"), Some(e0302));
        assert_eq!(explain(" E0302\n"), Some(e0302));
        assert_eq!(explain("0302"), Some(e0302));
        assert_eq!(canonical("w0406"), Some("W0406"));
        assert_eq!(canonical("0406"), Some("W0406"));
        // E0301 and W0301 share their digits.
        assert_eq!(canonical("0301"), None);
        assert_eq!(canonical("W0301"), Some("W0301"));
        for unknown in ["E9999", "", "E030", "E03020", "X0302", "0x12"] {
            assert_eq!(explain(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn examples_are_extracted_exactly() {
        let e = examples("E0302").unwrap();
        assert!(e.erroneous.starts_with("let t = tensor("));
        assert!(e.erroneous.contains("padding=2"));
        assert!(!e.fixed.contains("padding=2"));
        assert!(!e.erroneous.contains("```") && !e.fixed.contains("```"));
        assert_eq!(
            examples("E0101").unwrap().erroneous,
            "let conv = Conv2d(1, 8 3)\n"
        );
    }

    #[test]
    fn interrupt_only_codes_exist_and_say_so() {
        for &code in NEEDS_INTERRUPT {
            assert!(
                examples(code).unwrap().erroneous.contains("Ctrl-C"),
                "{code}"
            );
        }
    }
}
