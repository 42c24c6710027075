//! Each fault kind behaves as scripted (Rust API and HTTP control plane), and every request is
//! recorded with what answered it.

mod common;

use std::time::{Duration, Instant, SystemTime};

use azmi_emulator::{Config, Emulator, Fault, Source};
use common::*;
use serde_json::{Value, json};

const QUERY: &str = "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net";

fn imds(emu: &Emulator) -> String {
    format!("{}{QUERY}", emu.endpoint(Source::Imds))
}

fn imds_get(emu: &Emulator) -> Resp {
    get(&imds(emu), &[("Metadata", "true")])
}

fn start() -> Emulator {
    Emulator::start(Config::default()).expect("emulator starts")
}

fn raw_imds(emu: &Emulator) -> (Vec<u8>, Option<std::io::Error>) {
    let mut s = tcp(emu.addr());
    raw_exchange(
        &mut s,
        &raw_get(
            &format!("/metadata/identity/oauth2/token{QUERY}"),
            &[("Metadata", "true")],
        ),
    )
}

#[test]
fn status_fault_with_body_headers_and_count() {
    let emu = start();
    emu.push_fault(
        Fault::status(503)
            .body("busy")
            .content_type("text/plain")
            .header("x-ms-request-id", "r1")
            .times(2),
    );
    for _ in 0..2 {
        let r = imds_get(&emu);
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "busy");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("x-ms-request-id"), Some("r1"));
    }
    assert_eq!(imds_get(&emu).status, 200, "the fault is used up");
    assert!(emu.pending_faults().is_empty());
}

#[test]
fn status_fault_default_body_is_json() {
    let emu = start();
    emu.push_fault(Fault::status(500));
    let r = imds_get(&emu);
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "emulated_fault");
}

#[test]
fn retry_after_headers() {
    let emu = start();
    emu.push_fault(Fault::status(429).retry_after_secs(2));
    emu.push_fault(Fault::status(503).retry_after_ms(1500));
    emu.push_fault(Fault::status(503).x_ms_retry_after_ms(2500));
    emu.push_fault(Fault::status(429).retry_after_date_in(Duration::from_secs(30)));
    let fixed = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
    emu.push_fault(Fault::status(429).retry_after_date(fixed));

    assert_eq!(imds_get(&emu).header("retry-after"), Some("2"));
    assert_eq!(imds_get(&emu).header("retry-after-ms"), Some("1500"));
    assert_eq!(imds_get(&emu).header("x-ms-retry-after-ms"), Some("2500"));
    let date = imds_get(&emu)
        .header("retry-after")
        .map(str::to_owned)
        .unwrap_or_default();
    // IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT", about 30 s from now.
    assert_eq!(date.len(), 29, "{date}");
    assert!(
        date.ends_with(" GMT") && date.as_bytes()[3] == b',',
        "{date}"
    );
    let parsed = time::PrimitiveDateTime::parse(
        date.trim_end_matches(" GMT"),
        time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second]"
        ),
    )
    .expect("HTTP-date parses")
    .assume_utc()
    .unix_timestamp();
    let delta = parsed - i64::try_from(now()).unwrap_or(i64::MAX);
    assert!(
        (25..=31).contains(&delta),
        "Retry-After date is {delta} s away"
    );
    assert_eq!(
        imds_get(&emu).header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
}

#[test]
fn faults_are_fifo_and_matchers_select_requests() {
    let emu = start();
    emu.push_fault(Fault::status(500).path("/msi/token"));
    emu.push_fault(Fault::status(429).source(Source::Imds));
    emu.push_fault(Fault::status(418));
    // IMDS skips the App Service fault and takes the IMDS one.
    assert_eq!(imds_get(&emu).status, 429);
    // Then the catch-all.
    assert_eq!(imds_get(&emu).status, 418);
    assert_eq!(imds_get(&emu).status, 200);
    assert_eq!(
        emu.pending_faults(),
        vec![Fault::status(500).path("/msi/token")]
    );
    let secret = emu.identity_header().to_owned();
    let r = get(
        &format!(
            "{}?api-version=2019-08-01&resource=x",
            emu.endpoint(Source::AppService)
        ),
        &[("X-IDENTITY-HEADER", &secret)],
    );
    assert_eq!(r.status, 500);
}

