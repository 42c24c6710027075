//! The token flow as a state machine (PROTOCOL.md §1.8, §2.1; the state graph in lib.rs): retry
//! schedules with a fake clock, server delays, budgets, the probe, and every transition from
//! every state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use azmi_core::retry::Jitter;
use azmi_core::time::OffsetDateTime;
use azmi_core::{
    Action, ErrorKind, FlowState, ManagedIdentity, ManagedIdentityOptions, RetryPolicy, TokenFlow,
    TransportFailure,
};
use common::*;

/// The computed delays of the first `n` retries of `policy` with jitter from `seed`.
fn computed_delays(policy: RetryPolicy, seed: u64, n: u32) -> Vec<Duration> {
    let mut jitter = Jitter::new(seed);
    (0..n)
        .map(|i| policy.base_delay(i).mul_f64(jitter.next_factor()))
        .collect()
}

fn assert_jittered(d: Duration, base: Duration, what: &str) {
    assert!(
        d >= base.mul_f64(0.8) && d < base.mul_f64(1.2),
        "{what}: {d:?} is outside [0.8, 1.2) × {base:?}"
    );
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn jitter_factors_are_in_range_and_deterministic() {
    let mut a = Jitter::new(7);
    let mut b = Jitter::new(7);
    let mut c = Jitter::new(8);
    let mut differs = false;
    for _ in 0..10_000 {
        let (x, y, z) = (a.next_factor(), b.next_factor(), c.next_factor());
        assert!((0.8..1.2).contains(&x), "{x}");
        assert_eq!(x.to_bits(), y.to_bits());
        differs |= x != z;
    }
    assert!(differs);
}

#[test]
fn base_delays_per_policy() {
    let imds: Vec<_> = (0..8).map(|n| RetryPolicy::Imds.base_delay(n)).collect();
    assert_eq!(
        imds,
        [1, 2, 4, 8, 16, 16, 16, 16]
            .map(Duration::from_secs)
            .to_vec()
    );
    let standard: Vec<_> = (0..3)
        .map(|n| RetryPolicy::Standard.base_delay(n))
        .collect();
    assert_eq!(
        standard,
        [800, 1600, 3200].map(Duration::from_millis).to_vec()
    );
    assert_eq!(RetryPolicy::Imds.max_retries(), 5);
    assert_eq!(RetryPolicy::Standard.max_retries(), 3);
    assert_eq!(RetryPolicy::Imds.budget(), Duration::from_secs(90));
    assert_eq!(RetryPolicy::Standard.budget(), Duration::from_secs(30));
}

#[test]
fn imds_sleep_sequence_for_a_fixed_seed() {
    let run = |seed| {
        let mut flow = imds_flow(seed);
        let run = drive(&mut flow, t0(), repeat(6, || status(503)));
        assert_eq!(flow.attempts(), 6);
        run
    };
    let a = run(42);
    assert_eq!(a.sleeps, computed_delays(RetryPolicy::Imds, 42, 5));
    for (i, d) in a.sleeps.iter().enumerate() {
        assert_jittered(*d, Duration::from_secs(1 << i), "IMDS retry");
    }
    // Each attempt starts exactly when the previous sleep ends.
    let mut expected_offset = 0.0;
    for (offset, sleep) in a
        .send_offsets()
        .iter()
        .zip([Duration::ZERO].iter().chain(&a.sleeps))
    {
        expected_offset += sleep.as_secs_f64();
        assert!(
            (offset - expected_offset).abs() < 1e-6,
            "{offset} vs {expected_offset}"
        );
    }
    let e = a.err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Failed, Some(503)));

    let again = run(42);
    assert_eq!(a.sleeps, again.sleeps, "same seed, same sleeps");
    let other = run(43);
    assert_ne!(a.sleeps, other.sleeps, "another seed, other sleeps");
    assert_eq!(other.sleeps, computed_delays(RetryPolicy::Imds, 43, 5));
}

#[test]
fn app_service_sleep_sequence_for_a_fixed_seed() {
    for seed in [0, 1, u64::MAX, 0xDEAD_BEEF] {
        let mut flow = app_flow(seed);
        let run = drive(&mut flow, t0(), repeat(4, || status(503)));
        assert_eq!(run.sleeps, computed_delays(RetryPolicy::Standard, seed, 3));
        for (d, base) in run.sleeps.iter().zip([800, 1600, 3200]) {
            assert_jittered(*d, Duration::from_millis(base), "standard retry");
        }
        assert_eq!(flow.attempts(), 4);
        assert_eq!(run.err().status(), Some(503));
        assert_eq!(run.err().kind(), ErrorKind::Failed);
    }
}

#[test]
fn imds_retried_statuses() {
    let retried = [
        404, 410, 429, 500, 502, 503, 504, 506, 507, 508, 510, 511, 599,
    ];
    let not_retried = [
        400, 401, 403, 405, 408, 409, 412, 499, 501, 505, 300, 302, 304, 100,
    ];
    for s in retried {
        assert!(RetryPolicy::Imds.retries_status(s), "{s}");
        let mut flow = imds_flow(1);
        let run = drive(&mut flow, t0(), [status(s), token("FAKE", 3600)]);
        assert_eq!(run.sends.len(), 2, "{s} is retried");
        assert_eq!(run.sleeps.len(), 1, "{s}");
        assert_eq!(run.ok().secret(), "FAKE");
        assert_eq!(flow.attempts(), 2);
    }
    for s in not_retried {
        assert!(!RetryPolicy::Imds.retries_status(s), "{s}");
        let mut flow = imds_flow(1);
        let run = drive(&mut flow, t0(), [status(s)]);
        assert_eq!(run.sends.len(), 1, "{s} is not retried");
        assert!(run.sleeps.is_empty(), "{s}");
        assert_eq!(run.err().status(), Some(s));
    }
}

