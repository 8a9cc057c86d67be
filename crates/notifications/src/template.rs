//! The email templates: compiled into the binary, rendered with strict undefined.
//!
//! Every template is three files under `templates/`: `{name}.subject.txt`, `{name}.html`
//! (extends `layout.html`, HTML-escaped) and `{name}.txt` (extends `layout.txt`, not
//! escaped). They are embedded with `include_str!` so a deployed binary cannot miss one,
//! and all of them are parsed when the [`crate::Mailer`] is built, so a syntax error
//! stops start-up (and fails the tests) instead of a job in production.
//!
//! A missing variable is an error, never an empty string: an email saying "Hi ," with an
//! empty link is worse than no email, and the eager check in [`crate::Mailer::enqueue`]
//! turns it into a failed request where the bug is.

use crate::MailError;
use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, context};
use std::fmt;
use std::str::FromStr;

/// The emails Keel sends. Each variant documents the variables it takes; exactly these
/// must be given (see [`Template::vars`]), as a JSON object of non-null values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Template {
    /// Confirm a new address. Vars: `name`, `link`.
    VerifyEmail,
    /// Someone tried to sign up with an address that already has an account; sent instead
    /// of an error so signup does not reveal which addresses exist. Vars: `name`,
    /// `reset_link`.
    SignupAttempt,
    /// A password reset link. Vars: `name`, `link`.
    PasswordReset,
    /// An invitation into an organization. Vars: `inviter_name`, `organization_name`,
    /// `role`, `link`.
    Invitation,
    /// The password was changed (a security notice). Vars: `name`.
    PasswordChanged,
    /// A published event told by email. Vars: `name`, `title`, `body`, `link` (may be
    /// empty), `unsubscribe_link`.
    Notification,
}

impl Template {
    pub const ALL: [Template; 6] = [
        Template::VerifyEmail,
        Template::SignupAttempt,
        Template::PasswordReset,
        Template::Invitation,
        Template::PasswordChanged,
        Template::Notification,
    ];

    /// The stable name stored in job payloads and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Template::VerifyEmail => "verify_email",
            Template::SignupAttempt => "signup_attempt",
            Template::PasswordReset => "password_reset",
            Template::Invitation => "invitation",
            Template::PasswordChanged => "password_changed",
            Template::Notification => "notification",
        }
    }

    /// The variables the template takes: all required, no others accepted.
    pub fn vars(self) -> &'static [&'static str] {
        match self {
            Template::VerifyEmail | Template::PasswordReset => &["name", "link"],
            Template::SignupAttempt => &["name", "reset_link"],
            Template::Invitation => &["inviter_name", "organization_name", "role", "link"],
            Template::PasswordChanged => &["name"],
            Template::Notification => &["name", "title", "body", "link", "unsubscribe_link"],
        }
    }

    /// Each file's name in the environment and its embedded source.
    fn files(self) -> Files {
        macro_rules! files {
            ($name:literal) => {
                Files {
                    subject: (
                        concat!($name, ".subject.txt"),
                        include_str!(concat!("../templates/", $name, ".subject.txt")),
                    ),
                    html: (
                        concat!($name, ".html"),
                        include_str!(concat!("../templates/", $name, ".html")),
                    ),
                    text: (
                        concat!($name, ".txt"),
                        include_str!(concat!("../templates/", $name, ".txt")),
                    ),
                }
            };
        }
        match self {
            Template::VerifyEmail => files!("verify_email"),
            Template::SignupAttempt => files!("signup_attempt"),
            Template::PasswordReset => files!("password_reset"),
            Template::Invitation => files!("invitation"),
            Template::PasswordChanged => files!("password_changed"),
            Template::Notification => files!("notification"),
        }
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Template {
    type Err = MailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| MailError::UnknownTemplate(s.to_owned()))
    }
}

/// `(name, source)` of a template's three files.
struct Files {
    subject: (&'static str, &'static str),
    html: (&'static str, &'static str),
    text: (&'static str, &'static str),
}