#[test]
fn faults_from_config_apply_from_the_start() {
    let emu = Emulator::start(Config::default().fault(Fault::status(410).times(3))).expect("start");
    for _ in 0..3 {
        assert_eq!(imds_get(&emu).status, 410);
    }
    assert_eq!(imds_get(&emu).status, 200);
}

#[test]
fn delay_then_normal_answer() {
    let emu = start();
    emu.push_fault(Fault::delay(Duration::from_millis(300)));
    let t = Instant::now();
    let r = imds_get(&emu);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.status, 200);
    assert_eq!(emu.requests()[0].fault.as_deref(), Some("delay=300ms"));
}

#[test]
fn delay_outlasts_a_client_timeout() {
    let emu = start();
    emu.push_fault(Fault::delay(Duration::from_secs(3)));
    let t = Instant::now();
    let r = agent_with_timeout(Duration::from_millis(300))
        .get(&imds(&emu))
        .header("Metadata", "true")
        .call();
    assert!(r.is_err(), "the client should time out");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The request was recorded while the emulator was still waiting.
    assert_eq!(emu.request_count(), 1);
    assert_eq!(emu.requests()[0].status, Some(200));
}

#[test]
fn delay_combines_with_a_status() {
    let emu = start();
    emu.push_fault(Fault::status(504).with_delay(Duration::from_millis(200)));
    let t = Instant::now();
    assert_eq!(imds_get(&emu).status, 504);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn reset_closes_without_a_response() {
    let emu = start();
    emu.push_fault(Fault::reset());
    let (bytes, err) = raw_imds(&emu);
    assert!(
        bytes.is_empty(),
        "got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    if let Some(e) = err {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    let rec = &emu.requests()[0];
    assert_eq!(rec.fault.as_deref(), Some("reset"));
    assert_eq!(rec.status, None);
    // An HTTP client sees a transport error, and the next request works.
    emu.push_fault(Fault::reset());
    assert!(try_get(&imds(&emu), &[("Metadata", "true")]).is_err());
    assert_eq!(imds_get(&emu).status, 200);
}

#[test]
fn truncated_body_promises_more_than_it_sends() {
    let emu = start();
    emu.push_fault(Fault::truncated(10));
    let (bytes, _) = raw_imds(&emu);
    let raw = parse_raw(&bytes)
        .unwrap_or_else(|| panic!("no head: {:?}", String::from_utf8_lossy(&bytes)));
    assert_eq!(raw.status, 200);
    let declared: usize = raw
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        raw.body.len(),
        10,
        "{:?}",
        String::from_utf8_lossy(&raw.body)
    );
    assert!(declared > 100, "declared {declared}");
    assert!(
        b"{\"access_token\":".starts_with(&raw.body),
        "{:?}",
        String::from_utf8_lossy(&raw.body)
    );
    // An HTTP client fails to read the body.
    emu.push_fault(Fault::truncated(5));
    let r = agent().get(&imds(&emu)).header("Metadata", "true").call();
    // Depending on timing the failure shows on the head or on the body; either way no body.
    if let Ok(mut resp) = r {
        assert!(resp.body_mut().read_to_string().is_err());
    }
}

#[test]
fn oversized_body_is_valid_json_of_the_requested_size() {
    let emu = start();
    emu.push_fault(Fault::oversized(2 << 20));
    let r = imds_get(&emu);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 2 << 20);
    assert_eq!(r.header("content-length"), Some("2097152"));
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert!(
        v["access_token"]
            .as_str()
            .is_some_and(|t| t.len() > 2_000_000)
    );
}

