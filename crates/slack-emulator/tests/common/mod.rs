//! Helpers shared by the emulator's integration tests.

/// Sends `request` and reads the JSON answer.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request
        .send()
        .await
        .expect("request reaches the emulator")
        .json()
        .await
        .expect("JSON body")
}
