//! The OpenAPI 3.1 description of the admin API
//! (<https://spec.openapis.org/oas/v3.1.0>), built from the same definitions
//! the API uses ([`crate::integration::config::TYPES`], each provider's
//! `KEYS`), served at `GET /openapi.json` and kept in the repository as
//! `docs/openapi.json`. `tests/openapi.rs` checks that the two are equal and
//! that the running server answers every route as described
//! (`docs/ADMIN-API.md` says how to regenerate the file).
//!
//! The shapes are CONTRACT.md section 6's; where the server and this
//! description disagree, the contract decides. Schemas are JSON Schema
//! 2020-12, the dialect of OpenAPI 3.1.

use serde_json::{Map, Value, json};

use crate::integration::config::{COMMON_KEYS, SECRET_MARKER, TYPES, TypeDef};
use crate::schema::{KeyDef, ValueKind};

/// An integration's name ([`check_name`](crate::integration::config::check_name)'s rule).
const NAME_PATTERN: &str = "^[a-z0-9-]{1,63}$";

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": info(),
        "servers": [{ "url": "http://127.0.0.1:9091", "description": "the default `[admin] listen`" }],
        "security": [{ "bearer": [] }],
        "tags": [
            { "name": "integrations", "description": "Storage integrations, changed at run time" },
            { "name": "cache", "description": "The in-memory cache" },
            { "name": "operations", "description": "Health, readiness, metrics, this description" },
            { "name": "page", "description": "The admin page's files (no data; the page asks for the token)" },
        ],
        "paths": paths(),
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer",
                "description": "The `[admin] token` of the config file, as `Authorization: Bearer <token>`." } },
            "parameters": { "name": {
                "name": "name", "in": "path", "required": true, "description": "The integration's name",
                "schema": { "type": "string", "pattern": NAME_PATTERN } } },
            "responses": { "Unauthorized": error(&["unauthorized"],
                "No token, or a wrong one (any route but the public ones, unknown routes included)") },
            "schemas": schemas(),
        },
    })
}

fn info() -> Value {
    json!({
        "title": "mediagate admin API",
        "version": env!("CARGO_PKG_VERSION"),
        "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        "description": "Integrations at run time, connection tests, cache figures and purge, metrics \
                        (CONTRACT.md section 6). Served by the admin listener (`[admin] listen`). Every \
                        route but the page's files, `/healthz` and `/readyz` needs \
                        `Authorization: Bearer <[admin] token>`. Bodies are JSON; errors are \
                        `{\"error\": {\"code\", \"message\"}}`, with `problems` for `bad_config` and `conflict`. \
                        A route or method not listed here answers `404 not_found`.",
    })
}

// ------------------------------------------------------------------ paths

fn paths() -> Value {
    let name = json!([{ "$ref": "#/components/parameters/name" }]);
    json!({
        "/api/integrations": { "get": list_integrations() },
        "/api/integrations/{name}": {
            "parameters": name,
            "get": get_integration(),
            "put": put_integration(),
            "delete": delete_integration(),
        },
        "/api/integrations/{name}/test": { "parameters": name, "post": test_integration() },
        "/api/types": { "get": list_types() },
        "/api/cache": { "get": cache_figures() },
        "/api/cache/purge": { "post": purge() },
        "/metrics": { "get": metrics() },
        "/openapi.json": { "get": openapi_json() },
        "/healthz": { "get": healthz() },
        "/readyz": { "get": readyz() },
        "/": { "get": page("getPage", "The admin page", "text/html") },
        "/index.html": { "get": page("getIndex", "The admin page (the same as `/`)", "text/html") },
        "/assets/app.js": { "get": page("getScript", "The page's script", "text/javascript") },
        "/assets/app.css": { "get": page("getStyle", "The page's style sheet", "text/css") },
    })
}

fn list_integrations() -> Value {
    op(
        "listIntegrations",
        "integrations",
        "All integrations in file order, secrets redacted, with their status and last connection test",
        json!({ "200": answer("IntegrationList", "The integrations") }),
    )
}