#[test]
fn standard_retried_statuses() {
    let retried = [408, 429, 500, 502, 503, 504];
    let not_retried = [400, 401, 403, 404, 410, 501, 505, 506, 507, 511, 599, 302];
    for s in retried {
        assert!(RetryPolicy::Standard.retries_status(s), "{s}");
        let mut flow = app_flow(1);
        let run = drive(&mut flow, t0(), [status(s), token("FAKE", 3600)]);
        assert_eq!(run.sends.len(), 2, "{s} is retried");
        assert_eq!(run.ok().secret(), "FAKE");
    }
    for s in not_retried {
        assert!(!RetryPolicy::Standard.retries_status(s), "{s}");
        let mut flow = app_flow(1);
        let run = drive(&mut flow, t0(), [status(s)]);
        assert_eq!(run.sends.len(), 1, "{s} is not retried");
        assert_eq!(run.err().status(), Some(s));
        assert_eq!(run.err().kind(), ErrorKind::Failed);
    }
}

#[test]
fn imds_stops_after_five_retries_with_the_last_status() {
    let mut flow = imds_flow(5);
    let script = [404, 429, 500, 503, 504, 404].map(status);
    let run = drive(&mut flow, t0(), script);
    assert_eq!(run.sends.len(), 6);
    assert_eq!(run.sleeps.len(), 5);
    assert_eq!(run.err().status(), Some(404));
    assert_eq!(run.err().kind(), ErrorKind::Failed);
    // A success on the last allowed attempt is a success.
    let mut flow = imds_flow(5);
    let mut script = repeat(5, || status(500));
    script.push(token("FAKE", 3600));
    assert_eq!(drive(&mut flow, t0(), script).ok().secret(), "FAKE");
}

#[test]
fn imds_410_is_retried_for_at_least_70_seconds() {
    for seed in [0, 1, 2, 3, 42, 1000, u64::MAX] {
        let mut flow = imds_flow(seed);
        let run = drive(&mut flow, t0(), repeat(100, || status(410)));
        let offsets = run.send_offsets();
        let last = *offsets.last().unwrap();
        let before_last = offsets[offsets.len() - 2];
        assert!(
            offsets.len() > 6,
            "seed {seed}: more than 5 retries for a 410: {offsets:?}"
        );
        assert!(
            last >= 70.0,
            "seed {seed}: last attempt at {last} s: {offsets:?}"
        );
        assert!(
            before_last < 70.0,
            "seed {seed}: retried past 70 s: {offsets:?}"
        );
        assert!(last <= 90.0, "seed {seed}: attempt after 90 s: {offsets:?}");
        assert_eq!(run.err().status(), Some(410));
        assert_eq!(run.err().kind(), ErrorKind::Failed);
        // The computed schedule applies to a 410 too.
        let n = run.sleeps.len() as u32;
        assert_eq!(
            run.sleeps,
            computed_delays(RetryPolicy::Imds, seed, n),
            "seed {seed}"
        );
    }
}

#[test]
fn imds_410_window_with_slow_responses() {
    for latency in [1, 5, 10, 29, 30] {
        let mut flow = imds_flow(9);
        let run = drive_with(
            &mut flow,
            t0(),
            repeat(100, || status(410)),
            Duration::from_secs(latency),
            400,
        );
        let offsets = run.send_offsets();
        let finished = secs_between(run.sends[0].0, run.end);
        assert!(
            finished >= 70.0,
            "latency {latency}: gave up at {finished} s: {offsets:?}"
        );
        assert!(
            offsets.iter().all(|o| *o <= 90.0),
            "latency {latency}: {offsets:?}"
        );
        // The last attempt is the first whose answer came at or after 70 s.
        let answers: Vec<f64> = offsets.iter().map(|o| o + latency as f64).collect();
        assert!(
            answers[..answers.len() - 1].iter().all(|a| *a < 70.0),
            "{answers:?}"
        );
    }
}

#[test]
fn imds_410_with_a_zero_server_delay_does_not_spin() {
    // 410 has no retry count limit, only the 70 s window: a server asking for no delay must not
    // turn that into an unbounded burst of requests at the same instant.
    for (name, value) in [
        ("retry-after", "0"),
        ("retry-after-ms", "0"),
        ("x-ms-retry-after-ms", "1"),
        ("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"),
    ] {
        let mut flow = imds_flow(3);
        let run = drive_with(
            &mut flow,
            t0(),
            repeat(100, || status_with(410, name, value)),
            Duration::ZERO,
            64,
        );
        let offsets = run.send_offsets();
        assert!(
            offsets.len() <= 16,
            "{name}: {value}: {} attempts",
            offsets.len()
        );
        assert!(*offsets.last().unwrap() >= 70.0, "{name}: {offsets:?}");
        assert!(offsets.iter().all(|o| *o <= 90.0), "{name}: {offsets:?}");
        assert_eq!(run.err().status(), Some(410));
    }
    // A longer server delay still replaces the computed one for a 410.
    let mut flow = imds_flow(3);
    let run = drive(
        &mut flow,
        t0(),
        [status_with(410, "retry-after", "10"), token("FAKE", 3600)],
    );
    assert_eq!(run.sleeps, [Duration::from_secs(10)]);
}

