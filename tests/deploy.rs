//! The Slack app manifests and the deploy files, checked against the code so they cannot
//! drift: the manifests against Slack's manifest schema and against the code's own lists
//! (`pulseloop::slack::app`, `pulse::events::HANDLED_EVENTS`, the `/pulse` help), the scopes
//! against Slack's API specs, and every YAML file under deploy/ for the facts the service
//! relies on (probes on routes the server has, 3 replicas, config/ in the ConfigMap, only
//! documented environment variables). Also `pulseloop healthcheck`, the image's health check.
//!
//! After editing config/, `PULSELOOP_UPDATE_DEPLOY=1 cargo test --test deploy` writes
//! deploy/kubernetes/configmap.yaml again.

use pulseloop::pulse::commands::HELP;
use pulseloop::pulse::events::HANDLED_EVENTS;
use pulseloop::slack::app::{
    self, BOT_SCOPES, COMMANDS_SCOPE, EVENT_SCOPES, METHOD_SCOPES, SHORTCUTS, SLASH_COMMAND,
};
use pulseloop::slack::incoming::commands::PulseCommand;
use pulseloop::slack::incoming::payloads::SlackEvent;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const HTTP_MANIFEST: &str = "deploy/slack-app-manifest.yaml";
const SOCKET_MANIFEST: &str = "deploy/slack-app-manifest.socket.yaml";

/// `/pulse` subcommands the manifest's usage hint already names while their code is being
/// written on other branches (issue 10: the admin view, a member's own data). Once the help
/// names one, this test fails until it is removed from here.
const PENDING_SUBCOMMANDS: &[&str] = &[];

/// Request paths the HTTP manifest names whose route is being added on another branch (the
/// OAuth v2 install). Once routed, this test fails until it is removed from here.
const PENDING_ROUTES: &[&str] = &[];

// ---------- helpers ----------

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values.
fn yaml_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let value = <Value as serde::Deserialize>::deserialize(document)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

fn yaml(relative: &str) -> Value {
    let mut documents = yaml_documents(&root().join(relative)).unwrap();
    assert_eq!(documents.len(), 1, "{relative} should hold one document");
    documents.remove(0)
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
    out.sort();
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a list, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// String literals in the Rust files under `dir`. Good enough for source without nested
/// quotes in raw strings, which is what the candidates below are filtered for anyway.
fn string_literals(dir: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    files_under(&root().join(dir), &mut files);
    let mut out = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        let mut rest = text.as_str();
        while let Some(start) = rest.find('"') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('"') else { break };
            out.push((file.clone(), after[..end].to_string()));
            rest = &after[end + 1..];
        }
    }
    out
}

/// The paths the server routes: every `.route("…"` in src/http.
fn routed_paths() -> BTreeSet<String> {
    let mut files = Vec::new();
    files_under(&root().join("src/http"), &mut files);
    let mut paths = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, _) in text.match_indices(".route(") {
            let tail = text[i + ".route(".len()..].trim_start();
            if let Some(literal) = tail.strip_prefix('"') {
                if let Some(end) = literal.find('"') {
                    paths.insert(literal[..end].to_string());
                }
            }
        }
    }
    assert!(
        paths.contains("/healthz"),
        "route scan found nothing sensible: {paths:?}"
    );
    paths
}

/// The environment variables the README's configuration table documents (the product
/// contract's list, plus RUST_LOG).
fn documented_env() -> BTreeSet<String> {
    let readme = read("README.md");
    let mut names = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap_or("");
        for (i, part) in first_cell.split('`').enumerate() {
            if i % 2 == 1
                && !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                names.insert(part.to_string());
            }
        }
    }
    assert!(names.contains("DATABASE_URL") && names.contains("SLACK_BOT_TOKEN"));
    names
}

/// Scopes from Slack's specs (tests/fixtures/slack-scopes.json, see its `_source`).
fn spec_scopes() -> Value {
    serde_json::from_str(&read("tests/fixtures/slack-scopes.json")).unwrap()
}

// ---------- the Slack app manifests ----------

