//! Seeds: PROTOCOL.md's examples and realistic variations, as raw bytes or as descriptions.

use arbitrary::Arbitrary;
use azmi_core::arc::KEY_FILE_LIMIT;

use super::certificate::{
    BlockDesc, CERT_A, CERT_B, CERT_EC, CertKind, KEY_A1, KEY_A8, KEY_B8, KEY_EC8, KeyKind, P12_A,
    P12_A_EMPTY, PemBlockDesc, PemDamage, PemDesc,
};
use super::challenge::{
    AGENT_DIRS, CHALLENGE_EXAMPLES, ChallengeDesc, ExtDesc, KeyDesc, QuoteDesc, RootDesc,
    SchemeDesc, SegmentDesc,
};
use super::encode::{Bytes, Encode, List, Text, decode, encode};
use super::entra::{
    AadstsDesc, ENTRA_EXAMPLES, EchoDesc, EntraBodyDesc, EntraDesc, EntraOutcomeDesc, EntraStepDesc,
};
use super::error_body::{BodyForm, ERROR_EXAMPLES, ErrField, ErrorBodyDesc, Plant, PlantAt};
use super::flow::{
    BodyDesc, EnvDesc, FailureDesc, FileDesc, FlowDesc, IdValue, IdentityDesc, OutcomeDesc,
    RealmDesc, ResponseDesc, ScopeDesc, SecretDesc, StatusDesc, StepDesc, TOKEN_EXAMPLES, WakeDesc,
};
use super::oracle::Clock;
use super::retry_after::{
    HeaderNameDesc, RETRY_AFTER_EXAMPLES, RetryDesc, RetryHeaderDesc, RetryValue,
};
use super::thumbprint::{DamageDesc, FlipDesc, SepDesc, THUMBPRINT_EXAMPLES, ThumbprintDesc};
use super::token_response::{
    Clock2017, DateParts, EXPIRY_EXAMPLES, ExpiryDesc, ExtraDesc, ExtraKey, JsonDesc, KEYS, Layout,
    Offset3339, STRINGS, SecondsDesc, TokenDesc, Wrap, Zone2017,
};

/// One seed input: the target it belongs to, a file name, the bytes.
#[derive(Clone, Debug)]
pub struct Seed {
    /// The target (directory under `fuzz/corpus/`).
    pub target: &'static str,
    /// The file name.
    pub name: String,
    /// The input.
    pub bytes: Vec<u8>,
}

