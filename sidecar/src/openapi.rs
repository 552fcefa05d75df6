//! The sidecar's API as an OpenAPI 3.1 document (`GET /v1/openapi.json`),
//! built from the code once and served from those bytes:
//!
//! - paths and methods from the verb table (`shared::api::VERBS`): one
//!   operation per row, its id the row's name, its security the row's `auth`,
//!   its role, rate class and auditing in its description;
//! - what each verb takes and answers from [`verb_doc`], an exhaustive match
//!   on `Verb` (a new verb does not compile without it): query parameters from
//!   the verbs' own `Query` structs (`IntoParams`) with the bounds the handlers
//!   check (`shared::limits`), path parameters from the template, the request
//!   body and answers from the wire types (`ToSchema`, shared's `openapi`
//!   feature);
//! - the errors each verb can answer with, each the one JSON error body.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::Bytes;
use serde_json::json;
use shared::api::{Method, RateClass, Verb, VerbSpec, VERBS};
use shared::{
    limits, AuditPage, AuditVerification, ContainerDetail, ContainerEvent, ContainerRef, ContainerSummary, DiskReport,
    ErrorBody, ErrorCode, LogLine, LogsPage, Outcome, PruneKind, PruneReport, PullEvent, PullRequest, RecreateEvent,
    RestartReport, RevokeReport, StatsHistory, StatsSnapshot, UpdatesReport, ACTOR_HEADER, REQUEST_ID_HEADER,
};
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ComponentsBuilder, Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, HeaderBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, Response, ResponseBuilder,
};
use utoipa::{IntoParams, Number, ToSchema};

use crate::verbs::audit::AuditQuery;
use crate::verbs::health::HealthReport;
use crate::verbs::logs::LogsQuery;
use crate::verbs::prune::PruneQuery;
use crate::verbs::recreate::RecreateQuery;
use crate::verbs::restart::RestartQuery;
use crate::verbs::stats::HistoryQuery;

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";
/// `components.parameters` name of the `X-Dockward-Actor` header (authenticated verbs).
pub const ACTOR_PARAM: &str = "actor";
/// `components.parameters` name of the `X-Request-Id` header (every verb).
pub const REQUEST_ID_PARAM: &str = "request_id";

static JSON: LazyLock<Result<Bytes, String>> =
    LazyLock::new(|| serde_json::to_vec(&document()).map(Bytes::from).map_err(|e| e.to_string()));

/// The document as served: serialised on first use, then the same bytes.
pub fn json() -> Result<&'static Bytes, &'static str> {
    JSON.as_ref().map_err(String::as_str)
}

/// The whole document, built from the verb table.
pub fn document() -> OpenApi {
    build().0
}

/// Names that two different schemas claim (each would hide the other in
/// `components.schemas`): none, or the document is wrong.
pub fn schema_name_clashes() -> Vec<String> {
    build().1
}

fn build() -> (OpenApi, Vec<String>) {
    let mut schemas = Schemas::default();
    let mut errors: BTreeMap<u16, ErrorCode> = BTreeMap::new();
    let mut paths = Paths::new();
    for spec in VERBS {
        let method = match spec.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
        };
        paths.add_path_operation(spec.path, vec![method], operation(spec, &mut schemas, &mut errors));
    }
    let error_body = schemas.of::<ErrorBody>();
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The sidecar's shared secret (`DOCKWARD_SECRET_FILE`), compared in constant time."))
                    .build(),
            ),
        )
        .parameter(
            ACTOR_PARAM,
            header_param(
                ACTOR_HEADER,
                "The acting user, recorded in the audit log (never trusted: the sidecar authorises by the secret only).",
                ObjectBuilder::new().schema_type(Type::String).max_length(Some(128)),
            ),
        )
        .parameter(
            REQUEST_ID_PARAM,
            header_param(
                REQUEST_ID_HEADER,
                "The request's id, kept when short and plain (else a new UUID) and returned on every response.",
                ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[A-Za-z0-9._-]{1,64}$")),
            ),
        );
    for (status, code) in errors {
        components = components.response(code_name(code), error_response(status, code, error_body.clone()));
    }
    let clashes = schemas.clashes;
    let components = components.schemas_from_iter(schemas.named).build();
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("dockward sidecar")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The one process that holds a Docker host's socket, as typed, allow-listed, audited verbs. \
                     Every route but `/healthz` needs `Authorization: Bearer <secret>`. Every error is \
                     `{\"error\": {\"code\", \"message\"}}`. Unknown query parameters and unexpected bodies \
                     are refused (400). Every response carries `X-Request-Id`.",
                ))
                .license(Some(LicenseBuilder::new().name("Apache-2.0").identifier(Some("Apache-2.0")).build()))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .security(Some([bearer()]))
        .build();
    (doc, clashes)
}