#[test]
fn both_manifests_follow_slacks_manifest_schema() {
    let schema: Value =
        serde_json::from_str(&read("tests/fixtures/slack-manifest.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("Slack's schema compiles");
    for file in [HTTP_MANIFEST, SOCKET_MANIFEST] {
        let manifest = yaml(file);
        let errors: Vec<String> = validator
            .iter_errors(&manifest)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{file} breaks Slack's manifest schema: {errors:#?}"
        );
    }
    // The schema does reject a broken manifest (it is not vacuous).
    let mut broken = yaml(HTTP_MANIFEST);
    broken["features"]["shortcuts"][0]["type"] = json!("sideways");
    broken["settings"]["colour"] = json!(true);
    assert!(validator.iter_errors(&broken).count() >= 2);
}

#[test]
fn both_manifests_declare_exactly_the_code_s_scopes_events_and_shortcuts() {
    for file in [HTTP_MANIFEST, SOCKET_MANIFEST] {
        let m = yaml(file);
        assert_eq!(
            strings(&m["oauth_config"]["scopes"]["bot"]),
            set(BOT_SCOPES),
            "{file}: bot scopes differ from slack::app::BOT_SCOPES"
        );
        assert!(
            m["oauth_config"]["scopes"].get("user").is_none(),
            "{file}: no user scopes"
        );
        assert_eq!(
            strings(&m["settings"]["event_subscriptions"]["bot_events"]),
            set(HANDLED_EVENTS),
            "{file}: bot events differ from pulse::events::HANDLED_EVENTS"
        );
        let declared: BTreeSet<(String, String, String)> = m["features"]["shortcuts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["type"].as_str().unwrap().to_string(),
                    s["callback_id"].as_str().unwrap().to_string(),
                    s["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let code: BTreeSet<(String, String, String)> = SHORTCUTS
            .iter()
            .map(|s| {
                (
                    s.kind.as_str().to_string(),
                    s.callback_id.to_string(),
                    s.name.to_string(),
                )
            })
            .collect();
        assert_eq!(
            declared, code,
            "{file}: shortcuts differ from slack::app::SHORTCUTS"
        );
        let commands = m["features"]["slash_commands"].as_array().unwrap();
        assert_eq!(commands.len(), 1, "{file}: one slash command");
        assert_eq!(commands[0]["command"], SLASH_COMMAND);
        assert_eq!(m["settings"]["interactivity"]["is_enabled"], true);
        assert_eq!(m["features"]["app_home"]["home_tab_enabled"], true);
    }
}

/// The `/pulse` subcommands the help names (`/pulse <verb>`), in order of appearance.
fn help_verbs() -> BTreeSet<String> {
    HELP.split("`/pulse ")
        .skip(1)
        .filter_map(|s| s.split(['`', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_usage_hint_names_every_subcommand_the_help_names() {
    let helped = help_verbs();
    assert!(
        helped.contains("status") && helped.contains("win"),
        "{helped:?}"
    );
    for verb in &helped {
        assert!(
            !matches!(PulseCommand::parse(verb), PulseCommand::Unknown { .. }),
            "the help names `/pulse {verb}`, which the parser does not know"
        );
    }
    for verb in PENDING_SUBCOMMANDS {
        assert!(
            !helped.contains(*verb),
            "`/pulse {verb}` is in the help now: remove it from PENDING_SUBCOMMANDS in tests/deploy.rs"
        );
    }
    let expected: BTreeSet<String> = helped
        .iter()
        .cloned()
        .chain(set(PENDING_SUBCOMMANDS))
        .collect();
    for file in [HTTP_MANIFEST, SOCKET_MANIFEST] {
        let m = yaml(file);
        let hint = m["features"]["slash_commands"][0]["usage_hint"]
            .as_str()
            .unwrap();
        let hinted: BTreeSet<String> = hint
            .split('|')
            .filter_map(|alt| alt.split_whitespace().next())
            .map(str::to_string)
            .collect();
        assert_eq!(
            hinted, expected,
            "{file}: the usage hint and the /pulse help differ"
        );
    }
}

#[test]
fn the_http_manifest_sends_each_kind_of_request_to_its_route() {
    let m = yaml(HTTP_MANIFEST);
    let routed = routed_paths();
    let urls = [
        (
            &m["settings"]["event_subscriptions"]["request_url"],
            "/slack/events",
        ),
        (
            &m["settings"]["interactivity"]["request_url"],
            "/slack/interactions",
        ),
        (
            &m["features"]["slash_commands"][0]["url"],
            "/slack/commands",
        ),
        (
            &m["oauth_config"]["redirect_urls"][0],
            "/slack/oauth/callback",
        ),
    ];
    for (url, path) in urls {
        assert_eq!(url.as_str(), Some(format!("https://HOST{path}").as_str()));
        if PENDING_ROUTES.contains(&path) {
            assert!(
                !routed.contains(path),
                "{path} is routed now: remove it from PENDING_ROUTES in tests/deploy.rs"
            );
        } else {
            assert!(
                routed.contains(path),
                "the manifest names {path}, which src/http does not route"
            );
        }
    }
    assert_eq!(
        m["oauth_config"]["redirect_urls"].as_array().unwrap().len(),
        1
    );
    assert_eq!(m["settings"]["socket_mode_enabled"], false);
}

/// A manifest without the fields that only the HTTP variant has.
fn without_urls(mut m: Value) -> Value {
    m["settings"]["event_subscriptions"]
        .as_object_mut()
        .unwrap()
        .remove("request_url");
    m["settings"]["interactivity"]
        .as_object_mut()
        .unwrap()
        .remove("request_url");
    for command in m["features"]["slash_commands"].as_array_mut().unwrap() {
        command.as_object_mut().unwrap().remove("url");
    }
    m["oauth_config"]
        .as_object_mut()
        .unwrap()
        .remove("redirect_urls");
    m["settings"]["socket_mode_enabled"] = json!(true);
    m
}

#[test]
fn the_socket_mode_manifest_is_the_http_one_without_request_urls() {
    let socket = yaml(SOCKET_MANIFEST);
    assert_eq!(socket["settings"]["socket_mode_enabled"], true);
    let text = read(SOCKET_MANIFEST);
    let urls: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("://"))
        .collect();
    assert!(
        urls.is_empty(),
        "the Socket Mode manifest has URLs: {urls:?}"
    );
    assert_eq!(socket, without_urls(yaml(HTTP_MANIFEST)));
}

/// Every Web API method named in src/ (a string literal like "chat.postMessage" whose
/// family is one of Slack's), with a file that names it. Audit actions ("admin.cadence.set")
/// and JSON paths ("team.id") share a family with Slack's methods: a literal counts when
/// Slack's spec or our own table knows it as a method, or when it is spelt like one
/// (a camelCase verb, as Slack's newer methods missing from the spec are).
fn methods_called() -> BTreeMap<String, PathBuf> {
    let spec = spec_scopes();
    let methods = spec["web_api"].as_object().unwrap();
    let families: BTreeSet<&str> = methods.keys().filter_map(|m| m.split('.').next()).collect();
    let mut called = BTreeMap::new();
    for (file, literal) in string_literals("src") {
        let mut parts = literal.split('.');
        let family = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        let spelt_like_a_method = families.contains(family)
            && !rest.is_empty()
            && rest
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()));
        let known = methods.contains_key(&literal) || app::method_scopes(&literal).is_some();
        let camel_case = rest
            .last()
            .is_some_and(|verb| verb.chars().any(|c| c.is_ascii_uppercase()));
        if spelt_like_a_method && (known || camel_case) {
            called.entry(literal).or_insert(file);
        }
    }
    assert!(
        called.contains_key("chat.postMessage"),
        "method scan found: {called:?}"
    );
    called
}

#[test]
fn the_bot_scopes_are_exactly_what_the_called_methods_and_handled_events_need() {
    let called = methods_called();
    let unknown: Vec<String> = called
        .iter()
        .filter(|(m, _)| app::method_scopes(m).is_none())
        .map(|(m, f)| format!("{m} (in {})", f.display()))
        .collect();
    assert!(
        unknown.is_empty(),
        "add these Web API methods and their scopes to slack::app::METHOD_SCOPES: {unknown:?}"
    );
    let mut needed: BTreeSet<String> = set(&[COMMANDS_SCOPE]);
    for method in called.keys() {
        needed.extend(set(app::method_scopes(method).unwrap()));
    }
    for event in HANDLED_EVENTS {
        let scopes = app::event_scopes(event).unwrap_or_else(|| {
            panic!("pulse::events handles {event}: add its scopes to slack::app::EVENT_SCOPES")
        });
        needed.extend(set(scopes));
    }
    assert_eq!(
        set(BOT_SCOPES),
        needed,
        "slack::app::BOT_SCOPES should be exactly what the code needs"
    );
}

/// Scope names in Slack's 2020 spec that granular bot tokens spell differently.
fn granular(scope: &str) -> Option<&str> {
    match scope {
        "chat:write:bot" => Some("chat:write"),
        "chat:write:user" => None,
        other => Some(other),
    }
}

#[test]
fn the_scope_tables_agree_with_slacks_specs() {
    let spec = spec_scopes();
    // Newer than the 2020 snapshot of the specs; their scopes come from Slack's reference pages.
    let not_in_web_spec = [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
        "apps.connections.open",
    ];
    let not_in_event_spec = ["app_home_opened", "user_status_changed"];
    for (method, ours) in METHOD_SCOPES {
        match spec["web_api"].get(*method) {
            None => assert!(
                not_in_web_spec.contains(method),
                "{method} is neither in Slack's spec nor known to be newer than it"
            ),
            Some(theirs) => {
                let theirs: BTreeSet<String> = strings(theirs)
                    .iter()
                    .filter_map(|s| granular(s))
                    .map(str::to_string)
                    .collect();
                assert!(
                    set(ours).is_subset(&theirs),
                    "{method}: we ask for {ours:?}, Slack's spec accepts {theirs:?}"
                );
                assert_eq!(
                    ours.is_empty(),
                    theirs.is_empty(),
                    "{method}: we ask for {ours:?}, Slack's spec needs one of {theirs:?}"
                );
            }
        }
    }
    for (event, ours) in EVENT_SCOPES {
        match spec["events"].get(*event) {
            None => assert!(
                not_in_event_spec.contains(event),
                "{event} is not in Slack's spec"
            ),
            Some(theirs) => assert_eq!(set(ours), strings(theirs), "{event}"),
        }
    }
}

#[test]
fn every_handled_event_is_parsed_and_arrives_through_its_subscription() {
    let sample = |name: &str| -> Value {
        let user = json!({ "id": "U0MEMBER1", "tz": "Europe/Berlin", "profile": {} });
        match name {
            "app_home_opened" => {
                json!({ "type": "app_home_opened", "user": "U0MEMBER1", "tab": "home" })
            }
            "app_uninstalled" => json!({ "type": "app_uninstalled" }),
            "message.im" => {
                json!({ "type": "message", "channel_type": "im", "user": "U0MEMBER1", "text": "4", "ts": "1.000001", "channel": "D0DM00001" })
            }
            "tokens_revoked" => {
                json!({ "type": "tokens_revoked", "tokens": { "bot": ["U0BOT0001"] } })
            }
            "user_change" => json!({ "type": "user_change", "user": user }),
            "user_status_changed" => json!({ "type": "user_status_changed", "user": user }),
            other => panic!("add a sample of the {other} event to this test"),
        }
    };
    for name in HANDLED_EVENTS {
        let event: SlackEvent = serde_json::from_value(sample(name))
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        assert_eq!(app::subscription_of(&event), Some(*name), "{name}");
    }
}

// ---------- the deploy files ----------

#[test]
fn every_yaml_file_under_deploy_parses() {
    let mut files = Vec::new();
    files_under(&root().join("deploy"), &mut files);
    files_under(&root().join(".github"), &mut files);
    let yaml_files: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    let mut problems = Vec::new();
    let mut documents = 0;
    for file in &yaml_files {
        match yaml_documents(file) {
            Ok(d) if d.is_empty() => problems.push(format!("{}: empty", file.display())),
            Ok(d) => documents += d.len(),
            Err(e) => problems.push(e),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(yaml_files.len() >= 9, "found only {yaml_files:?}");
    assert!(documents >= yaml_files.len());
    // And the parser does reject broken YAML.
    let broken = root().join("target/deploy-test-broken.yaml");
    std::fs::create_dir_all(broken.parent().unwrap()).unwrap();
    std::fs::write(&broken, "a: [1, 2\nb: }").unwrap();
    assert!(yaml_documents(&broken).is_err());
}

/// The one document of `kind` under deploy/kubernetes.
fn kube(kind: &str) -> Value {
    let mut files = Vec::new();
    files_under(&root().join("deploy/kubernetes"), &mut files);
    let found: Vec<Value> = files
        .iter()
        .flat_map(|f| yaml_documents(f).unwrap())
        .filter(|d| d["kind"] == kind && d.get("apiVersion").is_some())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {kind} expected under deploy/kubernetes"
    );
    found.into_iter().next().unwrap()
}

fn port_of(bind: &str) -> u16 {
    bind.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_deployment_runs_three_hardened_replicas_probed_on_the_ops_routes() {
    let routed = routed_paths();
    let d = kube("Deployment");
    assert_eq!(d["spec"]["replicas"], 3);
    let pod = &d["spec"]["template"];
    assert_eq!(
        pod["metadata"]["labels"],
        d["spec"]["selector"]["matchLabels"]
    );
    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_ne!(spec["securityContext"]["runAsUser"], 0);
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    for key in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][key][resource].is_string(),
                "resources.{key}.{resource}"
            );
        }
    }
    let port = &c["ports"][0];
    let env: BTreeMap<String, String> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        u64::from(port_of(&env["PULSELOOP_BIND"])),
        port["containerPort"].as_u64().unwrap(),
        "the server listens where the container port is"
    );
    assert!(
        env["PULSELOOP_BIND"].starts_with("0.0.0.0:"),
        "reachable from the kubelet"
    );
    let documented = documented_env();
    for name in env.keys() {
        assert!(
            documented.contains(name),
            "{name} is not in README's configuration table"
        );
    }
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert!(routed.contains(path), "{probe}: the server has no {path}");
        assert_eq!(
            get["port"], port["name"],
            "{probe} asks the container's port"
        );
    }
    assert_eq!(
        c["envFrom"][0]["secretRef"]["name"],
        kube("Secret")["metadata"]["name"]
    );
}