fn get_integration() -> Value {
    op(
        "getIntegration",
        "integrations",
        "One integration, as `GET /api/integrations` lists it",
        json!({ "200": answer("Listed", "The integration"), "404": error(&["not_found"], "No integration has this name") }),
    )
}

/// The `503` of a change while the shared store (`[store]`, docs/STORE.md) is lost.
const STORE_DOWN: &str = "With `[store]`, the shared store cannot be reached: nothing was saved";

fn put_integration() -> Value {
    let mut put = op(
        "putIntegration",
        "integrations",
        "Create or replace an integration",
        json!({
            "200": answer("Saved", "Replaced"),
            "201": answer("Saved", "Created"),
            "400": error(&["bad_config"],
                "A value of the wrong kind, an unknown key or type, a bad name, `name` unlike the address, \
                 `\"********\"` with no stored secret, or a body that is not a JSON object: nothing was saved"),
            "409": error(&["conflict"],
                "The scope overlaps another integration's (both are named), or the config file on disk has \
                 problems of its own: nothing was saved"),
            "500": error(&["internal"], "The config file could not be written: nothing was saved"),
            "503": error(&["store_unavailable"], STORE_DOWN),
        }),
    );
    put["description"] = json!(
        "Validates the body, writes it into the config file (atomically, keeping comments and `${VAR}`), \
         takes effect for the next request, then runs a connection test. A body that names a `type` but lacks \
         keys it needs is still saved, as `incomplete`, with one problem per missing key. A secret sent as \
         `\"********\"` keeps the stored one. `name` may be left out; if present it equals `{name}`."
    );
    put["requestBody"] = json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Integration" } } }
    });
    put
}

fn delete_integration() -> Value {
    op(
        "deleteIntegration",
        "integrations",
        "Remove an integration (and drop its cached objects)",
        json!({
            "204": { "description": "Removed" },
            "404": error(&["not_found"], "No integration has this name"),
            "409": error(&["conflict"], "The config file on disk has problems of its own: nothing was changed"),
            "500": error(&["internal"], "The config file could not be written: nothing was changed"),
            "503": error(&["store_unavailable"], STORE_DOWN),
        }),
    )
}

fn test_integration() -> Value {
    op(
        "testIntegration",
        "integrations",
        "Connection test: list one object; the answer is `200` whatever the outcome",
        json!({ "200": answer("Test", "The test"), "404": error(&["not_found"], "No integration has this name") }),
    )
}

fn purge() -> Value {
    let mut purge = op(
        "purgeCache",
        "cache",
        "Drop cached objects by locator or by locator prefix",
        json!({
            "200": answer("Purged", "Objects dropped (0 without a cache)"),
            "400": error(&["bad_config"], "Neither or both of `locator` and `prefix`, or a body that is not a JSON object"),
            "503": error(&["store_unavailable"],
                "With `[store]`, the shared store cannot be reached: the objects were purged on this replica only \
                 (the message says how many), not on the others"),
        }),
    );
    purge["requestBody"] = json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Purge" } } }
    });
    purge
}

fn list_types() -> Value {
    let summary = "Every integration type, its keys and its credential sources (what the page's form is built from)";
    op("listTypes", "integrations", summary, json!({ "200": answer("Types", "The types") }))
}

fn cache_figures() -> Value {
    let answer = answer("CacheFigures", "The figures (`{\"enabled\": false}` without a cache)");
    op("getCache", "cache", "Cache figures", json!({ "200": answer }))
}

fn metrics() -> Value {
    let summary = "Prometheus metrics (names in CONTRACT.md section 6)";
    op("getMetrics", "operations", summary, json!({ "200": text("text/plain", "Prometheus text format 0.0.4") }))
}

fn openapi_json() -> Value {
    let document = json!({ "type": "object", "required": ["openapi", "info", "paths"],
                           "properties": { "openapi": { "const": "3.1.0" } } });
    op(
        "getOpenApi",
        "operations",
        "This description",
        json!({ "200": json_schema("The OpenAPI 3.1 document", document) }),
    )
}

