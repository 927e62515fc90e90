//! The two-step upload: files.getUploadURLExternal hands out an upload URL on the emulator
//! itself (`/upload/<file_id>`, served by `upload`), files.completeUploadExternal finishes
//! it and optionally shares it into a conversation as a message.

use serde_json::{json, Value};

use super::{fields, ApiError, Call, Reply};
use crate::model::{EmulatedFile, EmulatedMessage};
use crate::state::Upload;

pub(super) fn get_upload_url(c: &mut Call<'_>) -> Reply {
    let filename =
        c.p.str("filename")
            .ok_or_else(|| ApiError::missing("filename"))?;
    let length =
        c.p.u64("length")
            .ok_or_else(|| ApiError::missing("length"))?;
    let id = c.w.next_id("F");
    let upload_url = format!("{}/upload/{id}", c.w.base_http());
    c.w.uploads.push(Upload {
        file: EmulatedFile {
            id: id.clone(),
            filename,
            title: None,
            bytes: Vec::new(),
            shared_to: Vec::new(),
        },
        declared_length: length,
        uploaded: false,
        completed: false,
    });
    Ok(fields([
        ("upload_url", json!(upload_url)),
        ("file_id", json!(id)),
    ]))
}

pub(super) fn complete_upload(c: &mut Call<'_>) -> Reply {
    let invalid = || ApiError::missing("files");
    let files =
        c.p.get("files")
            .and_then(Value::as_array)
            .ok_or_else(invalid)?
            .clone();
    if files.is_empty() {
        return Err(invalid());
    }
    let mut wanted = Vec::new();
    for f in &files {
        let id = f.get("id").and_then(Value::as_str).ok_or_else(invalid)?;
        let index =
            c.w.uploads
                .iter()
                .position(|u| u.file.id == id && u.uploaded && !u.completed)
                .ok_or("file_not_found")?;
        let title = f.get("title").and_then(Value::as_str).map(str::to_string);
        wanted.push((index, title));
    }
    // `channel_id` names one conversation; `channels` is a comma-separated list.
    let targets: Vec<String> = match (c.p.str("channel_id"), c.p.str("channels")) {
        (Some(channel), _) => vec![channel],
        (None, Some(list)) => list
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut conversations = Vec::new();
    for channel in &targets {
        let id = c.w.directory.resolve(channel)?.id().to_string();
        if !conversations.contains(&id) {
            conversations.push(id);
        }
    }
    for (index, title) in &wanted {
        let upload = &mut c.w.uploads[*index];
        upload.completed = true;
        upload.file.title = title.clone().or_else(|| Some(upload.file.filename.clone()));
        upload.file.shared_to.extend(conversations.iter().cloned());
    }
    for channel in conversations {
        let user = c.install().bot_user_id;
        let ts = c.w.next_ts(c.now);
        let ids = wanted
            .iter()
            .map(|(i, _)| c.w.uploads[*i].file.id.clone())
            .collect();
        c.w.messages.push(EmulatedMessage {
            channel,
            ts,
            thread_ts: c.p.str("thread_ts"),
            user,
            text: c.p.str("initial_comment").unwrap_or_default(),
            blocks: Value::Null,
            edits: 0,
            ephemeral_for: None,
            files: ids,
            metadata: None,
        });
    }
    let now = c.now;
    let out: Vec<Value> = wanted
        .iter()
        .map(|(i, _)| c.w.file_json(&c.w.uploads[*i], now))
        .collect();
    Ok(fields([("files", Value::Array(out))]))
}