#[test]
fn the_service_and_the_disruption_budget_select_the_deployment_s_pods() {
    let d = kube("Deployment");
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    let container_port = &d["spec"]["template"]["spec"]["containers"][0]["ports"][0];
    let service = kube("Service");
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container_port["name"]
    );
    let pdb = kube("PodDisruptionBudget");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let min = pdb["spec"]["minAvailable"].as_u64().unwrap();
    assert!(
        (1..3).contains(&min),
        "a drain may take one replica of three, not more"
    );
}

#[test]
fn the_secret_is_a_template_of_documented_names() {
    let secret = kube("Secret");
    let documented = documented_env();
    let data = secret["stringData"].as_object().unwrap();
    assert!(
        secret.get("data").is_none(),
        "placeholders go in stringData, in the clear"
    );
    for required in ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "DATABASE_URL"] {
        assert!(data.contains_key(required), "the Secret lacks {required}");
    }
    for (name, value) in data {
        assert!(
            documented.contains(name),
            "{name} is not in README's configuration table"
        );
        assert!(
            value.as_str().unwrap().contains("replace-me"),
            "{name} must be a placeholder (replace-me), never a real value"
        );
    }
}

#[test]
fn kustomization_lists_every_kubernetes_file() {
    let k = yaml("deploy/kubernetes/kustomization.yaml");
    let listed = strings(&k["resources"]);
    let mut files = Vec::new();
    files_under(&root().join("deploy/kubernetes"), &mut files);
    let present: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}

