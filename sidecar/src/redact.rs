//! Masks secrets in what the sidecar shows of a container, so they never
//! leave it: whole environment values whose key looks secret, and inside
//! every other value, argument and message
//! - the password of a URL's userinfo (`postgres://app:***@db/app`; a
//!   userinfo without a password is masked whole: `https://***@host`),
//! - the value of a secret-looking flag (`--requirepass ***`,
//!   `--password=***`, `-Dspring.datasource.password=***`),
//! - the value of a secret-looking assignment (`PGPASSWORD=*** psql`,
//!   `?password=***&…`),
//! - where the program makes it unambiguous, short flags: `mysql -p***`,
//!   `redis-cli -a ***`.
//!
//! "Secret-looking" is the key pattern (`DOCKWARD_MASK_ENV_PATTERN`) applied
//! to the flag or key name (dashes and dots read as underscores). Pure logic.

use std::borrow::Cow;

use regex::{Captures, Regex};

/// What replaces a masked value.
pub const MASK: &str = "***";

#[derive(Debug, Clone)]
pub struct Redactor {
    key: Regex,
    url: Regex,
    flag: Regex,
    assign: Regex,
    mysql_p: Regex,
    redis_a: Regex,
    whole_flag: Regex,
}

/// Programs whose short flags are known (`mysql -pSECRET`, `redis-cli -a SECRET`).
#[derive(Debug, Clone, Copy, Default)]
struct Programs {
    mysql: bool,
    redis_cli: bool,
}

impl Programs {
    fn of(text: &str) -> Self {
        let words = || text.split(|c: char| c.is_whitespace() || c == '/' || c == ';' || c == '&' || c == '|');
        Self {
            mysql: words()
                .any(|w| w.starts_with("mysql") || w.starts_with("mariadb") || w == "mysqladmin" || w == "mysqldump"),
            redis_cli: words().any(|w| w == "redis-cli" || w == "valkey-cli"),
        }
    }
}

