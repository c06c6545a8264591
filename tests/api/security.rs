//! SPEC section 9 from the outside: tokens, the outbound-target guard, limits, secret rotation,
//! security headers, and a generated-input run against the parsers.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use spscan_router::domain::network::TargetPolicy;
use spscan_router::outbound::{FixedNames, Names};

use crate::helpers::*;

/// A resolver the test controls: each name to the addresses given.
fn names(table: &[(&str, &[&str])]) -> Names {
    let table = table.iter().map(|(name, ips)| (name.to_string(), ips.iter().map(|ip| ip.parse().unwrap()).collect())).collect();
    Names(std::sync::Arc::new(FixedNames(table)))
}

/// A random JSON value, up to `depth` levels deep, biased toward the shapes the API reads.
fn random_json(rng: &mut impl Rng, depth: u32) -> Value {
    let strings = ["", "permission.external_share_created", "high", "contoso", "*", "http://", "https://x.example.com/", "whsec_", "\u{0}", "é🦀", "permission.*", "%00", "../", "a.b"];
    match rng.gen_range(0..if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e6),
        4 => {
            let base = strings[rng.gen_range(0..strings.len())];
            json!(format!("{base}{}", "x".repeat(rng.gen_range(0..3) * rng.gen_range(0..300))))
        }
        5 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_json(rng, depth - 1)).collect()),
        _ => {
            let keys = ["event_id", "event", "timestamp", "severity", "tenant", "tenant_id", "data", "events", "name", "type", "url", "headers", "enabled", "id", "display_name", "microsoft_tenant_id", "site_url", "x"];
            Value::Object((0..rng.gen_range(0..6)).map(|_| (keys[rng.gen_range(0..keys.len())].to_string(), random_json(rng, depth - 1))).collect())
        }
    }
}

/// A valid event or channel with one field replaced by something random.
fn mutated(rng: &mut impl Rng, valid: &Value) -> Value {
    let mut value = valid.clone();
    let keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    let key = &keys[rng.gen_range(0..keys.len())];
    value[key] = random_json(rng, 3);
    value
}

#[test]
fn the_event_and_channel_parsers_survive_fifty_thousand_generated_inputs() {
    use spscan_router::domain::channel::{ChannelUrl, CustomHeaders};
    use spscan_router::domain::event::{EventInput, EventPattern, NewEvent};
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let valid = permission_event("contoso", "permission.external_share_created", "high");
    let alphabet: Vec<char> = "abcxyz.*_-:/[]@%#?0123456789 \t\n\u{0}é🦀ABC".chars().collect();
    let random_text = |rng: &mut rand::rngs::StdRng| -> String {
        let len = rng.gen_range(0..64);
        let prefix = ["", "http://", "https://", "ftp://", "http://[", "https://x.example.com/", "permission."][rng.gen_range(0..7)];
        prefix.to_string() + &(0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect::<String>()
    };
    let mut accepted = 0;
    let limits = spscan_router::domain::limits::Limits::default();
    for _ in 0..50_000 {
        let value = if rng.gen_bool(0.5) { mutated(&mut rng, &valid) } else { random_json(&mut rng, 4) };
        if let Ok(input) = serde_json::from_value::<EventInput>(value) {
            if NewEvent::parse(input, &limits).is_ok() {
                accepted += 1;
            }
        }
        let text = random_text(&mut rng);
        let _ = ChannelUrl::parse(&text, &limits);
        let _ = EventPattern::parse("event_types[0]", &text);
        let headers = (0..rng.gen_range(0..4)).map(|_| (random_text(&mut rng), random_text(&mut rng))).collect();
        let _ = CustomHeaders::parse(headers, &limits);
    }
    assert!(accepted > 100, "the generator also makes valid events ({accepted})");
}

/// A raw HTTP/1.1 connection to the router, for requests a client library would not send.
struct RawConnection {
    stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

/// One answer read off a [`RawConnection`].
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A problem+json answer of `status`, of `kind`, with the security headers.
    fn assert_problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"));
        assert_eq!(self.body["type"], format!("urn:spscan-router:problem:{kind}"), "{}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(!self.body["title"].as_str().unwrap_or_default().is_empty(), "{}", self.body);
        assert!(!self.body["detail"].as_str().unwrap_or_default().is_empty(), "{}", self.body);
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("x-frame-options"), Some("DENY"));
        assert!(self.header("content-security-policy").is_some_and(|csp| csp.contains("default-src 'none'")));
    }
}

