//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and
//! the protocol types' schemas, with the two bearer schemes (admin token, phone session).

use crate::{admin, app, app_links, landing, machine_api, operator_api};
use axum::Json;
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
    modifiers(&BearerSchemes),
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

/// The OpenAPI document as a value.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