impl DateParts {
    /// The parts that [`DateParts::fields`] reads back as this valid date-time.
    pub fn new(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Self {
        DateParts {
            year,
            month: month - 1,
            day: day - 1,
            hour,
            minute,
            second,
        }
    }
}

fn text(s: &str) -> Text {
    Text::of(s)
}

fn known(s: &str) -> JsonDesc {
    match STRINGS.iter().position(|&k| k == s) {
        Some(i) => JsonDesc::Known(u8::try_from(i).unwrap_or(0)),
        None => JsonDesc::Str(text(s)),
    }
}

fn key(name: &str) -> ExtraKey {
    match KEYS.iter().position(|&k| k == name) {
        Some(i) => ExtraKey::Known(u8::try_from(i).unwrap_or(0)),
        None => ExtraKey::Any(text(name)),
    }
}

fn extra(name: &str, value: JsonDesc) -> ExtraDesc {
    ExtraDesc {
        key: key(name),
        value,
    }
}

fn plain() -> Layout {
    Layout {
        rotate: 0,
        escape_keys: false,
        pretty: false,
        wrap: Wrap::Plain(),
    }
}

fn token(
    access: &str,
    expires_on: Option<ExpiryDesc>,
    expires_in: Option<SecondsDesc>,
) -> TokenDesc {
    TokenDesc {
        t_req: Clock::Near(295_688_300),
        access_token: Some(JsonDesc::Str(text(access))),
        expires_on,
        expires_in,
        refresh_in: None,
        token_type: Some(known("Bearer")),
        client_id: None,
        object_id: None,
        resource_id: None,
        extras: List(vec![extra(
            "resource",
            known("https://management.azure.com"),
        )]),
        layout: plain(),
    }
}

/// Token responses as descriptions: every shape of PROTOCOL.md's examples.
pub fn token_descs() -> Vec<(&'static str, TokenDesc)> {
    let nov26 = DateParts::new(2026, 11, 26, 11, 18, 20);
    let mut imds = token(
        "FAKE-imds-token",
        Some(ExpiryDesc::Digits(1_795_774_700, 0)),
        Some(SecondsDesc::Digits(86_400, 0)),
    );
    imds.client_id = Some(known("11111111-2222-3333-4444-555555555555"));
    imds.extras
        .0
        .push(extra("ext_expires_in", JsonDesc::Str(text("86399"))));
    imds.extras
        .0
        .push(extra("not_before", JsonDesc::Str(text("1795688000"))));
    let mut entra = token("FAKE-entra-token", None, Some(SecondsDesc::Int(5399)));
    entra.refresh_in = Some(SecondsDesc::Int(2699));
    let mut arc_ua = token(
        "FAKE-arc-token",
        Some(ExpiryDesc::Digits(1_795_774_700, 0)),
        Some(SecondsDesc::Digits(86_400, 0)),
    );
    arc_ua.client_id = Some(known("11111111-2222-3333-4444-555555555555"));
    arc_ua.resource_id = Some((false, known(STRINGS[6])));
    let mut pretty = token("FAKE-pretty", Some(ExpiryDesc::Int(1_795_691_900)), None);
    pretty.layout = Layout {
        rotate: 2,
        escape_keys: true,
        pretty: true,
        wrap: Wrap::Whitespace(),
    };
    let mut dup = token("FAKE-dup", Some(ExpiryDesc::Digits(1_795_691_900, 0)), None);
    dup.extras.0.push(extra(
        "expires_on",
        JsonDesc::Str(text("11/26/2026 11:18:20 AM +00:00")),
    ));
    dup.extras.0.push(extra("access_token", JsonDesc::Empty()));
    let mut array = token("FAKE", None, Some(SecondsDesc::Int(3600)));
    array.layout.wrap = Wrap::Array();
    let mut cut = token("FAKE", None, Some(SecondsDesc::Int(3600)));
    cut.layout.wrap = Wrap::Truncate(20);
    let mut far = token(
        "FAKE-far",
        None,
        Some(SecondsDesc::UInt(9_223_372_036_854_775_807)),
    );
    far.t_req = Clock::Far(0);
    vec![
        ("imds", imds),
        (
            "appsvc",
            token(
                "FAKE-appsvc-token",
                Some(ExpiryDesc::Digits(1_795_691_900, 0)),
                None,
            ),
        ),
        (
            "legacy-12h",
            token(
                "FAKE-legacy-token",
                Some(ExpiryDesc::Date2017(
                    nov26.clone(),
                    Clock2017::Twelve(0),
                    Zone2017::Exact(),
                    0,
                )),
                None,
            ),
        ),
        (
            "legacy-24h",
            token(
                "FAKE-legacy-token",
                Some(ExpiryDesc::Date2017(
                    DateParts::new(2019, 6, 20, 2, 57, 58),
                    Clock2017::TwentyFour(),
                    Zone2017::Exact(),
                    7,
                )),
                None,
            ),
        ),
        (
            "legacy-midnight",
            token(
                "FAKE",
                Some(ExpiryDesc::Date2017(
                    DateParts::new(2026, 11, 26, 0, 18, 20),
                    Clock2017::Twelve(3),
                    Zone2017::Exact(),
                    0,
                )),
                None,
            ),
        ),
        (
            "legacy-no-zone",
            token(
                "FAKE",
                Some(ExpiryDesc::Date2017(
                    nov26.clone(),
                    Clock2017::TwentyFour(),
                    Zone2017::Missing(),
                    0,
                )),
                Some(SecondsDesc::Int(3600)),
            ),
        ),
        (
            "rfc3339",
            token(
                "FAKE",
                Some(ExpiryDesc::Rfc3339(
                    nov26.clone(),
                    0,
                    Some((123_000_000, 3)),
                    Offset3339::Plus(1, 0),
                )),
                None,
            ),
        ),
        (
            "rfc3339-past-9999",
            token(
                "FAKE",
                Some(ExpiryDesc::Rfc3339(
                    DateParts::new(9999, 12, 31, 23, 0, 0),
                    0,
                    None,
                    Offset3339::Minus(5, 0),
                )),
                None,
            ),
        ),
        (
            "ml-int",
            token("FAKE-ml-token", Some(ExpiryDesc::Int(1_795_691_900)), None),
        ),
        (
            "negative-int",
            token("FAKE", Some(ExpiryDesc::Int(-377_705_116_800)), None),
        ),
        (
            "float",
            token(
                "FAKE",
                Some(ExpiryDesc::Float(17_956_919, 2)),
                Some(SecondsDesc::Digits(3600, 0)),
            ),
        ),
        (
            "huge",
            token(
                "FAKE",
                Some(ExpiryDesc::Huge(1, 0)),
                Some(SecondsDesc::Int(60)),
            ),
        ),
        ("entra-refresh-in", entra),
        ("arc-user-assigned", arc_ua),
        ("pretty-escaped", pretty),
        ("duplicates", dup),
        ("array", array),
        ("truncated", cut),
        ("far-clock", far),
        (
            "no-token",
            TokenDesc {
                access_token: None,
                ..token("", None, Some(SecondsDesc::Int(3600)))
            },
        ),
    ]
}

fn err(fields: Vec<ErrField>, plants: Vec<Plant>, form: BodyForm) -> ErrorBodyDesc {
    ErrorBodyDesc {
        fields: List(fields),
        plants: List(plants),
        filler: None,
        form,
    }
}

/// Error bodies as descriptions.
pub fn error_descs() -> Vec<(&'static str, ErrorBodyDesc)> {
    let oauth = vec![
        ErrField::Error(JsonDesc::Str(text("invalid_request"))),
        ErrField::ErrorDescription(JsonDesc::Str(text("Identity not found"))),
    ];
    let appsvc = vec![
        ErrField::StatusCode(400),
        ErrField::Message(JsonDesc::Str(text(
            "Unable to load the proper Managed Identity.",
        ))),
        ErrField::Other(
            text("correlationId"),
            JsonDesc::Str(text("00000000-0000-0000-0000-000000000000")),
        ),
    ];
    let sf = vec![ErrField::ErrorObject(
        Some(JsonDesc::Str(text("SecretHeaderNotFound"))),
        Some(JsonDesc::Str(text(
            "Secret is not found in the request headers.",
        ))),
    )];
    let top = |key: u8, id: u16| Plant {
        key,
        at: PlantAt::Top(),
        id,
    };
    let mut long = err(
        vec![ErrField::Other(text("x"), JsonDesc::Int(1))],
        vec![top(0, 9)],
        BodyForm::Prefixed(text("HTTP/1.0 400 ")),
    );
    long.filler = Some((40, text("padding-padding-padding-padding-padding-padding-")));
    vec![
        ("oauth", err(oauth.clone(), vec![], BodyForm::Json())),
        ("appsvc", err(appsvc, vec![], BodyForm::Json())),
        ("sf-nested", err(sf, vec![], BodyForm::Json())),
        (
            "code-only",
            err(
                vec![ErrField::ErrorObject(
                    Some(JsonDesc::Str(text("ManagedIdentityNotFound"))),
                    None,
                )],
                vec![],
                BodyForm::Json(),
            ),
        ),
        (
            "blank-description",
            err(
                vec![
                    ErrField::ErrorDescription(JsonDesc::Str(text("  "))),
                    ErrField::Error(JsonDesc::Str(text("e"))),
                ],
                vec![top(0, 1)],
                BodyForm::Json(),
            ),
        ),
        (
            "tokens-only",
            err(
                vec![],
                vec![
                    top(0, 1),
                    top(1, 2),
                    Plant {
                        key: 2,
                        at: PlantAt::Deep(3),
                        id: 3,
                    },
                ],
                BodyForm::Json(),
            ),
        ),
        (
            "tokens-truncated",
            err(
                vec![ErrField::Other(text("x"), JsonDesc::Int(1))],
                vec![
                    top(0, 1),
                    Plant {
                        key: 1,
                        at: PlantAt::InArray(),
                        id: 2,
                    },
                ],
                BodyForm::Truncated(60),
            ),
        ),
        (
            "tokens-pretty",
            err(
                vec![],
                vec![
                    top(2, 1),
                    Plant {
                        key: 0,
                        at: PlantAt::InObject(text("data")),
                        id: 2,
                    },
                ],
                BodyForm::Pretty(),
            ),
        ),
        (
            "tokens-html",
            err(vec![], vec![top(0, 4)], BodyForm::Html()),
        ),
        (
            "tokens-in-error",
            err(
                vec![],
                vec![Plant {
                    key: 0,
                    at: PlantAt::InError(),
                    id: 5,
                }],
                BodyForm::Json(),
            ),
        ),
        ("long-prefixed", long),
        (
            "control-characters",
            err(
                vec![ErrField::Message(JsonDesc::Str(text(
                    "line1\u{1b}[31mred\r\n\u{85}end",
                )))],
                vec![],
                BodyForm::Json(),
            ),
        ),
        ("blank", err(vec![], vec![], BodyForm::Blank(3))),
        ("docker", err(vec![], vec![], BodyForm::Example(14))),
    ]
}

/// Delay headers as descriptions.
pub fn retry_descs() -> Vec<(&'static str, RetryDesc)> {
    let h = |name: HeaderNameDesc, value: RetryValue| RetryHeaderDesc { name, value };
    let d = |headers: Vec<RetryHeaderDesc>| RetryDesc {
        now: 295_688_300,
        headers: List(headers),
    };
    vec![
        (
            "seconds",
            d(vec![h(HeaderNameDesc::RetryAfter(), RetryValue::Number(2))]),
        ),
        (
            "imf-date",
            d(vec![h(HeaderNameDesc::RetryAfter(), RetryValue::Imf(7, 0))]),
        ),
        (
            "imf-past",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::Imf(-3600, 0),
            )]),
        ),
        (
            "asctime",
            d(vec![h(
                HeaderNameDesc::RetryAfterCased(),
                RetryValue::Asctime(86_400),
            )]),
        ),
        (
            "rfc850",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::Rfc850(60),
            )]),
        ),
        (
            "ms-first",
            d(vec![
                h(HeaderNameDesc::RetryAfter(), RetryValue::Number(3)),
                h(HeaderNameDesc::XMsRetryAfterMs(), RetryValue::Number(1500)),
                h(HeaderNameDesc::RetryAfterMs(), RetryValue::Number(250)),
            ]),
        ),
        (
            "ms-unparseable",
            d(vec![
                h(HeaderNameDesc::RetryAfterMs(), RetryValue::Negative(1)),
                h(HeaderNameDesc::XMsRetryAfterMs(), RetryValue::Decimal(1, 5)),
                h(HeaderNameDesc::RetryAfter(), RetryValue::Padded(120, 5)),
            ]),
        ),
        (
            "repeated",
            d(vec![
                h(HeaderNameDesc::RetryAfter(), RetryValue::Huge(1)),
                h(HeaderNameDesc::RetryAfter(), RetryValue::Number(1)),
            ]),
        ),
        (
            "anywhere",
            d(vec![h(
                HeaderNameDesc::RetryAfter(),
                RetryValue::ImfAnywhere(0),
            )]),
        ),
    ]
}

