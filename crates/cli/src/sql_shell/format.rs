//! Printing results: psql's aligned table (the default), CSV and TSV.
//!
//! The simple query protocol returns every value as text, without its
//! type, so the table cannot align by type as psql does. Instead a column
//! is right-aligned when every value in it that is not NULL reads as a
//! number (`-12`, `3.5`, `1e10`), and left-aligned otherwise. NULL prints
//! as an empty cell in every format.

use unicode_width::UnicodeWidthStr;

/// How result rows are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header and a `(N rows)` footer, as psql.
    #[default]
    Table,
    /// RFC 4180: a header line, then one line per row; NULL is an empty
    /// field, an empty string is `""`.
    Csv,
    /// Tab-separated: a header line, then one line per row; a tab,
    /// newline, carriage return or backslash in a value is written `\t`,
    /// `\n`, `\r`, `\\`; NULL is an empty field.
    Tsv,
}

/// The rows one statement returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Rows {
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => table(self),
            Format::Csv => separated(self, ',', csv_field),
            Format::Tsv => separated(self, '\t', tsv_field),
        }
    }
}

/// psql's aligned format: names centered over their columns, a
/// `---+---` rule, cells separated by ` | `, a value spanning several
/// lines marked with `+` at the end of all but its last line, then
/// `(N rows)`. Lines carry no trailing blanks.
pub fn table(rows: &Rows) -> String {
    let n = rows.rows.len();
    let footer = format!("({n} {})\n", if n == 1 { "row" } else { "rows" });
    if rows.columns.is_empty() {
        // `SELECT;`: psql prints a bare rule.
        return format!("--\n{footer}");
    }
    let cells: Vec<Vec<Vec<&str>>> = rows
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|v| v.as_deref().unwrap_or("").split('\n').collect())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = rows.columns.iter().map(|c| c.width()).collect();
    for row in &cells {
        for (i, lines) in row.iter().enumerate() {
            for line in lines {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(line.width());
                }
            }
        }
    }
    let right: Vec<bool> = (0..rows.columns.len())
        .map(|i| {
            let mut values = rows.rows.iter().filter_map(|r| r.get(i)?.as_deref());
            let mut any = false;
            values.all(|v| {
                any = true;
                is_number(v)
            }) && any
        })
        .collect();

    let mut out = String::new();
    let header: Vec<String> = rows
        .columns
        .iter()
        .zip(&widths)
        .map(|(name, &w)| {
            let pad = w - name.width();
            format!(
                " {}{}{} ",
                " ".repeat(pad / 2),
                name,
                " ".repeat(pad - pad / 2)
            )
        })
        .collect();
    push_line(&mut out, &header.join("|"));
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    push_line(&mut out, &rule.join("+"));
    for row in &cells {
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for k in 0..height {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .zip(&right)
                .map(|((lines, &w), &right)| {
                    let text = lines.get(k).copied().unwrap_or("");
                    let pad = " ".repeat(w.saturating_sub(text.width()));
                    let more = if k + 1 < lines.len() { '+' } else { ' ' };
                    if right {
                        format!(" {pad}{text}{more}")
                    } else {
                        format!(" {text}{pad}{more}")
                    }
                })
                .collect();
            push_line(&mut out, &line.join("|"));
        }
    }
    out.push_str(&footer);
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// A decimal or float literal as Postgres prints numbers.
fn is_number(v: &str) -> bool {
    let v = v.strip_prefix(['-', '+']).unwrap_or(v);
    let (mantissa, exponent) = match v.find(['e', 'E']) {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn separated(rows: &Rows, sep: char, field: fn(Option<&str>) -> String) -> String {
    let mut out = String::new();
    let header: Vec<String> = rows.columns.iter().map(|c| field(Some(c))).collect();
    out.push_str(&header.join(&sep.to_string()));
    out.push('\n');
    for row in &rows.rows {
        let fields: Vec<String> = row.iter().map(|v| field(v.as_deref())).collect();
        out.push_str(&fields.join(&sep.to_string()));
        out.push('\n');
    }
    out
}

fn csv_field(value: Option<&str>) -> String {
    match value {
        None => String::new(),
        Some(v) if v.is_empty() || v.contains([',', '"', '\n', '\r']) => {
            format!("\"{}\"", v.replace('"', "\"\""))
        }
        Some(v) => v.to_string(),
    }
}

fn tsv_field(value: Option<&str>) -> String {
    let mut out = String::new();
    for c in value.unwrap_or("").chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(columns: &[&str], rows: &[&[Option<&str>]]) -> Rows {
        Rows {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .map(|r| r.iter().map(|v| v.map(str::to_string)).collect())
                .collect(),
        }
    }

    #[test]
    fn one_value() {
        let r = rows(&["?column?"], &[&[Some("1")]]);
        assert_eq!(table(&r), " ?column?\n----------\n        1\n(1 row)\n");
    }

    #[test]
    fn text_left_numbers_right_names_centered_null_empty() {
        let r = rows(
            &["id", "name", "balance"],
            &[
                &[Some("1"), Some("alice"), Some("-12.50")],
                &[Some("10"), None, Some("3")],
                &[Some("7"), Some("bob"), None],
            ],
        );
        assert_eq!(
            table(&r),
            concat!(
                " id | name  | balance\n",
                "----+-------+---------\n",
                "  1 | alice |  -12.50\n",
                " 10 |       |       3\n",
                "  7 | bob   |\n",
                "(3 rows)\n"
            )
        );
    }

    #[test]
    fn a_column_with_one_non_number_is_left_aligned() {
        let r = rows(&["v"], &[&[Some("12")], &[Some("abc")], &[Some("1e5")]]);
        assert_eq!(table(&r), "  v\n-----\n 12\n abc\n 1e5\n(3 rows)\n");
    }

    #[test]
    fn no_rows_and_no_columns() {
        let r = rows(&["a", "bb"], &[]);
        assert_eq!(table(&r), " a | bb\n---+----\n(0 rows)\n");
        assert_eq!(table(&Rows::default()), "--\n(0 rows)\n");
    }

    #[test]
    fn multi_line_values_and_wide_characters() {
        let r = rows(
            &["k", "v"],
            &[
                &[Some("a"), Some("one\ntwo\nthree")],
                &[Some("日本"), Some("x")],
            ],
        );
        assert_eq!(
            table(&r),
            concat!(
                "  k   |   v\n",
                "------+-------\n",
                " a    | one  +\n",
                "      | two  +\n",
                "      | three\n",
                " 日本 | x\n",
                "(2 rows)\n"
            )
        );
    }

    #[test]
    fn numbers() {
        for n in ["0", "-1", "+2", "3.25", ".5", "5.", "1e10", "-2.5E-3"] {
            assert!(is_number(n), "{n}");
        }
        for n in [
            "", "-", ".", "1e", "abc", "1.2.3", "inf", "NaN", "0x10", "1 2",
        ] {
            assert!(!is_number(n), "{n}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let r = rows(
            &["a", "b,c"],
            &[
                &[Some("plain"), Some("has \"quotes\"")],
                &[None, Some("")],
                &[Some("line\nbreak"), Some("x")],
            ],
        );
        assert_eq!(
            r.render(Format::Csv),
            "a,\"b,c\"\nplain,\"has \"\"quotes\"\"\"\n,\"\"\n\"line\nbreak\",x\n"
        );
    }

    #[test]
    fn tsv_escapes_separators() {
        let r = rows(
            &["a", "b"],
            &[&[Some("x\ty"), Some("back\\slash\n")], &[None, Some("z")]],
        );
        assert_eq!(
            r.render(Format::Tsv),
            "a\tb\nx\\ty\tback\\\\slash\\n\n\tz\n"
        );
    }
}
