//! Request parameters as Slack accepts them: query string, form body or JSON body, merged
//! into one JSON object. Fields that carry JSON inside a form string (`blocks`, `view`,
//! `files`, …) are parsed, so handlers and recorded calls see structured values.

use serde_json::{Map, Value};

/// Keys whose string value is JSON text in form-encoded calls.
const JSON_IN_STRING: &[&str] = &["blocks", "view", "files", "attachments", "metadata"];

/// Why the parameters could not be read; the names are Slack's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError {
    InvalidJson,
    JsonNotObject,
    InvalidFormData,
}

impl ParamError {
    pub fn code(self) -> &'static str {
        match self {
            ParamError::InvalidJson => "invalid_json",
            ParamError::JsonNotObject => "json_not_object",
            ParamError::InvalidFormData => "invalid_form_data",
        }
    }
}

/// The merged parameters of one call.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Reads the query string and the body (by content type). Body values win over the query.
    pub fn decode(
        query: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> Result<Self, ParamError> {
        let mut map = Map::new();
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            add_form(&mut map, q.as_bytes())?;
        }
        if !body.is_empty() {
            if content_type.starts_with("application/json") {
                match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Object(obj)) => map.extend(obj),
                    Ok(_) => return Err(ParamError::JsonNotObject),
                    Err(_) => return Err(ParamError::InvalidJson),
                }
            } else {
                add_form(&mut map, body)?;
            }
        }
        for key in JSON_IN_STRING {
            if let Some(Value::String(s)) = map.get(*key) {
                if let Ok(parsed) = serde_json::from_str::<Value>(s) {
                    map.insert((*key).to_string(), parsed);
                }
            }
        }
        Ok(Self(map))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A string parameter; numbers and booleans are given as text (`length=12` vs `"12"`).
    pub fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.str(key)?.trim().parse().ok()
    }

    /// The ids a call is about, for fault targets (`users` may be a comma-separated list).
    pub fn targets(&self) -> Vec<String> {
        ["channel", "user", "users", "user_id", "channel_id"]
            .iter()
            .filter_map(|k| self.str(k))
            .flat_map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn add_form(map: &mut Map<String, Value>, bytes: &[u8]) -> Result<(), ParamError> {
    // The form parser is lossy on bad UTF-8; Slack rejects such bodies instead.
    let text = std::str::from_utf8(bytes).map_err(|_| ParamError::InvalidFormData)?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(text).map_err(|_| ParamError::InvalidFormData)?;
    for (k, v) in pairs {
        map.insert(k, Value::String(v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_query_and_json_are_merged_and_blocks_parsed() {
        let p = Params::decode(
            Some("user=U1"),
            "application/x-www-form-urlencoded",
            b"channel=C1&blocks=%5B%7B%22type%22%3A%22divider%22%7D%5D",
        )
        .expect("valid form");
        assert_eq!(p.str("user").as_deref(), Some("U1"));
        assert_eq!(p.get("blocks"), Some(&json!([{ "type": "divider" }])));

        let p = Params::decode(
            None,
            "application/json; charset=utf-8",
            br#"{"length": 12}"#,
        )
        .expect("valid json");
        assert_eq!(p.u64("length"), Some(12));
    }

    #[test]
    fn bad_bodies_have_slack_error_codes() {
        assert_eq!(
            Params::decode(None, "application/json", b"{nope").unwrap_err(),
            ParamError::InvalidJson
        );
        assert_eq!(
            Params::decode(None, "application/json", b"[1]").unwrap_err(),
            ParamError::JsonNotObject
        );
        assert_eq!(
            Params::decode(None, "application/x-www-form-urlencoded", &[0xff, 0xfe]).unwrap_err(),
            ParamError::InvalidFormData
        );
    }

    #[test]
    fn targets_split_user_lists() {
        let p = Params::decode(Some("users=U1,U2&channel=D1"), "", b"").expect("valid");
        assert_eq!(p.targets(), vec!["D1", "U1", "U2"]);
    }
}
