//! Command tags (`INSERT 0 1`, `CREATE TABLE`) for statements that return
//! no rows. tokio-postgres's `simple_query` keeps only the row count of
//! the server's CommandComplete message, not its tag, so the shell
//! rebuilds the tag from the statement's leading keywords and that count,
//! following PostgreSQL's (and CockroachDB's) tags.

/// The tag psql would print after `statement` affected `count` rows.
pub fn command_tag(statement: &str, count: u64) -> String {
    let words = top_level_words(statement);
    let word = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    let first = word(0);
    // WITH ... : the statement the CTEs lead to.
    let (head, rest) = if first == "WITH" {
        match words
            .iter()
            .position(|w| matches!(w.as_str(), "INSERT" | "UPSERT" | "UPDATE" | "DELETE"))
        {
            Some(i) => (words[i].as_str(), &words[i + 1..]),
            None => ("SELECT", &words[..0]),
        }
    } else {
        (first, words.get(1..).unwrap_or_default())
    };
    match head {
        // CockroachDB answers UPSERT with an INSERT tag.
        "INSERT" | "UPSERT" => format!("INSERT 0 {count}"),
        "UPDATE" | "DELETE" | "SELECT" | "VALUES" | "TABLE" | "MOVE" | "FETCH" | "COPY" => {
            let head = if matches!(head, "VALUES" | "TABLE") {
                "SELECT"
            } else {
                head
            };
            format!("{head} {count}")
        }
        "CREATE" | "DROP" | "ALTER" => {
            let modifiers = [
                "OR",
                "REPLACE",
                "UNIQUE",
                "TEMP",
                "TEMPORARY",
                "UNLOGGED",
                "GLOBAL",
                "LOCAL",
            ];
            let objects: Vec<&str> = rest
                .iter()
                .map(String::as_str)
                .skip_while(|w| modifiers.contains(w))
                .collect();
            let object = match objects.first().copied().unwrap_or("") {
                "USER" => "ROLE".to_string(),
                "MATERIALIZED" | "FOREIGN" => format!("{} {}", objects[0], next_of(&objects)),
                other => other.to_string(),
            };
            if object.is_empty() {
                head.to_string()
            } else {
                format!("{head} {object}")
            }
        }
        "START" => "START TRANSACTION".into(),
        "END" => "COMMIT".into(),
        "ABORT" => "ROLLBACK".into(),
        "TRUNCATE" => "TRUNCATE TABLE".into(),
        "" => "EMPTY".into(),
        other => other.to_string(),
    }
}

fn next_of(words: &[&str]) -> String {
    words.get(1).copied().unwrap_or("").to_string()
}

/// The words of a statement outside quotes, comments and parentheses,
/// upper-cased (enough to tell what kind of statement it is). For a
/// statement in parentheses, `(SELECT 1)`, the words of its outermost
/// level.
fn top_level_words(statement: &str) -> Vec<String> {
    let words = words_with_depth(statement);
    let top = words.iter().map(|(_, depth)| *depth).min().unwrap_or(0);
    words
        .into_iter()
        .filter(|(_, depth)| *depth == top)
        .map(|(word, _)| word)
        .collect()
}

fn words_with_depth(statement: &str) -> Vec<(String, usize)> {
    let chars: Vec<char> = statement.chars().collect();
    let mut words = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '-' if next == Some('-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut nesting = 0;
                while i < chars.len() {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        nesting += 1;
                        i += 1;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        nesting -= 1;
                        i += 1;
                        if nesting == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            '\'' | '"' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += 1;
                }
            }
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word = chars[start..i].iter().collect::<String>();
                words.push((word.to_uppercase(), depth));
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::command_tag;

    #[test]
    fn tags() {
        let cases = [
            ("INSERT INTO t VALUES (1)", 1, "INSERT 0 1"),
            ("insert into t select * from u", 3, "INSERT 0 3"),
            ("UPSERT INTO t VALUES (1)", 1, "INSERT 0 1"),
            ("UPDATE t SET a = 1", 2, "UPDATE 2"),
            ("-- why\nDELETE FROM t", 0, "DELETE 0"),
            (
                "WITH x AS (SELECT 1) DELETE FROM t WHERE a IN (SELECT * FROM x)",
                4,
                "DELETE 4",
            ),
            ("WITH x AS (DELETE FROM t) SELECT 1", 0, "SELECT 0"),
            ("CREATE TABLE t (a INT PRIMARY KEY)", 0, "CREATE TABLE"),
            ("create table if not exists t (a int)", 0, "CREATE TABLE"),
            ("CREATE UNIQUE INDEX ON t (a)", 0, "CREATE INDEX"),
            ("CREATE OR REPLACE VIEW v AS SELECT 1", 0, "CREATE VIEW"),
            ("CREATE USER alice WITH PASSWORD 'x'", 0, "CREATE ROLE"),
            ("CREATE DATABASE bank", 0, "CREATE DATABASE"),
            ("DROP TABLE t", 0, "DROP TABLE"),
            ("ALTER TABLE t ADD COLUMN b INT", 0, "ALTER TABLE"),
            ("BEGIN", 0, "BEGIN"),
            ("START TRANSACTION", 0, "START TRANSACTION"),
            ("COMMIT", 0, "COMMIT"),
            ("END", 0, "COMMIT"),
            ("ROLLBACK TO SAVEPOINT s", 0, "ROLLBACK"),
            ("SAVEPOINT s", 0, "SAVEPOINT"),
            ("SET application_name = 'x'", 0, "SET"),
            ("TRUNCATE t", 0, "TRUNCATE TABLE"),
            ("(SELECT 1)", 1, "SELECT 1"),
        ];
        for (statement, count, tag) in cases {
            assert_eq!(command_tag(statement, count), tag, "{statement}");
        }
    }
}
