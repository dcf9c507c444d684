//! Attacks on session-server's cookie authentication (issue 3: the OWASP Session
//! Management cheat sheet, ASVS 5.0 V7), over real HTTP on 127.0.0.1.
//!
//! Every rejected request has a positive control beside it: the same request, built by the
//! same helper with the attacked part made valid, is accepted. A server that rejected
//! everything would fail this suite.
//!
//! Already covered in `http.rs` and not repeated: no cookie, garbage and wrong-length
//! values, the wrong cookie name, a valid ID followed by an unknown one, fixation with a
//! plain planted cookie, timeouts and logout on every instance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::{
    Method, StatusCode,
    header::{self, HeaderName, HeaderValue},
};
use session_server::id::SessionId;

/// A well-formed ID that no server issued.
fn unknown_id() -> String {
    SessionId::generate().encode()
}

fn sid(value: &str) -> String {
    format!("{COOKIE_NAME}={value}")
}

/// Raw request headers (any bytes, any number of each) and an optional query string.
#[derive(Clone, Debug, Default)]
struct Carry {
    headers: Vec<(HeaderName, Vec<u8>)>,
    query: Option<String>,
}

impl Carry {
    /// One `Cookie` header per value.
    fn cookies<V: AsRef<[u8]>>(values: &[V]) -> Self {
        Self { headers: values.iter().map(|v| (header::COOKIE, v.as_ref().to_vec())).collect(), query: None }
    }

    fn cookie(value: impl AsRef<[u8]>) -> Self {
        Self::cookies(&[value])
    }
}

/// One server and the session of `user0` (an admin, so `/admin` is a 200 for the controls).
struct Target {
    server: TestServer,
    http: reqwest::Client,
    id: String,
}

impl Target {
    async fn start(flags: &[&str]) -> Self {
        let server = TestServer::start("adv-1", flags).await;
        let http = client();
        let id = login(&http, &server, "user0", None).await;
        Self { server, http, id }
    }