/// The ConfigMap key of a file under config/: its relative path, "/" read as ".".
fn configmap_key(relative: &str) -> String {
    relative.replace('/', ".")
}

fn config_files() -> Vec<String> {
    let config = root().join("config");
    let mut files = Vec::new();
    files_under(&config, &mut files);
    files
        .iter()
        .map(|f| {
            f.strip_prefix(&config)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect()
}

/// deploy/kubernetes/configmap.yaml as it should be for config/.
fn configmap_yaml() -> String {
    let mut out = String::from(
        "# config/ of the repository, one key per file (\"/\" becomes \".\"); deployment.yaml mounts\n\
         # each key at its path under /app/config. tests/deploy.rs checks that every file is here,\n\
         # unchanged: after editing config/, run `PULSELOOP_UPDATE_DEPLOY=1 cargo test --test deploy`\n\
         # to write this file again. Apply a change with `kubectl apply -k deploy/kubernetes` and\n\
         # `kubectl rollout restart deployment/pulseloop`.\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pulseloop-config\n  labels:\n    app.kubernetes.io/name: pulseloop\ndata:\n",
    );
    for relative in config_files() {
        let text = read(&format!("config/{relative}"));
        let indicator = if text.starts_with(' ') { "2" } else { "" };
        let chomp = if text.ends_with('\n') { "" } else { "-" };
        out.push_str(&format!(
            "  {}: |{indicator}{chomp}\n",
            configmap_key(&relative)
        ));
        for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    out
}

#[test]
fn the_configmap_holds_every_file_in_config_at_its_path() {
    let path = root().join("deploy/kubernetes/configmap.yaml");
    if std::env::var_os("PULSELOOP_UPDATE_DEPLOY").is_some() {
        std::fs::write(&path, configmap_yaml()).unwrap();
    }
    let configmap = kube("ConfigMap");
    let data = configmap["data"].as_object().unwrap();
    let files = config_files();
    assert!(files.iter().any(|f| f == "pulseloop.toml"));
    assert!(files.iter().any(|f| f.starts_with("programs/")));
    let hint = "run `PULSELOOP_UPDATE_DEPLOY=1 cargo test --test deploy` to write deploy/kubernetes/configmap.yaml again";
    let expected_keys: BTreeSet<String> = files.iter().map(|f| configmap_key(f)).collect();
    let keys: BTreeSet<String> = data.keys().cloned().collect();
    assert_eq!(
        keys, expected_keys,
        "the ConfigMap's files differ from config/: {hint}"
    );
    for relative in &files {
        assert!(
            data[&configmap_key(relative)].as_str()
                == Some(read(&format!("config/{relative}")).as_str()),
            "config/{relative} differs from its copy in the ConfigMap: {hint}"
        );
    }
    // The Deployment mounts each key at its path in the config folder.
    let d = kube("Deployment");
    let spec = &d["spec"]["template"]["spec"];
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == configmap["metadata"]["name"])
        .expect("a volume of the ConfigMap");
    let items: BTreeSet<(String, String)> = volume["configMap"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap().into(),
                i["path"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = files
        .iter()
        .map(|f| (configmap_key(f), f.clone()))
        .collect();
    assert_eq!(
        items, expected,
        "deployment.yaml: the config volume's items must map each key to its path"
    );
    let container = &spec["containers"][0];
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the config volume is mounted");
    let config_env = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "PULSELOOP_CONFIG")
        .expect("PULSELOOP_CONFIG is set");
    assert_eq!(mount["mountPath"], config_env["value"]);
    assert_eq!(mount["readOnly"], true);
}

/// `NAME=value` lines of an env file, commented-out ones excluded.
fn env_file_names(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once('=').expect("NAME=value").0.to_string())
        .collect()
}

#[test]
fn compose_runs_pulseloop_on_a_healthy_postgres_with_a_volume() {
    let compose = yaml("deploy/docker-compose.yml");
    let services = compose["services"].as_object().unwrap();
    let app = &services["pulseloop"];
    let (db_name, db) = services
        .iter()
        .find(|(_, s)| {
            s["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("postgres:"))
        })
        .expect("a PostgreSQL service");
    assert_eq!(
        app["depends_on"][db_name.as_str()]["condition"],
        "service_healthy"
    );
    for (name, service) in [("pulseloop", app), (db_name.as_str(), db)] {
        assert!(
            service["healthcheck"]["test"].is_array(),
            "{name} has a health check"
        );
    }
    let test = strings(&app["healthcheck"]["test"]);
    assert!(
        test.contains("healthcheck"),
        "pulseloop's health check is `pulseloop healthcheck`"
    );
    let app_test: Vec<&str> = app["healthcheck"]["test"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if let Some(i) = app_test.iter().position(|a| *a == "--path") {
        assert!(
            routed_paths().contains(app_test[i + 1]),
            "{}",
            app_test[i + 1]
        );
    }
    // A named volume, declared and used by the database.
    let volumes = compose["volumes"].as_object().expect("named volumes");
    let db_mounts = strings(&db["volumes"]);
    assert!(
        volumes
            .keys()
            .any(|v| db_mounts.iter().any(|m| m.starts_with(&format!("{v}:")))),
        "the database keeps its data in a named volume"
    );
    // Only documented environment variables.
    let documented = documented_env();
    let environment = app["environment"].as_object().unwrap();
    for name in environment.keys() {
        assert!(
            documented.contains(name),
            "{name} is not in README's configuration table"
        );
    }
    assert!(environment["DATABASE_URL"]
        .as_str()
        .unwrap()
        .starts_with("postgres://"));
    assert!(environment["DATABASE_URL"]
        .as_str()
        .unwrap()
        .contains(&format!("@{db_name}:")));
    let bind = environment["PULSELOOP_BIND"].as_str().unwrap();
    assert!(bind.starts_with("0.0.0.0:"));
    let ports = strings(&app["ports"]);
    assert!(
        ports
            .iter()
            .all(|p| p.starts_with("127.0.0.1:") && p.ends_with(&format!(":{}", port_of(bind)))),
        "published on loopback only, at the server's port: {ports:?}"
    );
    assert_eq!(app["build"]["dockerfile"], "deploy/Dockerfile");
    assert_eq!(strings(&app["env_file"]), set(&["pulseloop.env"]));
}

#[test]
fn env_example_holds_only_documented_names() {
    let documented = documented_env();
    let text = read("deploy/env.example");
    let names = env_file_names(&text);
    for required in [
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "DATABASE_URL",
        "PULSELOOP_BIND",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "env.example lacks {required}"
        );
    }
    for name in names {
        assert!(
            documented.contains(&name),
            "{name} is not in README's configuration table"
        );
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let value = line.split_once('=').unwrap().1;
        assert!(
            !value.starts_with("xox") || value.contains("replace-me"),
            "env.example holds what looks like a real token: {line}"
        );
    }
}

#[test]
fn the_dockerfile_builds_in_two_stages_and_runs_unprivileged_with_a_health_check() {
    let text = read("deploy/Dockerfile");
    // Instructions, with continuation lines joined.
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let named = |word: &str| -> Vec<&str> {
        instructions
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(word))
            .copied()
            .collect()
    };
    assert!(named("FROM").len() >= 2, "multi-stage");
    assert!(
        named("RUN").iter().any(|r| r.contains("--mount=type=cache")
            && r.contains("cargo build --profile production --locked")),
        "the production build (LTO, Cargo.toml) uses cache mounts"
    );
    let user = named("USER");
    let last_user = user
        .last()
        .expect("a USER")
        .split_whitespace()
        .nth(1)
        .unwrap();
    assert!(
        !["root", "0", "0:0"].contains(&last_user),
        "runs as {last_user}"
    );
    let health = named("HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(health[0].contains("\"healthcheck\""), "{}", health[0]);
    assert!(
        named("COPY").iter().any(|c| c.contains("config")),
        "config/ goes into the image"
    );
    let env_line = named("ENV").join(" ");
    let bind = env_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("PULSELOOP_BIND="))
        .expect("ENV PULSELOOP_BIND");
    let expose = named("EXPOSE");
    assert_eq!(expose.len(), 1);
    assert_eq!(
        expose[0].split_whitespace().nth(1).unwrap(),
        port_of(bind).to_string()
    );
    let documented = documented_env();
    for word in env_line.split_whitespace().filter(|w| w.contains('=')) {
        let name = word.split('=').next().unwrap();
        assert!(
            documented.contains(name),
            "{name} is not in README's configuration table"
        );
    }
    // The migrations are compiled in: the image needs no migrations folder.
    assert!(read("src/storage/mod.rs").contains("sqlx::migrate!(\"migrations/sqlite\")"));
    let ignore = read(".dockerignore");
    for excluded in ["target", ".git", "data"] {
        assert!(
            ignore.lines().any(|l| l.trim() == excluded),
            ".dockerignore lacks {excluded}"
        );
    }
}

