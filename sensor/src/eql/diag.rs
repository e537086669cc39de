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
    let text = src[line_start..line_end].trim_end_matches('\r');
    let underline_end = end.min(line_end).max(start);
    let width = src[start..underline_end].chars().count().max(1);
    // Tabs in the prefix are kept so that the caret lines up in a terminal.
    let pad: String = src[line_start..start]
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let num = line.to_string();
    let gutter = " ".repeat(num.len());
    let mut out = String::new();
    let _ = writeln!(out, "error: {message}");
    let _ = writeln!(out, "{gutter}--> {origin}:{line}:{col}");
    let _ = writeln!(out, "{gutter} |");
    let _ = writeln!(out, "{num} | {text}");
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
}
