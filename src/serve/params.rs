//! Query parameters of the web API, checked before any generation starts:
//! every bad value becomes a [`ApiError`] naming the parameter (HTTP 400).

use std::collections::HashMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The longest digit string one request may ask for.
pub const MAX_DIGITS: usize = 64;
/// The most frames one morph may have.
pub const MAX_STEPS: usize = 64;

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// What went wrong, for the `error` field.
    pub message: String,
}

impl ApiError {
    /// A 400 Bad Request saying `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

/// A request's query parameters.
pub struct Params<'a> {
    query: &'a HashMap<String, String>,
}

impl<'a> Params<'a> {
    pub fn new(query: &'a HashMap<String, String>) -> Self {
        Self { query }
    }

    /// `seed`, any unsigned 64-bit number (default 0).
    pub fn seed(&self) -> Result<u64, ApiError> {
        match self.query.get("seed") {
            None => Ok(0),
            Some(v) => v.trim().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "seed: {:?} is not a number 0..={}",
                    shorten(v),
                    u64::MAX
                ))
            }),
        }
    }

    /// A class parameter such as `from`, a name or an index among the
    /// classes `names` as [`crate::sample::resolve_class`] reads it
    /// (`default` when absent).
    pub fn class(&self, name: &str, default: u8, names: &[String]) -> Result<u8, ApiError> {
        let Some(v) = self.query.get(name) else {
            return Ok(default);
        };
        crate::sample::resolve_class(names, &shorten(v), &format!("{name}:"))
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// A count such as `since` or `epoch`, 0..=`most` (default 0).
    pub fn count(&self, name: &str, most: usize) -> Result<usize, ApiError> {
        let Some(v) = self.query.get(name) else {
            return Ok(0);
        };
        match v.trim().parse::<usize>() {
            Ok(n) if n <= most => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "{name}: {:?} is not a number 0..={most}",
                shorten(v)
            ))),
        }
    }

    /// `steps`: frames of a morph, 2..=[`MAX_STEPS`] (default 16).
    pub fn steps(&self) -> Result<usize, ApiError> {
        let Some(v) = self.query.get("steps") else {
            return Ok(16);
        };
        match v.trim().parse::<usize>() {
            Ok(n) if (2..=MAX_STEPS).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "steps: {:?} is not a number 2..={MAX_STEPS}",
                shorten(v)
            ))),
        }
    }

    /// `text`: the digits to write, 1..=[`MAX_DIGITS`] of them, of the classes `names`.
    pub fn digits(&self, names: &[String]) -> Result<Vec<u8>, ApiError> {
        let text = self.query.get("text").ok_or_else(|| {
            ApiError::bad_request("text: missing; ask for digits like ?text=2026")
        })?;
        // parse_digits checks the length before it echoes the text, so its
        // messages stay short.
        crate::sample::parse_digits(text.trim(), names, MAX_DIGITS, "text")
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// A yes/no switch such as `latent` (`1`/`true`/`yes`, or a bare `latent`;
    /// `0`/`false`/`no`).
    pub fn switch(&self, name: &str) -> Result<bool, ApiError> {
        match self.query.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if ["1", "true", "yes", ""].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{name}: {:?} is not true or false",
                shorten(&v)
            ))),
        }
    }
}

/// Keeps echoed input short: a 10,000-character value is cut to its start.
fn shorten(text: &str) -> String {
    const KEEP: usize = 80;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten() -> Vec<String> {
        crate::sample::index_names(10)
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn message(result: Result<impl std::fmt::Debug, ApiError>) -> String {
        let err = result.unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        err.message
    }

    #[test]
    fn good_values_parse() {
        let q = query(&[
            ("seed", "7"),
            ("text", "2026"),
            ("from", "3"),
            ("steps", "8"),
        ]);
        let p = Params::new(&q);
        assert_eq!(p.seed().unwrap(), 7);
        assert_eq!(p.digits(&ten()).unwrap(), vec![2, 0, 2, 6]);
        assert_eq!(p.class("from", 0, &ten()).unwrap(), 3);
        assert_eq!(p.class("to", 8, &ten()).unwrap(), 8);
        assert_eq!(p.steps().unwrap(), 8);
        assert!(!p.switch("latent").unwrap());
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let q = query(&[
            ("seed", "abc"),
            ("text", "12a"),
            ("from", "10"),
            ("steps", "1000"),
        ]);
        let p = Params::new(&q);
        assert!(message(p.seed()).starts_with("seed:"));
        assert!(message(p.digits(&ten())).contains("not a digit"));
        assert!(message(p.class("from", 0, &ten())).starts_with("from:"));
        assert!(message(p.steps()).starts_with("steps:"));
        let q = query(&[("seed", "-1"), ("latent", "maybe")]);
        let p = Params::new(&q);
        assert!(message(p.seed()).starts_with("seed:"));
        assert!(message(p.switch("latent")).starts_with("latent:"));
        assert!(message(Params::new(&query(&[])).digits(&ten())).contains("missing"));
    }

    #[test]
    fn long_input_is_refused_and_not_echoed_whole() {
        let long = "7".repeat(10_000);
        let q = query(&[("text", &long), ("seed", &long)]);
        let p = Params::new(&q);
        let m = message(p.digits(&ten()));
        assert!(m.contains("at most 64"), "{m}");
        assert!(message(p.seed()).len() < 200);
        // A bad character late in a long (allowed) text still says where and what.
        let text = format!("{}x", "1".repeat(39));
        let q = query(&[("text", &text)]);
        let m = message(Params::new(&q).digits(&ten()));
        assert!(m.contains("position 40 is not a digit"), "{m}");
    }
}
