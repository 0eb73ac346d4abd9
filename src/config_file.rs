//! The optional TOML configuration file (`--config PATH`, `DICOMWEB_CONFIG`): the last layer of
//! [`Config`], under flags and environment variables. Its keys are the long flag names, looked
//! up in clap's own description of [`Config`], so a new flag is a key with no change here.
//!
//! Each key becomes the argument a user would type (`--port=8042`, one `--cors-allow-origin=`
//! per list item, a bare `--stack-dump` for `true`), and only for options that no flag and no
//! environment variable set; those arguments go before the real ones and clap parses them all
//! once, with its own value parsers and defaults. Subcommand arguments are not keys.

use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::Config;

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// A usage error in the flags or environment variables, or `--help` or `--version`: clap's
    /// own error, whose `exit()` prints it and exits as `Parser::parse` does.
    Usage(clap::Error),
    /// The configuration file cannot be read, is not TOML, or sets an option it cannot: the
    /// message names the file and, where there is one, the option.
    File(String),
}

/// The configuration from `args` (the program name first), the environment and the file that
/// `--config` or `DICOMWEB_CONFIG` names, if any.
pub fn load_from<I, T>(args: I) -> Result<Config, LoadError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Config::command();
    // Building fills in what introspection needs: actions and value counts of every option.
    command.build();
    let given = command
        .clone()
        .try_get_matches_from(&args)
        .map_err(LoadError::Usage)?;
    let config = Config::from_arg_matches(&given).map_err(LoadError::Usage)?;
    let Some(path) = config.config.clone() else {
        return Ok(config);
    };
    let in_file =
        |message: String| LoadError::File(format!("config file {}: {message}", path.display()));
    let text = std::fs::read_to_string(&path)
        .map_err(|error| in_file(format!("cannot read it: {error}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|error: toml::de::Error| in_file(error.to_string().trim_end().to_string()))?;
    let from_file = file_arguments(&command, &given, &table).map_err(in_file)?;

    let (program, real) = match args.split_first() {
        Some((program, real)) => (program.clone(), real),
        None => (OsString::from(command.get_name()), &[][..]),
    };
    let merged = std::iter::once(program)
        .chain(from_file)
        .chain(real.iter().cloned());
    let matches = command
        .try_get_matches_from(merged)
        .map_err(|error| in_file(describe(&error)))?;
    Config::from_arg_matches(&matches).map_err(LoadError::Usage)
}

/// The arguments that stand for the options of `table`, leaving out those that the command
/// line or the environment set (`given`: clap's matches without the file). Every key is
/// checked, including those left out: a wrong file is an error even where it is overridden.
fn file_arguments(
    command: &clap::Command,
    given: &ArgMatches,
    table: &toml::Table,
) -> Result<Vec<OsString>, String> {
    let mut arguments = Vec::new();
    // (long name, key as written) of the options seen so far, to catch `a-b` next to `a_b`.
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (key, value) in table {
        if value.is_table() {
            return Err(format!(
                "{key:?} is a table: options are top-level keys such as `port = 5000`"
            ));
        }
        let (arg, long) = option_for(command, key)?;
        if let Some((_, earlier)) = seen.iter().find(|(name, _)| *name == long) {
            return Err(format!("option {key:?} is set twice (also as {earlier:?})"));
        }
        seen.push((long, key));
        let in_option = |message: String| format!("option {key:?}: {message}");
        let option_arguments = arguments_for(arg, long, value).map_err(in_option)?;
        let alone = std::iter::once(OsString::from(command.get_name()))
            .chain(option_arguments.iter().cloned());
        if let Err(error) = command.clone().try_get_matches_from(alone) {
            return Err(in_option(describe(&error)));
        }
        let source = given.value_source(arg.get_id().as_str());
        if !matches!(
            source,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            arguments.extend(option_arguments);
        }
    }
    Ok(arguments)
}

/// The option `key` names, with its long name: `key` is the long flag name, with `-` or `_`
/// between words.
fn option_for<'c>(command: &'c clap::Command, key: &str) -> Result<(&'c Arg, &'c str), String> {
    let wanted = key.replace('_', "-");
    let found = command.get_arguments().find_map(|arg| {
        let long = arg.get_long().filter(|long| *long == wanted)?;
        let settable = matches!(
            arg.get_action(),
            ArgAction::Set
                | ArgAction::Append
                | ArgAction::SetTrue
                | ArgAction::SetFalse
                | ArgAction::Count
        );
        settable.then_some((arg, long))
    });
    match found {
        None => Err(format!("unknown option {key:?}")),
        Some((arg, _)) if arg.get_id() == "config" => Err(format!(
            "option {key:?} cannot be set in a configuration file"
        )),
        Some(found) => Ok(found),
    }
}

/// The arguments that give option `arg` (long name `long`) the file's `value`.
fn arguments_for(arg: &Arg, long: &str, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let flag = format!("--{long}");
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let toml::Value::Boolean(on) = value else {
                return Err(format!("expected true or false, got {}", kind(value)));
            };
            let given = *on == matches!(arg.get_action(), ArgAction::SetTrue);
            Ok(given.then(|| flag.into()).into_iter().collect())
        }
        ArgAction::Count => {
            let count = value
                .as_integer()
                .and_then(|count| usize::try_from(count).ok())
                .ok_or_else(|| format!("expected a count, got {}", kind(value)))?;
            Ok(vec![flag.into(); count])
        }
        ArgAction::Append => match value {
            toml::Value::Array(items) => items
                .iter()
                .filter_map(|item| with_value(arg, &flag, item).transpose())
                .collect(),
            single => Ok(with_value(arg, &flag, single)?.into_iter().collect()),
        },
        _ => Ok(with_value(arg, &flag, value)?.into_iter().collect()),
    }
}