#[test]
fn malformed_json_wrong_content_type_and_proxy_page() {
    let emu = start();
    emu.push_fault(Fault::malformed_json());
    emu.push_fault(Fault::wrong_content_type("text/html"));
    emu.push_fault(Fault::proxy_page());
    emu.push_fault(Fault::docker_unreachable());

    let r = imds_get(&emu);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    assert!(
        serde_json::from_str::<Value>(&r.body).is_err(),
        "{}",
        r.body
    );

    let r = imds_get(&emu);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(
        r.json()["access_token"].is_string(),
        "the body is still the token"
    );

    let r = imds_get(&emu);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(serde_json::from_str::<Value>(&r.body).is_err());
    assert!(r.body.contains("<html>"));

    let r = imds_get(&emu);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("unreachable"), "{}", r.body);
}

#[test]
fn redirect_points_at_a_url_that_would_succeed() {
    let emu = start();
    for status in [302, 307] {
        emu.clear_requests();
        emu.push_fault(Fault::redirect(status));
        let r = imds_get(&emu);
        assert_eq!(r.status, status);
        let location = r.header("location").unwrap_or_default().to_owned();
        assert_eq!(
            location,
            format!(
                "{}/__emulator/redirect-target/metadata/identity/oauth2/token{QUERY}",
                emu.base_url()
            )
        );
        // A client that did not follow leaves no request at the target.
        assert_eq!(emu.request_count(), 1);
        // Following it by hand succeeds, even with faults queued.
        emu.push_fault(Fault::status(500));
        let followed = get(&location, &[("Metadata", "true")]);
        assert_eq!(followed.status, 200, "{}", followed.body);
        assert_eq!(followed.json()["resource"], "https://vault.azure.net");
        let rec = emu.requests();
        assert_eq!(rec.len(), 2);
        assert!(rec[1].path.starts_with("/__emulator/redirect-target/"));
        assert_eq!(rec[1].source, Some(Source::Imds));
        assert_eq!(rec[1].fault, None);
        emu.clear_faults();
    }
    emu.push_fault(Fault::redirect(302).location("http://127.0.0.1:9/elsewhere"));
    assert_eq!(
        imds_get(&emu).header("location"),
        Some("http://127.0.0.1:9/elsewhere")
    );
}

#[test]
fn faults_apply_on_the_service_fabric_listener() {
    let emu = start();
    emu.push_fault(
        Fault::status(500)
            .source(Source::ServiceFabric)
            .retry_after_secs(1),
    );
    let secret = emu.identity_header().to_owned();
    let request = raw_get(
        "/metadata/identity/oauth2/token?api-version=2019-07-01-preview&resource=x",
        &[("Secret", &secret)],
    );
    let bytes = tls_exchange(
        emu.service_fabric_addr(),
        emu.service_fabric_thumbprint(),
        &request,
    )
    .expect("tls");
    let raw = parse_raw(&bytes).expect("http");
    assert_eq!(raw.status, 500);
    assert_eq!(raw.header("retry-after"), Some("1"));
    emu.push_fault(Fault::reset().source(Source::ServiceFabric));
    let result = tls_exchange(
        emu.service_fabric_addr(),
        emu.service_fabric_thumbprint(),
        &request,
    );
    assert!(
        result.map(|b| parse_raw(&b).is_none()).unwrap_or(true),
        "no HTTP answer after a reset"
    );
}

