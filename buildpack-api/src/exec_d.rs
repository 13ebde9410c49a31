//! The output of an `exec.d` executable on file descriptor 3 ([FMT-021]): top-level
//! `name = "value"` pairs that the launcher adds to the process environment.

/// Why exec.d output cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExecDOutputError {
    /// Not valid TOML.
    #[error("parse exec.d output")]
    Parse(#[source] toml::de::Error),
    /// A value that is not a string (a table, an array, a number...).
    #[error("value of '{0}' in exec.d output is not a string")]
    NotAString(String),
    /// A name that cannot be an environment variable name (empty, or with `=` or NUL).
    #[error("'{0}' in exec.d output is not a valid environment variable name")]
    InvalidName(String),
}

/// Parses exec.d output into `(name, value)` pairs, ordered by name.
///
/// Values must be strings. Names must be usable as environment variable names: the spec asks
/// for bare keys, but like the reference this accepts any key that the OS would (not empty, no
/// `=`, no NUL).
pub fn parse_exec_d_output(text: &str) -> Result<Vec<(String, String)>, ExecDOutputError> {
    let table: toml::Table = toml::from_str(text).map_err(ExecDOutputError::Parse)?;
    let mut vars = Vec::with_capacity(table.len());
    for (name, value) in table {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(ExecDOutputError::InvalidName(name));
        }
        match value {
            toml::Value::String(s) => vars.push((name, s)),
            _ => return Err(ExecDOutputError::NotAString(name)),
        }
    }
    vars.sort();
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_021_name_value_pairs() {
        let vars = parse_exec_d_output("B = \"2\"\nA = \"one\\ntwo\"\nEMPTY = \"\"\n").unwrap();
        assert_eq!(
            vars,
            vec![
                ("A".to_string(), "one\ntwo".to_string()),
                ("B".to_string(), "2".to_string()),
                ("EMPTY".to_string(), String::new()),
            ]
        );
        assert_eq!(parse_exec_d_output("").unwrap(), vec![]);
    }

    #[test]
    fn fmt_021_errors() {
        assert!(matches!(
            parse_exec_d_output("A = 1"),
            Err(ExecDOutputError::NotAString(n)) if n == "A"
        ));
        assert!(matches!(
            parse_exec_d_output("[A]\nb = \"c\""),
            Err(ExecDOutputError::NotAString(_))
        ));
        assert!(matches!(
            parse_exec_d_output("\"A=B\" = \"c\""),
            Err(ExecDOutputError::InvalidName(_))
        ));
        assert!(matches!(
            parse_exec_d_output("\"\" = \"c\""),
            Err(ExecDOutputError::InvalidName(_))
        ));
        assert!(matches!(
            parse_exec_d_output("A = "),
            Err(ExecDOutputError::Parse(_))
        ));
    }
}