impl Redactor {
    pub fn new(key_pattern: &str) -> Result<Self, regex::Error> {
        let value = r#"("[^"]*"|'[^']*'|[^\s"'\-][^\s"']*)"#;
        Ok(Self {
            key: Regex::new(key_pattern)?,
            url: Regex::new(r#"(?i)([a-z][a-z0-9+.\-]*://)([^\s/?#"'<>]*)@"#)?,
            flag: Regex::new(&format!(r#"(^|[\s"'])(--?[A-Za-z][A-Za-z0-9_.\-]*)(=|[ \t]+){value}"#))?,
            assign: Regex::new(r#"(^|[\s"';&|?])([A-Za-z_][A-Za-z0-9_.\-]*)=("[^"]*"|'[^']*'|[^\s"';&|#]*)"#)?,
            mysql_p: Regex::new(r#"(^|\s)-p([^\s"']+)"#)?,
            redis_a: Regex::new(&format!(r#"(^|\s)-a([ \t]*){value}"#))?,
            whole_flag: Regex::new(r"^--?[A-Za-z][A-Za-z0-9_.\-]*$")?,
        })
    }

    /// Whether an environment key (or a flag or key name) looks secret.
    pub fn key_is_secret(&self, key: &str) -> bool {
        self.key.is_match(key)
    }

    fn name_is_secret(&self, flag: &str) -> bool {
        let name = flag.trim_start_matches('-').replace(['-', '.'], "_");
        !name.is_empty() && self.key.is_match(&name)
    }

    /// Free text (a value, a message, one argument that may hold a whole
    /// shell command) with its secrets masked.
    pub fn text<'a>(&self, s: &'a str) -> Cow<'a, str> {
        self.text_in(s, Programs::of(s))
    }

    fn text_in<'a>(&self, s: &'a str, programs: Programs) -> Cow<'a, str> {
        let mut out = self.url.replace_all(s, |c: &Captures| {
            let userinfo = &c[2];
            let masked = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{MASK}"),
                None => MASK.to_owned(),
            };
            format!("{}{masked}@", &c[1])
        });
        let flagged = self.flag.replace_all(&out, |c: &Captures| {
            if self.name_is_secret(&c[2]) {
                format!("{}{}{}{MASK}", &c[1], &c[2], &c[3])
            } else {
                c[0].to_owned()
            }
        });
        if let Cow::Owned(f) = flagged {
            out = Cow::Owned(f);
        }
        let assigned = self.assign.replace_all(&out, |c: &Captures| {
            if self.name_is_secret(&c[2]) && !c[3].is_empty() {
                format!("{}{}={MASK}", &c[1], &c[2])
            } else {
                c[0].to_owned()
            }
        });
        if let Cow::Owned(a) = assigned {
            out = Cow::Owned(a);
        }
        if programs.mysql {
            if let Cow::Owned(m) = self.mysql_p.replace_all(&out, |c: &Captures| format!("{}-p{MASK}", &c[1])) {
                out = Cow::Owned(m);
            }
        }
        if programs.redis_cli {
            if let Cow::Owned(r) = self.redis_a.replace_all(&out, |c: &Captures| format!("{}-a{}{MASK}", &c[1], &c[2]))
            {
                out = Cow::Owned(r);
            }
        }
        out
    }

    /// An argument vector (entrypoint or command) with its secrets masked:
    /// each argument as [`Self::text`], and the argument after a
    /// secret-looking flag that stands alone (`--requirepass`, `SECRET`).
    pub fn args(&self, args: &[String]) -> Vec<String> {
        let programs = Programs::of(&args.join(" "));
        let mut out = Vec::with_capacity(args.len());
        let mut mask_next = false;
        for a in args {
            if mask_next && !a.starts_with('-') {
                out.push(MASK.to_owned());
                mask_next = false;
                continue;
            }
            let t = a.trim();
            mask_next = (self.whole_flag.is_match(t) && self.name_is_secret(t))
                || (programs.redis_cli && t == "-a")
                || (programs.mysql && t == "--password");
            out.push(self.text_in(a, programs).into_owned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_MASK_PATTERN;

    fn r() -> Redactor {
        Redactor::new(DEFAULT_MASK_PATTERN).unwrap()
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn url_userinfo_is_masked() {
        let r = r();
        let cases = [
            ("postgres://app:hunter2@db:5432/app", "postgres://app:***@db:5432/app"),
            ("mysql://root:p@ss@word@db/x", "mysql://root:***@db/x"),
            ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
            ("https://ghp_token123@github.com/org/repo.git", "https://***@github.com/org/repo.git"),
            ("connect to amqp://guest:guest@rabbit/ failed", "connect to amqp://guest:***@rabbit/ failed"),
            (
                "a=mongodb+srv://u:pw@c.example.net b=http://x:y@h",
                "a=mongodb+srv://u:***@c.example.net b=http://x:***@h",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r.text(input), want, "{input}");
        }
    }

    #[test]
    fn secret_flags_keep_the_flag_and_lose_the_value() {
        let r = r();
        let cases = [
            ("redis-server --requirepass hunter2 --port 6379", "redis-server --requirepass *** --port 6379"),
            ("app --password=hunter2", "app --password=***"),
            ("app --token abc.def --verbose", "app --token *** --verbose"),
            ("app --api-key=k1 --secret 's p'", "app --api-key=*** --secret ***"),
            ("java -Dspring.datasource.password=x -jar a.jar", "java -Dspring.datasource.password=*** -jar a.jar"),
            ("redis-server --masterauth hunter2", "redis-server --masterauth ***"),
            // A flag with no value before the next flag hides nothing; the next one is still seen.
            ("app --no-auth --password x", "app --no-auth --password ***"),
        ];
        for (input, want) in cases {
            assert_eq!(r.text(input), want, "{input}");
        }
        assert_eq!(
            r.args(&args(&["redis-server", "--requirepass", "hunter2", "--appendonly", "yes"])),
            args(&["redis-server", "--requirepass", "***", "--appendonly", "yes"])
        );
        assert_eq!(
            r.args(&args(&["sh", "-c", "exec redis-server --requirepass \"$(cat /run/pw)\" --save ''"])),
            args(&["sh", "-c", "exec redis-server --requirepass *** --save ''"])
        );
        assert_eq!(r.args(&args(&["app", "--password=hunter2"])), args(&["app", "--password=***"]));
        // A secret-looking flag followed by another flag masks nothing.
        assert_eq!(r.args(&args(&["app", "--auth", "--port", "80"])), args(&["app", "--auth", "--port", "80"]));
    }

    #[test]
    fn assignments_and_query_parameters() {
        let r = r();
        assert_eq!(r.text("PGPASSWORD=hunter2 psql -h db"), "PGPASSWORD=*** psql -h db");
        assert_eq!(r.text("env MYSQL_PWD=x mysqldump"), "env MYSQL_PWD=*** mysqldump");
        assert_eq!(
            r.text("postgres://db/app?user=a&password=hunter2&ssl=1"),
            "postgres://db/app?user=a&password=***&ssl=1"
        );
        assert_eq!(r.text("LANG=C.UTF-8 PATH=/bin"), "LANG=C.UTF-8 PATH=/bin");
    }

    #[test]
    fn short_flags_only_where_the_program_says_what_they_mean() {
        let r = r();
        assert_eq!(r.text("mysql -uroot -phunter2 app"), "mysql -uroot -p*** app");
        assert_eq!(r.args(&args(&["mysqladmin", "-phunter2", "ping"])), args(&["mysqladmin", "-p***", "ping"]));
        assert_eq!(r.text("redis-cli -a hunter2 ping"), "redis-cli -a *** ping");
        assert_eq!(r.args(&args(&["redis-cli", "-a", "hunter2", "ping"])), args(&["redis-cli", "-a", "***", "ping"]));
        // Elsewhere -p is a port and -a anything: untouched.
        assert_eq!(r.text("ssh -p 2222 host"), "ssh -p 2222 host");
        assert_eq!(r.args(&args(&["nginx", "-p", "/etc/nginx"])), args(&["nginx", "-p", "/etc/nginx"]));
        assert_eq!(r.args(&args(&["tar", "-a", "-cf", "x.tgz"])), args(&["tar", "-a", "-cf", "x.tgz"]));
    }

    #[test]
    fn ordinary_text_is_untouched() {
        let r = r();
        for s in [
            "nginx -g 'daemon off;'",
            "https://example.com/path?q=1",
            "postgres://db:5432/app",
            "user@example.com wrote",
            "--port 8080 --host 0.0.0.0",
            "Healthy: 200 OK",
            "email me at ops@example.org",
            "",
        ] {
            assert_eq!(r.text(s), s);
        }
        assert_eq!(r.args(&args(&["sleep", "600"])), args(&["sleep", "600"]));
    }
}