fn healthz() -> Value {
    public("healthz", "operations", "Liveness", json!({ "200": text("text/plain", "Alive: `ok`") }))
}

fn readyz() -> Value {
    let responses = json!({ "200": answer("Readyz", "Ready"), "503": answer("Readyz", "Not ready") });
    public("readyz", "operations", "Readiness, and the state of the config file", responses)
}

/// An operation behind the token: `401` is added to `responses`.
fn op(id: &str, tag: &str, summary: &str, mut responses: Value) -> Value {
    responses["401"] = json!({ "$ref": "#/components/responses/Unauthorized" });
    json!({ "operationId": id, "tags": [tag], "summary": summary, "responses": responses })
}

/// An operation anyone may call.
fn public(id: &str, tag: &str, summary: &str, responses: Value) -> Value {
    json!({ "operationId": id, "tags": [tag], "summary": summary, "security": [], "responses": responses })
}

/// One of the page's files.
fn page(id: &str, summary: &str, media_type: &str) -> Value {
    public(id, "page", summary, json!({ "200": text(media_type, summary) }))
}

/// A JSON answer whose schema is `components/schemas/<schema>`.
fn answer(schema: &str, description: &str) -> Value {
    json_schema(description, json!({ "$ref": format!("#/components/schemas/{schema}") }))
}