    async fn send(&self, method: Method, path: &str, carry: &Carry) -> Reply {
        let mut url = self.server.at(path);
        if let Some(q) = &carry.query {
            url = format!("{url}?{q}");
        }
        let mut req = self.http.request(method, url);
        for (name, value) in &carry.headers {
            req = req.header(name, HeaderValue::from_bytes(value).unwrap());
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// 401 `unauthenticated` on `/me`, `/admin` and `/logout`; no cookie is set or cleared,
    /// nothing is cached, and there is no Bearer challenge.
    async fn rejected(&self, what: &str, carry: &Carry) {
        self.rejected_on(what, carry, &[(Method::GET, "/me"), (Method::GET, "/admin"), (Method::POST, "/logout")])
            .await;
    }

    async fn rejected_on(&self, what: &str, carry: &Carry, routes: &[(Method, &str)]) {
        for (method, path) in routes {
            let r = self.send(method.clone(), path, carry).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} on {path}: {r:?}");
            r.assert_error(401, "unauthenticated");
            assert_eq!(r.header("cache-control"), Some("no-store"), "{what} on {path}");
            assert!(r.headers.get(header::SET_COOKIE).is_none(), "{what} on {path}: {r:?}");
            assert!(r.headers.get(header::WWW_AUTHENTICATE).is_none(), "{what} on {path}: {r:?}");
        }
    }

    /// `/me` and `/admin` answer for `user0`. Run after [`Self::rejected`], this also shows
    /// that the refused `/logout` ended nothing.
    async fn accepted(&self, what: &str, carry: &Carry) {
        for path in ["/me", "/admin"] {
            let r = self.send(Method::GET, path, carry).await;
            assert_eq!(r.status, StatusCode::OK, "control for {what} on {path} was refused: {r:?}");
            expect_me(&r, "user0", "admin", "adv-1");
            assert_eq!(r.header("cache-control"), Some("no-store"), "{what} on {path}");
        }
    }

    async fn case(&self, what: &str, bad: Carry, good: Carry) {
        self.rejected(what, &bad).await;
        self.accepted(what, &good).await;
    }
}

/// `id` with the character at `at` replaced.
fn replace_at(id: &str, at: usize, with: &str) -> String {
    format!("{}{with}{}", &id[..at], &id[at + 1..])
}

#[tokio::test]
async fn cookie_headers_that_are_not_exactly_one_issued_id_are_refused() {
    let t = Target::start(&["--store", "memory"]).await;
    let id = t.id.as_str();
    let good = Carry::cookie(sid(id));
    let unknown = unknown_id();

    // The last character carries two spare bits; setting them spells the same 32 bytes
    // differently, which a lenient decoder would accept as the same ID.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(id.chars().last().unwrap()).unwrap();
    let respelled = replace_at(id, 42, &alphabet[last ^ 1..(last ^ 1) + 1]);
    let first = id.as_bytes()[0];

    let refused: Vec<(&str, Carry)> = vec![
        // Malformed.
        ("no '=' after the name", Carry::cookie(format!("{COOKIE_NAME}{id}"))),
        ("'==' after the name", Carry::cookie(format!("{COOKIE_NAME}=={id}"))),
        ("'=' appended to the ID", Carry::cookie(sid(&format!("{id}=")))),
        ("a character replaced by '.'", Carry::cookie(sid(&replace_at(id, 5, ".")))),
        ("a character replaced by '+' (standard base64)", Carry::cookie(sid(&replace_at(id, 5, "+")))),
        ("the first character percent-encoded", Carry::cookie(sid(&format!("%{first:02X}{}", &id[1..])))),
        ("the same bytes spelled with spare bits set", Carry::cookie(sid(&respelled))),
        ("a space inside the ID", Carry::cookie(sid(&format!("{} {}", &id[..20], &id[20..])))),
        ("a tab inside the ID", Carry::cookie(sid(&format!("{}\t{}", &id[..20], &id[20..])))),
        ("the cookie name in lower case", Carry::cookie(format!("__host-sid={id}"))),
        ("the __Secure- prefix instead of __Host-", Carry::cookie(format!("__Secure-sid={id}"))),
        ("a longer cookie name", Carry::cookie(format!("{COOKIE_NAME}x={id}"))),
        ("a prefixed cookie name", Carry::cookie(format!("x{COOKIE_NAME}={id}"))),
        ("the whole pair as the value", Carry::cookie(sid(&sid(id)))),
        // Oversized.
        ("an 8 KiB value", Carry::cookie(sid(&"A".repeat(8 * 1024)))),
        ("the ID followed by 8 KiB", Carry::cookie(sid(&format!("{id}{}", "A".repeat(8 * 1024))))),
        // Duplicated: which one the client meant is ambiguous, and guessing is how
        // fixation wins.
        ("the ID twice in one header", Carry::cookie(format!("{}; {}", sid(id), sid(id)))),
        ("an unknown ID before the ID", Carry::cookie(format!("{}; {}", sid(&unknown), sid(id)))),
        ("the ID and an empty session cookie", Carry::cookie(format!("{}; {COOKIE_NAME}=", sid(id)))),
        ("the ID in two Cookie headers", Carry::cookies(&[sid(id), sid(id)])),
        ("the ID and garbage in two Cookie headers", Carry::cookies(&[sid(id), sid("garbage")])),
        // Not UTF-8, or not ASCII where the ID is.
        ("0xff glued to the ID", Carry::cookie([sid(id).as_bytes(), b"\xff"].concat())),
        ("a non-ASCII letter glued to the ID", Carry::cookie(sid(&format!("{id}é")))),
        ("no-break space before the ID", Carry::cookie(sid(&format!("\u{a0}{id}")))),
        (
            "Latin-1 in another cookie of the header",
            Carry::cookie([b"theme=caf\xe9; ".as_slice(), sid(id).as_bytes()].concat()),
        ),
        (
            "an invalid UTF-8 sequence in another Cookie header",
            Carry::cookies(&[b"x=\xc3\x28".to_vec(), sid(id).into_bytes()]),
        ),
        // Empty cookie name.
        ("the ID under an empty name", Carry::cookie(format!("={id}"))),
        ("the ID under an empty name, among others", Carry::cookie(format!("theme=dark; ={id}; lang=en"))),
        ("the bare ID as a nameless cookie", Carry::cookie(id)),
        // Quoted (RFC 6265 allows DQUOTEs around a value; we never send one).
        ("the ID in double quotes", Carry::cookie(sid(&format!("\"{id}\"")))),
        ("the ID in single quotes", Carry::cookie(sid(&format!("'{id}'")))),
        ("the ID after an unmatched quote", Carry::cookie(sid(&format!("\"{id}")))),
        // Attributes glued into the value.
        ("attributes after a comma (a folded Set-Cookie)", Carry::cookie(format!("{}, Path=/", sid(id)))),
        ("attributes after a space", Carry::cookie(format!("{} Path=/; Secure", sid(id)))),
        // Not a cookie at all.
        (
            "the pair in a Set-Cookie request header",
            Carry { headers: vec![(header::SET_COOKIE, sid(id).into_bytes())], query: None },
        ),
        (
            "the ID as a bearer token",
            Carry { headers: vec![(header::AUTHORIZATION, format!("Bearer {id}").into_bytes())], query: None },
        ),
        ("the ID in the query string", Carry { headers: vec![], query: Some(sid(id)) }),
        (
            "a Cookie2 header",
            Carry { headers: vec![(HeaderName::from_static("cookie2"), sid(id).into_bytes())], query: None },
        ),
    ];
    for (what, bad) in refused {
        t.case(what, bad, good.clone()).await;
    }
    // A well-formed but unknown ID with attributes around it is refused like any unknown ID
    // (its /logout is the idempotent 204 of `http.rs`, so only the reads are checked).
    let dressed = Carry::cookie(format!("{}; Path=/; Secure; HttpOnly", sid(&unknown)));
    t.rejected_on("an unknown ID dressed with attributes", &dressed, &[(Method::GET, "/me"), (Method::GET, "/admin")])
        .await;
    t.accepted("a known ID dressed with attributes", &Carry::cookie(format!("{}; Path=/; Secure; HttpOnly", sid(id))))
        .await;

    // What is accepted, and why: only the `__Host-sid` pair is read, so other cookies —
    // however large, nameless, non-ASCII UTF-8, or looking like attributes — do not matter.
    let accepted: Vec<(&str, Carry)> = vec![
        (
            "among 8 KiB of other cookies",
            Carry::cookie(format!("{}{}", "pad=xxxxxxxxxxxxxxxxxxxx; ".repeat(320), sid(id))),
        ),
        (
            "in the second of two Cookie headers (as HTTP/2 splits them)",
            Carry::cookies(&["theme=dark".to_owned(), sid(id)]),
        ),
        ("after a nameless cookie", Carry::cookie(format!("consent; {}", sid(id)))),
        ("after an empty pair", Carry::cookie(format!("=; {}", sid(id)))),
        ("after a UTF-8 cookie value", Carry::cookie(format!("theme=café; {}", sid(id)))),
        (
            "followed by an echo of the Set-Cookie attributes",
            Carry::cookie(format!("{}; {COOKIE_ATTRIBUTES}", sid(id))),
        ),
        ("with optional whitespace around '=' (RFC 6265bis)", Carry::cookie(format!("  {COOKIE_NAME} =\t{id}"))),
        ("after a lower-case look-alike cookie", Carry::cookie(format!("__host-sid={unknown}; {}", sid(id)))),
    ];
    for (what, carry) in accepted {
        t.accepted(what, &carry).await;
    }
}

/// Raw bytes a well-behaved client cannot send: hyper or the server refuses them, never
/// with a 5xx and never as authenticated.
#[tokio::test]
async fn raw_cookie_bytes_never_produce_a_5xx() {
    let t = Target::start(&["--store", "memory"]).await;
    let addr = t.server.url.strip_prefix("http://").unwrap().to_owned();
    let id = t.id.clone();
    let send = |cookie: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let mut req = b"GET /me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: ".to_vec();
            req.extend_from_slice(&cookie);
            req.extend_from_slice(b"\r\n\r\n");
            raw_status(&addr, &req).await
        }
    };
    let with = |inner: &[u8]| [sid(&id[..10]).as_bytes(), inner, &id.as_bytes()[10..]].concat();
    for (what, value) in [
        ("NUL inside the ID", with(b"\0")),
        ("DEL inside the ID", with(b"\x7f")),
        ("a control character inside the ID", with(b"\x01")),
        ("a bare CR inside the ID", with(b"\r")),
        ("an obs-fold continuation line", [b"theme=dark;\r\n ".as_slice(), sid(&id).as_bytes()].concat()),
    ] {
        let status = send(value).await;
        assert!(matches!(status, 400 | 401), "{what}: {status}");
    }
    assert_eq!(send(with(b"")).await, 200, "control: the same raw request with the ID intact");
}