// ---------------------------------------------------------------------------------------------
// Server delays (PROTOCOL.md §1.8)
// ---------------------------------------------------------------------------------------------

/// `Some(d)`: the server's delay `d` replaces the computed one; `None`: the computed delay.
fn first_sleep_with(headers: &[(&str, &str)], app_service: bool) -> (Duration, Duration) {
    let mut flow = if app_service {
        app_flow(77)
    } else {
        imds_flow(77)
    };
    let first = Outcome::Response(resp(503, headers, b""));
    let run = drive(&mut flow, t0(), [first, token("FAKE", 3600)]);
    assert_eq!(run.sends.len(), 2, "{headers:?}");
    // A zero delay produces no Sleep action at all: measure when the retry went out.
    let waited = run.sends[1].0 - run.sends[0].0;
    assert_eq!(run.sleep_total(), waited, "{headers:?}");
    assert!(run.sleeps.len() <= 1, "{headers:?}");
    let policy = if app_service {
        RetryPolicy::Standard
    } else {
        RetryPolicy::Imds
    };
    (
        waited.try_into().unwrap(),
        computed_delays(policy, 77, 1)[0],
    )
}

#[test]
fn every_retry_after_form_replaces_the_computed_delay() {
    // t0 is Thursday 2026-11-26 10:18:20 UTC.
    type Case = (&'static [(&'static str, &'static str)], Option<Duration>);
    let cases: &[Case] = &[
        (&[("Retry-After", "3")], Some(secs(3.0))),
        (&[("retry-after", "0")], Some(Duration::ZERO)),
        (&[("Retry-After", " 7 ")], Some(secs(7.0))),
        (
            &[("Retry-After", "Thu, 26 Nov 2026 10:18:27 GMT")],
            Some(secs(7.0)),
        ),
        (
            &[("Retry-After", "Thu Nov 26 10:18:27 2026")],
            Some(secs(7.0)),
        ),
        (
            &[("Retry-After", "Thu, 26 Nov 2026 09:00:00 GMT")],
            Some(Duration::ZERO),
        ),
        (&[("retry-after-ms", "1500")], Some(secs(1.5))),
        (&[("x-ms-retry-after-ms", "2500")], Some(secs(2.5))),
        (
            &[("X-MS-Retry-After-MS", "5")],
            Some(Duration::from_millis(5)),
        ),
        // Precedence: retry-after-ms, then x-ms-retry-after-ms, then Retry-After.
        (
            &[
                ("retry-after", "3"),
                ("x-ms-retry-after-ms", "200"),
                ("retry-after-ms", "100"),
            ],
            Some(Duration::from_millis(100)),
        ),
        (
            &[("retry-after", "3"), ("x-ms-retry-after-ms", "200")],
            Some(Duration::from_millis(200)),
        ),
        (
            &[("retry-after", "3"), ("retry-after-ms", "100")],
            Some(Duration::from_millis(100)),
        ),
        // An unusable higher-precedence value falls through to the next.
        (
            &[("retry-after-ms", "soon"), ("x-ms-retry-after-ms", "200")],
            Some(Duration::from_millis(200)),
        ),
        (
            &[("retry-after-ms", "-5"), ("retry-after", "4")],
            Some(secs(4.0)),
        ),
        (
            &[("x-ms-retry-after-ms", "1.5"), ("retry-after", "4")],
            Some(secs(4.0)),
        ),
        // Negative or unparseable values are ignored: the computed delay applies.
        (&[("Retry-After", "-1")], None),
        (&[("Retry-After", "soon")], None),
        (&[("Retry-After", "1.5")], None),
        (&[("Retry-After", "")], None),
        (&[("Retry-After", "+3")], None),
        (&[("Retry-After", "3 s")], None),
        (&[("Retry-After", "Thu, 26 Nov 2026 10:18:27")], None),
        (&[("retry-after-ms", "-1")], None),
        (&[("retry-after-ms", "")], None),
        (&[("x-ms-retry-after-ms", "abc")], None),
        (&[("retry-after-MS-typo", "3")], None),
    ];
    for app_service in [false, true] {
        for (headers, want) in cases {
            let (got, computed) = first_sleep_with(headers, app_service);
            match want {
                Some(d) => assert_eq!(got, *d, "{headers:?} (App Service: {app_service})"),
                None => assert_eq!(got, computed, "{headers:?} (App Service: {app_service})"),
            }
        }
    }
}

#[test]
fn a_server_delay_beyond_the_budget_stops_at_once() {
    for (app_service, value, wait) in [
        (false, "120", 120),
        (false, "91", 91),
        (true, "31", 31),
        (true, "Thu, 26 Nov 2026 10:20:20 GMT", 120),
    ] {
        let mut flow = if app_service {
            app_flow(1)
        } else {
            imds_flow(1)
        };
        let run = drive(&mut flow, t0(), [status_with(503, "retry-after", value)]);
        assert_eq!(run.sends.len(), 1, "{value}");
        assert!(run.sleeps.is_empty(), "{value}");
        let e = run.err();
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert_eq!(e.status(), Some(503));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(wait)), "{value}");
        assert!(
            e.to_string()
                .contains(&format!("[server asked to retry after {wait} s]")),
            "{e}"
        );
    }
    // A 410 too, although its window is 70 s.
    let mut flow = imds_flow(1);
    let run = drive(&mut flow, t0(), [status_with(410, "retry-after", "120")]);
    assert_eq!(run.err().retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(run.err().status(), Some(410));
    // An absurdly long delay saturates instead of overflowing.
    let mut flow = imds_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        [status_with(429, "retry-after", "99999999999999999999999")],
    );
    assert!(run.err().retry_after().unwrap() > Duration::from_secs(90));
}

