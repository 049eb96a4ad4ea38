//! Splitting SQL text into statements: a statement ends at a `;` outside
//! quotes (`'...'`, `E'...'`, `"..."`, `$tag$...$tag$`) and comments
//! (`-- ...`, nested `/* ... */`). The shell sends statements one at a
//! time, as psql does for files and typed input.

/// Statements accumulated from lines of input.
#[derive(Debug, Default)]
pub struct Splitter {
    pending: String,
}

impl Splitter {
    /// Adds `text` (one or more lines) and returns the statements it
    /// completed, without their `;`, trimmed; statements made only of
    /// whitespace and comments are dropped.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut statements = Vec::new();
        let mut start = 0;
        let scan = scan(&self.pending);
        for end in scan.ends {
            let statement = &self.pending[start..end];
            if !is_blank(statement) {
                statements.push(statement.trim().to_string());
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        if is_blank(&self.pending) {
            self.pending.clear();
        }
        statements
    }

    /// Whether input waits for the rest of a statement (the REPL shows
    /// its continuation prompt then).
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The unfinished statement, if it holds more than whitespace and
    /// comments: at the end of a script it is run as it is (the last
    /// statement of a file needs no `;`).
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        (!is_blank(&rest)).then(|| rest.trim().to_string())
    }

    /// Forgets the unfinished statement (Ctrl-C in the REPL).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

/// Splits a whole text at once: every statement, the last one without
/// its `;` included.
#[cfg(test)]
pub fn split_all(text: &str) -> Vec<String> {
    let mut splitter = Splitter::default();
    let mut statements = splitter.push(text);
    statements.extend(splitter.finish());
    statements
}

/// Whether `text` holds nothing but whitespace and complete comments.
pub fn is_blank(text: &str) -> bool {
    let scan = scan(text);
    !scan.open && scan.ends.is_empty() && !scan.has_code
}

/// What one pass over a text found.
struct Scan {
    /// Byte offsets of the `;` that end statements.
    ends: Vec<usize>,
    /// The text ends inside a quote or a comment.
    open: bool,
    /// Something other than whitespace and comments after the last `;`.
    has_code: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Code,
    /// `'...'`; `true` for `E'...'`, where a backslash escapes.
    Single(bool),
    Double,
    LineComment,
    /// Nesting depth of `/* */` comments.
    Block(u32),
    /// Inside `$tag$...$tag$`: the byte range of the opening delimiter.
    Dollar(usize, usize),
}

fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut ends = Vec::new();
    let mut has_code = false;
    let mut state = State::Code;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match b {
                b';' => {
                    ends.push(i);
                    has_code = false;
                }
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::Block(1);
                    i += 1;
                }
                b'\'' => {
                    let escaped = i > 0
                        && matches!(bytes[i - 1], b'e' | b'E')
                        && (i == 1 || !is_ident_byte(bytes[i - 2]));
                    state = State::Single(escaped);
                    has_code = true;
                }
                b'"' => {
                    state = State::Double;
                    has_code = true;
                }
                b'$' => {
                    has_code = true;
                    if let Some(end) = dollar_tag(bytes, i) {
                        state = State::Dollar(i, end);
                        i = end;
                    }
                }
                b if b.is_ascii_whitespace() => {}
                _ => has_code = true,
            },
            State::Single(escaped) => match b {
                b'\\' if escaped => i += 1,
                b'\'' if next == Some(b'\'') => i += 1,
                b'\'' => state = State::Code,
                _ => {}
            },
            State::Double => match b {
                b'"' if next == Some(b'"') => i += 1,
                b'"' => state = State::Code,
                _ => {}
            },
            State::LineComment => {
                if b == b'\n' {
                    state = State::Code;
                }
            }
            State::Block(depth) => {
                if b == b'*' && next == Some(b'/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::Block(depth - 1)
                    };
                    i += 1;
                } else if b == b'/' && next == Some(b'*') {
                    state = State::Block(depth + 1);
                    i += 1;
                }
            }
            State::Dollar(start, end) => {
                let tag = &bytes[start..=end];
                if bytes[i..].starts_with(tag) {
                    state = State::Code;
                    i += tag.len() - 1;
                }
            }
        }
        i += 1;
    }
    Scan {
        ends,
        open: !matches!(state, State::Code | State::LineComment),
        has_code,
    }
}

