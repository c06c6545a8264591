//! The real binary at start and at stop, as an operator meets it: a port already taken stops the
//! start with one line and no token printed or stored, the start line says where the admin page
//! is and which token signs in, `--help` groups its options under headings, a database that
//! cannot be opened says why in one line, stops under load never panic, and the README's Office
//! 365 example file posts as it says.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// Runs the binary to its end (at most 30 s) with `env` and `args`; the tokens unset unless given.
fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> Output {
    run_command_to_exit(Command::new(env!("CARGO_BIN_EXE_spscan-router")), env, args)
}

fn run_command_to_exit(mut command: Command, env: &[(&str, &str)], args: &[&str]) -> Output {
    command.env_remove("ADMIN_TOKEN").env_remove("INGEST_TOKEN").env("RUST_LOG", "info").args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary with {env:?} {args:?} was still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// How many token hashes the database holds (none when it was never created).
fn stored_token_hashes(database: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count = |conn: &mut dyn FnMut(&str) -> i64| {
        if conn("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'api_tokens'") == 0 {
            return 0;
        }
        conn("SELECT count(*) AS n FROM api_tokens")
    };
    if database.starts_with("postgres") {
        let mut conn = diesel::PgConnection::establish(database).unwrap();
        return count(&mut |sql: &str| diesel::sql_query(sql).get_result::<Count>(&mut conn).unwrap().n);
    }
    if !std::path::Path::new(database).exists() {
        return 0;
    }
    let mut conn = diesel::SqliteConnection::establish(database).unwrap();
    let tables = diesel::sql_query("SELECT count(*) AS n FROM sqlite_master WHERE name = 'api_tokens'").get_result::<Count>(&mut conn).unwrap().n;
    if tables == 0 {
        return 0;
    }
    diesel::sql_query("SELECT count(*) AS n FROM api_tokens").get_result::<Count>(&mut conn).unwrap().n
}

/// What the process wrote must hold no panic, no backtrace.
fn assert_no_panic(when: &str, stderr: &str) {
    for sign in ["panicked", "AccessError", "Thread Local Storage", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(sign), "{when}: `{sign}` on stderr:\n{stderr}");
    }
}

