//! `GET /admin/` in a real browser: headless Chromium loads the dashboard,
//! its script fetches the admin API under the page's own
//! Content-Security-Policy, and the rendered DOM shows the traffic.
//!
//! `PERMGATE_DASHBOARD_SCREENSHOT=docs/dashboard.png cargo test --test
//! gateway dashboard` also saves a screenshot (how the README's was made).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]

[[route]]
name = "items.delete"
methods = ["DELETE"]
path = "/items/{id}"
require = ["items:item:delete"]

[[route]]
name = "reports.audit"
methods = ["GET"]
path = "/reports/{id}"
require = ["reports:report:view"]
mode = "audit"

[[route]]
name = "health.unused"
methods = ["GET"]
path = "/status"
"#;

/// Longest a browser run may take before it is killed.
const BROWSER_LIMIT: Duration = Duration::from_secs(30);

async fn traffic() -> (RunningGateway, Backend, PermissionApi) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("viewer", &["items:item:view"]);
    api.set("Bearer broken", ApiReply::raw(500, "{}"));
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let viewer = [("authorization", "Bearer viewer")];
    let broken = [("authorization", "Bearer broken")];
    for (method, path, headers, status) in [
        ("GET", "/items/1", &viewer[..], 200),
        ("GET", "/items/2", &viewer[..], 200),
        ("GET", "/items/3", &[][..], 401),
        ("GET", "/items/4", &broken[..], 503),
        ("DELETE", "/items/1", &viewer[..], 403),
        ("GET", "/reports/7", &viewer[..], 200),
        ("GET", "/widgets/4711", &viewer[..], 403),
        ("GET", "/widgets/4712", &viewer[..], 403),
        ("GET", "/widgets/4713?q=secret", &viewer[..], 403),
        ("POST", "/users/12/orders/34", &viewer[..], 403),
    ] {
        let r = request(gw.addr, method, path, headers, "").await;
        assert_eq!(r.status, status, "{method} {path}");
    }
    (gw, backend, api)
}