/// Identifiers may contain `$` and digits; a dollar quote does not start
/// inside one (`a$b$`), nor is `$1` (a parameter) one.
fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// If a dollar-quote delimiter (`$$` or `$tag$`) starts at `i`, the
/// offset of its closing `$`.
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_ident_byte(bytes[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != b'$' {
        let b = bytes[j];
        let ok = if j == i + 1 {
            b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
        } else {
            is_ident_byte(b) && b != b'$'
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    (j < bytes.len()).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_statements() {
        assert_eq!(split_all("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(split_all("SELECT 1"), ["SELECT 1"]);
        assert_eq!(split_all("  ;;\n ; "), Vec::<String>::new());
        assert_eq!(split_all(""), Vec::<String>::new());
    }

    #[test]
    fn semicolons_inside_quotes_do_not_split() {
        assert_eq!(
            split_all("INSERT INTO t VALUES ('a;b', 'it''s;'); SELECT 2"),
            ["INSERT INTO t VALUES ('a;b', 'it''s;')", "SELECT 2"]
        );
        assert_eq!(
            split_all(r#"SELECT "a;""b" FROM t; SELECT 2"#),
            [r#"SELECT "a;""b" FROM t"#, "SELECT 2"]
        );
        // E'' strings escape with a backslash, plain ones do not.
        assert_eq!(
            split_all(r"SELECT E'\';'; SELECT 2"),
            [r"SELECT E'\';'", "SELECT 2"]
        );
        assert_eq!(
            split_all(r"SELECT '\'; SELECT 2"),
            [r"SELECT '\'", "SELECT 2"]
        );
        // `e'` ends an identifier here, it does not start an E'' string.
        assert_eq!(
            split_all(r"SELECT 1 AS type'\'; SELECT 2"),
            [r"SELECT 1 AS type'\'", "SELECT 2"]
        );
    }

    #[test]
    fn comments() {
        assert_eq!(
            split_all("SELECT 1 -- one; not two\n; /* a ; /* nested; */ still; */ SELECT 2;"),
            [
                "SELECT 1 -- one; not two",
                "/* a ; /* nested; */ still; */ SELECT 2"
            ]
        );
        // Comment-only statements are dropped.
        assert_eq!(
            split_all("-- nothing here;\n/* nor; here */;\nSELECT 3"),
            ["SELECT 3"]
        );
        assert!(is_blank("  -- x\n /* y */ "));
        assert!(!is_blank("/* open"));
        assert!(!is_blank("x"));
    }

    #[test]
    fn dollar_quotes() {
        assert_eq!(
            split_all("SELECT $$a;b$$; SELECT $fn$ x; $$ ; $fn$; SELECT 3"),
            ["SELECT $$a;b$$", "SELECT $fn$ x; $$ ; $fn$", "SELECT 3"]
        );
        // Parameters and `$` inside identifiers are not dollar quotes.
        assert_eq!(
            split_all("SELECT $1; SELECT a$b$; SELECT 3"),
            ["SELECT $1", "SELECT a$b$", "SELECT 3"]
        );
    }

    #[test]
    fn multi_line_input_completes_when_the_semicolon_comes() {
        let mut s = Splitter::default();
        assert!(s.push("SELECT\n").is_empty());
        assert!(s.is_pending());
        assert!(s.push("  'a;\n").is_empty());
        assert!(s.push("b'\n").is_empty());
        assert_eq!(
            s.push("; SELECT 2; SEL\n"),
            ["SELECT\n  'a;\nb'", "SELECT 2"]
        );
        assert!(s.is_pending());
        assert_eq!(s.push("ECT 3;\n"), ["SEL\nECT 3"]);
        assert!(!s.is_pending());
    }

    #[test]
    fn blank_and_comment_lines_leave_nothing_pending() {
        let mut s = Splitter::default();
        assert!(s.push("   \n").is_empty());
        assert!(!s.is_pending());
        assert!(s.push("-- a comment\n").is_empty());
        assert!(!s.is_pending());
        // An open block comment waits for its end.
        assert!(s.push("/* open\n").is_empty());
        assert!(s.is_pending());
        assert!(s.push("closed */\n").is_empty());
        assert!(!s.is_pending());
    }

    #[test]
    fn unterminated_input_is_returned_by_finish() {
        let mut s = Splitter::default();
        assert!(s.push("SELECT 'abc;\n").is_empty());
        assert_eq!(s.finish().as_deref(), Some("SELECT 'abc;"));
        assert_eq!(s.finish(), None);
        s.push("SELECT 1");
        s.clear();
        assert_eq!(s.finish(), None);
    }
}