/// Challenges as descriptions.
pub fn challenge_descs() -> Vec<(&'static str, ChallengeDesc)> {
    let seg = |s: &str| match AGENT_DIRS.iter().position(|&d| d == s) {
        Some(i) => SegmentDesc::Known(u8::try_from(i).unwrap_or(0)),
        None => SegmentDesc::Name(text(s)),
    };
    let key = KeyDesc {
        len: 64,
        near_limit: false,
        fill: b'a',
        poke: None,
    };
    let linux = ChallengeDesc {
        scheme: SchemeDesc::Basic(),
        quote: QuoteDesc::None(),
        root: RootDesc::Unix(),
        backslash: false,
        segments: List(vec![
            seg("var"),
            seg("opt"),
            seg("azcmagent"),
            seg("tokens"),
        ]),
        stem: Some(text("5f0c7e2a-fake")),
        ext: ExtDesc::Key(),
        suffix: None,
        key,
    };
    let windows = ChallengeDesc {
        quote: QuoteDesc::Both(),
        root: RootDesc::Drive(2),
        backslash: true,
        segments: List(vec![
            seg("ProgramData"),
            seg("AzureConnectedMachineAgent"),
            seg("Tokens"),
        ]),
        key: KeyDesc {
            len: 4,
            near_limit: true,
            fill: b'z',
            poke: None,
        },
        ..linux.clone()
    };
    let traversal = ChallengeDesc {
        segments: List(vec![
            seg("var"),
            seg("opt"),
            seg("azcmagent"),
            seg("tokens"),
            SegmentDesc::DotDot(),
        ]),
        key: KeyDesc {
            len: 5,
            near_limit: true,
            fill: b' ',
            poke: Some((7, b'\n')),
        },
        ..linux.clone()
    };
    vec![
        ("linux", linux.clone()),
        ("windows-quoted", windows),
        ("traversal", traversal),
        (
            "txt",
            ChallengeDesc {
                ext: ExtDesc::Txt(),
                ..linux.clone()
            },
        ),
        (
            "bearer",
            ChallengeDesc {
                scheme: SchemeDesc::Bearer(),
                ..linux.clone()
            },
        ),
        (
            "leading-quote",
            ChallengeDesc {
                quote: QuoteDesc::LeadingOnly(),
                ..linux.clone()
            },
        ),
        (
            "nul",
            ChallengeDesc {
                segments: List(vec![SegmentDesc::Nul()]),
                ..linux.clone()
            },
        ),
        (
            "relative",
            ChallengeDesc {
                root: RootDesc::Relative(),
                ..linux.clone()
            },
        ),
        (
            "bare-key",
            ChallengeDesc {
                stem: None,
                ..linux
            },
        ),
    ]
}

/// Expiry values as descriptions.
pub fn expiry_descs() -> Vec<(&'static str, ExpiryDesc)> {
    let nov26 = DateParts::new(2026, 11, 26, 11, 18, 20);
    vec![
        ("digits", ExpiryDesc::Digits(1_795_774_700, 0)),
        ("digits-zero-padded", ExpiryDesc::Digits(1_795_774_700, 3)),
        ("int", ExpiryDesc::Int(1_795_691_900)),
        ("int-min", ExpiryDesc::Int(-377_705_116_800)),
        ("uint-max", ExpiryDesc::UInt(u64::MAX)),
        ("huge", ExpiryDesc::Huge(7, 3)),
        (
            "windows-date",
            ExpiryDesc::Date2017(
                DateParts::new(2020, 1, 16, 5, 24, 12),
                Clock2017::Twelve(0),
                Zone2017::Exact(),
                0,
            ),
        ),
        (
            "linux-date",
            ExpiryDesc::Date2017(
                DateParts::new(2019, 6, 20, 2, 57, 58),
                Clock2017::TwentyFour(),
                Zone2017::Exact(),
                7,
            ),
        ),
        (
            "noon-lower",
            ExpiryDesc::Date2017(
                DateParts::new(2026, 11, 26, 12, 18, 20),
                Clock2017::Twelve(3),
                Zone2017::Exact(),
                0,
            ),
        ),
        (
            "date-bad-zone",
            ExpiryDesc::Date2017(nov26.clone(), Clock2017::Twelve(0), Zone2017::Compact(), 0),
        ),
        (
            "date-5-digit-year",
            ExpiryDesc::Date2017(nov26.clone(), Clock2017::TwentyFour(), Zone2017::Exact(), 8),
        ),
        (
            "rfc3339-z",
            ExpiryDesc::Rfc3339(nov26.clone(), 0, None, Offset3339::Z()),
        ),
        (
            "rfc3339-fraction-offset",
            ExpiryDesc::Rfc3339(
                nov26.clone(),
                4,
                Some((123_456_789, 9)),
                Offset3339::Minus(8, 30),
            ),
        ),
        (
            "rfc3339-no-zone",
            ExpiryDesc::Rfc3339(nov26, 5, None, Offset3339::Missing()),
        ),
        (
            "rfc3339-leap",
            ExpiryDesc::Rfc3339(
                DateParts::new(2016, 12, 31, 23, 59, 59),
                0,
                None,
                Offset3339::Z(),
            ),
        ),
        (
            "rfc3339-past-9999",
            ExpiryDesc::Rfc3339(
                DateParts::new(9999, 12, 31, 23, 0, 0),
                0,
                None,
                Offset3339::Minus(5, 0),
            ),
        ),
        ("float", ExpiryDesc::Float(17, 3)),
        ("null", ExpiryDesc::Other(JsonDesc::Null())),
        ("empty", ExpiryDesc::Other(JsonDesc::Empty())),
    ]
}

fn respond(status: StatusDesc, headers: Vec<RetryHeaderDesc>, body: BodyDesc) -> StepDesc {
    StepDesc {
        outcome: OutcomeDesc::Respond(ResponseDesc {
            status,
            headers: List(headers),
            body,
        }),
        latency_ms: 20,
        wake: WakeDesc::OnTime(),
    }
}