#[test]
fn requests_are_recorded_with_everything_a_test_asserts() {
    let emu = start();
    emu.push_fault(Fault::status(429));
    let _ = get(
        &format!("{}&client_id=abc", imds(&emu)),
        &[("Metadata", "true"), ("x-ms-client-request-id", "id-1")],
    );
    let _ = post_form(
        &emu.endpoint(Source::CloudShell),
        &[("Metadata", "true")],
        &[("resource", "https://management.azure.com")],
    );
    let rec = emu.requests();
    assert_eq!(rec.len(), 2);
    assert_eq!(emu.request_count(), 2);

    let first = &rec[0];
    assert_eq!(first.seq, 0);
    assert_eq!(first.method, "GET");
    assert_eq!(first.path, "/metadata/identity/oauth2/token");
    assert_eq!(
        first.query,
        "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=abc"
    );
    assert_eq!(
        first.query_pairs(),
        [
            ("api-version", "2018-02-01"),
            ("resource", "https://vault.azure.net"),
            ("client_id", "abc")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(first.header("METADATA"), Some("true"));
    assert_eq!(first.header("x-ms-client-request-id"), Some("id-1"));
    assert_eq!(first.source, Some(Source::Imds));
    assert_eq!(first.fault.as_deref(), Some("status=429"));
    assert!(first.faulted());
    assert_eq!(first.status, Some(429));
    assert_eq!(first.scheme, "http");
    assert!(first.body.is_empty());

    let second = &rec[1];
    assert_eq!(second.method, "POST");
    assert_eq!(second.body, "resource=https%3A%2F%2Fmanagement.azure.com");
    assert_eq!(
        second.form_param("resource").as_deref(),
        Some("https://management.azure.com")
    );
    assert_eq!(second.source, Some(Source::CloudShell));
    assert_eq!(second.status, Some(200));
    assert!(!second.faulted());
    assert_eq!(emu.requests_for(Source::CloudShell).len(), 1);

    emu.clear_requests();
    assert_eq!(emu.request_count(), 0);
    let _ = imds_get(&emu);
    assert_eq!(emu.requests()[0].seq, 2, "sequence numbers keep counting");
    assert!(emu.wait_for_requests(1, Duration::from_millis(10)));
}

#[test]
fn control_plane_over_http() {
    let emu = start();
    let faults = format!("{}/__emulator/faults", emu.base_url());
    let requests = format!("{}/__emulator/requests", emu.base_url());

    // JSON object, JSON list, and compact text lines.
    let r = post(
        &faults,
        &[("Content-Type", "application/json")],
        r#"{"status":429,"retry-after":2,"times":2,"path":"/metadata"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"queued": 1, "pending": 1}));
    let r = post(
        &faults,
        &[],
        r#"[{"reset":true,"source":"arc"},"malformed-json,source=cloud-shell"]"#,
    );
    assert_eq!(r.json()["queued"], 2);
    let r = post(
        &faults,
        &[("Content-Type", "text/plain")],
        "proxy-page,source=entra\nstatus=500,source=azure-ml\n",
    );
    assert_eq!(r.json(), json!({"queued": 2, "pending": 5}));
    let listed = get(&faults, &[]).json();
    assert_eq!(
        listed["faults"],
        json!([
            "status=429,retry-after=2,times=2,path=/metadata",
            "reset,source=arc",
            "malformed-json,source=cloud-shell",
            "proxy-page,source=entra",
            "status=500,source=azure-ml"
        ])
    );
    for bad in ["{\"status\":\"x\"}", "bogus", "", "[1]"] {
        let r = post(&faults, &[], bad);
        assert_eq!(r.status, 400, "{bad:?}");
        assert!(r.json()["error"].is_string());
    }
    // Control requests are neither faulted nor recorded.
    assert_eq!(get(&requests, &[]).status, 200);
    assert_eq!(emu.request_count(), 0);

    let r = imds_get(&emu);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    let recorded = get(&requests, &[]).json();
    assert_eq!(recorded.as_array().map(Vec::len), Some(1));
    assert_eq!(recorded[0]["source"], "imds");
    // The record names the single application, so without the count.
    assert_eq!(
        recorded[0]["fault"],
        "status=429,retry-after=2,path=/metadata"
    );
    assert_eq!(recorded[0]["status"], 429);
    assert_eq!(recorded[0]["method"], "GET");
    assert!(
        recorded[0]["headers"]
            .as_array()
            .is_some_and(|h| h.iter().any(|p| p[0] == "metadata" && p[1] == "true"))
    );

    assert_eq!(delete(&requests).status, 204);
    assert_eq!(emu.request_count(), 0);
    assert_eq!(delete(&faults).status, 204);
    assert!(emu.pending_faults().is_empty());

    let env = get(
        &format!("{}/__emulator/env?source=app-service", emu.base_url()),
        &[],
    )
    .json();
    assert_eq!(env["IDENTITY_HEADER"], emu.identity_header());
    assert_eq!(
        get(
            &format!("{}/__emulator/env?source=mars", emu.base_url()),
            &[]
        )
        .status,
        400
    );
    assert_eq!(
        get(&format!("{}/__emulator/nope", emu.base_url()), &[]).status,
        404
    );
    assert_eq!(post(&requests, &[], "").status, 405);
}

#[test]
fn oversized_requests_are_refused() {
    let emu = start();
    let body = "a".repeat((1 << 20) + 1);
    let r = post(
        &emu.endpoint(Source::CloudShell),
        &[
            ("Metadata", "true"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    assert_eq!(r.status, 413);
    assert_eq!(emu.requests()[0].status, Some(413));
}

#[test]
fn refuses_non_loopback_bind_without_permission() {
    let err = Emulator::start(Config::default().bind("0.0.0.0".parse().expect("ip")))
        .expect_err("must refuse");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("non-loopback"));
}

#[test]
fn ipv6_loopback_works_where_available() {
    match Emulator::start(Config::default().bind("::1".parse().expect("ip"))) {
        Ok(emu) => {
            assert!(
                emu.base_url().starts_with("http://[::1]:"),
                "{}",
                emu.base_url()
            );
            assert_eq!(imds_get(&emu).status, 200);
        }
        // Some containers have no IPv6 loopback; nothing to test there.
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable, "{e}"),
    }
}

#[test]
fn drop_stops_serving() {
    let emu = start();
    let addr = emu.addr();
    assert_eq!(imds_get(&emu).status, 200);
    emu.shutdown();
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn drop_does_not_wait_for_a_pending_delay() {
    let emu = start();
    emu.push_fault(Fault::delay(Duration::from_secs(60)));
    let addr = emu.addr();
    let client = std::thread::spawn(move || {
        let mut s = tcp(addr);
        raw_exchange(
            &mut s,
            &raw_get(
                &format!("/metadata/identity/oauth2/token{QUERY}"),
                &[("Metadata", "true")],
            ),
        )
    });
    assert!(emu.wait_for_requests(1, Duration::from_secs(5)));
    let t = Instant::now();
    drop(emu);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        t.elapsed()
    );
    let (bytes, _) = client.join().expect("client thread");
    assert!(bytes.is_empty(), "the delayed answer never came");
}

#[tokio::test]
async fn works_inside_a_tokio_runtime() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let emu = start();
    let mut s = tokio::net::TcpStream::connect(emu.addr())
        .await
        .expect("connect");
    s.write_all(&raw_get(
        &format!("/metadata/identity/oauth2/token{QUERY}"),
        &[("Metadata", "true")],
    ))
    .await
    .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("read");
    assert_eq!(parse_raw(&out).map(|r| r.status), Some(200));
    drop(emu); // dropping inside the runtime must not panic
}

#[test]
fn two_emulators_are_independent() {
    let a = start();
    let b = start();
    assert_ne!(a.addr(), b.addr());
    a.push_fault(Fault::status(500));
    assert_eq!(imds_get(&b).status, 200);
    assert_eq!(imds_get(&a).status, 500);
    assert_ne!(a.identity_header(), b.identity_header());
    assert_ne!(a.service_fabric_thumbprint(), b.service_fabric_thumbprint());
}