on_both_backends! {
    #[actix_web::test]
    async fn a_start_on_a_port_already_taken_fails_in_one_line_and_prints_and_stores_no_token() {
        let database = TestDatabase::new();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let output = run_to_exit(&[("DATABASE_URL", &database.url), ("BIND_ADDR", &addr)], &[]);
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(!output.status.success(), "a start on a taken port must fail: {stdout}{stderr}");
        assert!(!stdout.contains("TOKEN=") && !stdout.contains("spr_") && !stderr.contains("spr_"), "no token printed:\n{stdout}\n{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("already in use") && stderr.contains("BIND_ADDR"), "{stderr}");
        assert_no_panic("a failed bind", &stderr);
        assert_eq!(stored_token_hashes(&database.url), 0, "no token stored");

        // Started again on a free port: new tokens, printed once, that work; the start line names
        // the page and the token just printed.
        drop(taken);
        let (router, _, printed) = start_router_with(&database.url, &[("RUST_LOG", "info")]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !printed.lock().unwrap().contains("Admin page:") {
            assert!(Instant::now() < deadline, "no start line: {}", printed.lock().unwrap());
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let text = printed.lock().unwrap().clone();
        let token = |name: &str| text.lines().find_map(|l| l.trim().strip_prefix(&format!("{name}="))).unwrap_or_else(|| panic!("{name} printed: {text}")).to_string();
        let (admin, ingest) = (token("ADMIN_TOKEN"), token("INGEST_TOKEN"));
        assert_eq!(stored_token_hashes(&database.url), 2, "the two new tokens' hashes are kept");
        assert_eq!(router.api.with_token(Some(&admin)).get("/api/v1/channels").await.status, 200);
        assert_eq!(router.api.with_token(Some(&ingest)).get("/api/v1/channels").await.status, 403, "the ingest token may only ingest");
        let start_line = text.lines().find(|l| l.starts_with("Admin page:")).unwrap();
        assert_eq!(start_line, format!("Admin page: {}/ (sign in with the ADMIN_TOKEN printed above)", router.api.base), "{text}");
        assert!(text.find("ADMIN_TOKEN=").unwrap() < text.find("Admin page:").unwrap(), "the token comes first:\n{text}");
    }

    #[actix_web::test]
    async fn the_start_line_names_the_admin_page_and_the_token_that_signs_in() {
        let database = TestDatabase::new();
        let start_line = |printed: &std::sync::Mutex<String>| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(line) = printed.lock().unwrap().lines().find(|l| l.starts_with("Admin page:")) {
                    return line.to_string();
                }
                assert!(Instant::now() < deadline, "no start line: {}", printed.lock().unwrap());
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        let (router, _, printed) = start_router_with(&database.url, &[("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN)]);
        let base = router.api.base.clone();
        assert_eq!(start_line(&printed), format!("Admin page: {base}/ (sign in with the ADMIN_TOKEN you set)"));
        let page = http_client().get(format!("{base}/")).send().await.unwrap();
        assert_eq!(page.status().as_u16(), 200, "the page the start line names is served");
        drop(router);

        // Without ADMIN_TOKEN: generated and printed on the first start, then named as such.
        let (first, _, printed) = start_router_with(&database.url, &[]);
        assert!(start_line(&printed).ends_with("(sign in with the ADMIN_TOKEN printed above)"));
        drop(first);
        let (_second, _, printed) = start_router_with(&database.url, &[]);
        let line = start_line(&printed);
        assert!(line.contains("sign in with the ADMIN_TOKEN printed at the first start"), "{line}");
        assert!(!printed.lock().unwrap().contains("TOKEN="), "a kept token is not printed again");
    }

    /// SIGTERM and SIGINT in turn, each while clients ingest and read, attempts are in flight to
    /// a slow receiver and a Test waits on a receiver that never answers: every stop exits 0 and
    /// nothing on stderr is a panic.
    #[actix_web::test]
    async fn stopping_the_router_under_load_with_sigterm_or_sigint_never_panics() {
        let database = TestDatabase::new();
        let slow = Receiver::start().await;
        slow.reply_with(Reply::Slow(150, 200));
        let hanging = Receiver::start().await;
        hanging.reply_with(Reply::Hang);
        let env = [("ADMIN_TOKEN", ADMIN_TOKEN), ("INGEST_TOKEN", INGEST_TOKEN), ("RUST_LOG", "info"), ("SHUTDOWN_GRACE", "2s")];
        for run in 1..=6 {
            let (mut router, log, _) = start_router_with(&database.url, &env);
            let api = &router.api;
            if run == 1 {
                api.create_tenant("contoso").await;
                let channel = api.create_channel("Slow", &slow.url("/")).await;
                api.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
            }
            let stuck = api.create_channel(&format!("Stuck {run}"), &hanging.url("/")).await["id"].as_str().unwrap().to_string();
            let reached = slow.received().len();
            let mut load = Vec::new();
            for _ in 0..4 {
                let base = api.base.clone();
                load.push(actix_web::rt::spawn(async move {
                    let client = http_client();
                    let bearer = format!("Bearer {ADMIN_TOKEN}");
                    loop {
                        let event = permission_event("contoso", "permission.external_share_created", "high");
                        let ingested = client.post(format!("{base}/api/v1/events")).insert_header(("Authorization", bearer.as_str())).send_json(&event);
                        let read = client.get(format!("{base}/api/v1/deliveries?limit=200")).insert_header(("Authorization", bearer.as_str())).send();
                        // Cut off by the stop: the client gives up, as a real one would.
                        let (ingested, read) = futures_util::future::join(ingested, read).await;
                        if ingested.is_err() || read.is_err() {
                            break;
                        }
                    }
                }));
            }
            let test = http_client()
                .post(format!("{}/api/v1/channels/{stuck}/test", api.base))
                .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
                .send();
            let tester = actix_web::rt::spawn(async move {
                let _ = test.await;
            });
            slow.wait_for(reached + 2, None, Duration::from_secs(10)).await;
            let signal = if run % 2 == 0 { "-INT" } else { "-TERM" };
            assert!(Command::new("kill").args([signal, &router.child.id().to_string()]).status().unwrap().success());
            let signalled = Instant::now();
            let status = loop {
                if let Some(status) = router.child.try_wait().unwrap() {
                    break status;
                }
                assert!(signalled.elapsed() < Duration::from_secs(10), "stop {run} ({signal}): still running after {:?}", signalled.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(10)).await;
            };
            router.stop();
            tester.abort();
            for client in load {
                client.abort();
            }
            let log = log.lock().unwrap();
            assert!(status.success(), "stop {run} ({signal}): exit status {status:?}\n{log}");
            assert!(log.contains(if signal == "-INT" { "SIGINT received" } else { "SIGTERM received" }), "stop {run}:\n{log}");
            assert_no_panic(&format!("stop {run} ({signal})"), &log);
        }
    }

    #[actix_web::test]
    async fn the_readme_office_365_example_file_posts_one_click_as_one_critical_alert() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(readme.contains("-d @docs/examples/o365-click.json"), "the README's example posts the file in the repository");
        let click: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/o365-click.json")).unwrap()).unwrap();
        let receiver = Receiver::start().await;
        let app = spawn_app().await;
        // As the walk-through registers it.
        let tenant = app.post("/api/v1/tenants", json!({"id": "contoso", "display_name": "Contoso Ltd", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"})).await;
        assert_eq!(tenant.status, 201, "{}", tenant.body);
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        app.route_everything_to(&[channel["id"].as_str().unwrap()]).await;
        let answer = app.api.with_token(Some(INGEST_TOKEN)).post("/api/v1/sources/o365/audit", click).await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        let results = answer.body["results"].as_array().unwrap();
        let outcomes: Vec<&str> = results.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["folded", "folded", "folded", "folded", "folded", "ingested"], "{results:#?}");
        let ingested = &results[5];
        assert_eq!(ingested["event_id"], "o365_0a000001-0000-0000-0000-000000000006");
        assert_eq!((ingested["event"].as_str(), ingested["severity"].as_str()), (Some("permission.anonymous_link_created"), Some("critical")));
        let got = receiver.wait_for(1, None, Duration::from_secs(10)).await;
        let payload = got[0].json();
        assert_eq!(payload["data"]["resource_path"], "Shared Documents/Q3 forecast.xlsx");
        assert_eq!(payload["data"]["principal"], "Anyone with the link");
        assert_eq!(payload["data"]["actor"], "alice@contoso.com");
    }
}

#[test]
fn help_groups_every_option_under_a_heading() {
    let output = run_to_exit(&[], &["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    let headings = ["Server:", "Database:", "Security:", "Delivery:", "Limits:", "Retention:", "Office 365:", "Logging:"];
    let at: Vec<usize> = headings.iter().map(|h| help.find(&format!("\n{h}\n")).unwrap_or_else(|| panic!("no `{h}` heading:\n{help}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "headings in order:\n{help}");
    // Under the plain "Options:" heading, only --help and --version are left.
    let options = help.split("\nOptions:\n").nth(1).and_then(|rest| rest.split("\n\n").next()).unwrap_or_default();
    let plain: Vec<&str> = options.lines().filter_map(|l| l.trim().split_whitespace().find(|w| w.starts_with("--"))).collect();
    assert_eq!(plain, ["--help", "--version"], "{help}");
    for option in ["--bind-addr", "--database-url", "--admin-token", "--retry-schedule", "--max-body-bytes", "--retention", "--o365-client-id", "--log-format"] {
        assert!(help.contains(option), "{option}");
    }
}

/// Each one line, naming DATABASE_URL, the path or server, and the cause; exit 1; no panic.
#[test]
fn a_database_that_cannot_be_opened_says_why_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let plain_file = dir.path().join("plain-file");
    std::fs::write(&plain_file, "not a database, nor a directory\n").unwrap();
    let at = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut cases = vec![
        (at(&dir.path().join("missing/router.db")), format!("no such directory: {}", at(&dir.path().join("missing")))),
        (at(&plain_file.join("router.db")), format!("{} is a file, not a directory", at(&plain_file))),
        (at(&plain_file), format!("{} is not a SQLite database", at(&plain_file))),
        ("postgres://postgres@127.0.0.1:1/spscan".to_string(), "cannot connect to PostgreSQL 127.0.0.1:1/spscan: connection refused".to_string()),
    ];
    // A directory this user may not write in (root may write anywhere: then it is left out).
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    if std::fs::write(locked.join("probe"), "").is_err() {
        cases.push((at(&locked.join("router.db")), format!("permission denied: this user cannot create files in {}", at(&locked))));
    }
    for (url, cause) in cases {
        let output = run_to_exit(&[("DATABASE_URL", &url), ("BIND_ADDR", "127.0.0.1:0")], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{url}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{url}: one line:\n{stderr}");
        assert!(stderr.starts_with("spscan-router: DATABASE_URL: "), "{url}: {stderr}");
        assert!(stderr.contains(&cause), "{url}: expected `{cause}` in:\n{stderr}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("TOKEN="), "{url}: no token printed");
        assert_no_panic(&url, &stderr);
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A database file, or its directory, that the router's user may not write is named at start,
/// in one line, before anything else happens. Run as `nobody` where the tests run as root (root
/// may write anything), from a copy of the binary that user can reach.
#[test]
fn a_database_this_user_cannot_write_is_named_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let root = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout).unwrap().trim() == "0";
    let dir = tempfile::tempdir().unwrap();
    mode(dir.path(), 0o755);
    let binary = dir.path().join("spscan-router");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_spscan-router"), &binary).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_spscan-router"), &binary).unwrap();
    }
    // A migrated database, left by a router that started and stopped.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let database = data.join("router.db");
    drop(start_router_with(database.to_str().unwrap(), &[]));
    assert!(database.exists());
    let command = || {
        let mut command = Command::new(if root { "runuser" } else { binary.to_str().unwrap() });
        if root {
            command.args(["-u", "nobody", "--", binary.to_str().unwrap()]);
        }
        command
    };
    // The file (and the WAL beside it, if any) read-only; then the directory instead.
    for entry in std::fs::read_dir(&data).unwrap() {
        mode(&entry.unwrap().path(), 0o444);
    }
    mode(&data, 0o755);
    let read_only_file = (format!("permission denied: {} cannot be written by this user", database.display()), database.clone());
    let locked = data.join("new.db");
    let read_only_dir = (format!("permission denied: this user cannot create files in {}", data.display()), locked);
    for (i, (cause, url)) in [read_only_file, read_only_dir].into_iter().enumerate() {
        if i == 1 {
            mode(&data, 0o555);
        }
        let output = run_command_to_exit(command(), &[("DATABASE_URL", url.to_str().unwrap()), ("BIND_ADDR", "127.0.0.1:0")], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{cause}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line:\n{stderr}");
        assert!(stderr.starts_with("spscan-router: DATABASE_URL: "), "{stderr}");
        assert!(stderr.contains(&cause), "expected `{cause}` in:\n{stderr}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("TOKEN="), "no token printed");
        assert_no_panic(&cause, &stderr);
    }
    mode(&data, 0o755);
}

/// The README opens with a quick start of at most 20 lines (its first command is what CI runs),
/// then a table of contents; every file it or `docs/` links to is in the repository (the
/// screenshots once `docs/screenshots/` exists), and every contents entry names a heading.
#[test]
fn the_readme_opens_with_a_short_quick_start_and_its_links_resolve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let quick = readme.split("\n## Quick start\n").nth(1).expect("a Quick start section");
    let quick = &quick[..quick.find("\n## ").unwrap()];
    assert!(quick.lines().count() < 20, "the quick start is {} lines", quick.lines().count() + 1);
    assert!(quick.contains("```sh\ncargo run --release ") && quick.contains("\ncargo test "), "{quick}");
    assert!(quick.contains("http://127.0.0.1:8080/") && quick.contains("ADMIN_TOKEN"), "the page and the token: {quick}");
    assert!(readme.find("\n## Quick start\n") < readme.find("\n## Contents\n"), "the quick start comes first");
    let headings: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| h.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_').collect::<String>().replace(' ', "-"))
        .collect();
    for document in ["README.md", "docs/internals.md", "docs/performance.md", "docs/o365-mapping.md"] {
        let text = std::fs::read_to_string(root.join(document)).unwrap();
        let dir = root.join(document).parent().unwrap().to_path_buf();
        // Prose may hold `](` too: a link has neither spaces nor backticks.
        let links = text.split("](").skip(1).filter_map(|rest| rest.split(')').next()).filter(|l| !l.contains(char::is_whitespace) && !l.contains('`'));
        for link in links {
            if link.starts_with("http") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            if file.is_empty() {
                assert!(document != "README.md" || headings.iter().any(|h| h == anchor), "{document}: no heading for #{anchor}");
                continue;
            }
            if file.contains("screenshots/") && !root.join("docs/screenshots").exists() {
                continue;
            }
            assert!(dir.join(file).exists(), "{document} links to {file}, which is not in the repository");
        }
    }
}