/// One verb-table row's operation.
fn operation(spec: &VerbSpec, schemas: &mut Schemas, errors: &mut BTreeMap<u16, ErrorCode>) -> Operation {
    let doc = verb_doc(spec.verb, schemas);
    let mut op = OperationBuilder::new()
        .operation_id(Some(spec.name))
        .summary(Some(doc.summary))
        .description(Some(policy_text(spec)))
        .parameter_ref(Ref::new(format!("#/components/parameters/{REQUEST_ID_PARAM}")));
    if spec.auth {
        op = op.parameter_ref(Ref::new(format!("#/components/parameters/{ACTOR_PARAM}")));
    }
    op = op
        .parameters(Some(path_params(spec.path, schemas)))
        .parameters(Some(doc.query))
        .request_body(doc.body)
        .securities(Some(if spec.auth { vec![bearer()] } else { Vec::new() }));
    for (status, response) in doc.answers {
        op = op.response(status.to_string(), response);
    }
    for code in error_codes(spec, &doc.errors) {
        let status = code.status();
        errors.insert(status, code);
        op = op.response(status.to_string(), Ref::from_response_name(code_name(code)));
    }
    op.build()
}

/// What a verb takes and answers beyond its row.
struct VerbDoc {
    summary: &'static str,
    query: Vec<Parameter>,
    body: Option<RequestBody>,
    /// Its answers other than the JSON errors, by status.
    answers: Vec<(u16, Response)>,
    /// The errors it can answer with besides those every verb, every
    /// authenticated verb or every `{ref}` path can (see [`error_codes`]).
    errors: Vec<ErrorCode>,
}

const ENGINE: [ErrorCode; 2] = [ErrorCode::DockerError, ErrorCode::DockerUnavailable];

