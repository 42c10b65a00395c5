//! The OpenAPI 3.1 description of the admin API, built from the same
//! definitions the API uses ([`crate::integration::config::TYPES`]), served at
//! `GET /openapi.json` and kept in the repository as `docs/openapi.json` (a
//! test checks that the two are equal and that the running server answers
//! as described).

use serde_json::{Map, Value, json};

use crate::integration::config::{COMMON_KEYS, TYPES};
use crate::schema::{KeyDef, ValueKind};

/// The whole document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mediagate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Integrations at run time, connection tests, cache purge, metrics (CONTRACT.md section 6). \
                            Every route but /healthz, /readyz and the page needs `Authorization: Bearer <[admin] token>`."
        },
        "servers": [{ "url": "http://127.0.0.1:9091" }],
        "security": [{ "bearer": [] }],
        "paths": paths(),
        "components": { "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }, "schemas": schemas() },
    })
}

fn paths() -> Value {
    let name = json!([{ "name": "name", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[a-z0-9-]{1,63}$" } }]);
    json!({
        "/healthz": { "get": { "summary": "Liveness", "security": [], "responses": { "200": { "description": "alive", "content": { "text/plain": {} } } } } },
        "/readyz": { "get": { "summary": "Readiness and the config's state", "security": [], "responses": {
            "200": answer("Readyz", "ready"), "503": answer("Readyz", "not ready") } } },
        "/metrics": { "get": { "summary": "Prometheus text", "responses": { "200": { "description": "metrics", "content": { "text/plain": {} } }, "401": error("no or wrong token") } } },
        "/api/types": { "get": { "summary": "Every integration type and its keys", "responses": { "200": answer("Types", "the types"), "401": error("no or wrong token") } } },
        "/api/integrations": { "get": { "summary": "All integrations, secrets redacted, with the last connection test",
            "responses": { "200": answer("IntegrationList", "the integrations"), "401": error("no or wrong token") } } },
        "/api/integrations/{name}": {
            "parameters": name,
            "get": { "summary": "One integration", "responses": { "200": answer("Listed", "the integration"), "401": error("no or wrong token"), "404": error("no such integration") } },
            "put": {
                "summary": "Create or replace; validates, saves (even when the test fails or keys are missing), tests, takes effect at once",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Integration" } } } },
                "responses": {
                    "200": answer("Saved", "replaced"), "201": answer("Saved", "created"),
                    "400": error("bad_config: a value of the wrong kind; nothing saved"),
                    "401": error("no or wrong token"),
                    "409": error("conflict: the scope overlaps another integration's, or the file on disk has problems; nothing saved")
                }
            },
            "delete": { "summary": "Remove", "responses": { "204": { "description": "removed" }, "401": error("no or wrong token"), "404": error("no such integration") } }
        },
        "/api/integrations/{name}/test": { "parameters": name, "post": { "summary": "Connection test (list one object)",
            "responses": { "200": answer("Test", "the test, whatever its outcome"), "401": error("no or wrong token"), "404": error("no such integration") } } },
        "/api/cache": { "get": { "summary": "Cache figures", "responses": { "200": answer("CacheFigures", "the figures"), "401": error("no or wrong token") } } },
        "/api/cache/purge": { "post": { "summary": "Purge by locator or prefix",
            "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Purge" } } } },
            "responses": { "200": answer("Purged", "objects dropped"), "400": error("neither or both of locator and prefix"), "401": error("no or wrong token") } } },
        "/openapi.json": { "get": { "summary": "This description", "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": {} } } } } }
    })
}

fn answer(schema: &str, description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } } })
}

fn error(description: &str) -> Value {
    answer("Error", description)
}

