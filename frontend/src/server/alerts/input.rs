//! Reading a rule, channel or silence from what a client sent (a JSON
//! object, or an HTML form's fields made into one): every field checked and
//! bounded, every refusal naming its field.

use serde_json::{Map, Value};

use crate::error::ConsoleError;

/// A refused field: a 400 naming it.
pub fn bad(field: &str, message: impl Into<String>) -> ConsoleError {
    ConsoleError::bad_input(field, message)
}

/// The fields of one object.
pub struct Input<'a>(pub &'a Map<String, Value>);

impl<'a> Input<'a> {
    /// `value` as an object, or a 400 saying what was expected.
    pub fn of(value: &'a Value) -> Result<Self, ConsoleError> {
        value.as_object().map(Input).ok_or_else(|| bad("body", "a JSON object is expected"))
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.0.get(field).filter(|v| !v.is_null() && v.as_str() != Some(""))
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Fields not in `known`: refused, so a typo is not silently ignored.
    pub fn only(&self, known: &[&str]) -> Result<(), ConsoleError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(bad(k, format!("is not a field here (known: {})", known.join(", ")))),
            None => Ok(()),
        }
    }

    /// A text field of at most `max` characters, trimmed, without control characters.
    pub fn text(&self, field: &str, max: usize) -> Result<Option<String>, ConsoleError> {
        let Some(v) = self.get(field) else { return Ok(None) };
        let s = v.as_str().ok_or_else(|| bad(field, "must be text"))?.trim();
        if s.chars().count() > max {
            return Err(bad(field, format!("is longer than {max} characters")));
        }
        if s.chars().any(char::is_control) {
            return Err(bad(field, "must not hold control characters"));
        }
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }

    /// Text that may span lines (a template): tabs and newlines allowed.
    pub fn multiline(&self, field: &str, max: usize) -> Result<Option<String>, ConsoleError> {
        let Some(v) = self.get(field) else { return Ok(None) };
        let s = v.as_str().ok_or_else(|| bad(field, "must be text"))?.trim();
        if s.len() > max {
            return Err(bad(field, format!("is longer than {max} bytes")));
        }
        if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(bad(field, "must not hold control characters"));
        }
        Ok((!s.is_empty()).then(|| s.to_owned()))
    }

    pub fn required(&self, field: &str, max: usize) -> Result<String, ConsoleError> {
        self.text(field, max)?.ok_or_else(|| bad(field, "is required"))
    }

    /// A whole number in `min..=max` (a JSON number or a form's digits), or `default`.
    pub fn number(&self, field: &str, min: u64, max: u64, default: u64) -> Result<u64, ConsoleError> {
        let Some(v) = self.get(field) else { return Ok(default) };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .ok_or_else(|| bad(field, format!("must be a whole number from {min} to {max}")))?;
        if !(min..=max).contains(&n) {
            return Err(bad(field, format!("must be from {min} to {max}")));
        }
        Ok(n)
    }

    /// A number in `min..=max` (fractions allowed), or `default`.
    pub fn decimal(&self, field: &str, min: f64, max: f64, default: f64) -> Result<f64, ConsoleError> {
        let Some(v) = self.get(field) else { return Ok(default) };
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite())
        .ok_or_else(|| bad(field, format!("must be a number from {min} to {max}")))?;
        if !(min..=max).contains(&n) {
            return Err(bad(field, format!("must be from {min} to {max}")));
        }
        Ok(n)
    }

    /// `true`/`false` (a form's checkbox sends `on`), or `default`.
    pub fn flag(&self, field: &str, default: bool) -> Result<bool, ConsoleError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if matches!(s.as_str(), "on" | "true" | "1" | "yes") => Ok(true),
            Some(Value::String(s)) if matches!(s.as_str(), "off" | "false" | "0" | "no") => Ok(false),
            Some(_) => Err(bad(field, "must be true or false")),
        }
    }

    /// A list of ids (a JSON array, or a form's comma-separated digits), at most `max`.
    pub fn ids(&self, field: &str, max: usize) -> Result<Vec<i64>, ConsoleError> {
        let err = || bad(field, "must be a list of ids");
        let ids: Vec<i64> = match self.get(field) {
            None => Vec::new(),
            Some(Value::Array(a)) => {
                a.iter().map(|v| v.as_i64().filter(|n| *n > 0).ok_or_else(err)).collect::<Result<_, _>>()?
            }
            Some(Value::Number(n)) => vec![n.as_i64().filter(|n| *n > 0).ok_or_else(err)?],
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| p.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(err))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(err()),
        };
        if ids.len() > max {
            return Err(bad(field, format!("names more than {max}")));
        }
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// A list of texts (a JSON array, or comma-separated), each at most `max_len`.
    pub fn list(&self, field: &str, max: usize, max_len: usize) -> Result<Vec<String>, ConsoleError> {
        let items: Vec<String> = match self.get(field) {
            None => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_owned()).ok_or_else(|| bad(field, "must be a list of text")))
                .collect::<Result<_, _>>()?,
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Some(_) => return Err(bad(field, "must be a list of text")),
        };
        let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
        if items.len() > max {
            return Err(bad(field, format!("names more than {max}")));
        }
        if items.iter().any(|s| s.len() > max_len || s.chars().any(char::is_control)) {
            return Err(bad(field, format!("each must be at most {max_len} characters, without control characters")));
        }
        Ok(items)
    }
}

/// An `http(s)://host[:port]/path` URL without credentials in it, at most
/// 500 characters: the destinations an admin may configure.
pub fn url(field: &str, value: &str) -> Result<reqwest::Url, ConsoleError> {
    if value.len() > 500 {
        return Err(bad(field, "is longer than 500 characters"));
    }
    let u = reqwest::Url::parse(value).map_err(|e| bad(field, format!("is not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad(field, "must be an http:// or https:// URL"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad(field, "must name a host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(field, "must not carry a user name or password (use the channel's token fields)"));
    }
    if u.fragment().is_some() {
        return Err(bad(field, "must not have a #fragment"));
    }
    Ok(u)
}

/// The field a refusal names (for tests).
#[cfg(test)]
pub fn refused_field(e: ConsoleError) -> String {
    match e {
        ConsoleError::BadInput { field, .. } => field,
        other => panic!("not a bad input: {other:?}"),
    }
}