fn json_schema(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn text(media_type: &str, description: &str) -> Value {
    json!({ "description": description, "content": { media_type: { "schema": { "type": "string" } } } })
}

/// An error answer (CONTRACT.md section 7) with one of `codes`.
fn error(codes: &[&str], description: &str) -> Value {
    let code = match codes {
        [one] => json!({ "const": one }),
        many => json!({ "enum": many }),
    };
    json_schema(
        description,
        json!({ "$ref": "#/components/schemas/Error", "properties": { "error": { "properties": { "code": code } } } }),
    )
}

// ------------------------------------------------------------------ schemas

fn schemas() -> Value {
    let mut all = Map::new();
    all.extend(integration_schemas());
    all.extend(answer_schemas());
    all.extend(type_schemas());
    all.extend(operation_schemas());
    Value::Object(all)
}

fn named(schemas: Vec<(&str, Value)>) -> Map<String, Value> {
    schemas.into_iter().map(|(name, schema)| (name.to_owned(), schema)).collect()
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{schema}") })
}

/// An integration as written: one schema per type, from its [`KeyDef`]s.
fn integration_schemas() -> Map<String, Value> {
    let mut out = named(vec![(
        "VarReference",
        json!({
            "type": "string", "pattern": "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}",
            "description": "A string holding a `${VAR}` reference, expanded from the environment when read \
                            (kept as written in answers)"
        }),
    )]);
    for t in TYPES {
        out.insert(type_schema_name(t.name), integration_schema(t));
    }
    let one_of: Vec<Value> = TYPES.iter().map(|t| reference(&type_schema_name(t.name))).collect();
    let mapping: Map<String, Value> = TYPES
        .iter()
        .map(|t| (t.name.to_owned(), json!(format!("#/components/schemas/{}", type_schema_name(t.name)))))
        .collect();
    out.insert(
        "IntegrationOfAnyType".into(),
        json!({
            "description": "The keys of an integration of any type (not closed: see `Integration`)",
            "oneOf": one_of, "discriminator": { "propertyName": "type", "mapping": mapping }
        }),
    );
    out.insert(
        "Integration".into(),
        json!({
            "description": "An integration: the keys of its `[[integration]]` table (CONTRACT.md section 2)",
            "$ref": "#/components/schemas/IntegrationOfAnyType", "unevaluatedProperties": false
        }),
    );
    out
}

/// `s3` -> `S3Integration`, `azure-blob` -> `AzureBlobIntegration`.
fn type_schema_name(type_name: &str) -> String {
    let words: String = type_name
        .split('-')
        .map(|w| w.chars().take(1).flat_map(char::to_uppercase).chain(w.chars().skip(1)).collect::<String>())
        .collect();
    format!("{words}Integration")
}

/// One type's integration: its keys as properties, `type` fixed.
fn integration_schema(t: &TypeDef) -> Value {
    let mut props = Map::new();
    props.insert(
        "name".into(),
        json!({ "type": "string", "pattern": NAME_PATTERN,
        "description": "The integration's name; in a PUT body optional, and equal to the address's if given" }),
    );
    props.insert("type".into(), json!({ "const": t.name }));
    for k in t.keys.iter().chain(COMMON_KEYS) {
        props.insert(k.name.into(), key_schema(k));
    }
    json!({ "title": t.title, "type": "object", "required": ["type"], "properties": props })
}

/// One key: its kind (a `${VAR}` string stands for any kind but a list), help, default.
fn key_schema(k: &KeyDef) -> Value {
    let var = reference("VarReference");
    let mut v = match k.kind {
        ValueKind::String => json!({ "type": "string" }),
        ValueKind::Integer => {
            json!({ "anyOf": [{ "type": "integer" }, { "type": "string", "pattern": "^\\s*[+-]?[0-9]+\\s*$" }, var] })
        }
        ValueKind::Boolean => json!({ "anyOf": [{ "type": "boolean" }, { "enum": ["true", "false"] }, var] }),
        ValueKind::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        ValueKind::Enum(values) => json!({ "anyOf": [{ "enum": values }, var] }),
    };
    let mut help = k.help.to_owned();
    if k.required {
        help.push_str(". Needed for a complete integration: without it the integration is saved as `incomplete`");
    }
    if k.secret {
        help.push_str(&format!(
            ". A secret: answered as \"{SECRET_MARKER}\" (or the `${{VAR}}` as written); \
             sending \"{SECRET_MARKER}\" keeps the stored one"
        ));
        v["format"] = json!("password");
    }
    v["description"] = json!(help);
    if let Some(default) = k.default {
        v["default"] = typed_default(k.kind, default);
    }
    v
}

/// A default as the JSON value of its kind (`"true"` -> `true`).
fn typed_default(kind: ValueKind, default: &str) -> Value {
    let typed = match kind {
        ValueKind::Boolean => default.parse::<bool>().ok().map(Value::from),
        ValueKind::Integer => default.parse::<i64>().ok().map(Value::from),
        _ => None,
    };
    typed.unwrap_or_else(|| json!(default))
}

/// What the integration routes answer.
fn answer_schemas() -> Map<String, Value> {
    let test_or_null = json!({ "oneOf": [reference("Test"), { "type": "null" }] });
    named(vec![
        (
            "Status",
            json!({ "enum": ["ok", "failing", "incomplete", "untested"],
            "description": "ok / failing: the last connection test passed / failed; incomplete: keys are missing \
                            (see problems); untested: complete but not tested yet (beyond the contract's three)" }),
        ),
        (
            "Problem",
            json!({ "type": "object", "required": ["key", "message"], "additionalProperties": false,
            "properties": { "key": { "type": "string", "description": "The key concerned; empty when the problem has none" },
                            "message": { "type": "string" } } }),
        ),
        ("Problems", json!({ "type": "array", "items": reference("Problem") })),
        (
            "Test",
            json!({ "type": "object", "additionalProperties": false,
                "required": ["ok", "code", "message", "at", "duration_ms"],
            "description": "A connection test (CONTRACT.md section 6)",
            "properties": {
                "ok": { "type": "boolean" },
                "code": { "type": "string", "description": "`ok`, the storage's own error code (`SignatureDoesNotMatch`, \
                    `AuthorizationPermissionMismatch`, `NoSuchBucket`, ...), `timeout`, `dns`, `tls`, `connect`, or \
                    `incomplete` for an integration that lacks keys" },
                "message": { "type": "string", "description": "One sentence a person can act on" },
                "at": { "type": "string", "format": "date-time" },
                "duration_ms": { "type": "integer", "minimum": 0 } },
            "if": { "properties": { "ok": { "const": true } } }, "then": { "properties": { "code": { "const": "ok" } } } }),
        ),
        (
            "Listed",
            json!({ "description": "An integration as listed: its keys as written (secrets redacted) and its state",
            "allOf": [reference("IntegrationOfAnyType"), { "type": "object",
                "required": ["name", "status", "last_test", "problems", "credential_source", "credentials_expire"],
                "properties": { "status": reference("Status"), "last_test": test_or_null,
                                "problems": reference("Problems"),
                                "credential_source": { "description": "The credential source in use (never the credentials); null for a local or incomplete integration",
                                    "enum": [null, "static", "env", "web-identity", "instance", "sas", "account-key", "service-principal", "workload-identity", "managed-identity"] },
                                "credentials_expire": { "description": "When temporary credentials expire; null for static ones or before the first fetch",
                                    "type": ["string", "null"], "format": "date-time" } } }],
            "unevaluatedProperties": false }),
        ),
        (
            "IntegrationList",
            json!({ "type": "object", "required": ["integrations"], "additionalProperties": false,
            "properties": { "integrations": { "type": "array", "items": reference("Listed") } } }),
        ),
        (
            "Saved",
            json!({ "type": "object", "additionalProperties": false,
                "required": ["integration", "status", "test", "problems"],
            "description": "The answer to a PUT: the integration as saved (secrets redacted), and the test run after saving \
                            (none for an incomplete integration)",
            "properties": {
                "integration": { "$ref": "#/components/schemas/Integration", "required": ["name"] },
                "status": { "enum": ["ok", "failing", "incomplete"] },
                "test": test_or_null,
                "problems": reference("Problems") },
            "if": { "properties": { "status": { "const": "incomplete" } } },
            "then": { "properties": { "test": { "type": "null" } } },
            "else": { "properties": { "test": reference("Test") } } }),
        ),
        (
            "Error",
            json!({ "type": "object", "required": ["error"], "additionalProperties": false,
            "description": "An error (CONTRACT.md section 7)",
            "properties": {
                "error": { "type": "object", "required": ["code", "message"], "additionalProperties": false,
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } },
                "problems": reference("Problems") } }),
        ),
    ])
}