fn fail(f: FailureDesc) -> StepDesc {
    StepDesc {
        outcome: OutcomeDesc::Fail(f),
        latency_ms: 1000,
        wake: WakeDesc::OnTime(),
    }
}

fn example(i: usize) -> BodyDesc {
    BodyDesc::Example(u8::try_from(i).unwrap_or(0))
}

fn error_example(i: usize) -> BodyDesc {
    example(TOKEN_EXAMPLES.len() + i)
}

fn flow_desc(env: EnvDesc, identity: IdentityDesc, steps: Vec<StepDesc>) -> FlowDesc {
    FlowDesc {
        env,
        identity,
        probe: false,
        scope: ScopeDesc::Known(0),
        jitter: 7,
        start: 95_688_300,
        steps: List(steps),
        again: false,
    }
}

/// Whole flows as descriptions: PROTOCOL.md's exchanges and the §1.8/§1.9 cases.
pub fn flow_descs() -> Vec<(&'static str, FlowDesc)> {
    let pod = EnvDesc::Pod(0);
    let app = EnvDesc::AppService(0, SecretDesc::Planted(1));
    let sys = IdentityDesc::System;
    let client = || IdentityDesc::Client(IdValue::Guid(0x1111_1111_2222_3333_4444_5555_5555_5555));
    let ra = |n: u32| {
        vec![RetryHeaderDesc {
            name: HeaderNameDesc::RetryAfter(),
            value: RetryValue::Number(n),
        }]
    };
    let ms = |n: u32| {
        vec![RetryHeaderDesc {
            name: HeaderNameDesc::RetryAfterMs(),
            value: RetryValue::Number(n),
        }]
    };
    let planted_token = BodyDesc::Token(
        Box::new(token("x", Some(ExpiryDesc::Digits(1_795_774_700, 0)), None)),
        true,
    );
    let mut probe_ok = flow_desc(
        EnvDesc::Imds(),
        sys(),
        vec![
            respond(StatusDesc::S400(), vec![], error_example(1)),
            respond(StatusDesc::S200(), vec![], example(0)),
        ],
    );
    probe_ok.probe = true;
    probe_ok.again = true;
    let mut probe_refused = flow_desc(EnvDesc::Imds(), sys(), vec![fail(FailureDesc::Refused())]);
    probe_refused.probe = true;
    probe_refused.again = true;
    let mut probe_docker = flow_desc(
        EnvDesc::Imds(),
        sys(),
        vec![respond(
            StatusDesc::S403(),
            vec![],
            BodyDesc::Unreachable(text("")),
        )],
    );
    probe_docker.probe = true;
    let mut early_late = flow_desc(
        pod.clone(),
        sys(),
        vec![
            StepDesc {
                wake: WakeDesc::Early(50),
                ..respond(StatusDesc::S503(), vec![], BodyDesc::Empty())
            },
            StepDesc {
                wake: WakeDesc::Late(900),
                ..respond(StatusDesc::S500(), vec![], BodyDesc::Empty())
            },
            respond(StatusDesc::S200(), vec![], planted_token.clone()),
        ],
    );
    early_late.jitter = 99;
    let mut bad_id = flow_desc(
        pod.clone(),
        IdentityDesc::Client(IdValue::Any(text("has space"))),
        vec![],
    );
    bad_id.again = true;
    let mut two_scopes = flow_desc(pod.clone(), sys(), vec![]);
    two_scopes.scope = ScopeDesc::Two();
    let mut out = vec![
        (
            "imds-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S200(), vec![], example(0))],
            ),
        ),
        (
            "imds-503-retry-after-then-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![
                    respond(StatusDesc::S503(), ra(2), BodyDesc::Empty()),
                    respond(StatusDesc::S200(), vec![], example(0)),
                ],
            ),
        ),
        ("imds-probe-400-then-200", probe_ok),
        ("imds-probe-refused", probe_refused),
        ("imds-probe-docker-403", probe_docker),
        (
            "imds-410-maintenance",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S410(), vec![], BodyDesc::Empty())],
            ),
        ),
        (
            "imds-410-retry-after-0",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S410(), ra(0), BodyDesc::Empty())],
            ),
        ),
        (
            "imds-429-retry-after-ms",
            flow_desc(
                pod.clone(),
                client(),
                vec![
                    respond(StatusDesc::S429(), ms(1500), BodyDesc::Empty()),
                    respond(StatusDesc::S200(), vec![], planted_token.clone()),
                ],
            ),
        ),
        (
            "imds-429-over-budget",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S429(), ra(120), BodyDesc::Empty())],
            ),
        ),
        (
            "imds-400-system",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "imds-400-user-assigned",
            flow_desc(
                pod.clone(),
                client(),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "imds-403-docker",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S403(),
                    vec![],
                    BodyDesc::Unreachable(text("")),
                )],
            ),
        ),
        (
            "imds-proxy-html-200",
            flow_desc(
                pod.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S200(),
                    vec![],
                    example(TOKEN_EXAMPLES.len() - 1),
                )],
            ),
        ),
        (
            "imds-refused",
            flow_desc(pod.clone(), sys(), vec![fail(FailureDesc::Refused())]),
        ),
        (
            "imds-timeouts",
            flow_desc(
                pod.clone(),
                IdentityDesc::Resource(IdValue::Arm(7)),
                vec![fail(FailureDesc::Timeout())],
            ),
        ),
        ("imds-early-and-late-wakes", early_late),
        (
            "appsvc-200",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S200(), vec![], example(1))],
            ),
        ),
        (
            "appsvc-legacy-date",
            flow_desc(
                app.clone(),
                IdentityDesc::Object(IdValue::Guid(42)),
                vec![respond(StatusDesc::S200(), vec![], example(2))],
            ),
        ),
        (
            "appsvc-500s",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S500(), vec![], error_example(2))],
            ),
        ),
        (
            "appsvc-404-not-retried",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(StatusDesc::S404(), vec![], error_example(3))],
            ),
        ),
        (
            "appsvc-400-oauth",
            flow_desc(
                EnvDesc::AppService(2, SecretDesc::Planted(2)),
                IdentityDesc::Resource(IdValue::Arm(1)),
                vec![respond(StatusDesc::S400(), vec![], error_example(0))],
            ),
        ),
        (
            "appsvc-unparseable-200",
            flow_desc(
                app.clone(),
                sys(),
                vec![respond(
                    StatusDesc::S200(),
                    vec![],
                    planted_token_without_expiry(),
                )],
            ),
        ),
        (
            "appsvc-poll-twice",
            flow_desc(
                app.clone(),
                sys(),
                vec![StepDesc {
                    outcome: OutcomeDesc::PollTwice(),
                    latency_ms: 0,
                    wake: WakeDesc::OnTime(),
                }],
            ),
        ),
        (
            "appsvc-reset-then-too-large",
            flow_desc(
                app,
                sys(),
                vec![
                    fail(FailureDesc::Reset()),
                    fail(FailureDesc::TooLarge(1 << 20)),
                ],
            ),
        ),
        ("bad-client-id", bad_id),
        ("two-scopes", two_scopes),
        // Endpoints echoing the identity header (PROTOCOL.md §1.10): Azure ML's 401 text, a
        // nested JSON document, a query echo, JSON escapes, then a 500 that is retried.
        (
            "appsvc-401-echoes-header",
            flow_desc(
                EnvDesc::AppService(0, SecretDesc::Planted(1)),
                sys(),
                vec![respond(
                    StatusDesc::S401(),
                    vec![],
                    BodyDesc::Raw(Bytes(b"Invalid secret token header: {H}".to_vec())),
                )],
            ),
        ),
        (
            "appsvc-400-echoes-header-nested",
            flow_desc(
                EnvDesc::AppService(0, SecretDesc::Planted(1)),
                sys(),
                vec![respond(
                    StatusDesc::S400(),
                    vec![],
                    BodyDesc::Raw(Bytes(
                        br#"{"upstream":{"ACCESS_TOKEN":"{U}","sent":["{h}","x-identity-header={P}"],"j":"{J}"}}"#
                            .to_vec(),
                    )),
                )],
            ),
        ),
        (
            "appsvc-500-echoes-header-description",
            flow_desc(
                EnvDesc::AppService(0, SecretDesc::Planted(1)),
                sys(),
                vec![respond(
                    StatusDesc::S500(),
                    vec![],
                    BodyDesc::Raw(Bytes(
                        br#"{"error":"x","error_description":"header {U} rejected; Bearer {h}"}"#
                            .to_vec(),
                    )),
                )],
            ),
        ),
    ];
    out.extend(new_source_flows());
    out.extend(arc_flows());
    out
}