#[test]
fn the_budget_counts_from_the_first_attempt() {
    // Exactly the budget is allowed; one more is not.
    let mut flow = app_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        [
            status_with(503, "retry-after", "30"),
            status_with(503, "retry-after-ms", "1"),
        ],
    );
    assert_eq!(run.sleeps, [secs(30.0)]);
    assert_eq!(run.err().retry_after(), Some(Duration::from_millis(1)));

    let mut flow = imds_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        repeat(3, || status_with(429, "retry-after", "40")),
    );
    assert_eq!(run.sleeps, [secs(40.0), secs(40.0)]);
    assert_eq!(run.send_offsets(), [0.0, 40.0, 80.0]);
    assert_eq!(run.err().retry_after(), Some(secs(40.0)));
    assert_eq!(run.err().status(), Some(429));

    let mut flow = imds_flow(1);
    let run = drive(
        &mut flow,
        t0(),
        [status_with(429, "retry-after", "90"), token("FAKE", 3600)],
    );
    assert_eq!(run.sleeps, [secs(90.0)]);
    assert!(run.result.is_ok());
}

#[test]
fn slow_timeouts_run_into_the_budget() {
    // Each attempt times out after 30 s: 0 → 30 (+1×J) → ~61 (+2×J) → ~93 > 90: stop.
    let mut flow = imds_flow(4);
    let run = drive_with(
        &mut flow,
        t0(),
        repeat(10, || fail(TransportFailure::Timeout)),
        Duration::from_secs(30),
        100,
    );
    assert_eq!(run.sends.len(), 3);
    assert!(run.send_offsets().iter().all(|o| *o <= 90.0));
    let e = run.err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.status(), None);
    assert!(e.to_string().contains("3 attempt(s)"), "{e}");

    let mut flow = app_flow(4);
    let run = drive_with(
        &mut flow,
        t0(),
        repeat(10, || fail(TransportFailure::ConnectTimeout)),
        Duration::from_secs(10),
        100,
    );
    // Sent at 0 → fails at 10 (+0.8×J) → sent at ~11, fails at ~21 (+1.6×J) → sent at ~22.6,
    // fails at ~32.6: 32.6 + 3.2×J > 30: stop.
    assert_eq!(run.sends.len(), 3);
    assert!(run.send_offsets().iter().all(|o| *o <= 30.0));
    assert_eq!(run.err().kind(), ErrorKind::Unavailable);
}

#[test]
fn timeouts_use_the_computed_schedule_and_the_retry_count() {
    let mut flow = imds_flow(11);
    let run = drive(
        &mut flow,
        t0(),
        repeat(6, || fail(TransportFailure::Timeout)),
    );
    assert_eq!(run.sleeps, computed_delays(RetryPolicy::Imds, 11, 5));
    let mut flow = app_flow(11);
    let run = drive(
        &mut flow,
        t0(),
        repeat(4, || fail(TransportFailure::ConnectionReset)),
    );
    assert_eq!(run.sleeps, computed_delays(RetryPolicy::Standard, 11, 3));
    // Statuses and timeouts share the count.
    let mut flow = imds_flow(11);
    let script = vec![
        status(503),
        fail(TransportFailure::Timeout),
        status(429),
        fail(TransportFailure::ConnectTimeout),
        status(500),
        fail(TransportFailure::Timeout),
    ];
    let run = drive(&mut flow, t0(), script);
    assert_eq!(run.sends.len(), 6);
    assert_eq!(run.err().kind(), ErrorKind::Unavailable);
}

#[test]
fn refused_and_unreachable_are_never_retried() {
    for failure in [
        TransportFailure::ConnectionRefused,
        TransportFailure::Unreachable,
    ] {
        for mut flow in [imds_flow(1), app_flow(1)] {
            let run = drive(&mut flow, t0(), [fail(failure.clone())]);
            assert_eq!(run.sends.len(), 1);
            assert!(run.sleeps.is_empty());
            assert_eq!(run.end, t0(), "no time spent");
            assert_eq!(run.err().kind(), ErrorKind::Unavailable);
        }
    }
}

#[test]
fn the_token_is_stamped_with_the_send_time_of_its_attempt() {
    let mut flow = imds_flow(2);
    let run = drive_with(
        &mut flow,
        t0(),
        [status(503), token("FAKE", 3600)],
        Duration::from_secs(2),
        50,
    );
    let t_req = run.sends[1].0;
    assert_eq!(run.ok().expires_on(), t_req + Duration::from_secs(3600));
    assert_eq!(run.ok().refresh_on(), t_req + Duration::from_secs(3300));
}

// ---------------------------------------------------------------------------------------------
// The probe (PROTOCOL.md §2.1)
// ---------------------------------------------------------------------------------------------

fn probing_mi() -> ManagedIdentity {
    mi(
        &imds_env(),
        ManagedIdentityOptions::default().with_imds_probe(true),
    )
}

