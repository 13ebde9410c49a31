//! Word expansion as BuildKit's shell lexer does it (`frontend/dockerfile/shell/lex.go`):
//! quotes are removed, the escape character (`\` or the `escape` directive's) escapes the
//! next character, and `$V`, `${V}`, `${V:-w}`, `${V:+w}`, `${V-w}`, `${V+w}`, `${V:?w}`,
//! `${V?w}` are substituted. No word splitting happens on expanded values.

use std::iter::Peekable;
use std::str::Chars;

/// Looks up variables during expansion.
pub trait Lookup {
    /// The value of `name`, or `None` when unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl Lookup for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<String> {
        find(self, name)
    }
}

/// The last value of `name` in a list of pairs.
pub fn find(list: &[(String, String)], name: &str) -> Option<String> {
    list.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Expands one word: quotes removed, escapes applied, variables substituted.
pub fn expand_word(word: &str, escape: char, vars: &dyn Lookup) -> Result<String, String> {
    let mut lx = Lexer {
        chars: word.chars().peekable(),
        escape,
        vars,
    };
    lx.process(None)
}

/// Expands the variables of a here-document (unquoted delimiter): quotes stay as they are
/// and the escape character only escapes `$` and itself.
pub fn expand_heredoc(text: &str, escape: char, vars: &dyn Lookup) -> Result<String, String> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        escape,
        vars,
    };
    let mut out = String::new();
    while let Some(c) = lx.chars.next() {
        match c {
            '$' => out.push_str(&lx.dollar()?),
            c if c == escape => match lx.chars.next() {
                Some(n) if n == '$' || n == escape => out.push(n),
                Some(n) => {
                    out.push(c);
                    out.push(n);
                }
                None => out.push(c),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits an instruction's arguments into words on unquoted whitespace, keeping quotes and
/// escapes in the words (BuildKit's `parseWords`, used for `ENV`, `LABEL` and `ARG`).
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ => {}
        }
        word.push(c);
        if c == escape
            && quote != Some('\'')
            && let Some(n) = chars.next()
        {
            word.push(n);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
    escape: char,
    vars: &'a dyn Lookup,
}

impl Lexer<'_> {
    /// Processes characters until `stop` (consumed) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.chars.next() {
            if Some(c) == stop {
                return Ok(out);
            }
            match c {
                '\'' => out.push_str(&self.single_quoted()?),
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    if let Some(n) = self.chars.next() {
                        out.push(n);
                    }
                }
                c => out.push(c),
            }
        }
        match stop {
            Some(s) => Err(format!("syntax error: missing '{s}'")),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        for c in self.chars.by_ref() {
            if c == '\'' {
                return Ok(out);
            }
            out.push(c);
        }
        Err("unexpected end of statement while looking for matching single-quote".into())
    }

    fn double_quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.chars.next() {
            match c {
                '"' => return Ok(out),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.chars.next() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => out.push(n),
                    Some(n) => {
                        out.push(c);
                        out.push(n);
                    }
                    None => out.push(c),
                },
                c => out.push(c),
            }
        }
        Err("unexpected end of statement while looking for matching double-quote".into())
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.chars.next();
            } else {
                break;
            }
        }
        name
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, String> {
        if self.chars.peek() != Some(&'{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.vars.get(&name).unwrap_or_default());
        }
        self.chars.next();
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: empty variable name".into());
        }
        let value = self.vars.get(&name);
        let colon = self.chars.peek() == Some(&':');
        if colon {
            self.chars.next();
        }
        let Some(op) = self.chars.next() else {
            return Err(format!("syntax error: missing '}}' after ${{{name}"));
        };
        if op == '}' && !colon {
            return Ok(value.unwrap_or_default());
        }
        // `:` makes an empty value count as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => {
                let word = self.process(Some('}'))?;
                Ok(if set { value.unwrap_or_default() } else { word })
            }
            '+' => {
                let word = self.process(Some('}'))?;
                Ok(if set { word } else { String::new() })
            }
            '?' => {
                let word = self.process(Some('}'))?;
                if set {
                    Ok(value.unwrap_or_default())
                } else if word.is_empty() {
                    Err(format!("{name}: is not allowed to be unset"))
                } else {
                    Err(format!("{name}: {word}"))
                }
            }
            other => Err(format!(
                "unsupported modifier ({other}) in substitution of ${{{name}}}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vec<(String, String)> {
        [("A", "a"), ("E", ""), ("SP", "x y")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn ex(w: &str) -> String {
        expand_word(w, '\\', &vars()).expect("expands")
    }

    #[test]
    fn substitutions_follow_buildkit() {
        assert_eq!(ex("$A-${A}"), "a-a");
        assert_eq!(ex("${U:-d}|${E:-d}|${E-d}|${U-d}"), "d|d||d");
        assert_eq!(ex("${A:+w}|${E:+w}|${E+w}|${U+w}"), "w||w|");
        assert_eq!(ex("${U:-${A}b}"), "ab");
        assert_eq!(ex("$SP"), "x y");
        assert_eq!(ex("$ $1x"), "$ ");
        assert_eq!(ex("pre$Apost"), "pre");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(
            ex(r#"'$A' "$A" \$A "\$A" "a\b" \"q"#),
            r#"$A a $A $A a\b "q"#
        );
        assert_eq!(ex(r#""x y"z"#), "x yz");
        assert_eq!(
            expand_word("`$A ``", '`', &vars()).expect("expands"),
            "$A `"
        );
        assert!(expand_word("\"open", '\\', &vars()).is_err());
        assert!(expand_word("${A%x}", '\\', &vars()).is_err());
        assert!(expand_word("${U:?must be set}", '\\', &vars()).is_err());
    }

    #[test]
    fn split_keeps_quotes() {
        assert_eq!(
            split_words(r#"A="b c" D=e\ f  G='h i'"#, '\\'),
            vec![r#"A="b c""#, r"D=e\ f", "G='h i'"]
        );
    }
}