/// `GET /api/types`: the one definition of each type, as the page's form reads it.
fn type_schemas() -> Map<String, Value> {
    let type_names: Vec<&str> = TYPES.iter().map(|t| t.name).collect();
    let kinds: Vec<&str> =
        [ValueKind::String, ValueKind::Integer, ValueKind::Boolean, ValueKind::StringList, ValueKind::Enum(&[])]
            .into_iter()
            .map(ValueKind::name)
            .collect();
    named(vec![
        (
            "Types",
            json!({ "type": "object", "required": ["types"], "additionalProperties": false,
            "properties": { "types": { "type": "array", "items": reference("TypeDefinition") } } }),
        ),
        (
            "TypeDefinition",
            json!({ "type": "object", "required": ["type", "title", "keys", "sources"], "additionalProperties": false,
            "properties": { "type": { "enum": type_names }, "title": { "type": "string" },
                "keys": { "type": "array", "items": reference("KeyDefinition"),
                          "description": "Every key but `name` and `type` (a form always has those). A key that a \
                                          credential source lists belongs to that source only; the others go with \
                                          every source" },
                "sources": { "type": "array", "items": reference("CredentialSource"),
                             "description": "The ways this type gets its credentials (empty for `local`); a form \
                                             offers one at a time, with its own keys, the first by default" } } }),
        ),
        (
            "CredentialSource",
            json!({ "type": "object", "required": ["name", "label", "help", "selector", "keys"],
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string", "description": "As `credential_source` names it when in use" },
                "label": { "type": "string", "description": "A short title for people" },
                "help": { "type": "string" },
                "selector": { "description": "The key and value that choose this source (`credentials = \"instance\"`); \
                                              null: its own keys choose it",
                    "oneOf": [{ "type": "null" }, { "type": "object", "required": ["key", "value"],
                        "additionalProperties": false,
                        "properties": { "key": { "type": "string" }, "value": { "type": "string" } } }] },
                "keys": { "type": "array", "description": "Its own keys (see `keys` of the type), in form order",
                    "items": { "type": "object", "required": ["name", "required"], "additionalProperties": false,
                        "properties": { "name": { "type": "string" },
                            "required": { "type": "boolean", "description": "Needed when this source is chosen" } } } } } }),
        ),
        (
            "KeyDefinition",
            json!({ "type": "object", "required": ["name", "kind", "secret", "required", "default", "help"],
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string" },
                "kind": { "enum": kinds },
                "values": { "type": "array", "items": { "type": "string" },
                            "description": "The allowed values (kind `enum` only)" },
                "secret": { "type": "boolean" },
                "required": { "type": "boolean", "description": "Needed for the integration to be complete" },
                "default": { "type": ["string", "null"], "description": "The default as a person would write it" },
                "help": { "type": "string" } },
            "if": { "properties": { "kind": { "const": "enum" } } },
            "then": { "required": ["values"] },
            "else": { "not": { "required": ["values"] } } }),
        ),
    ])
}