#[test]
fn the_systemd_unit_is_hardened_for_a_single_machine_sqlite_install() {
    let unit = read("deploy/pulseloop.service");
    let settings: BTreeMap<String, Vec<String>> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .fold(BTreeMap::new(), |mut m, l| {
            let (k, v) = l.split_once('=').unwrap();
            m.entry(k.trim().to_string())
                .or_default()
                .push(v.trim().to_string());
            m
        });
    let one = |key: &str| -> &str {
        settings
            .get(key)
            .and_then(|v| v.first())
            .unwrap_or_else(|| panic!("the unit lacks {key}="))
    };
    assert!(one("ExecStart").ends_with("pulseloop serve"));
    assert!(one("ExecStartPre").ends_with("pulseloop check-config"));
    assert_eq!(one("EnvironmentFile"), "/etc/pulseloop/env");
    assert_eq!(one("StateDirectory"), "pulseloop");
    assert_eq!(one("NoNewPrivileges"), "yes");
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("PrivateTmp"), "yes");
    assert_ne!(one("User"), "root");
    // The SQLite file lives in the state directory, the one place the unit may write.
    let database = settings["Environment"]
        .iter()
        .find_map(|e| e.strip_prefix("DATABASE_URL="))
        .expect("Environment=DATABASE_URL=…");
    assert!(
        database.starts_with("sqlite:///var/lib/pulseloop/"),
        "{database}"
    );
    let config = settings["Environment"]
        .iter()
        .find_map(|e| e.strip_prefix("PULSELOOP_CONFIG="))
        .expect("Environment=PULSELOOP_CONFIG=…");
    assert_eq!(
        one("ReadOnlyPaths"),
        config,
        "the configuration is read, never written"
    );
}

