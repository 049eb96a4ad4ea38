//! Backslash commands (`\q`, `\timing`, `\?`, `\l`, `\dt`, `\d`): a line
//! starting with `\` where no statement is pending is one of them. The
//! listing commands are the SHOW statements they stand for.

/// What a backslash command asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Meta {
    Quit,
    /// `\timing` toggles; `\timing on|off` sets.
    Timing(Option<bool>),
    Help,
    /// A listing, run as this statement.
    Sql(String),
    /// Not a command we know, or bad arguments: the message to print.
    Invalid(String),
}

pub const HELP: &str = "\
Statements end with ';' (outside quotes and comments) and may span lines.
  \\q               quit (Ctrl-D too)
  \\timing [on|off] print how long each statement took
  \\l               list databases (SHOW DATABASES)
  \\dt              list tables (SHOW TABLES)
  \\d               the same as \\dt
  \\d TABLE         describe a table (SHOW COLUMNS FROM TABLE)
  \\?               this help
Ctrl-C cancels the line being typed, or the statement running.";

pub fn parse(line: &str) -> Meta {
    let line = line.trim();
    let (command, arg) = match line.split_once(char::is_whitespace) {
        Some((command, arg)) => (command, arg.trim()),
        None => (line, ""),
    };
    // psql allows a trailing ';' after a backslash command's arguments.
    let arg = arg.strip_suffix(';').unwrap_or(arg).trim();
    let no_arg = |meta: Meta| {
        if arg.is_empty() {
            meta
        } else {
            Meta::Invalid(format!("{command} takes no argument"))
        }
    };
    match command {
        "\\q" | "\\quit" => no_arg(Meta::Quit),
        "\\?" | "\\help" | "\\h" => Meta::Help,
        "\\timing" => match arg.to_ascii_lowercase().as_str() {
            "" => Meta::Timing(None),
            "on" => Meta::Timing(Some(true)),
            "off" => Meta::Timing(Some(false)),
            _ => Meta::Invalid(format!("\\timing: expected on or off, got {arg:?}")),
        },
        "\\l" | "\\list" => no_arg(Meta::Sql("SHOW DATABASES".into())),
        "\\dt" => no_arg(Meta::Sql("SHOW TABLES".into())),
        "\\d" if arg.is_empty() => Meta::Sql("SHOW TABLES".into()),
        "\\d" => Meta::Sql(format!("SHOW COLUMNS FROM {arg}")),
        _ => Meta::Invalid(format!("unknown command {command}; \\? lists the commands")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse("\\q"), Meta::Quit);
        assert_eq!(parse("  \\q  "), Meta::Quit);
        assert_eq!(parse("\\timing"), Meta::Timing(None));
        assert_eq!(parse("\\timing ON"), Meta::Timing(Some(true)));
        assert_eq!(parse("\\timing off"), Meta::Timing(Some(false)));
        assert_eq!(parse("\\?"), Meta::Help);
        assert_eq!(parse("\\l"), Meta::Sql("SHOW DATABASES".into()));
        assert_eq!(parse("\\dt"), Meta::Sql("SHOW TABLES".into()));
        assert_eq!(parse("\\d"), Meta::Sql("SHOW TABLES".into()));
        assert_eq!(
            parse("\\d  accounts ;"),
            Meta::Sql("SHOW COLUMNS FROM accounts".into())
        );
        assert!(matches!(parse("\\timing maybe"), Meta::Invalid(_)));
        assert!(matches!(parse("\\q now"), Meta::Invalid(_)));
        assert!(matches!(parse("\\x"), Meta::Invalid(m) if m.contains("\\x")));
    }
}