fn verb_doc(verb: Verb, s: &mut Schemas) -> VerbDoc {
    let doc = |summary, answer: Response, errors: &[ErrorCode]| VerbDoc {
        summary,
        query: Vec::new(),
        body: None,
        answers: vec![(200, answer)],
        errors: errors.to_vec(),
    };
    match verb {
        Verb::Healthz => {
            let health = s.of::<HealthReport>();
            VerbDoc {
                summary: "The engine probe's state (no authentication).",
                query: Vec::new(),
                body: None,
                answers: vec![
                    (200, json_answer("The engine answers its probe: `ok`.", health.clone())),
                    (503, json_answer("The engine does not answer its probe: `degraded`.", health)),
                ],
                errors: Vec::new(),
            }
        }
        Verb::Metrics => doc(
            "Prometheus metrics.",
            content_answer(
                "Prometheus text exposition format 0.0.4.",
                "text/plain",
                ObjectBuilder::new().schema_type(Type::String).into(),
            ),
            &[],
        ),
        Verb::ListContainers => doc(
            "Every container in scope, running and stopped, with its latest stats sample.",
            json_answer("Sorted by name.", array(s.of::<ContainerSummary>())),
            &ENGINE,
        ),
        Verb::InspectContainer => doc(
            "One container in detail, its environment's secret-looking values masked.",
            json_answer("The container.", s.of::<ContainerDetail>()),
            &ENGINE,
        ),
        Verb::Logs => {
            let line = s.of::<LogLine>();
            let page = ContentBuilder::new().schema(Some(s.of::<LogsPage>())).build();
            let stream = ContentBuilder::new()
                .schema(Some(sse(&format!(
                    "With `follow=true`: `event: line` frames whose data is a `{}`, then `event: end` \
                     (or `event: error`) when the stream closes.",
                    location(&line)
                ))))
                .build();
            let answer = ResponseBuilder::new()
                .description("The tail as one JSON page, or with `follow=true` a Server-Sent Events stream.")
                .content("application/json", page)
                .content("text/event-stream", stream)
                .build();
            VerbDoc {
                query: query::<LogsQuery>(&[
                    ("tail", bounds(0, limits::LOG_TAIL_MAX, Some(limits::LOG_TAIL_DEFAULT))),
                    ("timestamps", boolean_default(false)),
                    ("follow", boolean_default(false)),
                ]),
                ..doc("Demultiplexed stdout and stderr: a bounded tail, or a follow stream.", answer, &ENGINE)
            }
        }
        Verb::Stats => doc(
            "One snapshot of every running container's usage, from the cache, with its age. Each round has an `ETag`; sent back in `If-None-Match`, it gets `304 Not Modified` until the next round.",
            json_answer("The latest round.", s.of::<StatsSnapshot>()),
            &[],
        ),
        Verb::StatsHistory => {
            s.of::<ContainerRef>();
            VerbDoc {
                query: query::<HistoryQuery>(&[(
                    "window",
                    bounds(1, limits::HISTORY_WINDOW_MAX, Some(limits::HISTORY_WINDOW_DEFAULT)),
                )]),
                ..doc(
                    "One container's usage history, for sparklines.",
                    json_answer("Oldest first.", s.of::<StatsHistory>()),
                    &[ErrorCode::NotFound, ErrorCode::Ambiguous, ErrorCode::DockerError, ErrorCode::DockerUnavailable],
                )
            }
        }
        Verb::Events => {
            let event = s.of::<ContainerEvent>();
            doc(
                "Container lifecycle events as Server-Sent Events.",
                content_answer(
                    &format!(
                        "`event: container` frames whose data is a `{}`; `event: resync` when some may have \
                         been missed (refetch). The stream ends at the follow maximum; reconnect.",
                        location(&event)
                    ),
                    "text/event-stream",
                    sse("Server-Sent Events."),
                ),
                &[],
            )
        }
        Verb::Disk => doc(
            "Volume sizes, their containers and protection; image, container and build-cache totals.",
            json_answer("From the disk cache.", s.of::<DiskReport>()),
            &ENGINE,
        ),
        Verb::Audit => {
            s.of::<Outcome>();
            VerbDoc {
                query: query::<AuditQuery>(&[(
                    "limit",
                    bounds(1, limits::AUDIT_PAGE_MAX, Some(limits::AUDIT_PAGE_DEFAULT)),
                )]),
                ..doc(
                    "Audit records, newest first, filtered and paginated.",
                    json_answer("One page.", s.of::<AuditPage>()),
                    &[],
                )
            }
        }
        Verb::AuditVerify => doc(
            "The audit chain's verification, as `dockward-sidecar audit verify` reports it.",
            json_answer("The report.", s.of::<AuditVerification>()),
            &[],
        ),
        Verb::Restart => VerbDoc {
            query: query::<RestartQuery>(&[("timeout", bounds(0, limits::RESTART_TIMEOUT_MAX, None))]),
            ..doc(
                "Restart a container (refused for protected ones). Audited before the engine is asked and after.",
                json_answer("Restarted.", s.of::<RestartReport>()),
                &[ErrorCode::Forbidden, ErrorCode::DockerError, ErrorCode::DockerUnavailable],
            )
        },
        Verb::Prune => VerbDoc {
            query: query::<PruneQuery>(&[("all", boolean_default(false))]),
            ..doc(
                "Prune stopped containers, images, volumes or build cache, never touching protected ones. \
                 Audited before the engine is asked and after.",
                json_answer("What was removed and the space reclaimed.", s.of::<PruneReport>()),
                &[ErrorCode::Forbidden, ErrorCode::NotFound, ErrorCode::DockerError, ErrorCode::DockerUnavailable],
            )
        },
        Verb::Pull => VerbDoc {
            body: Some(
                RequestBodyBuilder::new()
                    .description(Some(format!(
                        "The image reference (distribution grammar), at most {} bytes of JSON.",
                        limits::BODY_MAX_BYTES
                    )))
                    .required(Some(Required::True))
                    .content("application/json", ContentBuilder::new().schema(Some(s.of::<PullRequest>())).build())
                    .build(),
            ),
            ..doc(
                "Pull an image from an allowed registry. Audited before the engine is asked and before the last line.",
                content_answer(
                    "Newline-delimited JSON, one `PullEvent` a line: progress, then `done` (with the digest) \
                     or `error`.",
                    "application/x-ndjson",
                    s.of::<PullEvent>(),
                ),
                &[ErrorCode::Forbidden, ErrorCode::PayloadTooLarge, ErrorCode::DockerUnavailable],
            )
        },
        Verb::OpenApi => doc(
            "This document: the sidecar's API as OpenAPI 3.1, built from the verb table.",
            json_answer("The OpenAPI document.", ObjectBuilder::new().schema_type(Type::Object).into()),
            &[],
        ),
        Verb::Revoke => doc(
            "The console revokes this host: every secret it accepts is forgotten for good (restarts included) \
             until the host is enrolled again. Audited before and after.",
            json_answer("How many secrets were forgotten.", s.of::<RevokeReport>()),
            &[],
        ),
        Verb::Updates => doc(
            "Whether each running container's image tag has a newer digest in its registry (asked through the \
             engine, once per image per check interval; pinned, local-only and failed checks say so).",
            json_answer("One entry per running container, by name.", s.of::<UpdatesReport>()),
            &ENGINE,
        ),
        Verb::Recreate => VerbDoc {
            query: query::<RecreateQuery>(&[
                ("pull", boolean_default(false)),
                ("build", boolean_default(false)),
                ("timeout", bounds(0, limits::RESTART_TIMEOUT_MAX, None)),
                (
                    "health_timeout",
                    bounds(1, limits::RECREATE_HEALTH_TIMEOUT_MAX, Some(limits::RECREATE_HEALTH_TIMEOUT_DEFAULT)),
                ),
                ("grace", bounds(0, limits::RECREATE_GRACE_MAX, Some(limits::RECREATE_GRACE_DEFAULT))),
            ]),
            ..doc(
                "Replace a container by a new one from its configuration and its image tag as it is now (after \
                 a pull if asked), with a health gate; any failure rolls back to the old container. Refused \
                 for protected and `--rm` containers; one at a time per container (409). Journalled, so a \
                 restart mid-way finishes or rolls back. Audited before and after.",
                content_answer(
                    "Newline-delimited JSON, one `RecreateEvent` a line: steps and pull progress, then `done` \
                     (old and new ids, images, digest, gate) or `error` (with `rolled_back`).",
                    "application/x-ndjson",
                    s.of::<RecreateEvent>(),
                ),
                &[ErrorCode::Forbidden, ErrorCode::DockerError, ErrorCode::DockerUnavailable],
            )
        },
    }
}