// ---------------------------------------------------------------------------------------
// Fixation: an ID the server did not issue never becomes a session
// ---------------------------------------------------------------------------------------

async fn planted_ids_never_survive_login(flags: &[&str], prefix: Option<&RedisPrefix>) {
    let server = TestServer::start("fix-adv", flags).await;
    let http = client();

    // A recycled ID: issued once, logged out, then planted.
    let recycled = login(&http, &server, "user5", None).await;
    let out = post_empty(&http, &server.at("/logout"), Some(&cookie(&recycled))).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{out:?}");

    let planted = unknown_id();
    let carried: Vec<(&str, String, Vec<String>)> = vec![
        ("plain", planted.clone(), vec![sid(&planted)]),
        ("among other cookies", planted.clone(), vec![format!("theme=dark; {}; lang=en", sid(&planted))]),
        ("in a second Cookie header", planted.clone(), vec!["theme=dark".into(), sid(&planted)]),
        ("twice", planted.clone(), vec![format!("{}; {}", sid(&planted), sid(&planted))]),
        ("with attributes", planted.clone(), vec![format!("{}; Path=/; Secure; HttpOnly", sid(&planted))]),
        ("a logged-out ID", recycled.clone(), vec![sid(&recycled)]),
    ];
    for (what, planted, cookies) in carried {
        let mut req = http.post(server.at("/login")).header(header::CONTENT_TYPE, "application/json");
        for c in &cookies {
            req = req.header(header::COOKIE, c);
        }
        let r = Reply::read(req.body(credentials("user2", DEMO_PASSWORD)).send().await.unwrap()).await;
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
        let issued = expect_login(&r, "user2", "user");
        assert_ne!(issued, planted, "{what}: the planted ID was adopted");
        assert!(!r.set_cookie().contains(&planted), "{what}: {}", r.set_cookie());
        // The planted ID stays refused; the issued one — the control — works.
        me(&http, &server, &planted).await.assert_error(401, "unauthenticated");
        expect_me(&me(&http, &server, &issued).await, "user2", "user", "fix-adv");
        if let Some(prefix) = prefix {
            let key = format!("{}s:{planted}", prefix.prefix);
            assert!(!prefix.keys().contains(&key), "{what}: {key} exists in Redis");
        }
    }
}

