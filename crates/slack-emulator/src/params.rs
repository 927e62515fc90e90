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

/// Methods whose arguments Slack reads only from a form body or the query string: a JSON
/// body is not read at all (`consumes` in Slack's OpenAPI spec; today's method pages agree).
pub const FORM_ONLY: &[&str] = &[
    "users.info",
    "users.list",
    "users.lookupByEmail",
    "usergroups.users.list",
    "conversations.history",
    "conversations.replies",
    "conversations.info",
    "chat.getPermalink",
    "oauth.v2.access",
    "files.getUploadURLExternal",
];

/// Whether a content type is JSON.
pub fn is_json(content_type: &str) -> bool {
    content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/json")
}

/// The merged parameters of one call.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Reads the query string and the body (by content type: form, multipart or JSON). Body
    /// values win over the query.
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
            if is_json(content_type) {
                match serde_json::from_slice::<Value>(body) {
                    Ok(Value::Object(obj)) => map.extend(obj),
                    Ok(_) => return Err(ParamError::JsonNotObject),
                    Err(_) => return Err(ParamError::InvalidJson),
                }
            } else if let Some(boundary) = multipart_boundary(content_type) {
                add_multipart(&mut map, body, &boundary)?;
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

/// The `boundary` of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, rest) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    rest.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The text fields of a multipart body (as Slack's SDKs send them when a call carries a
/// file); file parts are kept as their text when they are UTF-8, skipped otherwise.
fn add_multipart(
    map: &mut Map<String, Value>,
    body: &[u8],
    boundary: &str,
) -> Result<(), ParamError> {
    let delimiter = format!("--{boundary}");
    let text = String::from_utf8_lossy(body);
    if !text.contains(&delimiter) {
        return Err(ParamError::InvalidFormData);
    }
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.strip_prefix("\r\n").unwrap_or(part);
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let name = head.lines().find_map(|line| {
            let (key, rest) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            rest.split(';').find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
            })
        });
        if let Some(name) = name {
            map.insert(name, Value::String(value.to_string()));
        }
    }
    Ok(())
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
    fn multipart_fields_are_read() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nC1\r\n--XyZ\r\ncontent-disposition: form-data; name=\"text\"\r\n\r\nhi\r\nthere\r\n--XyZ--\r\n";
        let p = Params::decode(None, "multipart/form-data; boundary=XyZ", body.as_bytes())
            .expect("valid multipart");
        assert_eq!(p.str("channel").as_deref(), Some("C1"));
        assert_eq!(p.str("text").as_deref(), Some("hi\r\nthere"));
        assert!(Params::decode(None, "multipart/form-data; boundary=Q", b"nope").is_err());
    }

    #[test]
    fn targets_split_user_lists() {
        let p = Params::decode(Some("users=U1,U2&channel=D1"), "", b"").expect("valid");
        assert_eq!(p.targets(), vec!["D1", "U1", "U2"]);
    }
}