impl RawConnection {
    fn open(base: &str) -> Self {
        let stream = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self { reader: std::io::BufReader::new(stream.try_clone().unwrap()), stream }
    }

    fn send(&mut self, request: &[u8]) {
        std::io::Write::write_all(&mut self.stream, request).expect("the router reads the whole request");
    }

    /// Reads one answer (the router's have a `Content-Length`).
    fn answer(&mut self) -> RawAnswer {
        use std::io::{BufRead, Read};
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap_or_else(|| panic!("a status line, not {line:?}")).parse().unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else { break };
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut answer = RawAnswer { status, headers, body: Value::Null };
        let length: usize = answer.header("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        answer.body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        answer
    }

    fn answer_to(&mut self, request: &[u8]) -> RawAnswer {
        self.send(request);
        self.answer()
    }

    /// True once the router has closed the connection (and sent nothing more).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut self.reader, &mut rest).is_ok_and(|_| rest.is_empty())
    }
}

fn raw_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n").into_bytes()
}

fn raw_post(path: &str, body: &[u8]) -> Vec<u8> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// Runs a blocking client off the test's thread, where the router's actors run.
async fn blocking<T: Send + 'static>(client: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(client).await.unwrap()
}

on_both_backends! {
    #[actix_web::test]
    async fn every_api_route_wants_a_token_and_the_ingest_token_may_only_send_events() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        let channel = app.create_channel("SOC", "https://hooks.example.com/").await;
        let ch = channel["id"].as_str().unwrap();
        let routes: Vec<(&str, String)> = vec![
            ("POST", "/api/v1/events".into()),
            ("GET", "/api/v1/tenants".into()),
            ("POST", "/api/v1/tenants".into()),
            ("GET", "/api/v1/tenants/contoso".into()),
            ("PATCH", "/api/v1/tenants/contoso".into()),
            ("DELETE", "/api/v1/tenants/contoso".into()),
            ("GET", "/api/v1/channels".into()),
            ("POST", "/api/v1/channels".into()),
            ("GET", format!("/api/v1/channels/{ch}")),
            ("PATCH", format!("/api/v1/channels/{ch}")),
            ("DELETE", format!("/api/v1/channels/{ch}")),
            ("POST", format!("/api/v1/channels/{ch}/test")),
            ("POST", format!("/api/v1/channels/{ch}/rotate-secret")),
            ("GET", "/api/v1/rules".into()),
            ("POST", "/api/v1/rules".into()),
            ("GET", "/api/v1/rules/rule_x".into()),
            ("PATCH", "/api/v1/rules/rule_x".into()),
            ("DELETE", "/api/v1/rules/rule_x".into()),
            ("GET", "/api/v1/deliveries".into()),
            ("GET", "/api/v1/deliveries/dlv_x".into()),
            ("POST", "/api/v1/deliveries/dlv_x/redeliver".into()),
            ("GET", "/api/v1/no-such-route".into()),
        ];
        let anonymous = app.with_token(None);
        let wrong = app.with_token(Some("not-the-token-at-all-0000"));
        let ingest = app.with_token(Some(INGEST_TOKEN));
        let body = || Some(b"{}".to_vec());
        for (method, path) in &routes {
            for (who, api) in [("no token", &anonymous), ("a wrong token", &wrong)] {
                let answer = api.request(method, path, body()).await;
                assert_eq!(answer.status, 401, "{method} {path} with {who}");
                assert_eq!(answer.content_type, "application/problem+json");
            }
            let answer = ingest.request(method, path, body()).await;
            if *method == "POST" && path == "/api/v1/events" {
                assert_eq!(answer.status, 422, "the ingest token reaches validation: {}", answer.body);
            } else {
                assert_eq!(answer.status, 403, "{method} {path} with the ingest token");
            }
        }
        let sent = ingest.request("POST", "/api/v1/events", Some(serde_json::to_vec(&permission_event("contoso", "permission.x", "low")).unwrap())).await;
        assert_eq!(sent.status, 202);
        // Nothing was changed by the refused requests.
        assert_eq!(app.get(&format!("/api/v1/channels/{ch}")).await.status, 200);
        assert_eq!(app.get("/api/v1/tenants/contoso").await.status, 200);
        // Health needs no token.
        assert_eq!(anonymous.get("/healthz").await.status, 200);
    }

    #[actix_web::test]
    async fn literal_blocked_addresses_are_refused_when_a_channel_is_saved() {
        let app = spawn_app_with(|s| s.targets = TargetPolicy::default()).await;
        for url in ["http://127.0.0.1:9000/", "http://2130706433/", "http://0x7f.1/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/latest", "http://10.0.0.8/", "http://[fd00::5]/"] {
            let answer = app.post("/api/v1/channels", json!({"name": "X", "url": url})).await;
            assert_eq!(answer.status, 422, "{url}: {}", answer.body);
            assert_eq!(answer.body["field"], "url");
            assert!(answer.body["detail"].as_str().unwrap().contains("ALLOWED_TARGET_NETWORKS"), "{}", answer.body);
        }
        let channel = app.create_channel("Public", "https://hooks.example.com/").await;
        let moved = app.patch(&format!("/api/v1/channels/{}", channel["id"].as_str().unwrap()), json!({"url": "http://192.168.1.10/"})).await;
        assert_eq!(moved.status, 422, "a change to a blocked address is refused too");
    }

    #[actix_web::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_delivery() {
        let app = spawn_app_with(|s| s.targets = TargetPolicy::default()).await;
        let receiver = Receiver::start().await;
        let url = receiver.url("/hook").replace("127.0.0.1", "localhost");
        let channel = app.create_channel("Sneaky", &url).await;
        let id = channel["id"].as_str().unwrap();

        let test = app.post(&format!("/api/v1/channels/{id}/test"), json!({})).await;
        assert_eq!(test.body["ok"], false);
        assert_eq!(test.body["error_kind"], "blocked_target", "{}", test.body);
        assert!(test.body["error"].as_str().unwrap().contains("loopback"));

        app.route_everything_to(&[id]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(5)).await;
        assert_eq!(delivery["attempt_count"], 1, "a blocked target is final, not retried");
        assert_eq!(delivery["last_error_kind"], "blocked_target");
        assert!(receiver.received().is_empty(), "nothing reached the loopback receiver");
    }

    #[actix_web::test]
    async fn the_allowlist_lets_a_name_reach_an_allowed_address() {
        let app = spawn_app_with(|s| {
            s.targets = TargetPolicy::parse("127.0.0.1/32").unwrap();
            s.names = names(&[("receiver.test", &["127.0.0.1"])]);
        })
        .await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("Local", &receiver.url("/hook").replace("127.0.0.1", "receiver.test")).await;
        let test = app.post(&format!("/api/v1/channels/{}/test", channel["id"].as_str().unwrap()), json!({})).await;
        assert_eq!(test.body["ok"], true, "{}", test.body);
        assert_eq!(receiver.received().len(), 1);
    }

    #[actix_web::test]
    async fn a_name_resolving_to_an_allowed_and_a_refused_address_is_refused_whole() {
        let app = spawn_app_with(|s| {
            s.targets = TargetPolicy::parse("127.0.0.1/32").unwrap();
            // The allowed address first: a resolver that cut the list down would connect to it.
            s.names = names(&[("mixed.test", &["127.0.0.1", "10.1.2.3"]), ("dual.test", &["127.0.0.1", "::1"])]);
        })
        .await;
        let receiver = Receiver::start().await;
        for (name, refused) in [("mixed.test", "10.1.2.3"), ("dual.test", "::1")] {
            let channel = app.create_channel(name, &receiver.url("/hook").replace("127.0.0.1", name)).await;
            let id = channel["id"].as_str().unwrap();
            let test = app.post(&format!("/api/v1/channels/{id}/test"), json!({})).await;
            assert_eq!(test.body["ok"], false, "{}", test.body);
            assert_eq!(test.body["error_kind"], "blocked_target", "{}", test.body);
            assert!(test.body["error"].as_str().unwrap().contains(refused), "{}", test.body);
        }
        assert!(receiver.received().is_empty(), "nothing reached the receiver");
        // The same at delivery: one attempt, final.
        let channels = app.get("/api/v1/channels").await.body;
        let first = channels["items"][0]["id"].as_str().unwrap().to_string();
        app.route_everything_to(&[&first]).await;
        app.create_tenant("contoso").await;
        let answer = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let delivery = app.wait_for_status(answer.body["deliveries"][0]["id"].as_str().unwrap(), "failed", Duration::from_secs(5)).await;
        assert_eq!(delivery["last_error_kind"], "blocked_target");
        assert_eq!(delivery["attempt_count"], 1);
        assert!(receiver.received().is_empty());
        // IETF protocol assignments (2001::/23) are refused as literals too.
        let answer = app.post("/api/v1/channels", json!({"name": "X", "url": "http://[2001::1]/"})).await;
        assert_eq!(answer.status, 422, "{}", answer.body);
    }

    #[actix_web::test]
    async fn after_a_rotation_both_secrets_sign_for_a_day_and_later_reads_show_neither() {
        let app = spawn_app().await;
        let receiver = Receiver::start().await;
        let channel = app.create_channel("SOC", &receiver.url("/")).await;
        let id = channel["id"].as_str().unwrap();
        let old_secret = channel["secret"].as_str().unwrap().to_string();
        let rotated = app.post(&format!("/api/v1/channels/{id}/rotate-secret"), json!({})).await;
        assert_eq!(rotated.status, 200, "{}", rotated.body);
        let new_secret = rotated.body["secret"].as_str().unwrap().to_string();
        assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);
        let until = spscan_router::domain::time::parse_rfc3339(rotated.body["previous_secret_expires_at"].as_str().unwrap()).unwrap();
        let in_a_day = spscan_router::domain::time::now_ms() + 24 * 3600 * 1000;
        assert!((in_a_day - until).abs() < 60_000, "the old secret signs for 24 h");

        app.route_everything_to(&[id]).await;
        app.create_tenant("contoso").await;
        app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        let got = receiver.wait_for(1, None, Duration::from_secs(5)).await;
        let header = &got[0].headers["webhook-signature"];
        assert_eq!(header.split(' ').count(), 2, "{header}");
        let only = |secret: &str| {
            let mut request = got[0].clone();
            let signatures: Vec<&str> = header.split(' ').collect();
            // Each secret verifies exactly one of the two entries.
            signatures
                .iter()
                .filter(|s| {
                    request.headers.insert("webhook-signature".into(), s.to_string());
                    signature_is_valid(secret, &request)
                })
                .count()
        };
        assert_eq!(only(&old_secret), 1);
        assert_eq!(only(&new_secret), 1);

        let read = app.get(&format!("/api/v1/channels/{id}")).await.body.to_string();
        assert!(!read.contains(&new_secret) && !read.contains(&old_secret));
        let listed = app.get("/api/v1/channels").await.body.to_string();
        assert!(!listed.contains(&new_secret) && !listed.contains(&old_secret));
    }

    #[actix_web::test]
    async fn every_limit_answers_with_a_problem() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        let long = |n: usize| "x".repeat(n);
        let many_headers: serde_json::Map<String, Value> = (0..21).map(|i| (format!("X-H{i}"), json!("v"))).collect();
        let mut long_id = permission_event("contoso", "permission.x", "low");
        long_id["event_id"] = json!(long(129));
        let mut big_data = permission_event("contoso", "a.b", "low");
        big_data["data"] = json!({"blob": long(70 * 1024)});
        let cases = vec![
            ("channel name", "/api/v1/channels", json!({"name": long(201), "url": "https://x.example.com/"}), "name", "200"),
            ("URL length", "/api/v1/channels", json!({"name": "X", "url": format!("https://x.example.com/{}", long(2048))}), "url", "2048"),
            ("header count", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com/", "headers": many_headers}), "headers", "20"),
            ("header value", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com/", "headers": {"X-Key": long(2049)}}), "headers.X-Key", "2048"),
            ("header name", "/api/v1/channels", json!({"name": "X", "url": "https://x.example.com/", "headers": {long(129): "v"}}), "", "128"),
            ("rule name", "/api/v1/rules", json!({"name": long(201), "event_types": ["*"], "channel_ids": ["ch_x"]}), "name", "200"),
            ("rule patterns", "/api/v1/rules", json!({"name": "R", "event_types": vec!["*"; 51], "channel_ids": ["ch_x"]}), "event_types", "50"),
            ("rule channels", "/api/v1/rules", json!({"name": "R", "event_types": ["*"], "channel_ids": (0..101).map(|i| format!("ch_{i}")).collect::<Vec<_>>()}), "channel_ids", "100"),
            ("tenant name", "/api/v1/tenants", json!({"id": "t", "display_name": long(201), "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}), "display_name", "200"),
            ("tenant id", "/api/v1/tenants", json!({"id": long(65), "display_name": "T", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}), "id", "64"),
            ("event id", "/api/v1/events", long_id, "event_id", "128"),
            ("event data", "/api/v1/events", big_data, "data", "65536"),
            ("event type", "/api/v1/events", permission_event("contoso", &format!("a.{}", long(128)), "low"), "event", "128"),
        ];
        for (what, path, body, field, limit) in cases {
            let answer = app.post(path, body).await;
            assert_eq!(answer.status, 422, "{what}: {}", answer.body);
            assert_eq!(answer.content_type, "application/problem+json", "{what}");
            if !field.is_empty() {
                assert_eq!(answer.body["field"], field, "{what}");
            }
            assert!(answer.body["detail"].as_str().unwrap().contains(limit), "{what}: the detail names the limit {limit}: {}", answer.body);
        }
        let huge = app.request("POST", "/api/v1/events", Some(vec![b' '; 1024 * 1024 + 1])).await;
        assert_eq!(huge.status, 413);
        assert_eq!(huge.content_type, "application/problem+json");
    }

    #[actix_web::test]
    async fn everything_served_carries_the_security_headers() {
        let app = spawn_app().await;
        let client = http_client();
        for path in ["/", "/static/app.js", "/healthz", "/api/v1/channels", "/api/v1/nothing"] {
            let response = client
                .get(format!("{}{path}", app.base))
                .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
                .send()
                .await
                .unwrap();
            let headers = response.headers();
            assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff", "{path}");
            assert_eq!(headers.get("referrer-policy").unwrap(), "no-referrer", "{path}");
            assert_eq!(headers.get("x-frame-options").unwrap(), "DENY", "{path}");
            let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
            assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
            assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        }
        let refused = client.get(format!("{}/api/v1/channels", app.base)).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        assert_eq!(refused.headers().get("x-content-type-options").unwrap(), "nosniff", "refusals carry them too");
        assert!(refused.headers().get("www-authenticate").is_some());
    }

    #[actix_web::test]
    async fn thousands_of_generated_inputs_never_get_a_5xx() {
        let app = spawn_app().await;
        app.create_tenant("contoso").await;
        let valid_event = permission_event("contoso", "permission.external_share_created", "high");
        let valid_channel = json!({"name": "X", "type": "webhook", "url": "https://x.example.com/", "headers": {"X-A": "b"}});
        let valid_rule = json!({"name": "R", "tenant_id": "contoso", "event_types": ["*"], "min_severity": "low", "channel_ids": ["ch_x"]});
        let channel = app.create_channel("Fuzzed", "https://x.example.com/").await;
        let channel_path = format!("/api/v1/channels/{}", channel["id"].as_str().unwrap());
        let rule = app.create_rule(json!({"name": "R", "event_types": ["*"], "channel_ids": [channel["id"]]})).await;
        let rule_path = format!("/api/v1/rules/{}", rule["id"].as_str().unwrap());
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let mut statuses = std::collections::BTreeMap::new();
        for i in 0..3600 {
            let (method, path, body) = match i % 9 {
                0 => ("POST", "/api/v1/events", random_json(&mut rng, 4)),
                1 => ("POST", "/api/v1/events", mutated(&mut rng, &valid_event)),
                2 => ("POST", "/api/v1/events", json!({"events": [valid_event.clone(), mutated(&mut rng, &valid_event)]})),
                3 => ("POST", "/api/v1/channels", mutated(&mut rng, &valid_channel)),
                4 => ("POST", "/api/v1/rules", mutated(&mut rng, &valid_rule)),
                5 => ("POST", "/api/v1/tenants", random_json(&mut rng, 3)),
                6 => ("PATCH", channel_path.as_str(), mutated(&mut rng, &valid_channel)),
                7 => ("PATCH", rule_path.as_str(), mutated(&mut rng, &valid_rule)),
                _ => ("PATCH", "/api/v1/tenants/contoso", random_json(&mut rng, 3)),
            };
            let answer = app.request(method, path, Some(serde_json::to_vec(&body).unwrap())).await;
            assert!(answer.status < 500, "{method} {path} {body} → {} {}", answer.status, answer.body);
            *statuses.entry(answer.status).or_insert(0) += 1;
        }
        // The generator reaches past validation too, not only the JSON reader.
        assert!(statuses.contains_key(&422) && statuses.contains_key(&400) && statuses.keys().any(|s| *s < 300), "{statuses:?}");
    }

    #[actix_web::test]
    async fn limits_are_settings() {
        let app = spawn_app_with(|s| {
            s.limits.max_name = 12;
            s.limits.max_headers = 1;
            s.limits.max_event_data_bytes = 100;
        })
        .await;
        app.create_tenant("contoso").await;
        let name = app.post("/api/v1/channels", json!({"name": "thirteen-long", "url": "https://x.example.com/"})).await;
        assert_eq!(name.status, 422);
        assert!(name.body["detail"].as_str().unwrap().contains("at most 12"), "{}", name.body);
        let headers = app.post("/api/v1/channels", json!({"name": "ok", "url": "https://x.example.com/", "headers": {"X-A": "1", "X-B": "2"}})).await;
        assert_eq!(headers.body["field"], "headers");
        let big = app.ingest(permission_event("contoso", "permission.external_share_created", "high")).await;
        assert_eq!(big.status, 422, "{}", big.body);
        assert!(big.body["detail"].as_str().unwrap().contains("the limit is 100"));
    }

    #[actix_web::test]
    async fn a_hundred_kilobyte_path_is_answered_414_with_a_problem_that_names_the_limit() {
        let app = spawn_app().await;
        let base = app.base.clone();
        blocking(move || {
            let mut connection = RawConnection::open(&base);
            connection.send(&raw_get(&format!("/api/v1/channels/{}", "x".repeat(100 * 1024))));
            let answer = connection.answer();
            answer.assert_problem(414, "uri-too-long");
            assert_eq!(answer.body["title"], "URI Too Long");
            assert!(answer.body["detail"].as_str().unwrap().contains("longer than 16384 bytes"), "{}", answer.body);
            assert_eq!(answer.header("connection"), Some("close"));
            assert!(connection.closed());
        })
        .await;
    }

    #[actix_web::test]
    async fn a_two_hundred_kilobyte_header_block_is_answered_431_with_a_problem() {
        let app = spawn_app().await;
        let base = app.base.clone();
        blocking(move || {
            let mut connection = RawConnection::open(&base);
            let fields: String = (0..50).map(|i| format!("X-Filler-{i}: {}\r\n", "f".repeat(4096))).collect();
            connection.send(format!("GET /api/v1/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n{fields}\r\n").as_bytes());
            let answer = connection.answer();
            answer.assert_problem(431, "headers-too-large");
            assert!(answer.body["detail"].as_str().unwrap().contains("larger than 65536 bytes"), "{}", answer.body);
            assert_eq!(answer.header("connection"), Some("close"));
            assert!(connection.closed());
        })
        .await;
    }

    #[actix_web::test]
    async fn an_over_long_path_after_a_request_on_a_kept_alive_connection_is_answered_414_too() {
        let app = spawn_app().await;
        let base = app.base.clone();
        blocking(move || {
            let tenant = |id: &str| raw_post("/api/v1/tenants", json!({"id": id, "display_name": "C", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}).to_string().as_bytes());
            let over_long = raw_get(&format!("/api/v1/channels/{}", "x".repeat(100 * 1024)));
            // The client waits for each answer.
            let mut connection = RawConnection::open(&base);
            connection.send(&tenant("contoso"));
            let created = connection.answer();
            assert_eq!(created.status, 201, "{}", created.body);
            connection.send(&over_long);
            connection.answer().assert_problem(414, "uri-too-long");
            assert!(connection.closed());
            // The client sends both at once: the first is answered, then the refusal.
            let mut connection = RawConnection::open(&base);
            connection.send(&[tenant("fabrikam"), over_long].concat());
            let created = connection.answer();
            assert_eq!(created.status, 201, "{}", created.body);
            connection.answer().assert_problem(414, "uri-too-long");
            assert!(connection.closed());
        })
        .await;
        assert_eq!(app.get("/api/v1/tenants").await.body["items"].as_array().unwrap().len(), 2);
    }

    #[actix_web::test]
    async fn requests_within_the_head_limits_are_served_as_before_on_one_kept_alive_connection() {
        let app = spawn_app().await;
        let base = app.base.clone();
        blocking(move || {
            let mut connection = RawConnection::open(&base);
            connection.send(&raw_get("/healthz"));
            assert_eq!(connection.answer().status, 200);
            // A body near MAX_BODY_BYTES (1 MiB), read whole: the empty batch is what is refused.
            let mut big = b"{\"events\": []".to_vec();
            big.resize(1024 * 1024 - 1, b' ');
            big.push(b'}');
            connection.send(&raw_post("/api/v1/events", &big));
            let refused = connection.answer();
            assert_eq!((refused.status, &refused.body["field"]), (422, &json!("events")), "{}", refused.body);
            // A path just under the request line's limit still reaches its route.
            let id = format!("ch_{}", "x".repeat(16 * 1024 - 100));
            let unknown = connection.answer_to(&raw_get(&format!("/api/v1/channels/{id}")));
            unknown.assert_problem(404, "not-found");
            connection.send(&raw_post("/api/v1/tenants", json!({"id": "contoso", "display_name": "C", "microsoft_tenant_id": "b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd"}).to_string().as_bytes()));
            assert_eq!(connection.answer().status, 201);
            let listed = connection.answer_to(&raw_get("/api/v1/tenants"));
            assert_eq!((listed.status, listed.body["items"].as_array().map(Vec::len)), (200, Some(1)));
            assert_eq!(listed.header("connection"), None, "the connection stays open");
        })
        .await;
    }
}