/// A rendered template, before it has a recipient.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The parsed templates.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Parses every template. `app_name` and `site_url` are globals of all of them.
    pub fn new(app_name: &str, site_url: &str) -> Result<Self, MailError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Explicit rather than the extension default: HTML is escaped, everything else
        // (subjects, plain text) is not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(html_formatter);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| MailError::Config(format!("template syntax: {e}")))?;
        env.set_syntax(syntax);
        env.add_global("app_name", app_name.to_owned());
        env.add_global("site_url", site_url.trim_end_matches('/').to_owned());

        let add = |env: &mut Environment<'static>, name: &'static str, source: &'static str| {
            env.add_template(name, source)
                .map_err(|e| MailError::Config(format!("template {name} does not parse: {e:#}")))
        };
        add(
            &mut env,
            "layout.html",
            include_str!("../templates/layout.html"),
        )?;
        add(
            &mut env,
            "layout.txt",
            include_str!("../templates/layout.txt"),
        )?;
        for template in Template::ALL {
            let files = template.files();
            for (name, source) in [files.subject, files.html, files.text] {
                add(&mut env, name, source)?;
            }
        }
        Ok(Self { env })
    }

    /// Checks `vars` against [`Template::vars`], then renders subject, HTML and text.
    pub fn render(
        &self,
        template: Template,
        vars: &serde_json::Value,
    ) -> Result<Rendered, MailError> {
        check_vars(template, vars)?;
        let name = template.as_str();
        let failed = |source| MailError::Render {
            template: name,
            source,
        };
        let files = template.files();
        let vars = Value::from(Serde(vars));
        let render = |file: &str, ctx: Value| {
            self.env
                .get_template(file)
                .and_then(|t| t.render(ctx))
                .map_err(failed)
        };
        // One line, whatever the template or a variable holds: it becomes a header.
        let subject = render(files.subject.0, vars.clone())?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if subject.is_empty() {
            return Err(MailError::Vars {
                template: name,
                problem: "the subject renders empty".to_owned(),
            });
        }
        let with_subject = context! { subject => subject.clone(), ..vars.clone() };
        let html = render(files.html.0, with_subject)?;
        let text = render(files.text.0, vars)?;
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

/// The default formatter, except that HTML escaping leaves `/` alone: the default's
/// `&#x2f;` is valid HTML but turns every link into `https:&#x2f;&#x2f;…`, which some
/// mail clients' link scanners and every reader of the source trip over. `& < > " '`
/// are still escaped, which is what keeps a value inside its element or attribute.
fn html_formatter(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(s) if *state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut last = 0;
            for (i, c) in s.char_indices() {
                let entity = match c {
                    '&' => "&amp;",
                    '<' => "&lt;",
                    '>' => "&gt;",
                    '"' => "&quot;",
                    '\'' => "&#x27;",
                    _ => continue,
                };
                out.write_str(&s[last..i])
                    .and_then(|()| out.write_str(entity))
                    .map_err(minijinja::Error::from)?;
                last = i + c.len_utf8();
            }
            out.write_str(&s[last..]).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Exactly the declared variables, none null. Strict undefined alone would miss a
/// misspelt extra key whose intended name has a (wrong) value elsewhere, and prints
/// `none` for a null.
fn check_vars(template: Template, vars: &serde_json::Value) -> Result<(), MailError> {
    let problem = |problem: String| MailError::Vars {
        template: template.as_str(),
        problem,
    };
    let Some(map) = vars.as_object() else {
        return Err(problem("vars must be a JSON object".to_owned()));
    };
    let declared = template.vars();
    for name in declared {
        match map.get(*name) {
            None => return Err(problem(format!("missing variable {name:?}"))),
            Some(serde_json::Value::Null) => {
                return Err(problem(format!("variable {name:?} is null")));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = map.keys().find(|k| !declared.contains(&k.as_str())) {
        return Err(problem(format!(
            "unexpected variable {extra:?} (it takes {})",
            declared.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates() -> Templates {
        Templates::new("Keel", "http://keel.test/").unwrap()
    }

    fn sample(template: Template) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = template
            .vars()
            .iter()
            .map(|v| ((*v).to_owned(), json!(format!("{v}-value"))))
            .collect();
        serde_json::Value::Object(map)
    }

    #[test]
    fn names_round_trip() {
        for t in Template::ALL {
            assert_eq!(t.as_str().parse::<Template>().unwrap(), t);
        }
        assert!(matches!(
            "welcome".parse::<Template>(),
            Err(MailError::UnknownTemplate(_))
        ));
    }

    #[test]
    fn every_template_uses_all_its_vars_and_only_those() {
        let templates = templates();
        for t in Template::ALL {
            let out = templates.render(t, &sample(t)).unwrap();
            for var in t.vars() {
                let value = format!("{var}-value");
                assert!(
                    out.html.contains(&value) || out.subject.contains(&value),
                    "{t}: html lacks {var}"
                );
                assert!(
                    out.text.contains(&value) || out.subject.contains(&value),
                    "{t}: text lacks {var}"
                );
            }
            assert!(out.html.contains("http://keel.test"), "{t}: no site url");
            assert!(!out.subject.contains('\n'));
        }
    }

    #[test]
    fn html_escaping_keeps_links_readable_and_markup_inert() {
        let out = templates()
            .render(
                Template::VerifyEmail,
                &json!({ "name": "<i>A&B</i> 'q'", "link": "https://x.test/v?a=1&b=\"2\"" }),
            )
            .unwrap();
        assert!(
            out.html
                .contains("&lt;i&gt;A&amp;B&lt;/i&gt; &#x27;q&#x27;"),
            "{}",
            out.html
        );
        assert!(
            out.html
                .contains(r#"href="https://x.test/v?a=1&amp;b=&quot;2&quot;""#),
            "{}",
            out.html
        );
        assert!(out.text.contains("<i>A&B</i>"));
    }

    #[test]
    fn strict_undefined_catches_what_the_var_check_would_not() {
        // The declared-vars check runs first; the engine itself must also refuse.
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template("t", "Hi {{ name }}").unwrap();
        assert!(env.get_template("t").unwrap().render(context! {}).is_err());
    }
}
