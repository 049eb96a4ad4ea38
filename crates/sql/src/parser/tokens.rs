//! A cursor over the tokens of one statement (sqlparser's tokenizer, so
//! quoting and comments follow PostgreSQL's rules), for the pre-parser of
//! Meridian's own statements: words are matched by text (`REGIONS`,
//! `LOCALITY`, `SURVIVE` are not sqlparser keywords), and every token
//! keeps its byte offset, so a clause can be cut out of the text or handed
//! on as text (`CONFIGURE ZONE USING ...`).
//!
//! Owns: matching words and names, error positions. Does not own: what
//! the statements mean (`multiregion`).

use std::ops::Range;

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::SqlError;

pub(super) struct Tokens<'a> {
    text: &'a str,
    /// Tokens other than whitespace and comments, with their byte offset.
    tokens: Vec<(Token, usize)>,
    pos: usize,
    /// Characters of the whole statement string before `text`.
    base_chars: usize,
}

impl<'a> Tokens<'a> {
    /// The tokens of `text`; `None` if it does not tokenize (sqlparser
    /// then reports the error).
    pub fn new(text: &'a str, base_chars: usize) -> Option<Tokens<'a>> {
        let spanned = Tokenizer::new(&PostgreSqlDialect {}, text)
            .tokenize_with_location()
            .ok()?;
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let offset = |line: u64, column: u64| -> usize {
            let start = line_starts
                .get((line as usize).saturating_sub(1))
                .copied()
                .unwrap_or(text.len());
            text[start..]
                .char_indices()
                .nth((column as usize).saturating_sub(1))
                .map(|(i, _)| start + i)
                .unwrap_or(text.len())
        };
        let tokens = spanned
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
            .map(|t| {
                let at = offset(t.span.start.line, t.span.start.column);
                (t.token, at)
            })
            .collect();
        Some(Tokens {
            text,
            tokens,
            pos: 0,
            base_chars,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    /// Whether the token `ahead` places on is the unquoted word `word`.
    pub fn is_word_at(&self, ahead: usize, word: &str) -> bool {
        matches!(self.tokens.get(self.pos + ahead), Some((Token::Word(w), _))
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    pub fn is_word(&self, word: &str) -> bool {
        self.is_word_at(0, word)
    }

    /// Consumes `words` if the next tokens are exactly those words.
    pub fn eat_words(&mut self, words: &[&str]) -> bool {
        if words.iter().enumerate().all(|(i, w)| self.is_word_at(i, w)) {
            self.pos += words.len();
            true
        } else {
            false
        }
    }

    pub fn expect_words(&mut self, words: &[&str]) -> Result<(), SqlError> {
        if self.eat_words(words) {
            Ok(())
        } else {
            Err(self.error(&words.join(" ")))
        }
    }

    /// Consumes the first of `words` that comes next, returning it.
    pub fn one_of(&mut self, words: &[&'static str]) -> Result<&'static str, SqlError> {
        match words.iter().find(|w| self.is_word(w)) {
            Some(w) => {
                self.pos += 1;
                Ok(w)
            }
            None => Err(self.error(&words.join(" or "))),
        }
    }

    /// Consumes an optional `=`.
    pub fn eat_eq(&mut self) {
        if matches!(self.peek(), Some(Token::Eq)) {
            self.pos += 1;
        }
    }

    pub fn eat_comma(&mut self) -> bool {
        if matches!(self.peek(), Some(Token::Comma)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A name: an identifier (lowercased unless double-quoted) or a
    /// single-quoted string.
    pub fn name(&mut self, what: &str) -> Result<String, SqlError> {
        let name = match self.peek() {
            Some(Token::Word(w)) if w.quote_style.is_some() => w.value.clone(),
            Some(Token::Word(w)) => w.value.to_lowercase(),
            Some(Token::SingleQuotedString(s)) => s.clone(),
            _ => return Err(self.error(what)),
        };
        self.pos += 1;
        Ok(name)
    }

    /// Whether every token has been consumed (a trailing `;` aside).
    pub fn at_end(&self) -> bool {
        self.tokens[self.pos..]
            .iter()
            .all(|(t, _)| matches!(t, Token::SemiColon))
    }

    pub fn expect_end(&self) -> Result<(), SqlError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.error("the end of the statement"))
        }
    }

    /// The byte offset of the next token (the text's length at the end).
    pub fn offset(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(_, at)| *at)
            .unwrap_or(self.text.len())
    }

    /// The text from the next token on, without a trailing `;`.
    pub fn rest(&self) -> &'a str {
        self.text[self.offset()..]
            .trim()
            .trim_end_matches(';')
            .trim_end()
    }

    /// Moves to the first later unquoted word `word` outside parentheses;
    /// false (and no move) if there is none.
    pub fn seek_top_level_word(&mut self, word: &str) -> bool {
        let mut depth = 0i32;
        for i in self.pos..self.tokens.len() {
            match &self.tokens[i].0 {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::Word(w)
                    if depth == 0
                        && w.quote_style.is_none()
                        && w.value.eq_ignore_ascii_case(word) =>
                {
                    self.pos = i;
                    return true;
                }
                _ => {}
            }
        }
        false
    }

    /// The clause `AS OF SYSTEM TIME <expr>` outside parentheses, if the
    /// statement has one: the byte range of the whole clause and of its
    /// expression, which ends at the next clause of a SELECT (`WHERE`,
    /// `GROUP`, `ORDER`, ...) or at the end.
    pub fn as_of_system_time(&self) -> Option<(Range<usize>, Range<usize>)> {
        const CLAUSE: [&str; 4] = ["AS", "OF", "SYSTEM", "TIME"];
        const NEXT_CLAUSES: &[&str] = &[
            "WHERE",
            "GROUP",
            "HAVING",
            "WINDOW",
            "ORDER",
            "LIMIT",
            "OFFSET",
            "FETCH",
            "FOR",
            "UNION",
            "EXCEPT",
            "INTERSECT",
        ];
        let word_at = |i: usize, word: &str| {
            matches!(self.tokens.get(i), Some((Token::Word(w), _))
                if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
        };
        let mut depth = 0i32;
        let mut start = None;
        for i in self.pos..self.tokens.len() {
            match &self.tokens[i].0 {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ if depth == 0 && CLAUSE.iter().enumerate().all(|(k, w)| word_at(i + k, w)) => {
                    start = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let start = start?;
        let expr_start = start + CLAUSE.len();
        let mut depth = 0i32;
        let mut end = self.tokens.len();
        for i in expr_start..self.tokens.len() {
            match &self.tokens[i].0 {
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    end = i;
                    break;
                }
                Token::RParen => depth -= 1,
                Token::SemiColon if depth == 0 => {
                    end = i;
                    break;
                }
                _ if depth == 0 && NEXT_CLAUSES.iter().any(|w| word_at(i, w)) => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let byte = |i: usize| {
            self.tokens
                .get(i)
                .map(|(_, at)| *at)
                .unwrap_or(self.text.len())
        };
        let end_byte = byte(end);
        Some((byte(start)..end_byte, byte(expr_start.min(end))..end_byte))
    }

    /// A 42601 error naming what was expected and where.
    pub fn error(&self, expected: &str) -> SqlError {
        let found = match self.tokens.get(self.pos) {
            Some((t, _)) => format!("found: {t}"),
            None => "found: end of statement".to_string(),
        };
        let position = self.base_chars + self.text[..self.offset()].chars().count() + 1;
        SqlError::syntax(format!("syntax error: expected {expected}, {found}"))
            .at(Some(position as u32))
    }
}
