//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the protocol types' schemas, with the bearer and signature schemes, and the last touches
//! that make the schemas say exactly what the server enforces (checked by the API fuzzer,
//! `tests/api-fuzz/run`).

use crate::{admin, app, app_links, landing, machine_api, operator_api};
use axum::Json;
use std::collections::HashMap;
use utoipa::openapi::RefOr;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Object, OneOf, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "OpKey Access Management",
        description = "Admin API (/admin/v1) for organizations, operators, machines, keys and invites; \
                       operator API (/v1) for phones: redeem an invite, open a session, sync keys and \
                       Digital Key grants, upload usage events; machine API (/machine/v1) for telematics units \
                       reporting their usage sessions and fetching their keypad tables; invite links (/i/{token}) \
                       and the /.well-known files that let the apps open them."
    ),
    paths(
        app::healthz,
        admin::users::whoami,
        admin::users::create,
        admin::organizations::create,
        admin::organizations::list,
        admin::operators::create,
        admin::operators::list,
        admin::operators::get_one,
        admin::operators::edit,
        admin::operators::delete,
        admin::operators::reinvite,
        admin::import::preview,
        admin::import::import,
        admin::import::template,
        admin::machines::create,
        admin::machines::list,
        admin::machines::get_one,
        admin::machines::edit,
        admin::machines::provisioning,
        admin::machines::delete,
        admin::events::list,
        admin::keys::create,
        admin::keys::list,
        admin::keys::get_one,
        admin::keys::edit,
        admin::keys::delete,
        admin::keys::revoke,
        admin::keys::static_pin,
        admin::sms::outbox,
        operator_api::redeem::redeem,
        operator_api::session::challenge,
        operator_api::session::open,
        operator_api::sync::sync,
        operator_api::events::upload,
        machine_api::usage::upload,
        machine_api::keypad::table,
        app_links::assetlinks,
        app_links::apple,
        landing::page,
    ),
    modifiers(&BearerSchemes, &ExactSchemas, &OperationIdsAndLinks),
    tags(
        (name = "admin", description = "Identity, organizations, admin users, SMS outbox"),
        (name = "operators", description = "Operators, invites and file import"),
        (name = "machines", description = "Machines, their telematics units, provisioning and usage events"),
        (name = "keys", description = "Keys to machines"),
        (name = "phone", description = "The operator app: redeem, session, sync, usage events"),
        (name = "machine", description = "Telematics units online: usage sessions and keypad tables, signed with the machine key"),
        (name = "app links", description = "Invite links: the files that let the OpKey apps open them, and the page they show in a browser"),
        (name = "health")
    )
)]
struct ApiDoc;

struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An admin token: the bootstrap token or a user's token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "machine_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                opkey_protocol::api::MACHINE_SIGNATURE_HEADER,
                "ECDSA P-256 by the machine's registered key, raw r||s, base64url, over \
                 opkey-machine-usage-v1 (usage) or opkey-machine-keypad-v1 (keypad), a newline and \
                 the hex SHA-256 of the body",
            ))),
        );
        components.add_security_scheme(
            "phone_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token from POST /v1/session"))
                    .build(),
            ),
        );
    }
}

/// Constraints the derive cannot write: `uniqueItems` on a key's machine list, and a
/// nullable value with a `format` (an optional date-time) spelt `oneOf: [null, string with
/// format]` rather than `type: [string, null]` beside the format, which some tools read as
/// "any string or null" and so send `""` as a valid date-time.
struct ExactSchemas;

impl Modify for ExactSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for schema in components.schemas.values_mut() {
            split_nullable_formats(schema);
        }
        if let Some(RefOr::T(Schema::Object(create_key))) = components.schemas.get_mut("CreateKey")
            && let Some(RefOr::T(Schema::Array(machine_ids))) = create_key.properties.get_mut("machine_ids")
        {
            machine_ids.unique_items = true;
        }
    }
}