/// Cloud Shell, Azure ML and Service Fabric flows (PROTOCOL.md §5, §6, §7): their examples,
/// their error shapes, secrets echoed, selectors, and the configuration errors.
fn new_source_flows() -> Vec<(&'static str, FlowDesc)> {
    let client = || IdentityDesc::Client(IdValue::Guid(0x9999_9999_8888_7777_6666_5555_5555_5555));
    let ml = |default: Option<IdValue>| EnvDesc::AzureMl(0, SecretDesc::Planted(2), default);
    let sf = |i: u8| EnvDesc::ServiceFabric(i, SecretDesc::Planted(3), [0xab; 20]);
    let sf_error = |code: &str| {
        BodyDesc::Raw(Bytes(
            format!(r#"{{"error":{{"code":"{code}","message":"Secret is not found in the request headers."}}}}"#)
                .into_bytes(),
        ))
    };
    vec![
        (
            "cloudshell-token",
            flow_desc(
                EnvDesc::CloudShell(0),
                IdentityDesc::System(),
                vec![respond(StatusDesc::S200(), vec![], example(4))],
            ),
        ),
        (
            "cloudshell-user-assigned",
            flow_desc(EnvDesc::CloudShell(1), client(), vec![]),
        ),
        (
            "cloudshell-503-then-token",
            flow_desc(
                EnvDesc::CloudShell(1),
                IdentityDesc::System(),
                vec![
                    respond(StatusDesc::S503(), vec![], BodyDesc::Empty()),
                    respond(StatusDesc::S200(), vec![], example(4)),
                ],
            ),
        ),
        (
            "ml-token-default-client",
            flow_desc(
                ml(Some(IdValue::Guid(
                    0x9999_9999_8888_7777_6666_5555_5555_5555,
                ))),
                IdentityDesc::System(),
                vec![respond(StatusDesc::S200(), vec![], example(6))],
            ),
        ),
        (
            "ml-client-id-date",
            flow_desc(
                ml(None),
                client(),
                vec![respond(StatusDesc::S200(), vec![], example(2))],
            ),
        ),
        (
            "ml-object-id",
            flow_desc(ml(None), IdentityDesc::Object(IdValue::Guid(1)), vec![]),
        ),
        (
            "ml-401-echoes-secret",
            flow_desc(
                ml(None),
                IdentityDesc::System(),
                vec![respond(
                    StatusDesc::S401(),
                    vec![],
                    BodyDesc::Raw(Bytes(b"Invalid secret token header: {H}".to_vec())),
                )],
            ),
        ),
        (
            "ml-bad-default-client",
            flow_desc(
                ml(Some(IdValue::Any(Text::of("a b")))),
                IdentityDesc::System(),
                vec![],
            ),
        ),
        (
            "sf-token",
            flow_desc(
                sf(0),
                IdentityDesc::System(),
                vec![respond(StatusDesc::S200(), vec![], example(5))],
            ),
        ),
        (
            "sf-401-secret-header-not-found",
            flow_desc(
                sf(1),
                IdentityDesc::System(),
                vec![respond(
                    StatusDesc::S401(),
                    vec![],
                    sf_error("SecretHeaderNotFound"),
                )],
            ),
        ),
        (
            "sf-404-not-retried",
            flow_desc(
                sf(0),
                IdentityDesc::System(),
                vec![respond(
                    StatusDesc::S404(),
                    vec![],
                    sf_error("ManagedIdentityNotFound"),
                )],
            ),
        ),
        (
            "sf-string-error",
            flow_desc(
                sf(0),
                IdentityDesc::System(),
                vec![respond(
                    StatusDesc::S400(),
                    vec![],
                    BodyDesc::Raw(Bytes(br#"{"error":"ArgumentNullOrEmpty {U}"}"#.to_vec())),
                )],
            ),
        ),
        (
            "sf-http-endpoint",
            flow_desc(sf(2), IdentityDesc::System(), vec![]),
        ),
        ("sf-user-assigned", flow_desc(sf(0), client(), vec![])),
    ]
}

/// Azure Arc flows (PROTOCOL.md §4): the two legs, the challenge's forms and refusals, the key
/// file's outcomes, the user-assigned echo, a second 401, an echoed key.
fn arc_flows() -> Vec<(&'static str, FlowDesc)> {
    let arc = |realm: RealmDesc, file: FileDesc| EnvDesc::Arc(realm, file, true);
    let ua = || IdentityDesc::Client(IdValue::Guid(0x1111_1111_2222_3333_4444_5555_5555_5555));
    let challenge = || respond(StatusDesc::S401(), vec![], BodyDesc::Empty());
    let token = || respond(StatusDesc::S200(), vec![], example(3));
    let sys = IdentityDesc::System;
    vec![
        (
            "arc-challenge-then-token",
            flow_desc(
                arc(RealmDesc::Key(0x5f0c), FileDesc::Key(1)),
                sys(),
                vec![challenge(), token()],
            ),
        ),
        (
            "arc-quoted-realm-user-assigned-echo",
            flow_desc(
                arc(RealmDesc::Quoted(1), FileDesc::Key(2)),
                ua(),
                vec![
                    challenge(),
                    respond(StatusDesc::S200(), vec![], example(27)),
                ],
            ),
        ),
        (
            "arc-user-assigned-without-echo",
            flow_desc(
                arc(RealmDesc::Key(1), FileDesc::Key(2)),
                ua(),
                vec![challenge(), token()],
            ),
        ),
        (
            "arc-did-not-challenge",
            flow_desc(
                arc(RealmDesc::Key(1), FileDesc::Key(2)),
                sys(),
                vec![token()],
            ),
        ),
        (
            "arc-second-401",
            flow_desc(
                arc(RealmDesc::Key(1), FileDesc::Key(3)),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-relative-realm",
            flow_desc(
                arc(RealmDesc::Any(Text::of("tokens/x.key")), FileDesc::Key(3)),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-bearer-scheme",
            flow_desc(
                arc(
                    RealmDesc::Raw(Text::of("Bearer realm=/var/opt/azcmagent/tokens/x.key")),
                    FileDesc::Key(3),
                ),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-no-header",
            flow_desc(
                arc(RealmDesc::Missing(), FileDesc::Key(3)),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-no-token-dir",
            flow_desc(
                EnvDesc::Arc(RealmDesc::Key(1), FileDesc::Key(3), false),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-key-not-found",
            flow_desc(
                arc(RealmDesc::Key(1), FileDesc::NotFound()),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-key-too-long",
            flow_desc(
                arc(RealmDesc::Key(1), FileDesc::TooLong()),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-key-binary",
            flow_desc(
                arc(
                    RealmDesc::Key(1),
                    FileDesc::Any(Bytes(vec![b'k', 0, b'\n'])),
                ),
                sys(),
                vec![challenge()],
            ),
        ),
        (
            "arc-503-then-challenge",
            flow_desc(
                arc(RealmDesc::Key(2), FileDesc::Key(4)),
                sys(),
                vec![
                    respond(StatusDesc::S503(), vec![], BodyDesc::Empty()),
                    challenge(),
                    token(),
                ],
            ),
        ),
        (
            "arc-500-echoes-key",
            flow_desc(
                arc(RealmDesc::Key(2), FileDesc::Key(5)),
                sys(),
                vec![
                    challenge(),
                    respond(
                        StatusDesc::S500(),
                        vec![],
                        BodyDesc::Raw(Bytes(b"bad Authorization: Basic {H} ({h})".to_vec())),
                    ),
                ],
            ),
        ),
    ]
}

fn planted_token_without_expiry() -> BodyDesc {
    BodyDesc::Token(Box::new(token("x", None, None)), true)
}

fn named<T: Encode>(
    target: &'static str,
    descs: Vec<(&'static str, T)>,
) -> impl Iterator<Item = Seed> {
    descs.into_iter().map(move |(name, d)| Seed {
        target,
        name: format!("seed-{name}"),
        bytes: encode(&d),
    })
}

fn raw<'a>(
    target: &'static str,
    examples: impl IntoIterator<Item = &'a [u8]>,
) -> impl Iterator<Item = Seed> {
    examples.into_iter().enumerate().map(move |(i, b)| Seed {
        target,
        name: format!("seed-{i:02}"),
        bytes: b.to_vec(),
    })
}

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let key_4096 = vec![b'k'; KEY_FILE_LIMIT];
    let multi: [&[u8]; 3] = [
        b"250\n1500\n3",
        b"-1\n1500\nThu, 26 Nov 2026 10:00:07 GMT",
        b"abc\n\n120",
    ];
    let json_values: [&[u8]; 8] = [
        b"1795691900",
        b"\"1795691900\"",
        b"1795691900.5",
        b"-377705116800",
        b"18446744073709551616",
        b"null",
        b"\"11/26/2026 11:18:20 AM +00:00\"",
        b"\"2026-11-26T11:18:20.5-08:00\"",
    ];
    let mut out: Vec<Seed> = Vec::new();
    out.extend(raw(
        "token_response",
        TOKEN_EXAMPLES.iter().map(|s| s.as_bytes()),
    ));
    out.extend(raw(
        "error_body",
        ERROR_EXAMPLES
            .iter()
            .chain(&TOKEN_EXAMPLES[..3])
            .map(|s| s.as_bytes()),
    ));
    out.extend(raw(
        "retry_after",
        RETRY_AFTER_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(multi),
    ));
    out.extend(raw(
        "challenge",
        CHALLENGE_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain([&b"0123456789abcdef0123456789abcdef"[..], &key_4096[..]]),
    ));
    out.extend(raw(
        "expiry_date",
        EXPIRY_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(json_values),
    ));
    out.extend(named("token_response_structured", token_descs()));
    out.extend(named("error_body_structured", error_descs()));
    out.extend(named("retry_after_structured", retry_descs()));
    out.extend(named("challenge_structured", challenge_descs()));
    out.extend(named("expiry_date_structured", expiry_descs()));
    out.extend(named("flow", flow_descs()));
    // A pin and an equal leaf digest; a pin and a leaf differing in the last byte.
    let pins: [Vec<u8>; 2] = [vec![0x5a; 40], [[0x5a; 39].as_slice(), &[0x5b]].concat()];
    out.extend(raw(
        "thumbprint",
        THUMBPRINT_EXAMPLES
            .iter()
            .map(|s| s.as_bytes())
            .chain(pins.iter().map(Vec::as_slice)),
    ));
    out.extend(named("thumbprint_structured", thumbprint_descs()));
    // Entra: byte 0 the status (0: 200, 1: 400, 2: 401, 3: 403, 6: 429, 9: 503), byte 1 the
    // request (secret or assertion, claims, which sentinel), then the body.
    let entra_raw: Vec<Vec<u8>> = [
        (0u8, 0u8, 0usize),
        (0, 1, 1),
        (0, 2, 2),
        (0, 0, 3),
        (1, 1, 4),
        (2, 0, 5),
        (2, 4, 5),
        (1, 0, 6),
        (1, 0, 7),
        (2, 9, 8),
        (9, 0, 9),
        (1, 4, 10),
        (9, 0, 11),
        (3, 0, 11),
    ]
    .iter()
    .map(|&(status, request, body)| {
        [&[status, request][..], ENTRA_EXAMPLES[body].as_bytes()].concat()
    })
    .collect();
    out.extend(raw("entra_response", entra_raw.iter().map(Vec::as_slice)));
    out.extend(named("entra_response_structured", entra_descs()));
    let (pem, p12) = certificate_files();
    out.extend(raw("certificate_pem", pem.iter().map(Vec::as_slice)));
    out.extend(raw("certificate_pkcs12", p12.iter().map(Vec::as_slice)));
    out.extend(named("certificate_pem_structured", pem_descs()));
    out
}

/// Entra exchanges as descriptions (PROTOCOL.md §8, §9): tokens, AADSTS errors with the secret
/// echoed, retried 429/503 with delays, a refused connection.
pub fn entra_descs() -> Vec<(&'static str, EntraDesc)> {
    let step =
        |status: StatusDesc, headers: Vec<RetryHeaderDesc>, body: EntraBodyDesc| EntraStepDesc {
            outcome: EntraOutcomeDesc::Respond(status, List(headers), body),
            latency_ms: 40,
            wake: WakeDesc::OnTime(),
        };
    let desc = |assertion: bool, steps: Vec<EntraStepDesc>| EntraDesc {
        assertion,
        secret: u8::from(assertion) * 2,
        claims: None,
        jitter: 7,
        start: 0,
        steps: List(steps),
    };
    let mut entra_token = token("FAKE-entra-token", None, Some(SecondsDesc::Int(3599)));
    entra_token.extras = List(vec![extra("ext_expires_in", JsonDesc::Int(3599))]);
    let mut refresh_token = token("FAKE-secret-flow-token", None, Some(SecondsDesc::Int(5399)));
    refresh_token.refresh_in = Some(SecondsDesc::Int(2699));
    let aadsts = |code: u8, echo: EchoDesc| AadstsDesc {
        code,
        error: 0,
        message: text("Invalid client secret provided"),
        echo,
        details: true,
        pretty: false,
    };
    let ok = |t: &TokenDesc, planted| EntraBodyDesc::Token(Box::new(t.clone()), planted);
    let ra = |n: u32| {
        vec![RetryHeaderDesc {
            name: HeaderNameDesc::RetryAfter(),
            value: RetryValue::Number(n),
        }]
    };
    let mut claims = desc(
        false,
        vec![step(StatusDesc::S200(), vec![], ok(&refresh_token, true))],
    );
    claims.claims = Some(0);
    vec![
        (
            "assertion-token",
            desc(
                true,
                vec![step(StatusDesc::S200(), vec![], ok(&entra_token, true))],
            ),
        ),
        (
            "secret-refresh-in",
            desc(
                false,
                vec![step(StatusDesc::S200(), vec![], ok(&refresh_token, false))],
            ),
        ),
        ("claims", claims),
        (
            "aadsts-7000215-echo",
            desc(
                false,
                vec![step(
                    StatusDesc::S401(),
                    vec![],
                    EntraBodyDesc::Aadsts(aadsts(1, EchoDesc::Description(0))),
                )],
            ),
        ),
        (
            "aadsts-700024-assertion",
            desc(
                true,
                vec![step(
                    StatusDesc::S400(),
                    vec![],
                    EntraBodyDesc::Aadsts(aadsts(0, EchoDesc::SecretField(3, true))),
                )],
            ),
        ),
        (
            "aadsts-error-field",
            desc(
                false,
                vec![step(
                    StatusDesc::S400(),
                    vec![],
                    EntraBodyDesc::Aadsts(aadsts(6, EchoDesc::ErrorField(1))),
                )],
            ),
        ),
        (
            "aadsts-plain",
            desc(
                false,
                vec![step(
                    StatusDesc::S400(),
                    vec![],
                    EntraBodyDesc::Aadsts(aadsts(4, EchoDesc::Nowhere())),
                )],
            ),
        ),
        (
            "429-then-token",
            desc(
                false,
                vec![
                    step(
                        StatusDesc::S429(),
                        ra(2),
                        EntraBodyDesc::Aadsts(aadsts(10, EchoDesc::Nowhere())),
                    ),
                    step(StatusDesc::S200(), vec![], ok(&entra_token, true)),
                ],
            ),
        ),
        (
            "503-over-budget",
            desc(
                true,
                vec![step(StatusDesc::S503(), ra(60), EntraBodyDesc::Example(11))],
            ),
        ),
        (
            "503-forever",
            desc(
                false,
                vec![step(StatusDesc::S503(), vec![], EntraBodyDesc::Example(9))],
            ),
        ),
        (
            "timeout-then-token",
            desc(
                false,
                vec![
                    EntraStepDesc {
                        outcome: EntraOutcomeDesc::Fail(FailureDesc::Timeout()),
                        latency_ms: 1000,
                        wake: WakeDesc::OnTime(),
                    },
                    step(StatusDesc::S200(), vec![], ok(&entra_token, false)),
                ],
            ),
        ),
        (
            "refused",
            desc(
                false,
                vec![EntraStepDesc {
                    outcome: EntraOutcomeDesc::Fail(FailureDesc::Refused()),
                    latency_ms: 1,
                    wake: WakeDesc::OnTime(),
                }],
            ),
        ),
        (
            "error-body",
            desc(
                false,
                vec![step(
                    StatusDesc::S401(),
                    vec![],
                    EntraBodyDesc::Error(Box::new(err(vec![], vec![], BodyForm::Example(5)))),
                )],
            ),
        ),
        (
            "raw-2xx",
            desc(
                false,
                vec![step(
                    StatusDesc::S200(),
                    vec![],
                    EntraBodyDesc::Raw(Bytes(b"<html>proxy</html>".to_vec())),
                )],
            ),
        ),
    ]
}

/// Thumbprints as tools print them, and the near misses §1.2 refuses.
pub fn thumbprint_descs() -> Vec<(&'static str, ThumbprintDesc)> {
    let bytes = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef, 0x01, 0x23, 0x45, 0x67,
    ];
    let plain = ThumbprintDesc {
        bytes,
        upper: u64::MAX,
        sep: SepDesc::None(),
        lead: 0,
        trail: 0,
        damage: None,
        flip: None,
    };
    let with = |f: &dyn Fn(&mut ThumbprintDesc)| {
        let mut d = plain.clone();
        f(&mut d);
        d
    };
    vec![
        ("upper", plain.clone()),
        (
            "lower-colons",
            with(&|d| {
                d.upper = 0;
                d.sep = SepDesc::Colon();
            }),
        ),
        (
            "spaced-padded",
            with(&|d| {
                d.sep = SepDesc::Space();
                d.lead = 1;
                d.trail = 2;
            }),
        ),
        ("mixed", with(&|d| d.sep = SepDesc::Mixed(0x1b1b_1b1b_1b1b))),
        ("dashes", with(&|d| d.sep = SepDesc::Dash())),
        (
            "one-digit-short",
            with(&|d| d.damage = Some(DamageDesc::DropDigit(7))),
        ),
        (
            "one-digit-long",
            with(&|d| d.damage = Some(DamageDesc::ExtraDigit(40, 3))),
        ),
        (
            "non-hex",
            with(&|d| d.damage = Some(DamageDesc::Replace(1, b'x'))),
        ),
        (
            "leaf-differs",
            with(&|d| d.flip = Some(FlipDesc { at: 19, xor: 1 })),
        ),
        (
            "leaf-equal",
            with(&|d| d.flip = Some(FlipDesc { at: 3, xor: 0 })),
        ),
    ]
}

/// The inputs that found bugs fixed in azmi-core (`fuzz/README.md` lists them), kept under
/// `fuzz/regressions/<target>/` and replayed by `cargo test` for good.
pub fn regressions() -> Vec<Seed> {
    let seed = |target: &'static str, name: &str, bytes: &[u8]| Seed {
        target,
        name: name.to_string(),
        bytes: bytes.to_vec(),
    };
    // What token_response_structured found: t_req at the first representable instant
    // (year -9999), `expires_in` 0, so `expires_on − 5 min` overflowed in refresh_time.
    let mut far_clock = token(
        "FAKE-f\u{7f}$",
        Some(ExpiryDesc::Example(255)),
        Some(SecondsDesc::Int(0)),
    );
    far_clock.t_req = Clock::Far(0);
    far_clock.token_type = None;
    far_clock.extras = List(Vec::new());
    let after_9999 = ExpiryDesc::Rfc3339(
        DateParts::new(9999, 12, 31, 23, 0, 0),
        0,
        None,
        Offset3339::Minus(5, 0),
    );
    let mut after_9999_token = token(
        "FAKE",
        Some(after_9999.clone()),
        Some(SecondsDesc::Int(3600)),
    );
    after_9999_token.extras = List(Vec::new());
    let joined_key = pem_descs()
        .into_iter()
        .find(|(name, _)| *name == "key-on-begin-line")
        .map(|(_, d)| d)
        .expect("the seed exists");
    vec![
        seed("token_response_structured", "refresh-underflow-far-clock", &encode(&far_clock)),
        seed("token_response", "refresh-underflow-negative-expires-on", br#"{"access_token":"FAKE","expires_on":-377705116800}"#),
        seed("token_response_structured", "rfc3339-after-9999-with-expires-in", &encode(&after_9999_token)),
        seed("token_response", "rfc3339-after-9999-with-expires-in", br#"{"access_token":"FAKE","expires_on":"9999-12-31T23:30:00-00:31","expires_in":"3600"}"#),
        seed("expiry_date_structured", "rfc3339-after-9999", &encode(&after_9999)),
        seed("expiry_date", "rfc3339-after-9999", b"9999-12-31T23:00:00-05:00"),
        // What token_response found: a signed year in a 2017 date (2027 BC), which `time`'s
        // `[year]` reads; the form has exactly four digits.
        seed("token_response", "signed-year-2017-date", br#"{"access_token":"Foon","expires_on":"11/26/-2026 12:18:20 pm +00:00"}"#),
        seed("expiry_date", "signed-year-2017-date", b"1/16/+2020 5:24:12 AM +00:00"),
        // What certificate_pem_structured found: a PEM reader error listed the bytes of the line
        // it stopped at — a private key's first line joined to its BEGIN line, or a label made
        // of key text — so the loader's error quoted key material.
        seed("certificate_pem_structured", "key-line-joined-to-begin", &encode(&joined_key)),
        seed("certificate_pem", "key-line-joined-to-begin", format!("{CERT_A}{}", KEY_A8.replacen("-----\n", "-----", 1)).as_bytes()),
        // What certificate_pem found: a PKCS#1 key with one base64 character of its private part
        // changed loads (ring parses it) but every signature fails ring's check.
        seed("certificate_pem", "damaged-key-cannot-sign", format!("{}I{}{CERT_A}", &KEY_A1[..1130], &KEY_A1[1131..]).as_bytes()),
        seed("certificate_pem", "key-text-as-label-without-end", format!("-----BEGIN {}-----\n", KEY_A8.lines().nth(1).unwrap_or_default()).as_bytes()),
    ]
}

/// Checks that every structured seed decodes back into its description (the encoder mirrors
/// `Arbitrary`); panics naming the first that does not.
pub fn check_seed_encoding() {
    fn round_trip<T: Encode + for<'a> Arbitrary<'a> + PartialEq + std::fmt::Debug>(
        descs: Vec<(&'static str, T)>,
    ) {
        for (name, d) in descs {
            let bytes = encode(&d);
            let back = decode::<T>(&bytes);
            assert_eq!(back.as_ref(), Some(&d), "seed {name} does not decode back");
        }
    }
    round_trip(token_descs());
    round_trip(error_descs());
    round_trip(retry_descs());
    round_trip(challenge_descs());
    round_trip(expiry_descs());
    round_trip(flow_descs());
    round_trip(thumbprint_descs());
    round_trip(entra_descs());
    round_trip(pem_descs());
}

/// Seeds of the structured target: the files PROTOCOL.md §10 describes and their near misses.
pub fn pem_descs() -> Vec<(&'static str, PemDesc)> {
    let block = |block: BlockDesc| PemBlockDesc {
        block,
        before: None,
        width: 0,
        crlf: false,
        damage: None,
    };
    let file = |blocks: Vec<PemBlockDesc>| PemDesc {
        blocks: List(blocks),
        trailer: None,
    };
    let cert = |k: CertKind| block(BlockDesc::Cert(k));
    let key = |k: KeyKind| block(BlockDesc::Key(k));
    let mut between = key(KeyKind::A1());
    between.before = Some(Text::of("Bag Attributes: friendlyName: azmi"));
    between.crlf = true;
    let mut joined = key(KeyKind::A8());
    joined.damage = Some(PemDamage::JoinBegin());
    let mut no_end = cert(CertKind::A());
    no_end.damage = Some(PemDamage::DropEnd());
    let mut narrow = cert(CertKind::A());
    narrow.width = 19;
    vec![
        (
            "cert-key-pkcs8",
            file(vec![cert(CertKind::A()), key(KeyKind::A8())]),
        ),
        (
            "key-pkcs1-first",
            file(vec![key(KeyKind::A1()), cert(CertKind::A())]),
        ),
        (
            "chain-leaf-second",
            file(vec![
                cert(CertKind::B()),
                cert(CertKind::A()),
                key(KeyKind::A8()),
            ]),
        ),
        (
            "text-between-crlf",
            file(vec![cert(CertKind::A()), between]),
        ),
        ("narrow-lines", file(vec![narrow, key(KeyKind::A8())])),
        (
            "key-matches-none",
            file(vec![cert(CertKind::B()), key(KeyKind::A8())]),
        ),
        ("key-only", file(vec![key(KeyKind::B8())])),
        ("cert-only", file(vec![cert(CertKind::A())])),
        (
            "encrypted-key",
            file(vec![
                cert(CertKind::A()),
                key(KeyKind::Encrypted(Bytes(vec![0x30, 0x82, 1, 0]))),
            ]),
        ),
        (
            "ec-key",
            file(vec![cert(CertKind::Ec()), key(KeyKind::Ec8())]),
        ),
        (
            "garbage-key",
            file(vec![
                cert(CertKind::A()),
                key(KeyKind::Garbage8(Bytes(b"\x30\x03\x02\x01\x00".to_vec()))),
            ]),
        ),
        (
            "other-block",
            file(vec![
                block(BlockDesc::Other(
                    Text::of("X509 TRUSTED CERTIFICATE"),
                    Bytes(vec![1, 2, 3]),
                )),
                cert(CertKind::A()),
                key(KeyKind::A8()),
            ]),
        ),
        ("key-on-begin-line", file(vec![cert(CertKind::A()), joined])),
        ("cert-without-end", file(vec![key(KeyKind::A8()), no_end])),
    ]
}

/// Seeds of the raw targets: the fixtures as they are and assembled.
pub fn certificate_files() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let pem: Vec<Vec<u8>> = [
        format!("{CERT_A}{KEY_A8}"),
        format!("{KEY_A1}{CERT_B}{CERT_A}"),
        format!("{CERT_B}{KEY_A8}"),
        format!("{CERT_EC}{KEY_EC8}"),
        KEY_B8.to_string(),
        CERT_A.to_string(),
        format!("{CERT_A}-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let p12 = vec![
        [&[0u8][..], P12_A].concat(),
        [&[1u8][..], P12_A_EMPTY].concat(),
        [&[1u8][..], P12_A].concat(),
        [&[0u8][..], &P12_A[..P12_A.len() / 2]].concat(),
    ];
    (pem, p12)
}
