//! The Rust client of this server's admin API: the one HTTP client that `opkey admin`,
//! `opkey demo` and the end-to-end tests use. It speaks the bodies of `opkey_protocol::api` and turns error bodies into
//! [`AdminError`]s; it never prints and never logs tokens.

use opkey_protocol::api::{
    AdminIdentity, AdminUserCreated, CreateAdminUser, CreateKey, CreateMachine, CreateOperator,
    CreateOrganization, EditKey, EditMachine, EditOperator, ErrorBody, ErrorCode, ImportPreview,
    ImportReport, InviteSummary, MachineProvisioning, ORGANIZATION_HEADER, OperatorView, SmsMessage,
    StaticPinView, UsageEventView,
};
use opkey_protocol::{Key, Machine, Organization};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;
use url::Url;

/// What went wrong talking to the admin API.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    #[error("the server answered {status} with a body this client does not understand")]
    BadResponse { status: u16 },
    #[error("cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

impl AdminError {
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AdminError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// An authenticated session with the admin API.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: Url,
    token: String,
    organization: Option<String>,
}

impl fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminClient")
            .field("base", &self.base.as_str())
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

/// Which file format an import body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Xlsx,
}

impl ImportFormat {
    /// By file name; anything that is not `.xlsx` is sent as CSV.
    pub fn from_path(path: &std::path::Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(ext) if ext == "xlsx" => ImportFormat::Xlsx,
            _ => ImportFormat::Csv,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ImportFormat::Csv => "text/csv",
            ImportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

impl AdminClient {
    pub fn new(server: &Url, token: &str) -> Self {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("an HTTP client with default settings always builds");
        let mut base = server.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Self {
            http,
            base,
            token: token.to_owned(),
            organization: None,
        }
    }

    /// Act in another organization (only the bootstrap admin may).
    pub fn in_organization(mut self, organization_id: Option<String>) -> Self {
        self.organization = organization_id;
        self
    }

    /// The same server, as another admin user.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: token.to_owned(),
            organization: None,
            ..self.clone()
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = self
            .base
            .join(&format!("admin/v1/{path}"))
            .expect("admin paths are valid URL paths");
        let mut req = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(org) = &self.organization {
            req = req.header(ORGANIZATION_HEADER, org);
        }
        req
    }

    async fn send(&self, req: RequestBuilder) -> Result<reqwest::Response, AdminError> {
        let response = req.send().await.map_err(|e| AdminError::Unreachable {
            url: self.base.to_string(),
            reason: describe_reqwest_error(&e),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(AdminError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            }),
            Err(_) => Err(AdminError::BadResponse {
                status: status.as_u16(),
            }),
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, AdminError> {
        let response = self.send(req).await?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|_| AdminError::BadResponse { status })?;
        serde_json::from_slice(&bytes).map_err(|_| AdminError::BadResponse { status })
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, AdminError> {
        self.json(self.request(Method::POST, path).json(body)).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn delete(&self, path: &str) -> Result<(), AdminError> {
        self.send(self.request(Method::DELETE, path)).await.map(drop)
    }

    pub async fn whoami(&self) -> Result<AdminIdentity, AdminError> {
        self.get("whoami").await
    }

    pub async fn create_organization(&self, name: &str) -> Result<Organization, AdminError> {
        self.post(
            "organizations",
            &CreateOrganization {
                name: name.to_owned(),
            },
        )
        .await
    }

    pub async fn organizations(&self) -> Result<Vec<Organization>, AdminError> {
        self.get("organizations").await
    }

    pub async fn create_user(&self, body: &CreateAdminUser) -> Result<AdminUserCreated, AdminError> {
        self.post("users", body).await
    }

    pub async fn create_operator(&self, body: &CreateOperator) -> Result<OperatorView, AdminError> {
        self.post("operators", body).await
    }

    pub async fn operators(&self) -> Result<Vec<OperatorView>, AdminError> {
        self.get("operators").await
    }

    pub async fn operator(&self, id: &str) -> Result<OperatorView, AdminError> {
        self.get(&format!("operators/{id}")).await
    }

    pub async fn edit_operator(&self, id: &str, body: &EditOperator) -> Result<OperatorView, AdminError> {
        self.json(self.request(Method::PATCH, &format!("operators/{id}")).json(body))
            .await
    }

    pub async fn delete_operator(&self, id: &str) -> Result<(), AdminError> {
        self.delete(&format!("operators/{id}")).await
    }

    pub async fn invite_operator(&self, id: &str) -> Result<InviteSummary, AdminError> {
        self.json(self.request(Method::POST, &format!("operators/{id}/invite")))
            .await
    }

    pub async fn import_preview(
        &self,
        file: Vec<u8>,
        format: ImportFormat,
    ) -> Result<ImportPreview, AdminError> {
        let req = self
            .request(Method::POST, "operators/import/preview")
            .header(reqwest::header::CONTENT_TYPE, format.content_type())
            .body(file);
        self.json(req).await
    }

    /// Imports the selected rows (`None`: every valid row), e.g. `rows = "2,4-6"`.
    pub async fn import(
        &self,
        file: Vec<u8>,
        format: ImportFormat,
        rows: Option<&str>,
        invite: bool,
    ) -> Result<ImportReport, AdminError> {
        let mut query: Vec<(&str, String)> = vec![("invite", invite.to_string())];
        if let Some(rows) = rows {
            query.push(("rows", rows.to_owned()));
        }
        let req = self
            .request(Method::POST, "operators/import")
            .query(&query)
            .header(reqwest::header::CONTENT_TYPE, format.content_type())
            .body(file);
        self.json(req).await
    }

    pub async fn import_template(&self) -> Result<String, AdminError> {
        let response = self
            .send(self.request(Method::GET, "operators/import/template.csv"))
            .await?;
        let status = response.status().as_u16();
        response
            .text()
            .await
            .map_err(|_| AdminError::BadResponse { status })
    }

    pub async fn create_machine(&self, body: &CreateMachine) -> Result<Machine, AdminError> {
        self.post("machines", body).await
    }

    pub async fn machines(&self) -> Result<Vec<Machine>, AdminError> {
        self.get("machines").await
    }

    pub async fn delete_machine(&self, id: &str) -> Result<(), AdminError> {
        self.delete(&format!("machines/{id}")).await
    }

    /// Renames a machine or registers (replaces) its BLE public key.
    pub async fn edit_machine(&self, id: &str, body: &EditMachine) -> Result<Machine, AdminError> {
        self.json(self.request(Method::PATCH, &format!("machines/{id}")).json(body))
            .await
    }

    /// What the machine's telematics unit needs to verify grants offline.
    pub async fn machine_provisioning(&self, id: &str) -> Result<MachineProvisioning, AdminError> {
        self.get(&format!("machines/{id}/provisioning")).await
    }

    /// Usage events of this organization, optionally of one machine and/or operator.
    pub async fn events(
        &self,
        machine_id: Option<&str>,
        operator_id: Option<&str>,
    ) -> Result<Vec<UsageEventView>, AdminError> {
        let mut query = Vec::new();
        if let Some(m) = machine_id {
            query.push(("machine_id", m));
        }
        if let Some(op) = operator_id {
            query.push(("operator_id", op));
        }
        self.json(self.request(Method::GET, "events").query(&query)).await
    }

    pub async fn create_key(&self, body: &CreateKey) -> Result<Key, AdminError> {
        self.post("keys", body).await
    }

    pub async fn keys(
        &self,
        operator_id: Option<&str>,
        machine_id: Option<&str>,
    ) -> Result<Vec<Key>, AdminError> {
        let mut query = Vec::new();
        if let Some(op) = operator_id {
            query.push(("operator_id", op));
        }
        if let Some(m) = machine_id {
            query.push(("machine_id", m));
        }
        self.json(self.request(Method::GET, "keys").query(&query)).await
    }

    pub async fn key(&self, id: &str) -> Result<Key, AdminError> {
        self.get(&format!("keys/{id}")).await
    }

    pub async fn edit_key(&self, id: &str, body: &EditKey) -> Result<Key, AdminError> {
        self.json(self.request(Method::PATCH, &format!("keys/{id}")).json(body))
            .await
    }

    pub async fn delete_key(&self, id: &str) -> Result<(), AdminError> {
        self.delete(&format!("keys/{id}")).await
    }

    pub async fn revoke_key(&self, id: &str) -> Result<Key, AdminError> {
        self.json(self.request(Method::POST, &format!("keys/{id}/revoke")))
            .await
    }

    /// A Static PIN key's PIN (secret: `Debug` of the view hides it).
    pub async fn static_pin(&self, key_id: &str) -> Result<StaticPinView, AdminError> {
        self.get(&format!("keys/{key_id}/static-pin")).await
    }

    pub async fn sms_outbox(&self) -> Result<Vec<SmsMessage>, AdminError> {
        self.get("sms").await
    }
}

/// reqwest is built with `rustls-no-provider`: ring is our one crypto library.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn describe_reqwest_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "the request timed out".to_owned()
    } else if e.is_connect() {
        "connection refused or no route (is the server running?)".to_owned()
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }
}