/// The errors a row can answer with: every verb 400 (a body where none is
/// taken, bad input); authenticated ones 401, 429 (rate limits, addresses over
/// their failure budget) and 500 (an audit record that cannot be written, a
/// bug); `{ref}` paths 404 and 409; plus the verb's own. Sorted by status.
fn error_codes(spec: &VerbSpec, own: &[ErrorCode]) -> Vec<ErrorCode> {
    let mut codes = vec![ErrorCode::BadRequest];
    if spec.auth {
        codes.extend([ErrorCode::Unauthorized, ErrorCode::RateLimited, ErrorCode::Internal]);
    }
    if spec.path.contains("{ref}") {
        codes.extend([ErrorCode::NotFound, ErrorCode::Ambiguous]);
    }
    codes.extend_from_slice(own);
    codes.sort_by_key(|c| c.status());
    codes.dedup();
    codes
}

/// Who may call a row, how it is limited and audited, for its description.
fn policy_text(spec: &VerbSpec) -> String {
    let rate = match spec.rate {
        RateClass::None => "none",
        RateClass::Read => "read (per client key)",
        RateClass::Restart => "restart (per client key and per container)",
        RateClass::Prune => "prune (per client key)",
        RateClass::Pull => "pull (per client key)",
    };
    let audited = if spec.mutates {
        "every call"
    } else if spec.auth {
        "refusals"
    } else {
        "no"
    };
    let (auth, role) = if spec.auth { ("the shared secret", spec.role.as_str()) } else { ("none", "anyone") };
    format!("Authentication: {auth}. Least console role: {role}. Rate limit: {rate}. Audited: {audited}.")
}

/// `ErrorCode`'s wire name (`rate_limited`), the name of its response component.
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{code:?}"))
}

