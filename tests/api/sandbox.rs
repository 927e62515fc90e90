//! The sandbox page's POST endpoints accept same-origin forms only.

use crate::helpers::*;

const CLICK: &[(&str, &str)] = &[
    ("user", "U0SB"),
    ("channel", "D0SB"),
    ("ts", "1.000001"),
    ("block_id", "b"),
    ("action_id", "answer:1"),
    ("value", "1"),
];

async fn post(url: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> reqwest::StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.post(url).form(form);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn sandbox_posts_from_another_site_are_refused() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = start_emulator().await;
    let page = emulator.sandbox_url();
    let own_origin = page.trim_end_matches('/').to_string();
    for path in ["sandbox/click", "sandbox/submit"] {
        let url = format!("{page}{path}");
        let form: &[(&str, &str)] = if path == "sandbox/click" {
            CLICK
        } else {
            &[("__view", "V0NONE"), ("__user", "U0SB")]
        };
        for headers in [
            vec![("origin", "http://evil.example")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "null")],
            vec![
                ("origin", own_origin.as_str()),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert_eq!(post(&url, &headers, form).await, 403, "{path} {headers:?}");
        }
        // The page's own forms (same origin) reach the handler: no bot is connected here,
        // so it answers 409 rather than 403.
        let same = [
            ("origin", own_origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(post(&url, &same, form).await, 409, "{path}");
        assert_eq!(post(&url, &[], form).await, 409, "{path}: not a browser");
    }
    assert!(
        emulator.calls_to("chat.update").is_empty(),
        "nothing happened"
    );
}