#[tokio::test]
async fn planted_ids_never_survive_login_memory() {
    planted_ids_never_survive_login(&["--store", "memory"], None).await;
}

#[tokio::test]
async fn planted_ids_never_survive_login_redis() {
    let prefix = RedisPrefix::new();
    let flags = ["--store", "redis", "--redis-url", SHARED_REDIS, "--redis-prefix", &prefix.prefix];
    planted_ids_never_survive_login(&flags, Some(&prefix)).await;
}

// ---------------------------------------------------------------------------------------
// Cache-Control: no-store on everything that carries credentials or user data
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn responses_with_credentials_or_user_data_are_never_cached() {
    let t = Target::start(&["--store", "memory"]).await;
    let user = login(&t.http, &t.server, "user1", None).await;
    let login_url = t.server.at("/login");
    let mut replies: Vec<(&str, Reply)> = vec![
        ("/login 200", post_json(&t.http, &login_url, &credentials("user3", DEMO_PASSWORD), None).await),
        ("/login 401", post_json(&t.http, &login_url, &credentials("user3", "wrong"), None).await),
        ("/login 422", post_json(&t.http, &login_url, r#"{"username":"user3"}"#, None).await),
        ("/me 200", me(&t.http, &t.server, &t.id).await),
        ("/me 401", me(&t.http, &t.server, &unknown_id()).await),
        ("/admin 200", get(&t.http, &t.server.at("/admin"), Some(&cookie(&t.id))).await),
        ("/admin 403", get(&t.http, &t.server.at("/admin"), Some(&cookie(&user))).await),
        ("/admin 401", get(&t.http, &t.server.at("/admin"), None).await),
        ("/logout 401", post_empty(&t.http, &t.server.at("/logout"), None).await),
    ];
    replies.push(("/logout 204", post_empty(&t.http, &t.server.at("/logout"), Some(&cookie(&user))).await));
    for (what, r) in &replies {
        let expected: u16 = what[what.len() - 3..].parse().unwrap();
        assert_eq!(r.status.as_u16(), expected, "{what}: {r:?}");
        assert_eq!(r.headers.get_all(header::CACHE_CONTROL).iter().count(), 1, "{what}: {r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}: {r:?}");
    }
}