fn error_response(status: u16, code: ErrorCode, body: RefOr<Schema>) -> Response {
    let what = match code {
        ErrorCode::BadRequest => "Malformed or out-of-range input, an unknown or repeated query parameter, or a body where none is taken.",
        ErrorCode::Unauthorized => "Missing or wrong `Authorization: Bearer` secret.",
        ErrorCode::Forbidden => "Refused for this target: a protected container, a registry not allowed, a host-wide verb on a scoped sidecar.",
        ErrorCode::NotFound => "No such container in scope (or no such prune kind).",
        ErrorCode::MethodNotAllowed => "The route exists, but not with this method.",
        ErrorCode::Ambiguous | ErrorCode::Conflict => {
            "The reference matches more than one container (`ambiguous`), or the container is busy with another \
             recreate (`conflict`)."
        }
        ErrorCode::PayloadTooLarge => "The body is larger than allowed.",
        ErrorCode::RateLimited => "A rate or concurrency limit was reached; retry after `Retry-After` seconds.",
        ErrorCode::Internal => "A bug or an unexpected answer (the audit log could not be written, for one).",
        ErrorCode::DockerError => "The engine answered with an error.",
        ErrorCode::DockerUnavailable => "The engine is unreachable.",
    };
    let mut r = ResponseBuilder::new()
        .description(format!("{status} `{}`: {what}", code_name(code)))
        .content("application/json", ContentBuilder::new().schema(Some(body)).build());
    match code {
        ErrorCode::RateLimited => {
            r = r.header(
                "Retry-After",
                header("Seconds to wait.", ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1))),
            )
        }
        ErrorCode::Unauthorized => {
            r = r.header("WWW-Authenticate", header("`Bearer`.", ObjectBuilder::new().schema_type(Type::String)))
        }
        _ => {}
    }
    r.build()
}

fn header(description: &str, schema: ObjectBuilder) -> Header {
    HeaderBuilder::new().schema(Some(schema)).description(Some(description)).build()
}

fn header_param(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn bearer() -> SecurityRequirement {
    SecurityRequirement::new(BEARER, Vec::<String>::new())
}

/// The `{…}` parameters of a path template, each required.
fn path_params(template: &str, s: &mut Schemas) -> Vec<Parameter> {
    template
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let (description, schema) = match name {
                "ref" => (
                    "A container: its name, full id or a unique id prefix, resolved to exactly one container in scope.",
                    s.of::<ContainerRef>(),
                ),
                "kind" => ("What to prune.", s.of::<PruneKind>()),
                _ => ("", ObjectBuilder::new().schema_type(Type::String).into()),
            };
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description).filter(|d| !d.is_empty()))
                .schema(Some(schema))
                .build()
        })
        .collect()
}

/// A change to one query parameter's schema.
type Tune = Box<dyn Fn(&mut Object)>;

/// The bounds a handler checks (and the default it applies), from `shared::limits`.
fn bounds(min: u64, max: u64, default: Option<u64>) -> Tune {
    Box::new(move |o| {
        o.minimum = Some(Number::UInt(min as usize));
        o.maximum = Some(Number::UInt(max as usize));
        o.default = default.map(|d| json!(d));
    })
}

fn boolean_default(d: bool) -> Tune {
    Box::new(move |o| o.default = Some(json!(d)))
}

/// A verb's query parameters, from its `Query` struct, with `tunes` applied
/// by name (a name that matches no parameter or no plain schema changes
/// nothing; the tests check the bounds are there).
fn query<T: IntoParams>(tunes: &[(&str, Tune)]) -> Vec<Parameter> {
    let mut params = T::into_params(|| Some(ParameterIn::Query));
    for (name, tune) in tunes {
        if let Some(Some(RefOr::T(Schema::Object(o)))) =
            params.iter_mut().find(|p| p.name == *name).map(|p| p.schema.as_mut())
        {
            tune(o);
        }
    }
    params
}

fn json_answer(description: &str, schema: RefOr<Schema>) -> Response {
    content_answer(description, "application/json", schema)
}

fn content_answer(description: &str, content_type: &str, schema: RefOr<Schema>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(content_type, ContentBuilder::new().schema(Some(schema)).build())
        .build()
}

fn array(item: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(item).into()
}

fn sse(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).into()
}

/// Where a schema reference points (`#/components/schemas/LogLine`), for descriptions.
fn location(r: &RefOr<Schema>) -> &str {
    match r {
        RefOr::Ref(r) => &r.ref_location,
        RefOr::T(_) => "",
    }
}

/// The named schemas the document references, each with those it references.
#[derive(Default)]
struct Schemas {
    named: BTreeMap<String, RefOr<Schema>>,
    /// Names claimed by two different schemas (the first one is kept).
    clashes: Vec<String>,
}

impl Schemas {
    /// Registers `T` (and what it references) and returns a reference to it.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        let mut all = vec![(name.clone(), T::schema())];
        T::schemas(&mut all);
        for (n, schema) in all {
            match self.named.get(&n) {
                None => {
                    self.named.insert(n, schema);
                }
                Some(known) if *known != schema => self.clashes.push(n),
                Some(_) => {}
            }
        }
        Ref::from_schema_name(name).into()
    }
}