#[test]
fn any_probe_answer_but_403_unreachable_proceeds_to_the_real_request() {
    let answers: Vec<(u16, &[u8])> = vec![
        (400, br#"{"error":"invalid_request","error_description":"Required metadata header not specified"}"#),
        (404, b""),
        (500, b"oops"),
        (503, b""),
        (200, b"anything"),
        (401, b""),
        (403, b"forbidden"),
        (410, b""),
        (302, b""),
    ];
    for (s, body) in answers {
        let mi = probing_mi();
        let mut flow = mi.flow(&[SCOPE], 1).unwrap();
        let run = drive(
            &mut flow,
            t0(),
            [Outcome::Response(resp(s, &[], body)), token("FAKE", 3600)],
        );
        assert_eq!(run.sends.len(), 2, "{s}");
        assert!(run.sleeps.is_empty(), "{s}: no sleep after the probe");
        let (probe, real) = (&run.sends[0].1, &run.sends[1].1);
        assert!(probe.headers().get("metadata").is_none(), "{s}");
        assert!(probe.uri().query().is_none(), "{s}");
        assert_eq!(real.headers()["metadata"], "true", "{s}");
        assert!(real.uri().query().is_some(), "{s}");
        assert_eq!(run.ok().secret(), "FAKE", "{s}");
        assert_eq!(flow.attempts(), 1, "{s}");
    }
}

#[test]
fn a_failed_probe_is_unavailable_and_not_retried() {
    let outcomes = vec![
        Outcome::Response(resp(403, &[], b"dial tcp: connect: network is unreachable")),
        fail(TransportFailure::ConnectionRefused),
        fail(TransportFailure::Unreachable),
        fail(TransportFailure::ConnectTimeout),
        fail(TransportFailure::Timeout),
        fail(TransportFailure::ConnectionReset),
        fail(TransportFailure::Other("no route".into())),
    ];
    for outcome in outcomes {
        let what = format!("{outcome:?}");
        let mi = probing_mi();
        let mut flow = mi.flow(&[SCOPE], 1).unwrap();
        let run = drive(&mut flow, t0(), [outcome]);
        assert_eq!(run.sends.len(), 1, "{what}");
        assert!(run.sleeps.is_empty(), "{what}");
        let e = run.err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{what}");
        assert_eq!(e.url(), Some(IMDS_URL), "{what}");
        assert_eq!(flow.attempts(), 0, "{what}: no token request was sent");
        assert!(e.to_string().contains("probe"), "{what}: {e}");
        // A failure is not remembered: the next flow probes again.
        let mut next = mi.flow(&[SCOPE], 1).unwrap();
        assert_eq!(next.state(), FlowState::Probe, "{what}");
        assert!(
            expect_send(next.poll(t0()))
                .headers()
                .get("metadata")
                .is_none()
        );
    }
}

#[test]
fn after_a_probe_success_the_instance_never_probes_again() {
    let mi = probing_mi();
    // A flow made before the probe passed, and one made after.
    let mut early = mi.flow(&[SCOPE], 1).unwrap();
    let mut first = mi.flow(&[SCOPE], 1).unwrap();
    let run = drive(
        &mut first,
        t0(),
        [status(400), status(503), token("FAKE", 3600)],
    );
    assert_eq!(run.sends.len(), 3);
    assert!(run.result.is_ok());

    let mut later = mi.flow(&["https://vault.azure.net/.default"], 2).unwrap();
    assert_eq!(later.state(), FlowState::Ready);
    let request = expect_send(later.poll(t0()));
    assert_eq!(request.headers()["metadata"], "true");

    // The early flow was built with the probe armed, but the instance has passed it since.
    let request = expect_send(early.poll(t0()));
    assert_eq!(
        request.headers()["metadata"],
        "true",
        "probe sent again after a success"
    );
    assert_eq!(early.state(), FlowState::AwaitingResponse);

    // Another instance has its own probe.
    let other = probing_mi();
    assert_eq!(other.flow(&[SCOPE], 1).unwrap().state(), FlowState::Probe);
}

#[test]
fn a_probe_success_is_remembered_even_if_the_token_request_then_fails() {
    let mi = probing_mi();
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    let run = drive(&mut flow, t0(), [status(404), status(400)]);
    assert_eq!(run.err().status(), Some(400));
    assert_eq!(mi.flow(&[SCOPE], 1).unwrap().state(), FlowState::Ready);
}

#[test]
fn the_real_request_after_the_probe_runs_under_the_full_imds_policy() {
    let mi = probing_mi();
    let mut flow = mi.flow(&[SCOPE], 21).unwrap();
    let mut script = vec![status(400)];
    script.extend(repeat(6, || status(503)));
    let run = drive(&mut flow, t0(), script);
    assert_eq!(run.sends.len(), 7);
    assert_eq!(run.sleeps, computed_delays(RetryPolicy::Imds, 21, 5));
    assert_eq!(flow.attempts(), 6);
}

// ---------------------------------------------------------------------------------------------
// Sleeping, Done, and driver misuse
// ---------------------------------------------------------------------------------------------

#[test]
fn polling_early_while_sleeping_returns_the_remaining_time() {
    let mut flow = imds_flow(5);
    let _ = expect_send(flow.poll(t0()));
    flow.handle_response(t0(), resp(503, &[("retry-after", "8")], b""));
    assert_eq!(flow.state(), FlowState::Sleeping);
    assert_eq!(expect_sleep(flow.poll(t0())), secs(8.0));
    assert_eq!(expect_sleep(flow.poll(t0() + secs(2.5))), secs(5.5));
    assert_eq!(
        expect_sleep(flow.poll(t0() + secs(7.999))),
        Duration::from_millis(1)
    );
    // A clock that went backwards just means a longer sleep.
    assert_eq!(expect_sleep(flow.poll(t0() - secs(10.0))), secs(18.0));
    assert_eq!(flow.state(), FlowState::Sleeping);
    assert_eq!(flow.attempts(), 1);
    // At the deadline (or later) the next attempt goes out.
    let _ = expect_send(flow.poll(t0() + secs(8.0)));
    assert_eq!(flow.attempts(), 2);
    assert_eq!(flow.state(), FlowState::AwaitingResponse);
    // A late wake-up is fine too.
    flow.handle_response(t0() + secs(8.0), resp(503, &[("retry-after", "1")], b""));
    let _ = expect_send(flow.poll(t0() + secs(60.0)));
    assert_eq!(flow.attempts(), 3);
}

#[test]
fn done_is_repeated_on_every_poll() {
    let mut flow = imds_flow(1);
    let run = drive(&mut flow, t0(), [token("FAKE", 3600)]);
    for later in [0, 1, 10_000] {
        let again = expect_done(flow.poll(t0() + secs(later as f64)));
        assert_eq!(again.as_ref().ok(), Some(run.ok()));
    }
    let mut flow = imds_flow(1);
    let run = drive(&mut flow, t0(), [status(401)]);
    for _ in 0..3 {
        assert_eq!(expect_done(flow.poll(t0())).err().as_ref(), Some(run.err()));
    }
    // Outcomes fed after Done change nothing.
    flow.handle_response(
        t0(),
        resp(200, &[], br#"{"access_token":"X","expires_in":1}"#),
    );
    flow.handle_failure(t0(), TransportFailure::Timeout);
    assert_eq!(flow.state(), FlowState::Done);
    assert_eq!(expect_done(flow.poll(t0())).err().as_ref(), Some(run.err()));
}

fn assert_driver_error(flow: &mut TokenFlow) {
    assert_eq!(flow.state(), FlowState::Done);
    for _ in 0..2 {
        let e = expect_done(flow.poll(t0())).expect_err("misuse must fail");
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert!(e.message().contains("driver error"), "{e}");
        assert!(e.to_string().contains("driver error"), "{e}");
    }
}

#[test]
fn driver_misuse_ends_the_flow_with_a_driver_error() {
    // poll while a token request is outstanding.
    let mut flow = imds_flow(1);
    let _ = expect_send(flow.poll(t0()));
    let e = expect_done(flow.poll(t0())).unwrap_err();
    assert!(e.message().contains("driver error"), "{e}");
    assert!(e.message().contains("poll"), "{e}");
    assert_driver_error(&mut flow);

    // poll while the probe is outstanding.
    let mi = probing_mi();
    let mut flow = mi.flow(&[SCOPE], 1).unwrap();
    let _ = expect_send(flow.poll(t0()));
    let _ = expect_done(flow.poll(t0()));
    assert_driver_error(&mut flow);

    // handle_response with nothing outstanding.
    let mut flow = imds_flow(1);
    flow.handle_response(t0(), resp(200, &[], b"{}"));
    assert_driver_error(&mut flow);
    let e = expect_done(flow.poll(t0())).unwrap_err();
    assert!(e.message().contains("handle_response"), "{e}");

    // handle_failure with nothing outstanding.
    let mut flow = app_flow(1);
    flow.handle_failure(t0(), TransportFailure::Timeout);
    assert_driver_error(&mut flow);

    // An outcome fed twice for one request.
    let mut flow = imds_flow(1);
    let _ = expect_send(flow.poll(t0()));
    flow.handle_response(t0(), resp(503, &[], b""));
    flow.handle_response(t0(), resp(503, &[], b""));
    assert_driver_error(&mut flow);
}

// ---------------------------------------------------------------------------------------------
// Jump into any state, then check every transition from it
// ---------------------------------------------------------------------------------------------

/// Drives a fresh IMDS flow (probe armed at the default address) to `target` along the path the
/// state graph gives; returns the flow and the clock.
fn flow_in(target: FlowState) -> (TokenFlow, OffsetDateTime) {
    let mi = probing_mi();
    let mut flow = mi.flow(&[SCOPE], 99).unwrap();
    let now = t0();
    let path = [
        FlowState::Probe,
        FlowState::AwaitingProbe,
        FlowState::Ready,
        FlowState::AwaitingResponse,
        FlowState::Sleeping,
    ];
    for state in path {
        assert_eq!(flow.state(), state);
        if state == target {
            return (flow, now);
        }
        match state {
            FlowState::Probe | FlowState::Ready => {
                let _ = expect_send(flow.poll(now));
            }
            FlowState::AwaitingProbe => flow.handle_response(now, resp(400, &[], b"")),
            FlowState::AwaitingResponse if target == FlowState::Done => {
                flow.handle_response(
                    now,
                    resp(200, &[], br#"{"access_token":"FAKE","expires_in":3600}"#),
                );
                assert_eq!(flow.state(), FlowState::Done);
                return (flow, now);
            }
            FlowState::AwaitingResponse => {
                flow.handle_response(now, resp(503, &[("retry-after", "5")], b""))
            }
            _ => unreachable!(),
        }
    }
    panic!("{target:?} is not on the path");
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Poll,
    PollAfterSleep,
    Token,
    Status(u16),
    Unreachable403,
    Fail(fn() -> TransportFailure),
}

#[derive(Debug, PartialEq)]
enum Then {
    Send,
    Sleep,
    /// No action: an outcome was fed.
    Quiet,
}

#[derive(Debug, PartialEq)]
enum Ends {
    Ok,
    Err(ErrorKind, &'static str),
    Not,
}

#[test]
fn every_transition_from_every_state() {
    use FlowState::*;
    let timeout: fn() -> TransportFailure = || TransportFailure::Timeout;
    let refused: fn() -> TransportFailure = || TransportFailure::ConnectionRefused;
    let driver = Ends::Err(ErrorKind::Failed, "driver error");
    let table: Vec<(FlowState, Op, FlowState, Then, Ends)> = vec![
        (Probe, Op::Poll, AwaitingProbe, Then::Send, Ends::Not),
        (Probe, Op::Token, Done, Then::Quiet, driver),
        (
            Probe,
            Op::Fail(timeout),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (
            AwaitingProbe,
            Op::Poll,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (
            AwaitingProbe,
            Op::Status(400),
            Ready,
            Then::Quiet,
            Ends::Not,
        ),
        (
            AwaitingProbe,
            Op::Status(503),
            Ready,
            Then::Quiet,
            Ends::Not,
        ),
        (AwaitingProbe, Op::Token, Ready, Then::Quiet, Ends::Not),
        (
            AwaitingProbe,
            Op::Unreachable403,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "probe"),
        ),
        (
            AwaitingProbe,
            Op::Fail(timeout),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "probe"),
        ),
        (
            AwaitingProbe,
            Op::Fail(refused),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "probe"),
        ),
        (Ready, Op::Poll, AwaitingResponse, Then::Send, Ends::Not),
        (
            Ready,
            Op::Token,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (
            Ready,
            Op::Fail(refused),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (
            AwaitingResponse,
            Op::Poll,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (AwaitingResponse, Op::Token, Done, Then::Quiet, Ends::Ok),
        (
            AwaitingResponse,
            Op::Status(503),
            Sleeping,
            Then::Quiet,
            Ends::Not,
        ),
        (
            AwaitingResponse,
            Op::Status(400),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "system-assigned"),
        ),
        (
            AwaitingResponse,
            Op::Status(401),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "refused"),
        ),
        (
            AwaitingResponse,
            Op::Unreachable403,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "unreachable"),
        ),
        (
            AwaitingResponse,
            Op::Fail(timeout),
            Sleeping,
            Then::Quiet,
            Ends::Not,
        ),
        (
            AwaitingResponse,
            Op::Fail(refused),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Unavailable, "connection refused"),
        ),
        (Sleeping, Op::Poll, Sleeping, Then::Sleep, Ends::Not),
        (
            Sleeping,
            Op::PollAfterSleep,
            AwaitingResponse,
            Then::Send,
            Ends::Not,
        ),
        (
            Sleeping,
            Op::Token,
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (
            Sleeping,
            Op::Fail(timeout),
            Done,
            Then::Quiet,
            Ends::Err(ErrorKind::Failed, "driver error"),
        ),
        (Done, Op::Poll, Done, Then::Quiet, Ends::Ok),
        (Done, Op::PollAfterSleep, Done, Then::Quiet, Ends::Ok),
        (Done, Op::Status(503), Done, Then::Quiet, Ends::Ok),
        (Done, Op::Fail(refused), Done, Then::Quiet, Ends::Ok),
    ];
    for (from, op, to, then, ends) in table {
        let what = format!("{from:?} --{op:?}-->");
        let (mut flow, now) = flow_in(from);
        let attempts_before = flow.attempts();
        let action = match op {
            Op::Poll => Some(flow.poll(now)),
            Op::PollAfterSleep => Some(flow.poll(now + secs(5.0))),
            Op::Token => {
                flow.handle_response(
                    now,
                    resp(200, &[], br#"{"access_token":"FAKE","expires_in":3600}"#),
                );
                None
            }
            Op::Status(s) => {
                flow.handle_response(now, resp(s, &[], b""));
                None
            }
            Op::Unreachable403 => {
                flow.handle_response(now, resp(403, &[], b"network is unreachable"));
                None
            }
            Op::Fail(f) => {
                flow.handle_failure(now, f());
                None
            }
        };
        assert_eq!(flow.state(), to, "{what}");
        match (&then, action) {
            (Then::Send, Some(Action::Send(_))) => {}
            (Then::Sleep, Some(Action::Sleep(d))) => assert_eq!(d, secs(5.0), "{what}"),
            (Then::Quiet, None) => {}
            // A poll that ends the flow returns Done at once.
            (Then::Quiet, Some(Action::Done(_))) => {}
            (then, action) => panic!("{what}: expected {then:?}, got {action:?}"),
        }
        let expected_attempts = match (from, &then) {
            (Ready | Sleeping, Then::Send) => attempts_before + 1,
            _ => attempts_before,
        };
        assert_eq!(flow.attempts(), expected_attempts, "{what}");
        match ends {
            Ends::Not => assert_ne!(flow.state(), FlowState::Done, "{what}"),
            Ends::Ok => {
                let token = expect_done(flow.poll(now)).unwrap();
                assert_eq!(token.secret(), "FAKE", "{what}");
            }
            Ends::Err(kind, needle) => {
                let e = expect_done(flow.poll(now)).unwrap_err();
                assert_eq!(e.kind(), kind, "{what}: {e}");
                assert!(
                    e.to_string().contains(needle),
                    "{what}: {e} should contain {needle:?}"
                );
            }
        }
    }
}

#[test]
fn a_sleeping_flow_says_why_it_sleeps() {
    use azmi_core::retry::SleepReason;
    type Feed = fn(&mut TokenFlow);
    let table: [(&str, Feed, SleepReason); 3] = [
        (
            "Retry-After on a 503",
            |f| f.handle_response(t0(), resp(503, &[("retry-after", "3")], b"")),
            SleepReason::ServerDelay { status: 503 },
        ),
        (
            "a 500 with no delay",
            |f| f.handle_response(t0(), resp(500, &[], b"")),
            SleepReason::Backoff { status: 500 },
        ),
        (
            "a timeout",
            |f| f.handle_failure(t0(), TransportFailure::Timeout),
            SleepReason::TransientFailure,
        ),
    ];
    for (name, feed, want) in table {
        let mut flow = imds_flow(5);
        assert_eq!(flow.sleep_reason(), None, "{name}");
        let _ = expect_send(flow.poll(t0()));
        assert!(!flow.awaiting_probe(), "{name}");
        feed(&mut flow);
        assert_eq!(flow.sleep_reason(), Some(want), "{name}");
        let _ = expect_sleep(flow.poll(t0()));
        assert_eq!(flow.sleep_reason(), Some(want), "{name}: still sleeping");
        let _ = expect_send(flow.poll(t0() + Duration::from_secs(3600)));
        assert_eq!(flow.sleep_reason(), None, "{name}: sent again");
    }
}

#[test]
fn the_underlying_cause_is_kept_where_there_is_one() {
    use std::error::Error as _;
    // A transport failure handed over with its cause: the final error returns it.
    let mut flow = app_flow(1);
    let _ = expect_send(flow.poll(t0()));
    let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    flow.handle_failure_caused(
        t0(),
        TransportFailure::ConnectionRefused,
        Some(std::sync::Arc::new(io)),
    );
    let Action::Done(Err(e)) = flow.poll(t0()) else {
        panic!("refused ends the flow")
    };
    let cause = e.source().expect("the I/O error");
    assert!(cause.downcast_ref::<std::io::Error>().is_some());

    // A 2xx body that is not JSON: the parser's position, never the body.
    let mut flow = app_flow(1);
    let _ = expect_send(flow.poll(t0()));
    flow.handle_response(t0(), resp(200, &[], b"<html>SENTINEL-TOKEN"));
    let Action::Done(Err(e)) = flow.poll(t0()) else {
        panic!("not JSON ends the flow")
    };
    let cause = e.source().expect("the JSON error");
    assert!(
        cause
            .downcast_ref::<azmi_core::cause::JsonError>()
            .is_some()
    );
    assert!(!format!("{cause} {cause:?} {e:?}").contains("SENTINEL"));

    // No underlying cause: a status error, a failure handed over without one.
    let mut flow = app_flow(1);
    let _ = expect_send(flow.poll(t0()));
    flow.handle_response(t0(), resp(400, &[], br#"{"error":"bad"}"#));
    let Action::Done(Err(e)) = flow.poll(t0()) else {
        panic!("400 ends the flow")
    };
    assert!(e.source().is_none());
    let mut flow = app_flow(1);
    let _ = expect_send(flow.poll(t0()));
    flow.handle_failure(t0(), TransportFailure::ConnectionRefused);
    let Action::Done(Err(e)) = flow.poll(t0()) else {
        panic!("refused ends the flow")
    };
    assert!(e.source().is_none());
}

#[test]
fn a_failed_file_read_keeps_its_io_error_and_unusable_contents_have_none() {
    use std::error::Error as _;
    let env = azmi_core::EnvSnapshot::from_pairs([
        (
            "IDENTITY_ENDPOINT",
            "http://127.0.0.1:40342/metadata/identity/oauth2/token",
        ),
        ("IMDS_ENDPOINT", "http://127.0.0.1:40342"),
    ])
    .with_arc_token_dir(Some("/tmp/arc-tokens".to_string()));
    // (name, what the read produced, cause expected)
    type Read = Result<Vec<u8>, azmi_core::FileFailure>;
    let table: [(&str, Read, bool); 2] = [
        ("missing", Err(azmi_core::FileFailure::NotFound), true),
        ("not a key", Ok(b"not a key \x07".to_vec()), false),
    ];
    for (name, contents, expected) in table {
        let mut flow = mi(&env, ManagedIdentityOptions::default())
            .flow(&[SCOPE], 1)
            .unwrap();
        let _ = expect_send(flow.poll(t0()));
        let challenge = [("www-authenticate", "Basic realm=/tmp/arc-tokens/k.key")];
        flow.handle_response(t0(), resp(401, &challenge, b""));
        let Action::ReadFile { .. } = flow.poll(t0()) else {
            panic!("{name}: the key file is read")
        };
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        flow.handle_file_caused(t0(), contents, Some(std::sync::Arc::new(io)));
        let Action::Done(Err(e)) = flow.poll(t0()) else {
            panic!("{name}: the flow ends")
        };
        assert_eq!(e.source().is_some(), expected, "{name}: {e}");
    }
}