// ---------- pulseloop healthcheck ----------

/// A one-shot HTTP server on loopback answering every request with `status`.
fn fake_server(status: &'static str) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .as_bytes(),
            );
        }
    });
    addr
}

fn healthcheck(args: &[&str], bind_env: Option<&str>) -> std::process::Output {
    let config = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_pulseloop"));
    command
        .arg("--config")
        .arg(config.path())
        .arg("healthcheck")
        .args(args)
        .env_remove("PULSELOOP_BIND")
        .env_remove("PULSELOOP_CONFIG");
    if let Some(bind) = bind_env {
        command.env("PULSELOOP_BIND", bind);
    }
    command.output().unwrap()
}

#[test]
fn healthcheck_exits_0_on_200_and_1_otherwise() {
    let up = fake_server("200 OK");
    let out = healthcheck(&["--addr", &up.to_string()], None);
    assert!(out.status.success(), "{out:?}");

    // The bind address from the environment, on loopback when it is every interface.
    let up = fake_server("200 OK");
    let out = healthcheck(
        &["--path", "/readyz"],
        Some(&format!("0.0.0.0:{}", up.port())),
    );
    assert!(out.status.success(), "{out:?}");

    let down = fake_server("503 Service Unavailable");
    let out = healthcheck(&["--addr", &down.to_string(), "--path", "/readyz"], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/readyz") && stderr.contains("503"),
        "{stderr}"
    );

    // Nothing listens: a port just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = healthcheck(&["--addr", &closed.to_string()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));

    let out = healthcheck(&["--addr", "not-an-address"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an address"));
}
