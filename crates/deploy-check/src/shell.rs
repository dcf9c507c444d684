//! POSIX shell word splitting, as far as the command lines of a compose file need it:
//! quotes, backslashes and the separators `;`, `&`, `&&`, `|`, `||` and newline. No
//! expansions or redirections: those words are kept as they are written.

/// Why a command line could not be split. The shell (or Compose) would refuse it too.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    #[error("a {0} quote is never closed")]
    UnclosedQuote(char),
    #[error("it ends in a backslash, which escapes nothing")]
    TrailingBackslash,
}

/// The words of each simple command of a one-liner, in order.
pub fn split(script: &str) -> Result<Vec<Vec<String>>, ShellError> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    // `None` between words, so that `''` still makes an (empty) word.
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next().ok_or(ShellError::UnclosedQuote('\''))? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next().ok_or(ShellError::UnclosedQuote('"'))? {
                        '"' => break,
                        '\\' => {
                            let n = chars.next().ok_or(ShellError::UnclosedQuote('"'))?;
                            // Inside double quotes a backslash escapes only these.
                            if !matches!(n, '"' | '\\' | '$' | '`') {
                                w.push('\\');
                            }
                            w.push(n);
                        }
                        c => w.push(c),
                    }
                }
            }
            '\\' => match chars.next().ok_or(ShellError::TrailingBackslash)? {
                // A line continuation.
                '\n' => {}
                n => word.get_or_insert_with(String::new).push(n),
            },
            ';' | '&' | '|' | '\n' => {
                words.extend(word.take());
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
                if matches!(c, '&' | '|') && chars.peek() == Some(&c) {
                    chars.next();
                }
            }
            c if c.is_whitespace() => words.extend(word.take()),
            // A comment runs to the end of the line.
            '#' if word.is_none() => while chars.next_if(|&c| c != '\n').is_some() {},
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word.take());
    if !words.is_empty() {
        commands.push(words);
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        split(script).unwrap()
    }

    #[test]
    fn one_liners_split_into_commands() {
        assert_eq!(
            words(r#"test -s '/a b' || exec x --y="1 2" && z;w\ v | q"#),
            vec![vec!["test", "-s", "/a b"], vec!["exec", "x", "--y=1 2"], vec!["z"], vec!["w v"], vec!["q"]]
        );
    }

    #[test]
    fn double_quotes_keep_backslashes_that_escape_nothing() {
        assert_eq!(words(r#"printf "a\"b\$c\n""#), vec![vec!["printf", "a\"b$c\\n"]]);
    }

    #[test]
    fn empty_quotes_are_a_word_and_blank_scripts_are_no_command() {
        assert_eq!(
            words("redis-server --save '' --appendonly no"),
            vec![vec!["redis-server", "--save", "", "--appendonly", "no"]]
        );
        assert!(words("").is_empty());
        assert!(words(" ;\n ; ").is_empty());
    }

    #[test]
    fn comments_and_continuations() {
        assert_eq!(words("a # b c\nd \\\n e"), vec![vec!["a"], vec!["d", "e"]]);
        // `#` inside a word is not a comment.
        assert_eq!(words("a#b"), vec![vec!["a#b"]]);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert_eq!(split("echo 'a b"), Err(ShellError::UnclosedQuote('\'')));
        assert_eq!(split(r#"echo "a \""#), Err(ShellError::UnclosedQuote('"')));
        assert_eq!(split(r#"echo "a \"#), Err(ShellError::UnclosedQuote('"')));
        assert_eq!(split("echo a\\"), Err(ShellError::TrailingBackslash));
        assert_eq!(split("echo 'a").unwrap_err().to_string(), "a ' quote is never closed");
    }
}