/// `--long=value` for one value; for an option whose value is optional (`num_args = 0..=1`)
/// `true` is the bare flag and `false` leaves it out.
fn with_value(arg: &Arg, flag: &str, value: &toml::Value) -> Result<Option<OsString>, String> {
    let value_optional = arg
        .get_num_args()
        .is_some_and(|range| range.min_values() == 0);
    let text = match value {
        toml::Value::String(text) => text.clone(),
        toml::Value::Integer(number) => number.to_string(),
        toml::Value::Float(number) => number.to_string(),
        toml::Value::Boolean(on) if value_optional => {
            return Ok(on.then(|| flag.into()));
        }
        toml::Value::Boolean(on) => on.to_string(),
        toml::Value::Array(_) => return Err("expected one value, got a list".into()),
        other => {
            return Err(format!(
                "expected a string, number or boolean, got {}",
                kind(other)
            ))
        }
    };
    Ok(Some(format!("{flag}={text}").into()))
}

/// The TOML type of `value`, for messages.
fn kind(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => format!("the string {text:?}"),
        toml::Value::Integer(number) => format!("the integer {number}"),
        toml::Value::Boolean(on) => format!("{on}"),
        other => format!("a {}", other.type_str()),
    }
}

/// clap's complaint about one option's value, without its usage hints: e.g. `invalid value
/// "abc": invalid digit found in string`.
fn describe(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let invalid = match error.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(value)) if !value.is_empty() => Some(value),
        _ => None,
    };
    match (error.kind(), invalid) {
        (ErrorKind::ValueValidation, Some(value)) => match std::error::Error::source(error) {
            Some(cause) => format!("invalid value {value:?}: {cause}"),
            None => format!("invalid value {value:?}"),
        },
        (ErrorKind::InvalidValue, Some(value)) => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!(
                "invalid value {value:?} (possible values: {})",
                valid.join(", ")
            ),
            _ => format!("invalid value {value:?}"),
        },
        _ => {
            let rendered = error.render().to_string();
            let first = rendered.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::config::{Command, LogFormat};

    /// The configuration from a file holding `text` and the command line `args` (after the
    /// program name and `--config FILE`); a file error with the file's path written `FILE`.
    fn load(text: &str, args: &[&str]) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("dicomweb.toml");
        std::fs::write(&path, text).expect("write the configuration file");
        load_with(&path, args)
    }

    fn load_with(path: &Path, args: &[&str]) -> Result<Config, String> {
        let mut argv: Vec<OsString> = vec!["dicomwebserver".into(), "--config".into()];
        argv.push(path.into());
        argv.extend(args.iter().map(OsString::from));
        match load_from(argv) {
            Ok(config) => Ok(config),
            Err(LoadError::File(message)) => {
                Err(message.replace(&path.display().to_string(), "FILE"))
            }
            Err(LoadError::Usage(error)) => panic!("unexpected usage error: {error}"),
        }
    }

    /// Loading a file holding `text` fails with exactly `expected`.
    fn check_error(text: &str, expected: &str) {
        match load(text, &[]) {
            Ok(config) => panic!("{text:?} was accepted: {config:?}"),
            Err(message) => assert_eq!(message, expected, "for the file {text:?}"),
        }
    }

    #[test]
    fn file_sets_options_by_their_long_flag_names() {
        let config = load(
            "port = 8042\ndir = \"/var/lib/dicomweb\"\nserver-path = \"/pacs\"\n\
             host = \"0.0.0.0\"\nlog-format = \"json\"\nmax-request-bytes = 1000000\n",
            &[],
        )
        .expect("a valid file");
        assert_eq!(config.port, 8042);
        assert_eq!(config.dir, Some(PathBuf::from("/var/lib/dicomweb")));
        assert_eq!(config.server_path, "/pacs");
        assert_eq!(config.host.to_string(), "0.0.0.0");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.max_request_bytes, 1_000_000);
        // Options the file leaves out keep their defaults.
        assert_eq!(
            config.parts_in_flight,
            crate::config::DEFAULT_PARTS_IN_FLIGHT
        );
    }

    #[test]
    fn every_option_with_a_long_flag_is_a_key() {
        let mut command = Config::command();
        command.build();
        let longs = command.get_arguments().filter_map(Arg::get_long);
        let longs: Vec<&str> = longs
            .filter(|long| !["config", "help", "version"].contains(long))
            .collect();
        assert!(longs.contains(&"port") && longs.contains(&"stack-dump"));
        for long in longs {
            let key = long.replace('-', "_");
            assert!(option_for(&command, &key).is_ok(), "{long} is not a key");
        }
    }

    #[test]
    fn keys_may_use_underscores() {
        let config =
            load("server_path = \"/pacs\"\nparts_in_flight = 2\n", &[]).expect("a valid file");
        assert_eq!(config.server_path, "/pacs");
        assert_eq!(config.parts_in_flight, 2);
    }

    #[test]
    fn lists_are_repeated_options() {
        let config = load(
            "cors-allow-origin = [\"http://localhost:3000\", \"https://a.example,https://b.example\"]\n",
            &[],
        )
        .expect("a valid file");
        // Items are split at commas like the flag's values.
        assert_eq!(
            config.cors_allow_origins,
            [
                "http://localhost:3000",
                "https://a.example",
                "https://b.example"
            ]
        );
        let config = load("cors-allow-origin = \"*\"\n", &[]).expect("a single value");
        assert_eq!(config.cors_allow_origins, ["*"]);
    }

    #[test]
    fn flags_take_booleans() {
        let config = load("stack-dump = true\nallow-overwrite = true\n", &[]).expect("valid");
        assert!(config.stack_dump_enabled);
        assert!(config.allow_overwrite);
        let config = load("stack-dump = false\nallow-overwrite = false\n", &[]).expect("valid");
        assert!(!config.stack_dump_enabled);
        assert!(!config.allow_overwrite);
    }

    #[test]
    fn options_with_an_optional_value_take_true_or_a_value() {
        let config = load("livelock-detect = true\ndebug-listen = true\n", &[]).expect("valid");
        assert_eq!(config.livelock_detect_ms, Some(15000));
        assert_eq!(config.debug_listen.as_deref(), Some("127.0.0.1:0"));
        let config = load("livelock-detect = 500\ndebug-listen = 9000\n", &[]).expect("valid");
        assert_eq!(config.livelock_detect_ms, Some(500));
        assert_eq!(config.debug_listen.as_deref(), Some("9000"));
        let config = load("livelock-detect = false\n", &[]).expect("valid");
        assert_eq!(config.livelock_detect_ms, None);
    }

    #[test]
    fn command_line_flags_override_the_file() {
        let file = "port = 8042\nserver-path = \"/file\"\ncors-allow-origin = [\"http://file\"]\n";
        let config = load(
            file,
            &[
                "-p",
                "7000",
                "--server-path=/flag",
                "--cors-allow-origin",
                "http://flag",
            ],
        )
        .expect("valid");
        assert_eq!(config.port, 7000);
        assert_eq!(config.server_path, "/flag");
        // A flag replaces the file's list rather than adding to it.
        assert_eq!(config.cors_allow_origins, ["http://flag"]);
    }

    #[test]
    fn flag_after_a_subcommand_overrides_the_file() {
        let config = load("dir = \"/file\"\n", &["reindex", "--dir", "/flag"]).expect("valid");
        assert_eq!(config.command, Some(Command::Reindex));
        assert_eq!(config.dir, Some(PathBuf::from("/flag")));
        let config = load("dir = \"/file\"\n", &["reindex"]).expect("valid");
        assert_eq!(config.dir, Some(PathBuf::from("/file")));
    }

    #[test]
    fn config_flag_is_accepted_after_a_subcommand() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let path = dir.path().join("dicomweb.toml");
        std::fs::write(&path, "dir = \"/file\"\n").expect("write the configuration file");
        let path = path.to_str().expect("UTF-8 temporary path");
        let config = load_from(["dicomwebserver", "reindex", "--config", path]);
        let config = config.expect("a valid configuration");
        assert_eq!(config.dir, Some(PathBuf::from("/file")));
    }

    #[test]
    fn without_a_file_the_command_line_alone_counts() {
        let config = load_from(["dicomwebserver", "--port", "7"]).expect("valid flags");
        assert_eq!(config.port, 7);
        assert_eq!(config.config, None);
    }

    #[test]
    fn invalid_files_are_errors_naming_file_and_option() {
        check_error("prot = 8042\n", "config file FILE: unknown option \"prot\"");
        check_error(
            "port = \"abc\"\n",
            "config file FILE: option \"port\": invalid value \"abc\": invalid digit found in string",
        );
        check_error(
            "port = 70000\n",
            "config file FILE: option \"port\": invalid value \"70000\": 70000 is not in 0..=65535",
        );
        check_error(
            "log_format = \"xml\"\n",
            "config file FILE: option \"log_format\": invalid value \"xml\" (possible values: text, json)",
        );
        check_error(
            "port = [1, 2]\n",
            "config file FILE: option \"port\": expected one value, got a list",
        );
        check_error(
            "stack-dump = \"yes\"\n",
            "config file FILE: option \"stack-dump\": expected true or false, got the string \"yes\"",
        );
        check_error(
            "[server]\nport = 8042\n",
            "config file FILE: \"server\" is a table: options are top-level keys such as `port = 5000`",
        );
        check_error(
            "config = \"other.toml\"\n",
            "config file FILE: option \"config\" cannot be set in a configuration file",
        );
        check_error("help = true\n", "config file FILE: unknown option \"help\"");
        check_error(
            "server-path = \"/a\"\nserver_path = \"/b\"\n",
            "config file FILE: option \"server_path\" is set twice (also as \"server-path\")",
        );
    }

    #[test]
    fn an_overridden_option_must_still_be_valid() {
        let error = load("port = \"abc\"\n", &["--port", "1"]).expect_err("invalid file");
        assert!(error.contains("option \"port\""), "{error}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let error = load("port = 8042\nhost = \n", &[]).expect_err("not TOML");
        assert!(
            error.starts_with("config file FILE: TOML parse error at line 2"),
            "{error}"
        );
    }

    #[test]
    fn unreadable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let error = load_with(&dir.path().join("absent.toml"), &[]).expect_err("no file");
        assert!(
            error.starts_with("config file FILE: cannot read it: "),
            "{error}"
        );
    }

    #[test]
    fn example_in_operations_guide_is_valid() {
        let guide = include_str!("../docs/operations.md");
        let example = guide
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/operations.md holds a ```toml example");
        let config = load(example, &[]).expect("the example is a valid configuration");
        config.validate().expect("the example passes validation");
    }
}
