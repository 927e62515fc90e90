//! `GET /api/v1/audit?limit=&cursor=&program=` (issue 10, item 2): stable cursor paging over
//! the audit log, newest first.

use crate::helpers::*;
use serde_json::Value;

const MEMBERS: [&str; 7] = [
    "U0AUD001", "U0AUD002", "U0AUD003", "U0AUD004", "U0AUD005", "U0AUD006", "U0AUD007",
];

fn program(id: &str, members: &[&str]) -> String {
    let mut t = format!(
        "id = \"{id}\"\nname = \"Program {id}\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n"
    );
    for m in members {
        t.push_str(&format!(
            "[[members]]\nslack_id = \"{m}\"\nrole = \"participant\"\n"
        ));
    }
    t.push_str(
        "[[surveys]]\nid = \"weekly\"\ncadence = \"0 10 * * MON\"\n\
         [[surveys.questions]]\nkey = \"value\"\nkind = \"scale\"\nprompt = \"How was it?\"\n",
    );
    t
}

async fn spawn() -> TestApp {
    let mut b = TestAppBuilder::default()
        .now(sunday_noon())
        .program("pilot.toml", &program("pilot", &MEMBERS))
        .program("other.toml", &program("other", &["U0AUD901", "U0AUD902"]));
    for m in MEMBERS.iter().chain(["U0AUD901", "U0AUD902"].iter()) {
        b = b.user(m, "Europe/Berlin");
    }
    b.spawn().await
}

struct Page {
    ids: Vec<i64>,
    entries: Vec<Value>,
    next: Option<String>,
    link: Option<String>,
}

async fn page(app: &TestApp, query: &str) -> Page {
    let r = app.admin_get(&format!("/api/v1/audit{query}")).await;
    assert_eq!(r.status(), 200, "{query}");
    let next = r
        .headers()
        .get("x-next-cursor")
        .map(|v| v.to_str().unwrap().to_string());
    let link = r
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_string());
    let entries: Vec<Value> = r.json().await.unwrap();
    Page {
        ids: entries.iter().map(|e| e["id"].as_i64().unwrap()).collect(),
        entries,
        next,
        link,
    }
}

/// Every id, page by page of `limit`, following `X-Next-Cursor`; `during` runs after the
/// first page.
async fn walk(app: &TestApp, base: &str, limit: usize, during: Option<&str>) -> Vec<i64> {
    let sep = if base.is_empty() { "?" } else { "&" };
    let mut query = format!("{base}{sep}limit={limit}");
    let mut out = Vec::new();
    let mut first = true;
    loop {
        let p = page(app, &format!("?{}", query.trim_start_matches('?'))).await;
        assert!(p.ids.len() <= limit);
        out.extend(&p.ids);
        if first {
            if let Some(user) = during {
                // New entries while paging: they are newer than the cursor, so the walk
                // neither repeats nor skips an entry.
                let r = app.send_command(user, "pause").await;
                assert_eq!(r.status(), 200);
            }
            first = false;
        }
        match p.next {
            Some(c) => {
                assert_eq!(p.ids.len(), limit, "a page with a next page is full");
                let link = p.link.expect("a Link header beside X-Next-Cursor");
                assert!(
                    link.starts_with("</api/v1/audit?") && link.ends_with(">; rel=\"next\""),
                    "{link}"
                );
                assert!(link.contains(&format!("cursor={c}")), "{link}");
                query = format!("{base}{sep}limit={limit}&cursor={c}");
            }
            None => {
                assert!(p.link.is_none());
                break;
            }
        }
    }
    out
}

#[tokio::test]
async fn paging_visits_every_entry_once_newest_first_even_while_entries_are_added() {
    let app = spawn().await;
    let all = page(&app, "?limit=1000").await;
    assert!(all.next.is_none());
    assert!(all.ids.len() >= 9, "{:?}", all.entries);
    assert!(
        all.ids.windows(2).all(|w| w[0] > w[1]),
        "newest first: {:?}",
        all.ids
    );

    for limit in [1, 2, 4] {
        assert_eq!(walk(&app, "", limit, None).await, all.ids, "limit {limit}");
    }
    // Pausing adds an entry after the first page was read: the walk still yields exactly
    // the entries that existed when it started.
    assert_eq!(walk(&app, "", 3, Some(MEMBERS[0])).await, all.ids);
    let now = page(&app, "?limit=1").await;
    assert_eq!(now.entries[0]["action"], "member.paused");
    assert!(now.ids[0] > all.ids[0]);
}

#[tokio::test]
async fn paging_one_program_keeps_to_that_program() {
    let app = spawn().await;
    let all = page(&app, "?limit=1000&program=pilot").await;
    assert!(all.entries.iter().all(|e| e["program_id"] == "pilot"));
    assert!(all.ids.len() >= 7);
    assert_eq!(walk(&app, "program=pilot", 2, None).await, all.ids);
    let other = page(&app, "?limit=1000&program=other").await;
    assert!(other.ids.iter().all(|id| !all.ids.contains(id)));
    assert!(!other.ids.is_empty());
}

#[tokio::test]
async fn bad_paging_parameters_are_a_json_400_and_an_unknown_program_a_404() {
    let app = spawn().await;
    for query in [
        "?limit=0",
        "?limit=1001",
        "?limit=-5",
        "?limit=ten",
        "?cursor=",
        "?cursor=abc",
        "?cursor=a0",
        "?cursor=a-3",
        "?cursor=17",
    ] {
        let r = app.admin_get(&format!("/api/v1/audit{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "bad_request", "{query}");
    }
    let r = app.admin_get("/api/v1/audit?program=nope").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "no program 'nope'");
    // A cursor past the oldest entry is an empty last page, not an error.
    let p = page(&app, "?cursor=a1").await;
    assert!(p.ids.is_empty() && p.next.is_none());
}
