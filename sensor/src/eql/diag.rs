//! Rendering of a source position as `file:line:col` plus the offending line
//! and a caret underline, shared by EQL and TOML errors so that every error a
//! rule author sees has the same shape.

use std::fmt::Write as _;

/// 1-based line and column (in characters) of byte offset `at` in `src`.
pub fn line_col(src: &str, at: usize) -> (usize, usize) {
    let at = floor_boundary(src, at.min(src.len()));
    let before = &src[..at];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..at].chars().count() + 1;
    (line, col)
}

/// Bytes of a long line shown before the error's start.
const CONTEXT_BEFORE: usize = 60;
/// Bytes of a long line shown from the error's start.
const CONTEXT_AFTER: usize = 100;

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Renders `message` at byte span `start..end` of `src` (a whole file, or a
/// query), rustc-style:
///
/// ```text
/// error: unexpected `=`; use `==` to compare
///   --> rules/x.toml:14:20
///    |
/// 14 | process where a = "b"
///    |                 ^
/// ```
///
/// Only the first line of a multi-line span is underlined.
pub fn render(origin: &str, src: &str, start: usize, end: usize, message: &str) -> String {
    let start = floor_boundary(src, start.min(src.len()));
    let end = floor_boundary(src, end.clamp(start, src.len()));
    let (line, col) = line_col(src, start);
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    // A long line (a generated query) is shown as a window around the
    // error, `…` marking what is cut.
    let shown_start = floor_boundary(src, start.saturating_sub(CONTEXT_BEFORE).max(line_start));
    let shown_end = floor_boundary(src, (start + CONTEXT_AFTER).min(line_end)).max(start);
    let cut_left = if shown_start > line_start { "…" } else { "" };
    let cut_right = if shown_end < line_end { "…" } else { "" };
    let text = src[shown_start..shown_end].trim_end_matches('\r');
    let underline_end = end.min(shown_end).max(start);
    let width = src[start..underline_end].chars().count().max(1);
    // Tabs in the prefix are kept so that the caret lines up in a terminal.
    let pad: String = cut_left
        .chars()
        .chain(src[shown_start..start].chars())
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let num = line.to_string();
    let gutter = " ".repeat(num.len());
    let mut out = String::new();
    let _ = writeln!(out, "error: {message}");
    let _ = writeln!(out, "{gutter}--> {origin}:{line}:{col}");
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{num} | {cut_left}{text}{cut_right}");
    let _ = write!(out, "{gutter} | {pad}{}", "^".repeat(width));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars_not_bytes() {
        let src = "ab\nçd x";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 3), (2, 1));
        assert_eq!(line_col(src, src.find('x').unwrap_or(0)), (2, 4));
    }

    #[test]
    fn render_golden() {
        let src = "process where\n  a = \"b\"\n";
        let at = src.find('=').unwrap_or(0);
        let got = render("q.toml", src, at, at + 1, "boom");
        assert_eq!(
            got,
            "error: boom\n --> q.toml:2:5\n  |\n2 |   a = \"b\"\n  |     ^"
        );
    }

    #[test]
    fn long_lines_are_shown_as_a_window_around_the_error() {
        let src = format!("{}X{}", "a".repeat(1000), "b".repeat(1000));
        let got = render("q", &src, 1000, 1001, "boom");
        let want = format!(
            "error: boom\n --> q:1:1001\n  |\n1 | …{}X{}…\n  |  {}^",
            "a".repeat(60),
            "b".repeat(99),
            " ".repeat(60)
        );
        assert_eq!(got, want);
    }
}