/// Rewrites, at any depth, `{type: [T, null], format: F, ...}` into
/// `oneOf: [{type: null}, {type: T, format: F, ...}]`.
fn split_nullable_formats(schema: &mut RefOr<Schema>) {
    let RefOr::T(inner) = schema else {
        return;
    };
    match inner {
        Schema::Object(object) => {
            for property in object.properties.values_mut() {
                split_nullable_formats(property);
            }
            if let Some(extra) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(extra) = extra
            {
                split_nullable_formats(extra);
            }
            if let Some(split) = split_nullable_format(object) {
                *inner = split;
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                split_nullable_formats(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(split_nullable_formats),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(split_nullable_formats),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(split_nullable_formats),
        _ => {}
    }
}

/// The `oneOf` form of a nullable object schema with a format, if it is one.
fn split_nullable_format(object: &Object) -> Option<Schema> {
    object.format.as_ref()?;
    let SchemaType::Array(types) = &object.schema_type else {
        return None;
    };
    let ty = match &types[..] {
        [Type::Null, ty] | [ty, Type::Null] if *ty != Type::Null => ty.clone(),
        _ => return None,
    };
    let mut value = object.clone();
    value.schema_type = SchemaType::Type(ty);
    let description = value.description.take();
    let mut one_of = OneOf::new();
    one_of.items = vec![
        RefOr::T(Schema::Object(Object::with_type(Type::Null))),
        RefOr::T(Schema::Object(value)),
    ];
    one_of.description = description;
    Some(Schema::OneOf(one_of))
}

/// Operation ids unique across the document (the derive names several operations
/// `create`: those become `post_admin_v1_keys` and the like), and links from each create operation to the
/// operations on what it created, so a client or a stateful fuzzer can follow them.
struct OperationIdsAndLinks;

/// An operation: (method, path).
type Endpoint = (&'static str, &'static str);

/// (created by, status, followed by): each link passes the created `id` as the `id` path
/// parameter.
const LINKS: &[(Endpoint, &str, &[Endpoint])] = &[
    (
        ("post", "/admin/v1/operators"),
        "201",
        &[
            ("get", "/admin/v1/operators/{id}"),
            ("patch", "/admin/v1/operators/{id}"),
            ("delete", "/admin/v1/operators/{id}"),
            ("post", "/admin/v1/operators/{id}/invite"),
        ],
    ),
    (
        ("post", "/admin/v1/machines"),
        "201",
        &[
            ("get", "/admin/v1/machines/{id}"),
            ("patch", "/admin/v1/machines/{id}"),
            ("delete", "/admin/v1/machines/{id}"),
            ("get", "/admin/v1/machines/{id}/provisioning"),
        ],
    ),
    (
        ("post", "/admin/v1/keys"),
        "201",
        &[
            ("get", "/admin/v1/keys/{id}"),
            ("patch", "/admin/v1/keys/{id}"),
            ("delete", "/admin/v1/keys/{id}"),
            ("post", "/admin/v1/keys/{id}/revoke"),
            ("get", "/admin/v1/keys/{id}/static-pin"),
        ],
    ),
];

fn operation_id(method: &str, path: &str) -> String {
    let words = path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>();
    format!("{method}_{}", words.join("_"))
}

fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        "head" => item.head.as_mut(),
        "options" => item.options.as_mut(),
        "trace" => item.trace.as_mut(),
        _ => None,
    }
}

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

impl Modify for OperationIdsAndLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut uses = HashMap::<String, usize>::new();
        for item in openapi.paths.paths.values_mut() {
            for method in METHODS {
                if let Some(id) = operation_mut(item, method).and_then(|o| o.operation_id.clone()) {
                    *uses.entry(id).or_default() += 1;
                }
            }
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for method in METHODS {
                if let Some(operation) = operation_mut(item, method)
                    && operation.operation_id.as_ref().is_none_or(|id| uses[id] > 1)
                {
                    operation.operation_id = Some(operation_id(method, path));
                }
            }
        }
        for ((method, path), status, targets) in LINKS {
            let targets: Vec<(String, String)> = targets
                .iter()
                .filter_map(|(target_method, target_path)| {
                    let item = openapi.paths.paths.get_mut(*target_path)?;
                    let id = operation_mut(item, target_method)?.operation_id.clone()?;
                    Some((format!("{target_method}_{id}"), id))
                })
                .collect();
            let Some(RefOr::T(response)) = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| operation_mut(item, method))
                .and_then(|operation| operation.responses.responses.get_mut(*status))
            else {
                continue;
            };
            for (name, target) in targets {
                let link = LinkBuilder::new()
                    .operation_id(target)
                    .parameter("id", "$response.body#/id")
                    .build();
                response.links.insert(name, RefOr::T(link));
            }
        }
    }
}

/// The OpenAPI document as a value.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as JSON. utoipa 5.4 writes the fields of a Link Object in
/// snake_case (`operation_id`); OpenAPI names them `operationId`, `operationRef` and
/// `requestBody`, so they are renamed here.
pub fn document_json() -> serde_json::Value {
    let mut doc =
        serde_json::to_value(document()).expect("the OpenAPI document is plain data and always serialises");
    let responses = doc
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(links) = response
            .get_mut("links")
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        for link in links.values_mut().filter_map(serde_json::Value::as_object_mut) {
            for (from, to) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(from) {
                    link.insert(to.to_owned(), value);
                }
            }
        }
    }
    doc
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<serde_json::Value> {
    Json(document_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (operationId → the operation's parameter names) of every operation.
    fn operations(doc: &serde_json::Value) -> HashMap<String, Vec<String>> {
        let mut found = HashMap::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                    .to_owned();
                let params = operation["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| p["name"].as_str().unwrap().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                assert!(found.insert(id.clone(), params).is_none(), "{id} is used twice");
            }
        }
        found
    }

    #[test]
    fn operation_ids_are_unique_and_every_link_names_an_operation_and_its_parameters() {
        let doc = document_json();
        let operations = operations(&doc);
        assert_eq!(operations["get_admin_v1_keys_id"], ["id"]);
        assert_eq!(operations["revoke"], ["id"]);
        assert!(operations.contains_key("invite_landing_page"));
        let mut links = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                for response in operation["responses"].as_object().unwrap().values() {
                    let Some(map) = response["links"].as_object() else {
                        continue;
                    };
                    for (name, link) in map {
                        links += 1;
                        assert!(link.get("operation_id").is_none(), "{name}: {link}");
                        let target = link["operationId"].as_str().unwrap();
                        let params = operations
                            .get(target)
                            .unwrap_or_else(|| panic!("{name} links to unknown {target}"));
                        for param in link["parameters"].as_object().unwrap().keys() {
                            assert!(params.contains(param), "{name}: {target} has no {param}");
                        }
                    }
                }
            }
        }
        let expected: usize = LINKS.iter().map(|(_, _, targets)| targets.len()).sum();
        assert_eq!(links, expected);
    }
}