fn schemas() -> Value {
    let mut s = Map::new();
    for t in TYPES {
        s.insert(type_schema_name(t.name), integration_schema(t.name, t.keys));
    }
    let one_of: Vec<Value> =
        TYPES.iter().map(|t| json!({ "$ref": format!("#/components/schemas/{}", type_schema_name(t.name)) })).collect();
    s.insert("IntegrationOfAnyType".into(), json!({ "oneOf": one_of }));
    s.insert(
        "Integration".into(),
        json!({ "$ref": "#/components/schemas/IntegrationOfAnyType", "unevaluatedProperties": false }),
    );
    s.insert("Problem".into(), json!({ "type": "object", "required": ["key", "message"],
        "properties": { "key": { "type": "string" }, "message": { "type": "string" } }, "additionalProperties": false }));
    s.insert("Problems".into(), json!({ "type": "array", "items": { "$ref": "#/components/schemas/Problem" } }));
    s.insert("Status".into(), json!({ "enum": ["ok", "failing", "incomplete", "untested"] }));
    s.insert("Test".into(), json!({ "type": "object", "required": ["ok", "code", "message", "at", "duration_ms"], "additionalProperties": false,
        "properties": { "ok": { "type": "boolean" }, "code": { "type": "string" }, "message": { "type": "string" },
                        "at": { "type": "string", "format": "date-time" }, "duration_ms": { "type": "integer", "minimum": 0 } } }));
    s.insert("Listed".into(), json!({ "unevaluatedProperties": false, "allOf": [{ "$ref": "#/components/schemas/IntegrationOfAnyType" }, { "type": "object",
        "required": ["status", "last_test", "problems"],
        "properties": { "status": { "$ref": "#/components/schemas/Status" },
                        "last_test": { "oneOf": [{ "$ref": "#/components/schemas/Test" }, { "type": "null" }] },
                        "problems": { "$ref": "#/components/schemas/Problems" } } }] }));
    s.insert(
        "IntegrationList".into(),
        json!({ "type": "object", "required": ["integrations"], "additionalProperties": false,
        "properties": { "integrations": { "type": "array", "items": { "$ref": "#/components/schemas/Listed" } } } }),
    );
    s.insert("Saved".into(), json!({ "type": "object", "required": ["integration", "status", "test", "problems"], "additionalProperties": false,
        "properties": { "integration": { "$ref": "#/components/schemas/Integration" }, "status": { "$ref": "#/components/schemas/Status" },
                        "test": { "oneOf": [{ "$ref": "#/components/schemas/Test" }, { "type": "null" }] },
                        "problems": { "$ref": "#/components/schemas/Problems" } } }));
    s.insert(
        "Error".into(),
        json!({ "type": "object", "required": ["error"], "additionalProperties": false,
        "properties": { "error": { "type": "object", "required": ["code", "message"], "additionalProperties": false,
                                   "properties": { "code": { "type": "string" }, "message": { "type": "string" } } },
                        "problems": { "$ref": "#/components/schemas/Problems" } } }),
    );
    s.insert("Readyz".into(), json!({ "type": "object", "required": ["ready", "config"], "additionalProperties": false,
        "properties": { "ready": { "type": "boolean" }, "config": { "type": "object", "required": ["loaded_at", "last_reload_error"], "additionalProperties": false,
            "properties": { "loaded_at": { "type": "string", "format": "date-time" }, "last_reload_error": { "type": ["string", "null"] } } } } }));
    s.insert(
        "Purge".into(),
        json!({ "type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1,
        "properties": { "locator": { "type": "string" }, "prefix": { "type": "string" } } }),
    );
    s.insert(
        "Purged".into(),
        json!({ "type": "object", "required": ["purged"], "additionalProperties": false,
        "properties": { "purged": { "type": "integer", "minimum": 0, "description": "objects dropped" } } }),
    );
    s.insert("CacheFigures".into(), json!({ "type": "object", "required": ["enabled"],
        "properties": { "enabled": { "type": "boolean" }, "max_bytes": { "type": "integer" }, "bytes": { "type": "integer" },
                        "entries": { "type": "integer" }, "hits": { "type": "integer" }, "misses": { "type": "integer" },
                        "evictions": { "type": "integer" }, "coalesced": { "type": "integer" }, "hit_ratio": { "type": "number" } } }));
    s.insert("Types".into(), json!({ "type": "object", "required": ["types"], "properties": { "types": { "type": "array", "items": {
        "type": "object", "required": ["type", "title", "keys"], "properties": { "type": { "type": "string" }, "title": { "type": "string" },
        "keys": { "type": "array", "items": { "type": "object", "required": ["name", "kind", "secret", "required", "default", "help"] } } } } } } }));
    Value::Object(s)
}

fn type_schema_name(type_name: &str) -> String {
    let words: String = type_name.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect();
    format!("{words}Integration")
}

/// One type's integration: its keys as properties, `type` fixed. Secrets
/// are answered as `"********"` (or a `${VAR}` as written).
fn integration_schema(type_name: &str, keys: &[KeyDef]) -> Value {
    let mut props = Map::new();
    props.insert("name".into(), json!({ "type": "string", "pattern": "^[a-z0-9-]{1,63}$" }));
    props.insert("type".into(), json!({ "const": type_name }));
    for k in keys.iter().chain(COMMON_KEYS) {
        props.insert(k.name.into(), key_schema(k));
    }
    json!({ "type": "object", "required": ["type"], "properties": props })
}

fn key_schema(k: &KeyDef) -> Value {
    let mut v = match k.kind {
        ValueKind::String => json!({ "type": "string" }),
        // `${VAR}` may stand for a number or a boolean.
        ValueKind::Integer => json!({ "type": ["integer", "string"] }),
        ValueKind::Boolean => json!({ "type": ["boolean", "string"] }),
        ValueKind::StringList => json!({ "type": "array", "items": { "type": "string" } }),
        ValueKind::Enum(values) => json!({ "enum": values }),
    };
    v["description"] = Value::from(k.help);
    if k.secret {
        v["writeOnly"] = Value::from(true);
        v["description"] = Value::from(format!("{} Answered as \"********\" (or the ${{VAR}} as written).", k.help));
    }
    if let Some(default) = k.default {
        v["default"] = Value::from(default);
    }
    v
}
