//! The file side of the two-step upload: the upload URL that takes the bytes (raw or as a
//! multipart form, both of which Slack accepts) and `url_private` downloads with the bot token.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::state::Shared;

/// POST `/upload/<file_id>`: answers `200 OK - <n>` like files.slack.com.
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    Path(file_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bytes = match multipart_boundary(content_type) {
        Some(boundary) => match first_part(&body, &boundary) {
            Some(part) => part.to_vec(),
            None => return (StatusCode::BAD_REQUEST, "invalid multipart body").into_response(),
        },
        None => body.to_vec(),
    };
    let mut w = shared.world();
    let Some(upload) = w.uploads.iter_mut().find(|u| u.file.id == file_id) else {
        return (StatusCode::NOT_FOUND, "file_not_found").into_response();
    };
    if bytes.len() as u64 != upload.declared_length {
        // Slack is lenient here; the mismatch is worth a line when debugging a client.
        tracing::debug!(
            file_id,
            declared = upload.declared_length,
            received = bytes.len(),
            "emulator: upload length differs from files.getUploadURLExternal"
        );
    }
    let n = bytes.len();
    upload.file.bytes = bytes;
    upload.uploaded = true;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("OK - {n}"),
    )
        .into_response()
}

/// GET `/files-pri/<file_id>/<name>`: the bytes, for a request with a known bearer token.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path((file_id, _name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let w = shared.world();
    if !w.tokens.contains_key(token) {
        return (StatusCode::FORBIDDEN, "not_authed").into_response();
    }
    match w
        .uploads
        .iter()
        .find(|u| u.file.id == file_id && u.completed)
    {
        Some(u) => (StatusCode::OK, u.file.bytes.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "file_not_found").into_response(),
    }
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    if !content_type.starts_with("multipart/form-data") {
        return None;
    }
    content_type.split(';').find_map(|part| {
        part.trim()
            .strip_prefix("boundary=")
            .map(|b| b.trim_matches('"').to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The content of the first part of a multipart body (the file, in every client we know).
fn first_part<'a>(body: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes())? + delimiter.len();
    let rest = &body[start..];
    let headers_end = find(rest, b"\r\n\r\n")? + 4;
    let content = &rest[headers_end..];
    let end = find(content, format!("\r\n{delimiter}").as_bytes())?;
    Some(&content[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_multipart_part_is_the_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na,b\r\n1,2\r\n--XyZ--\r\n";
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=XyZ").as_deref(),
            Some("XyZ")
        );
        assert_eq!(first_part(body, "XyZ"), Some(&b"a,b\r\n1,2"[..]));
        assert_eq!(first_part(b"garbage", "XyZ"), None);
    }
}
