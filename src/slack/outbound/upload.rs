//! File uploads through the outbox (the digest's trend chart): one row holds the whole file,
//! and the worker runs Slack's three steps for it when it is due:
//! 1. `files.getUploadURLExternal` (filename, length) → an upload URL and a file id;
//! 2. the bytes POSTed to that URL;
//! 3. `files.completeUploadExternal` (the file id and title, `channel_id`, optional
//!    `initial_comment` and `thread_ts`), which shares the file into the channel.
//!
//! The row's method is the last step, [`UPLOAD_METHOD`]: that is the call that makes the file
//! appear, so the row is rate limited as it. Its payload carries the file base64-encoded.
//! The row is written like any other (`dedupe_key` unique, so a chart is queued once per key
//! whatever retries or replicas run), and is retried, rescheduled on 429 and failed for good
//! by the worker's usual rules. Steps 1 and 2 may be repeated harmlessly: Slack discards a file
//! that was never completed.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::client::{methods, Permit, SlackClient, SlackError};
use crate::storage::outbox::NewOutboxMessage;
use crate::storage::{StoreResult, StoreTx};

/// The method of an upload row: the step that shares the file.
pub const UPLOAD_METHOD: &str = methods::FILES_COMPLETE_UPLOAD_EXTERNAL.name;

/// A file to share into a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    pub channel: String,
    pub filename: String,
    pub title: String,
    pub initial_comment: Option<String>,
    /// Shares the file as a reply in this thread.
    pub thread_ts: Option<String>,
    pub bytes: Vec<u8>,
}

impl FileUpload {
    /// The outbox row that uploads this file; `dedupe_key` makes it happen once.
    pub fn message(&self, dedupe_key: impl Into<String>) -> NewOutboxMessage {
        let mut payload = json!({
            "channel_id": self.channel,
            "filename": self.filename,
            "title": self.title,
            "content_base64": base64::engine::general_purpose::STANDARD.encode(&self.bytes),
        });
        if let Some(comment) = &self.initial_comment {
            payload["initial_comment"] = json!(comment);
        }
        if let Some(ts) = &self.thread_ts {
            payload["thread_ts"] = json!(ts);
        }
        let mut msg = NewOutboxMessage::new(dedupe_key, UPLOAD_METHOD, payload);
        msg.channel_key = Some(self.channel.clone());
        msg
    }

    /// Reads an upload row's payload back.
    pub fn from_payload(payload: &Value) -> Result<FileUpload, SlackError> {
        let text = |key: &str| payload.get(key).and_then(Value::as_str).map(String::from);
        let missing = |key: &str| SlackError::Decode(format!("upload row without {key}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text("content_base64").ok_or_else(|| missing("content_base64"))?)
            .map_err(|e| SlackError::Decode(format!("upload row content: {e}")))?;
        Ok(FileUpload {
            channel: text("channel_id").ok_or_else(|| missing("channel_id"))?,
            filename: text("filename").ok_or_else(|| missing("filename"))?,
            title: text("title").ok_or_else(|| missing("title"))?,
            initial_comment: text("initial_comment"),
            thread_ts: text("thread_ts"),
            bytes,
        })
    }
}

/// Queues the digest's chart (PNG bytes) for `channel` in the caller's transaction, so it
/// commits with the digest it belongs to. `true` when queued, `false` when a row with this
/// `dedupe_key` exists (it was queued before).
pub async fn enqueue_chart_upload(
    tx: &mut StoreTx,
    channel: &str,
    filename: &str,
    title: &str,
    png: Vec<u8>,
    dedupe_key: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let upload = FileUpload {
        channel: channel.to_string(),
        filename: filename.to_string(),
        title: title.to_string(),
        initial_comment: None,
        thread_ts: None,
        bytes: png,
    };
    tx.enqueue(&upload.message(dedupe_key), now).await
}

/// Whether an outbox row is an upload (its worker runs [`send`] instead of one call).
pub fn is_upload(method: &str) -> bool {
    method == UPLOAD_METHOD
}

/// Runs the three steps for an upload row. `permit` is the row's own (for the last step);
/// the first step takes a permit of its own without waiting, and a refusal comes back as
/// [`SlackError::LocallyLimited`], which the worker reschedules like a 429. The answer keeps
/// the shared file's id (`file_id`) for the row's result.
pub async fn send(
    client: &SlackClient,
    permit: Permit,
    payload: &Value,
) -> Result<Value, SlackError> {
    let upload = FileUpload::from_payload(payload)?;
    let step1 = methods::FILES_GET_UPLOAD_URL_EXTERNAL;
    let ticket_permit =
        client
            .permit_now(step1.name, None)
            .map_err(|ready_at| SlackError::LocallyLimited {
                method: step1.name.to_string(),
                ready_at,
            })?;
    let args = json!({ "filename": upload.filename, "length": upload.bytes.len() });
    let ticket = client.call(ticket_permit, &args).await?;
    let (Some(upload_url), Some(file_id)) = (
        ticket.get("upload_url").and_then(Value::as_str),
        ticket.get("file_id").and_then(Value::as_str),
    ) else {
        return Err(SlackError::Decode(
            "files.getUploadURLExternal answer without upload_url/file_id".into(),
        ));
    };
    client.post_upload_bytes(upload_url, upload.bytes).await?;
    let mut args = json!({
        "files": [{ "id": file_id, "title": upload.title }],
        "channel_id": upload.channel,
    });
    if let Some(comment) = &upload.initial_comment {
        args["initial_comment"] = json!(comment);
    }
    if let Some(ts) = &upload.thread_ts {
        args["thread_ts"] = json!(ts);
    }
    let mut body = client.call(permit, &args).await?;
    body["file_id"] = json!(file_id);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_row_carries_the_file_and_reads_back_the_same() {
        let upload = FileUpload {
            channel: "C0SPONSOR1".into(),
            filename: "trend.png".into(),
            title: "Trend".into(),
            initial_comment: Some("This week's trend".into()),
            thread_ts: None,
            bytes: vec![0x89, b'P', b'N', b'G', 0, 255],
        };
        let msg = upload.message("digest:p:2027-01-04:C0SPONSOR1:chart");
        assert_eq!(msg.method, "files.completeUploadExternal");
        assert_eq!(msg.channel_key.as_deref(), Some("C0SPONSOR1"));
        assert!(is_upload(&msg.method));
        assert_eq!(FileUpload::from_payload(&msg.payload).unwrap(), upload);

        let mut broken = msg.payload.clone();
        broken["content_base64"] = json!("not base64!");
        assert!(FileUpload::from_payload(&broken).is_err());
    }
}