#[tokio::test]
async fn the_dashboard_renders_routes_counts_and_unmatched_shapes_in_a_browser() {
    let Some(chromium) = tool("chromium") else {
        return;
    };
    let (gw, _backend, _api) = traffic().await;
    let metrics = metrics::scrape(gw.admin).await;
    let url = format!("http://{}/admin/", gw.admin);
    let dom = browse(&chromium, &url, &["--dump-dom"]).await;

    assert!(dom.contains(r#"<body data-state="ok">"#), "{dom}");
    let routes = rows(&dom, "routes");
    let row = |name: &str| {
        routes
            .iter()
            .find(|(_, cells)| cells[0] == name)
            .unwrap_or_else(|| panic!("{name} not in {routes:?}"))
    };
    // name, methods, path, allow, deny, unauthenticated, wouldDeny.
    let (class, cells) = row("items.get");
    assert_eq!(
        cells[..7],
        ["items.get", "GET", "/items/{id}", "2", "0", "1", "0"]
    );
    assert_ne!(cells[7], "never", "lastSeen");
    assert!(!class.contains("would-deny"));
    assert_eq!(row("items.delete").1[3..7], ["0", "1", "0", "0"]);
    let (class, cells) = row("reports.audit");
    assert_eq!(cells[6], "1", "wouldDeny");
    assert!(class.contains("would-deny"), "highlighted: {class}");
    assert_eq!(row("health.unused").1[7], "never");
    let names: Vec<&str> = routes.iter().map(|(_, c)| c[0].as_str()).collect();
    assert_eq!(
        names,
        [
            "health.unused",
            "items.delete",
            "items.get",
            "reports.audit"
        ],
        "sorted by name"
    );
    assert_eq!(text_of(&dom, "would-deny"), "1");

    let unmatched = rows(&dom, "unmatched");
    let shape = |s: &str| {
        unmatched
            .iter()
            .find(|(_, cells)| cells[1] == s)
            .map(|(_, cells)| cells.clone())
            .unwrap_or_else(|| panic!("{s} not in {unmatched:?}"))
    };
    let widgets = shape("/widgets/{id}");
    assert_eq!((widgets[0].as_str(), widgets[2].as_str()), ("GET", "3"));
    assert!(widgets[3].starts_with("/widgets/471"), "{widgets:?}");
    assert!(!dom.contains("secret"), "no query string anywhere");
    // The copy button carries the suggested entry.
    let entries = attributes(&dom, "title");
    let widget_entry = entries
        .iter()
        .find(|e| e.contains("/widgets/"))
        .expect("a suggestion for /widgets");
    assert_eq!(
        widget_entry,
        "# TODO: fill in require, then uncomment (`permgate suggest` copies it from a sibling route)\n\
         # [[route]]\n# name = \"widgets.get\"\n# methods = [\"GET\"]\n# path = \"/widgets/{widgetId}\"\n\
         # require = [...]\n"
    );
    assert!(
        entries
            .iter()
            .any(|e| e
                .contains("# methods = [\"POST\"]\n# path = \"/users/{userId}/orders/{orderId}\"")),
        "{entries:?}"
    );

    // The cards agree with the exposition.
    let value = |series: &str| -> u64 {
        metrics::series(&metrics, series).unwrap_or_else(|| panic!("{series} in {metrics}"))
    };
    let cache = |r: &str| value(&format!("permgate_grants_cache_total{{result=\"{r}\"}}"));
    assert_eq!(
        text_of(&dom, "hit-detail"),
        format!(
            "hit {} · miss {} · stale {}",
            cache("hit"),
            cache("miss"),
            cache("stale")
        )
    );
    assert!(text_of(&dom, "hit-ratio").ends_with(" %"));
    assert_eq!(text_of(&dom, "api-errors"), "1", "the 500 answer");
    assert!(text_of(&dom, "api-error-detail").contains("error status 1"));
    assert!(text_of(&dom, "api-latency").ends_with(" ms"));
    assert_eq!(text_of(&dom, "reload-error"), "none");
    assert!(text_of(&dom, "reload-count").starts_with("4 routes"));

    // A failed reload shows; the sort can be chosen in the fragment, as a
    // header click leaves it.
    std::fs::write(gw.dir.join("routes.toml"), "[[route]]\npath = 7\n").unwrap();
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 422);
    let dom = browse(&chromium, &format!("{url}#sort=-allow"), &["--dump-dom"]).await;
    let first = rows(&dom, "routes").remove(0);
    assert_eq!(first.1[0], "items.get", "most allowed first");
    assert_eq!(text_of(&dom, "reload-error"), "failed");
    let detail = text_of(&dom, "reload-error-detail");
    assert!(detail.contains("routes.toml:2:8: invalid type"), "{detail}");
    assert!(text_of(&dom, "reload-detail").contains("0 succeeded, 1 failed"));

    if let Some(file) = std::env::var_os("PERMGATE_DASHBOARD_SCREENSHOT") {
        let file = std::path::absolute(PathBuf::from(file)).unwrap();
        let shot = format!("--screenshot={}", file.display());
        browse(&chromium, &url, &[&shot, "--window-size=1280,900"]).await;
        let png = std::fs::read(&file).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{}", file.display());
    }
}

#[tokio::test]
async fn the_dashboard_needs_the_admin_token_and_says_what_it_may_load() {
    let token_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
    let gw = GatewayBuilder::new(ROUTES)
        .admin(&format!("token_sha256 = \"{token_hash}\""))
        .start();
    let r = get(gw.admin, "/admin/", None).await;
    assert_eq!(r.status, 401);
    assert!(!String::from_utf8_lossy(&r.body).contains("<html"));
    assert_eq!(get(gw.admin, "/admin/", Some("wrong")).await.status, 401);
    assert_eq!(
        get(gw.admin, "/admin/?token=test", None).await.status,
        401,
        "no token in the query"
    );

    let r = get(gw.admin, "/admin/", Some("test")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'; connect-src 'self'; script-src 'sha256-"));
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(String::from_utf8_lossy(&r.body).contains("<title>permgate</title>"));
    assert_eq!(
        request(
            gw.admin,
            "POST",
            "/admin/",
            &[("authorization", "Bearer test")],
            ""
        )
        .await
        .status,
        405,
        "read-only"
    );

    let r = get(gw.admin, "/admin", None).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("admin/"));
}

/// Runs headless Chromium on `url` (loopback only: every other host name
/// fails to resolve) and returns what it printed. Killed after
/// [`BROWSER_LIMIT`].
async fn browse(chromium: &Path, url: &str, args: &[&str]) -> String {
    let chromium = chromium.to_path_buf();
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || browse_blocking(&chromium, &url, &args))
        .await
        .unwrap()
}

fn browse_blocking(chromium: &Path, url: &str, args: &[String]) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("stdout");
    let err = home.path().join("stderr");
    let mut child = Command::new(chromium)
        .env("HOME", home.path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=5000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            home.path().join("profile").display()
        ))
        .args(args)
        .arg(url)
        .current_dir(home.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BROWSER_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium ran longer than {BROWSER_LIMIT:?}: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium: {status}: {}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    std::fs::read_to_string(&out).unwrap()
}

/// The rows of `<table id="{id}">`'s body: each `<tr>`'s attributes and the
/// text of its cells.
fn rows(dom: &str, id: &str) -> Vec<(String, Vec<String>)> {
    let start = dom
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("table {id} in {dom}"));
    let table = &dom[start..];
    let table = &table[..table.find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    body.split("<tr")
        .skip(1)
        .map(|tr| {
            let (attrs, rest) = tr.split_once('>').unwrap();
            let cells = rest
                .split("<td")
                .skip(1)
                .map(|td| {
                    let inner = td.split_once('>').unwrap().1;
                    text(&inner[..inner.find("</td>").unwrap()])
                })
                .collect();
            (attrs.to_string(), cells)
        })
        .collect()
}

/// The text of the element with `id="{id}"`.
fn text_of(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = dom.find(&marker).unwrap_or_else(|| panic!("{id} in {dom}"));
    let inner = dom[at..].split_once('>').unwrap().1;
    text(&inner[..inner.find('<').unwrap()])
}

/// Every value of attribute `name`, entities decoded.
fn attributes(dom: &str, name: &str) -> Vec<String> {
    dom.split(&format!(" {name}=\""))
        .skip(1)
        .map(|a| decode(&a[..a.find('"').unwrap()]))
        .collect()
}

/// Markup with tags dropped and entities decoded.
fn text(markup: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(&out)
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}