/// Cache, purge and readiness.
fn operation_schemas() -> Map<String, Value> {
    let count = json!({ "type": "integer", "minimum": 0 });
    let figures = ["max_bytes", "bytes", "entries", "hits", "misses", "evictions", "coalesced"];
    let mut enabled: Map<String, Value> = figures.iter().map(|f| ((*f).to_owned(), count.clone())).collect();
    enabled.insert("enabled".into(), json!({ "const": true }));
    enabled.insert("hit_ratio".into(), json!({ "type": "number", "minimum": 0, "maximum": 1 }));
    let mut required = vec!["enabled"];
    required.extend(figures);
    required.push("hit_ratio");
    let locator = |what: &str| json!({ "type": "string", "minLength": 1, "description": what });
    named(vec![
        (
            "CacheFigures",
            json!({ "oneOf": [
            { "type": "object", "required": required, "additionalProperties": false, "properties": enabled },
            { "type": "object", "required": ["enabled"], "additionalProperties": false,
              "properties": { "enabled": { "const": false } }, "description": "No cache (`[cache] enabled = false`)" } ] }),
        ),
        (
            "Purge",
            json!({ "type": "object", "additionalProperties": false,
            "properties": { "locator": locator("Drop this object (`s3://bucket/key`)"),
                            "prefix": locator("Drop every object whose locator starts so \
                                               (`s3://bucket/` or `s3://bucket/dir/`)") },
            "oneOf": [{ "required": ["locator"] }, { "required": ["prefix"] }] }),
        ),
        (
            "Purged",
            json!({ "type": "object", "required": ["purged"], "additionalProperties": false,
            "properties": { "purged": { "type": "integer", "minimum": 0, "description": "Cached objects dropped" } } }),
        ),
        (
            "Readyz",
            json!({ "type": "object", "required": ["ready", "config"], "additionalProperties": false,
            "properties": { "ready": { "type": "boolean" }, "config": { "type": "object",
                "required": ["loaded_at", "last_reload_error"],
                "additionalProperties": false,
                "properties": { "loaded_at": { "type": "string", "format": "date-time" },
                                "last_reload_error": { "type": ["string", "null"],
                                    "description": "Why the last reload kept the running config, or null" } } },
                "store": { "type": "object", "required": ["connected", "error", "since"],
                    "additionalProperties": false,
                    "description": "Only with [store]: the shared store (docs/STORE.md)",
                    "properties": { "connected": { "type": "boolean" },
                                    "error": { "type": ["string", "null"],
                                        "description": "Why it is not connected, or null" },
                                    "since": { "type": "string", "format": "date-time",
                                        "description": "When `connected` last changed" } } } } }),
        ),
    ])
}
