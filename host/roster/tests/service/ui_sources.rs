//! The admin pages of part 2 over HTTP, without a browser: the mapping editor's check and
//! preview (a syntax error at its line and column, the chain's preview over the mirror or
//! pasted samples, saved only when the transform accepts it) and the same draft preview in the
//! REST API; a source's schema form with write-only secrets and test connection; plugin upload
//! refusing a broken component before it replaces anything; the directory's "why".
//!
//! `ui_browser::…` (ignored; `.ci/run` runs it) drives the same pages in Chromium.

use crate::common;
use crate::ui::Browser;

use common::api::ApiWorld;
use common::entra::{EntraWorld, tenant};
use common::world::bitbucket;
use roster_sim::directory::Directory;
use serde_json::{Value, json};

/// A world whose API-defined source `entra2` maps usernames with `username` (an expression).
async fn mapped_world(users: usize) -> (ApiWorld, Directory) {
    let d = Directory::generate(users, 2, 2);
    let mut e = EntraWorld::new(tenant(&d), bitbucket()).await;
    e.target_extra = "threshold = { renames = { count = 500, percent = 100, floor = 5 } }".into();
    let w = ApiWorld::start(e, "").await;
    w.world.rt.put("mapping", "mapping.wasm");
    w.world.rt.runtime.reload().await;
    let graph = w.world.idp.url();
    let (status, created) = w
        .post(
            "/api/v1/sources",
            &w.admin,
            json!({
                "id": "entra2", "plugin": "entra", "priority": 50,
                "allow_hosts": [graph], "allow_insecure_http": true, "allow_private_addresses": true,
                "settings": {"tenant_id": common::entra::TENANT, "client_id": common::entra::CLIENT,
                             "graph_url": graph, "login_url": graph},
                "secrets": [{"name": "client_secret", "value": common::entra::SECRET, "hosts": [graph],
                             "use": {"form": "client_secret"}, "path": format!("/{}/oauth2/", common::entra::TENANT)}],
                "transforms": [{"plugin": "mapping", "settings": {"user": {"username": "Append(StripDomain([userPrincipalName]), \".a\")"}}}]
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (w, d)
}

/// The mapping text the editor would hold, with `expr` as the username expression.
fn mapping_text(expr: &str) -> String {
    let quoted = serde_json::to_string(expr).unwrap();
    format!("{{\n  \"user\": {{\n    \"username\": {quoted}\n  }}\n}}")
}

/// The number inside `<span id="ID">N</span>`.
fn span_number(html: &str, id: &str) -> Option<usize> {
    let at = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    html[at..].split('<').next()?.parse().ok()
}

/// Posts the editor's draft as htmx does (the session's CSRF header, `HX-Request`).
async fn check(b: &mut Browser, mapping: &str, sample: &str) -> (u16, String) {
    let csrf = b.csrf.clone();
    let (status, _, body) = b
        .post_with(
            "/ui/sources/entra2/mapping/check",
            &[("mapping", mapping), ("sample", sample), ("only", ""), ("step", "0")],
            &[
                ("x-csrf-token", &csrf),
                ("hx-request", "true"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    (status, body)
}

fn stored_username_expr(source: &Value) -> String {
    source["config"]["transforms"][0]["settings"]["user"]["username"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapping_editor_places_syntax_errors_previews_the_chain_and_saves_only_what_the_transform_accepts() {
    let (w, d) = mapped_world(8).await;
    assert_eq!(w.run(json!({})).await["state"], "succeeded");
    let first = d.users[0].username.to_lowercase();
    let mut b = Browser::new(&w.base);
    b.login(&w.admin).await;

    // The page: the stored mapping in the textarea and its preview over the mirror.
    let (status, _, page) = b.get("/ui/sources/entra2/mapping").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<textarea id=\"mapping\""), "{page}");
    assert!(
        page.contains("Append(StripDomain([userPrincipalName]), \\&#34;.a\\&#34;)"),
        "{page}"
    );
    assert!(
        page.contains("over the source&#39;s mirror") || page.contains("over the source's mirror"),
        "{page}"
    );
    assert!(
        page.to_lowercase().contains(&format!("{first}.a")),
        "the preview shows the mapped name"
    );

    // An expression that does not parse: refused at its place in the document (line 3, inside
    // the username's string), with that line quoted.
    let broken = mapping_text("Append(StripDomain([userPrincipalName]), ");
    let (status, frag) = check(&mut b, &broken, "").await;
    assert_eq!(status, 200, "{frag}");
    assert!(!frag.contains("<html"), "htmx gets the live part alone: {frag}");
    assert_eq!(span_number(&frag, "error-line"), Some(3), "{frag}");
    let column = span_number(&frag, "error-column").unwrap();
    // The string opens at column 17; the expression is 41 characters long.
    assert!((18..=17 + 1 + 41 + 1).contains(&column), "column {column}: {frag}");
    assert!(frag.contains("user.username"), "names the field: {frag}");

    // A JSON syntax error: at the parser's line and column.
    let (_, frag) = check(&mut b, "{\n  \"user\": {,\n}", "").await;
    assert_eq!(span_number(&frag, "error-line"), Some(2), "{frag}");
    assert_eq!(span_number(&frag, "error-column"), Some(12), "the comma: {frag}");

    // Fixed: the preview changes, each user before, after the step (with its rule) and after.
    let fixed = mapping_text("Append(StripDomain([userPrincipalName]), \".b\")");
    let (_, frag) = check(&mut b, &fixed, "").await;
    assert!(!frag.contains("error-line"), "{frag}");
    let lower = frag.to_lowercase();
    assert!(
        lower.contains(&format!("{first}.b")) && !lower.contains(&format!("{first}.a")),
        "{frag}"
    );
    assert!(
        frag.contains("mapping: <span class=\"state state-succeeded\">kept</span>"),
        "{frag}"
    );
    assert!(frag.contains("mapped username"), "the rule that decided: {frag}");

    // Pasted sample records instead of the mirror.
    let sample = json!({"users": [{"id": "s1", "username": "sam", "attributes": {"userPrincipalName": "Sam.Sample@example.com"}}]}).to_string();
    let (_, frag) = check(&mut b, &fixed, &sample).await;
    assert!(
        frag.contains("Sam.Sample.b") && frag.contains("the sample records"),
        "{frag}"
    );
    let (_, frag) = check(&mut b, &fixed, "{\"users\": 3}").await;
    assert!(frag.contains("sample records are not usable"), "{frag}");

    // Saving a broken mapping is refused with its place; the stored one keeps serving.
    let (status, _, page) = b
        .post("/ui/sources/entra2/mapping", &[("mapping", &broken), ("step", "0")])
        .await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(span_number(&page, "error-line"), Some(3), "{page}");
    let (_, stored) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert!(stored_username_expr(&stored).contains("\".a\""), "{stored}");

    // Saving the fixed one stores it, audited.
    let (status, headers, _) = b
        .post("/ui/sources/entra2/mapping", &[("mapping", &fixed), ("step", "0")])
        .await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/ui/sources/entra2/mapping?step=0&saved=1");
    let (_, stored) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert!(stored_username_expr(&stored).contains("\".b\""), "{stored}");
    w.assert_audited(&["source.replace"]).await;

    // An operator previews but cannot save; a viewer cannot even preview (as in the API).
    let mut op = Browser::new(&w.base);
    op.login(&w.operator).await;
    let (status, _, page) = op.get("/ui/sources/entra2/mapping").await;
    assert_eq!(status, 200);
    assert!(!page.contains("id=\"save\""), "no save button for an operator");
    let (status, _, _) = op
        .post("/ui/sources/entra2/mapping", &[("mapping", &fixed), ("step", "0")])
        .await;
    assert_eq!(status, 403);
    let mut viewer = Browser::new(&w.base);
    viewer.login(&w.viewer).await;
    let (status, _, _) = viewer.get("/ui/sources/entra2/mapping").await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_api_takes_a_draft_chain_and_refuses_a_broken_one_with_its_position() {
    let (w, d) = mapped_world(6).await;
    assert_eq!(w.run(json!({})).await["state"], "succeeded");
    let first = d.users[0].username.to_lowercase();
    let draft = |expr: &str| json!({"transforms": [{"plugin": "mapping", "settings": {"user": {"username": expr}}}]});

    let (status, t) = w
        .post(
            "/api/v1/sources/entra2/preview",
            &w.operator,
            draft("Append(StripDomain([userPrincipalName]), \".c\")"),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    let user = t["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| {
            u["before"]["username"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .starts_with(&first)
        })
        .unwrap_or_else(|| panic!("{first} previewed: {t}"));
    assert_eq!(user["steps"][0]["plugin"], "mapping");
    assert_eq!(user["steps"][0]["outcome"], "kept");
    assert!(
        user["after"]["username"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .ends_with(".c"),
        "{user}"
    );

    // Nothing was stored: the source still maps to `.a`.
    let (_, stored) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert!(stored_username_expr(&stored).contains("\".a\""), "{stored}");

    let (status, e) = w
        .post("/api/v1/sources/entra2/preview", &w.operator, draft("Append([a], "))
        .await;
    assert_eq!(status, 422, "{e}");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("user.username") && msg.contains("line 1, column"), "{msg}");

    let (status, e) = w
        .post(
            "/api/v1/sources/entra2/preview",
            &w.operator,
            json!({"transforms": [{"plugin": "mapping", "settings_file": "/etc/passwd"}]}),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert!(e["error"].as_str().unwrap().contains("inline"), "{e}");
    let (status, _) = w
        .post("/api/v1/sources/entra2/preview", &w.viewer, draft("[mail]"))
        .await;
    assert_eq!(status, 403, "previews need the operator role");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_component_upload_is_refused_before_it_replaces_anything() {
    let (w, _) = mapped_world(4).await;
    let mut b = Browser::new(&w.base);
    b.login(&w.admin).await;
    let before: Vec<_> = std::fs::read_dir(w.world.rt.plugins_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let upload_with = |file: &str, bytes: Vec<u8>, b: &Browser, csrf: String| {
        let http = reqwest::Client::new();
        http.post(format!("{}/ui/plugins/upload?file={file}", w.base))
            .header(
                "cookie",
                format!("__Host-roster_session={}", b.cookie("__Host-roster_session").unwrap()),
            )
            .header("x-csrf-token", csrf)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/wasm")
            .body(bytes)
    };
    let upload = |file: &str, bytes: Vec<u8>, b: &Browser| upload_with(file, bytes, b, b.csrf.clone());
    let (_, _, page) = b.get("/ui/plugins").await;
    assert!(page.contains("id=\"upload-form\""), "an administrator may upload");
    assert!(page.contains("mapping") && page.contains("transform"), "{page}");

    // Not a component, over the loaded mapping: refused with the reason; nothing replaced.
    let resp = upload("mapping.wasm", b"\0asm not really".to_vec(), &b)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("mapping.wasm was refused, and nothing was replaced"),
        "{text}"
    );
    let after: Vec<_> = std::fs::read_dir(w.world.rt.plugins_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "the folder is as it was");
    let (_, plugins) = w.get("/api/v1/plugins", &w.viewer).await;
    assert!(
        plugins["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "mapping"),
        "{plugins}"
    );
    w.assert_audited(&["plugin.upload-refused"]).await;
    // A name that is not a component's is refused too.
    let resp = upload("..%2Fevil.wasm", b"x".to_vec(), &b).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);

    // Without the CSRF header: refused before anything is read.
    let resp = upload_with("normalize.wasm", Vec::new(), &b, "0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // A real component loads and is listed.
    let good = std::fs::read(common::component("normalize")).unwrap();
    let resp = upload("normalize.wasm", good, &b).send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("plugin &#39;normalize&#39;") || text.contains("plugin 'normalize'"),
        "{text}"
    );
    let (_, _, page) = b.get("/ui/plugins").await;
    assert!(page.contains("normalize.wasm"), "{page}");

    // An operator sees the list but no upload form, and is refused anyway.
    let mut op = Browser::new(&w.base);
    op.login(&w.operator).await;
    let (_, _, page) = op.get("/ui/plugins").await;
    assert!(!page.contains("id=\"upload-form\""));
    let resp = upload("x.wasm", b"x".to_vec(), &op).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_page_shows_its_schema_form_never_its_secrets_and_tests_the_connection() {
    let (w, d) = mapped_world(6).await;
    assert_eq!(w.run(json!({})).await["state"], "succeeded");
    let mut b = Browser::new(&w.base);
    b.login(&w.admin).await;
    let (status, _, list) = b.get("/ui/sources").await;
    assert_eq!(status, 200);
    assert!(list.contains("href=\"/ui/sources/entra2\""), "{list}");

    let (status, _, page) = b.get("/ui/sources/entra2").await;
    assert_eq!(status, 200, "{page}");
    // Fields from the entra connector's own schema, filled with the source's settings.
    assert!(page.contains("name=\"s.tenant_id\""), "{page}");
    assert!(page.contains(&format!("value=\"{}\"", common::entra::TENANT)), "{page}");
    assert!(
        page.contains("name=\"s.page_size\"") && page.contains("type=\"number\""),
        "{page}"
    );
    // The secret is write-only.
    assert!(page.contains("name=\"secret.client_secret\""), "{page}");
    assert!(page.contains("placeholder=\"set — leave empty to keep\""), "{page}");
    assert!(!page.contains(common::entra::SECRET), "a secret is never rendered");

    // Test connection: the connector's answer.
    let csrf = b.csrf.clone();
    let (status, _, frag) = b
        .post_with(
            "/ui/sources/entra2/check",
            &[],
            &[
                ("x-csrf-token", &csrf),
                ("hx-request", "true"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{frag}");
    assert!(frag.contains("Connection works"), "{frag}");

    // Save a setting from the form: stored typed; the secret left empty is kept.
    let graph = w.world.idp.url();
    let form = [
        ("s.tenant_id", common::entra::TENANT),
        ("s.client_id", common::entra::CLIENT),
        ("s.graph_url", graph.as_str()),
        ("s.login_url", graph.as_str()),
        ("s.page_size", "50"),
        ("s.include_guests", "true"),
        ("secret.client_secret", ""),
    ];
    let (status, headers, body) = b.post("/ui/sources/entra2", &form).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(headers["location"], "/ui/sources/entra2?saved=1");
    let (_, stored) = w.get("/api/v1/sources/entra2", &w.viewer).await;
    assert_eq!(stored["config"]["settings"]["page_size"], 50, "{stored}");
    assert_eq!(stored["secrets"][0]["name"], "client_secret", "{stored}");
    assert_eq!(
        w.run(json!({})).await["state"],
        "succeeded",
        "the kept secret still works"
    );

    // A value of the wrong type is refused on the form, naming the setting; nothing stored.
    let mut bad = form.to_vec();
    bad[4] = ("s.page_size", "lots");
    let (status, _, page) = b.post("/ui/sources/entra2", &bad).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("setting &#39;page_size&#39; must be a whole number")
            || page.contains("setting 'page_size' must be a whole number"),
        "{page}"
    );

    // The directory page: people after the merge with their source, and "why".
    let user = &d.users[0].username;
    let (status, _, page) = b.get(&format!("/ui/directory?q={user}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("entra2"), "{page}");
    // A viewer reads the source but gets no controls, and is refused a change anyway.
    let mut viewer = Browser::new(&w.base);
    viewer.login(&w.viewer).await;
    let (_, _, page) = viewer.get("/ui/sources/entra2").await;
    assert!(
        page.contains("<fieldset disabled>") && !page.contains("Save settings"),
        "{page}"
    );
    assert!(!page.contains("Test connection</button>"), "{page}");
    let (status, _, _) = viewer.post("/ui/sources/entra2", &form).await;
    assert_eq!(status, 403);
}

/// A `multipart/form-data` body as a browser sends the plugin form without JavaScript.
fn multipart_body(boundary: &str, csrf: &str, name: &str, file_name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [("csrf_token", csrf), ("file", name)] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"component\"; filename=\"{file_name}\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_uploads_through_the_plain_form_without_javascript() {
    let (w, _) = mapped_world(4).await;
    let mut b = Browser::new(&w.base);
    b.login(&w.admin).await;
    let (_, _, page) = b.get("/ui/plugins").await;
    let form = &page[page.find("id=\"upload-form\"").expect("an administrator may upload")..];
    assert!(form.contains("enctype=\"multipart/form-data\""), "{form}");
    assert!(form.contains("name=\"csrf_token\""), "{form}");
    let boundary = "----rosterTestBoundary7MA4YWxkTrZu0gW";
    let post = |body: Vec<u8>, b: &Browser| {
        reqwest::Client::new()
            .post(format!("{}/ui/plugins/upload", w.base))
            .header(
                "cookie",
                format!("__Host-roster_session={}", b.cookie("__Host-roster_session").unwrap()),
            )
            .header("sec-fetch-site", "same-origin")
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
    };
    let good = std::fs::read(common::component("normalize")).unwrap();

    // A stale CSRF field: refused before anything is installed.
    let resp = post(
        multipart_body(boundary, &"0".repeat(64), "", "normalize.wasm", &good),
        &b,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let (_, audit) = w.get("/api/v1/audit", &w.viewer).await;
    assert!(
        !audit.to_string().contains("plugin.upload"),
        "nothing was installed: {audit}"
    );

    // Not a component: the whole page answers, with the reason; nothing replaced.
    let resp = post(
        multipart_body(boundary, &b.csrf, "mapping.wasm", "x.wasm", b"\0asm no"),
        &b,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let text = resp.text().await.unwrap();
    assert!(text.contains("<html"), "a page, not a fragment: {text}");
    assert!(
        text.contains("mapping.wasm was refused, and nothing was replaced"),
        "{text}"
    );

    // The real component, saved under its own name (the name field left empty).
    let resp = post(multipart_body(boundary, &b.csrf, "", "normalize.wasm", &good), &b)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("normalize.wasm loaded"), "{text}");
    let (_, plugins) = w.get("/api/v1/plugins", &w.viewer).await;
    assert!(plugins.to_string().contains("normalize.wasm"), "{plugins}");
    w.assert_audited(&["plugin.upload", "plugin.upload-refused"]).await;
}
