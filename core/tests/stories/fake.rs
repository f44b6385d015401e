//! A small fake of the backend's operator API, with hand-written HTTP/1.1 on a
//! `TcpListener` so tests can cut bodies, send garbage or drop answers at will.
//! One request per connection (`Connection: close`).

use opkey_core::Url;
use opkey_protocol::api::*;
use opkey_protocol::auth;
use opkey_protocol::ble::test_support::Issuer;
use opkey_protocol::ble::{Grant, GrantBody, RevocationList};
use opkey_protocol::encoding::{b64, unb64};
use opkey_protocol::invite::{InviteToken, ShortCode};
use opkey_protocol::model::Validity;
use opkey_protocol::{AccessType, Clock, Key, Keypad, Machine, Organization, TelematicsUnit};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the fake does instead of (or after) answering normally.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and no error body.
    Status(u16),
    /// Answer with this status and error code.
    Code(u16, ErrorCode),
    /// Send the headers and half the body, then close.
    CutBody,
    /// 200 with a body that is not JSON.
    BadJson,
    /// Handle the request, then close without answering (a lost response).
    LoseResponse,
    /// Wait this long before answering.
    Hang(StdDuration),
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Invite {
    pub operator_id: String,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
    /// The phone key that redeemed it, if any.
    pub redeemed_by: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Phone {
    pub id: String,
    pub public_key: Vec<u8>,
    pub operator_id: String,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
enum Change {
    Upsert(Key),
    Delete(String),
    Grant(GrantRecord),
    Revocations(RevocationRecord),
    PinSecret(PinSecretRecord),
}

#[derive(Debug)]
pub struct State {
    pub clock: Arc<dyn Clock>,
    pub organizations: Vec<Organization>,
    pub operators: HashMap<String, OperatorProfile>,
    pub invites: HashMap<String, Invite>,
    pub phones: Vec<Phone>,
    pub machines: HashMap<String, Machine>,
    /// Change `i` has sequence number `i + 1`; a `None` was compacted away.
    changes: Vec<Option<(String, Change)>>,
    pub page_size: usize,
    pub session_ttl: Duration,
    pub tokens: HashMap<String, (String, OffsetDateTime)>,
    challenges: HashMap<String, String>,
    /// Faults for requests whose path starts with the given prefix, in order.
    pub faults: VecDeque<(String, Fault)>,
    /// Faults applied to every matching request, forever.
    pub sticky: Vec<(String, Fault)>,
    pub requests: Vec<Recorded>,
    pub sessions_opened: u32,
    next_id: u32,
    /// The backend's grant-signing key.
    pub issuer: Arc<Issuer>,
    /// Usage events stored, each id once, in arrival order.
    pub events: Vec<UsageEvent>,
    /// The ids of every `POST /v1/events` that reached the handler.
    pub event_uploads: Vec<Vec<String>>,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_{}", self.next_id)
    }
}

#[derive(Debug)]
pub struct Fake {
    pub url: Url,
    pub state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const OPERATOR: &str = "op_ann";
pub const ORG: &str = "org_acme";

impl Fake {
    /// A backend with one organization and one operator (Ann), whose clock is `clock`.
    pub async fn start(clock: Arc<dyn Clock>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut operators = HashMap::new();
        operators.insert(
            OPERATOR.to_owned(),
            OperatorProfile {
                id: OPERATOR.into(),
                name: "Ann Operator".into(),
                phone: "+4512345678".parse().unwrap(),
            },
        );
        operators.insert(
            "op_bob".to_owned(),
            OperatorProfile {
                id: "op_bob".into(),
                name: "Bob Operator".into(),
                phone: "+4587654321".parse().unwrap(),
            },
        );
        let state = Arc::new(Mutex::new(State {
            clock,
            organizations: vec![Organization {
                id: ORG.into(),
                name: "Acme Rental".into(),
            }],
            operators,
            invites: HashMap::new(),
            phones: Vec::new(),
            machines: HashMap::new(),
            changes: Vec::new(),
            page_size: 2000,
            session_ttl: Duration::minutes(15),
            tokens: HashMap::new(),
            challenges: HashMap::new(),
            faults: VecDeque::new(),
            sticky: Vec::new(),
            requests: Vec::new(),
            sessions_opened: 0,
            next_id: 0,
            issuer: Arc::new(Issuer::new()),
            events: Vec::new(),
            event_uploads: Vec::new(),
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        Fake {
            url: Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
            state,
            task,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// An invite for `operator`; returns (link, short code).
    pub fn invite(&self, operator: &str) -> (String, ShortCode) {
        let rng = SystemRandom::new();
        let token = InviteToken::generate(&rng).unwrap();
        let code = ShortCode::generate(&rng).unwrap();
        self.with(|s| {
            let invite = Invite {
                operator_id: operator.into(),
                expires_at: s.clock.now() + Duration::days(7),
                revoked: false,
                redeemed_by: None,
            };
            s.invites.insert(token.expose().to_owned(), invite.clone());
            s.invites.insert(code.expose().to_owned(), invite);
        });
        (format!("{}i/{}", self.url, token.expose()), code)
    }

    pub fn add_machine(&self, id: &str, name: &str) {
        self.with(|s| {
            s.machines.insert(
                id.into(),
                Machine {
                    id: id.into(),
                    organization_id: ORG.into(),
                    name: name.into(),
                    serial: format!("SN-{id}"),
                    unit_type: TelematicsUnit::Tu600,
                    keypad: Keypad::DualId,
                    ble_public_key: None,
                },
            );
        });
    }

    /// A personal digital key of `operator` on `machines`, valid `from`..`to`.
    pub fn put_key(
        &self,
        id: &str,
        operator: &str,
        machines: &[&str],
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) {
        let version = self.with(|s| s.changes.len() as u64 + 1);
        self.upsert(Key {
            id: id.into(),
            organization_id: ORG.into(),
            access_type: AccessType::DigitalKey,
            operator_id: Some(operator.into()),
            machine_ids: machines.iter().map(|m| m.to_string()).collect(),
            validity: Validity {
                valid_from: from,
                valid_to: to,
            },
            description: format!("key {id}"),
            version,
            revoked: false,
            card_id: None,
            rolling_pin: None,
        });
    }

    /// A personal Rolling PIN key of `operator` on `machines` in keypad slot 1 (sha256,
    /// 6 digits, 60 s), active from a day before `T0`'s day for 30 days, with `seed`.
    pub fn put_rolling_pin_key(&self, id: &str, operator: &str, machines: &[&str], seed: &[u8]) {
        let now = self.with(|s| s.clock.now());
        let version = self.with(|s| s.changes.len() as u64 + 1);
        self.upsert(Key {
            id: id.into(),
            organization_id: ORG.into(),
            access_type: AccessType::RollingPin,
            operator_id: Some(operator.into()),
            machine_ids: machines.iter().map(|m| m.to_string()).collect(),
            validity: Validity {
                valid_from: now - Duration::days(1),
                valid_to: now + Duration::days(30),
            },
            description: format!("key {id}"),
            version,
            revoked: false,
            card_id: None,
            rolling_pin: Some(opkey_protocol::model::RollingPinInfo {
                slot: opkey_protocol::pin::KeypadSlot::new(1).expect("slot 1"),
                algorithm: opkey_protocol::pin::PinAlgorithm::Sha256,
                digits: 6,
                period_s: 60,
            }),
        });
        let record = PinSecretRecord {
            key_id: id.into(),
            version,
            seed: Some(b64(seed)),
            static_pin: None,
        };
        self.with(|s| s.changes.push(Some((operator.into(), Change::PinSecret(record)))));
    }

    pub fn upsert(&self, key: Key) {
        self.with(|s| {
            let owner = key.operator_id.clone().unwrap_or_default();
            s.changes.push(Some((owner, Change::Upsert(key))));
        });
    }

    pub fn delete_key(&self, id: &str, operator: &str) {
        self.with(|s| s.changes.push(Some((operator.into(), Change::Delete(id.into())))));
    }

    /// Forgets every change to `id` (a compacted log), as if it never existed.
    pub fn compact_away(&self, id: &str) {
        self.with(|s| {
            for c in s.changes.iter_mut() {
                let hit = match c {
                    Some((_, Change::Upsert(k))) => k.id == id,
                    Some((_, Change::Delete(d))) => d == id,
                    Some((_, Change::Grant(g))) => g.key_id == id,
                    Some((_, Change::PinSecret(p))) => p.key_id == id,
                    Some((_, Change::Revocations(_))) | None => false,
                };
                if hit {
                    *c = None;
                }
            }
        });
    }

    /// Registers `machine`'s BLE public key (phones learn it when they sync its keys).
    pub fn set_machine_key(&self, machine: &str, public_key: &[u8]) {
        self.with(|s| {
            s.machines.get_mut(machine).unwrap().ble_public_key = Some(b64(public_key));
        });
    }

    pub fn issuer(&self) -> Arc<Issuer> {
        self.with(|s| s.issuer.clone())
    }

    /// Issues a grant of `key` on `machines` to `operator`'s (latest) phone, valid
    /// `[from, to)` (unix seconds), at `serial`; the phone gets it on its next sync.
    pub fn issue_grant(
        &self,
        key: &str,
        operator: &str,
        machines: &[&str],
        from: u64,
        to: u64,
        serial: u32,
    ) -> Grant {
        let phone_key: [u8; 65] = self.with(|s| {
            let phone = s.phones.iter().rev().find(|p| p.operator_id == operator).unwrap();
            phone.public_key.clone().try_into().unwrap()
        });
        let body = GrantBody {
            key_id: key.into(),
            operator_id: operator.into(),
            phone_public_key: phone_key,
            machine_ids: machines.iter().map(|m| m.to_string()).collect(),
            valid_from: from,
            valid_to: to,
            issued_at: from,
            personal: true,
            serial,
        };
        let grant = self.issuer().grant(body);
        let record = GrantRecord {
            key_id: key.into(),
            serial,
            machine_ids: machines.iter().map(|m| m.to_string()).collect(),
            valid_from: OffsetDateTime::from_unix_timestamp(from as i64).unwrap(),
            valid_to: OffsetDateTime::from_unix_timestamp(to as i64).unwrap(),
            grant: b64(grant.as_bytes()),
        };
        self.with(|s| s.changes.push(Some((operator.into(), Change::Grant(record)))));
        grant
    }

    /// Publishes `list` to `operator`'s phones on their next sync.
    pub fn publish_revocations(&self, operator: &str, list: &RevocationList) {
        let record = RevocationRecord {
            machine_id: list.machine_id().into(),
            sequence: list.sequence(),
            list: b64(list.as_bytes()),
        };
        self.with(|s| {
            s.changes
                .push(Some((operator.into(), Change::Revocations(record))))
        });
    }

    /// Every stored usage event's id, in arrival order.
    pub fn event_ids(&self) -> Vec<String> {
        self.with(|s| s.events.iter().map(|e| e.id.clone()).collect())
    }

    pub fn fault(&self, path: &str, fault: Fault) {
        self.with(|s| s.faults.push_back((path.into(), fault)));
    }

    pub fn sticky_fault(&self, path: &str, fault: Fault) {
        self.with(|s| s.sticky.push((path.into(), fault)));
    }

    pub fn clear_faults(&self) {
        self.with(|s| {
            s.faults.clear();
            s.sticky.clear();
        });
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|r| r.path.starts_with(path))
                .cloned()
                .collect()
        })
    }

    pub fn revoke_phones(&self) {
        self.with(|s| s.phones.iter_mut().for_each(|p| p.revoked = true));
    }
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

fn json<T: serde::Serialize>(status: u16, body: &T) -> Reply {
    Reply {
        status,
        body: serde_json::to_vec(body).unwrap(),
    }
}

fn error(status: u16, code: ErrorCode, message: &str) -> Reply {
    json(
        status,
        &ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        },
    )
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_owned();
    let target = first.next().unwrap_or_default().to_owned();
    let mut headers = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));

    let fault = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            method: method.clone(),
            path: path.to_owned(),
            body: body.clone(),
        });
        let queued = s.faults.iter().position(|(p, _)| path.starts_with(p.as_str()));
        match queued {
            Some(i) => s.faults.remove(i).map(|(_, f)| f),
            None => s
                .sticky
                .iter()
                .find(|(p, _)| path.starts_with(p.as_str()))
                .map(|(_, f)| f.clone()),
        }
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);

    let reply = match &fault {
        Some(Fault::Status(code)) => Some(Reply {
            status: *code,
            body: b"oops".to_vec(),
        }),
        Some(Fault::Code(status, code)) => Some(error(*status, *code, "injected")),
        Some(Fault::BadJson) => Some(Reply {
            status: 200,
            body: b"{\"cursor\": 12, \"has_more\": fal".to_vec(),
        }),
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(*d).await;
            None
        }
        _ => None,
    };
    let reply = match reply {
        Some(r) => r,
        None => {
            let mut s = state.lock().unwrap();
            handle(&mut s, &method, path, query, &body, bearer.as_deref())
        }
    };
    if matches!(fault, Some(Fault::LoseResponse)) {
        return Ok(());
    }
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Whatever",
    };
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    let body = if matches!(fault, Some(Fault::CutBody)) {
        &reply.body[..reply.body.len() / 2]
    } else {
        &reply.body[..]
    };
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    SystemRandom::new().fill(&mut b).unwrap();
    b64(&b)
}

fn handle(s: &mut State, method: &str, path: &str, query: &str, body: &str, bearer: Option<&str>) -> Reply {
    let now = s.clock.now();
    match (method, path) {
        ("POST", "/v1/invites/redeem") => {
            let Ok(req) = serde_json::from_str::<RedeemRequest>(body) else {
                return error(400, ErrorCode::InvalidRequest, "bad body");
            };
            let secret = req.token.clone().or(req.code.clone()).unwrap_or_default();
            let Some(invite) = s.invites.get(&secret).cloned() else {
                return error(404, ErrorCode::InviteNotFound, "no such invite");
            };
            let pk = unb64(&req.phone_public_key).unwrap_or_default();
            let sig = unb64(&req.signature).unwrap_or_default();
            if auth::verify_phone_signature(&pk, &auth::redeem_message(&secret, &req.phone_public_key), &sig)
                .is_err()
            {
                return error(400, ErrorCode::BadSignature, "bad signature");
            }
            if invite.revoked {
                return error(410, ErrorCode::InviteRevoked, "revoked");
            }
            if invite.expires_at <= now {
                return error(410, ErrorCode::InviteExpired, "expired");
            }
            let phone_id = match &invite.redeemed_by {
                Some(by) if *by == pk => s
                    .phones
                    .iter()
                    .find(|p| p.public_key == pk && p.operator_id == invite.operator_id)
                    .map(|p| p.id.clone())
                    .unwrap(),
                Some(_) => return error(409, ErrorCode::InviteUsed, "used"),
                None => {
                    let id = s.id("phn");
                    s.phones.push(Phone {
                        id: id.clone(),
                        public_key: pk.clone(),
                        operator_id: invite.operator_id.clone(),
                        revoked: false,
                    });
                    for v in s.invites.values_mut() {
                        if v.operator_id == invite.operator_id && v.redeemed_by.is_none() {
                            v.redeemed_by = Some(pk.clone());
                        }
                    }
                    id
                }
            };
            json(
                200,
                &RedeemResponse {
                    phone_id,
                    operator: s.operators[&invite.operator_id].clone(),
                    organizations: s.organizations.clone(),
                    server_time: now,
                },
            )
        }
        ("POST", "/v1/session/challenge") => {
            let Ok(req) = serde_json::from_str::<ChallengeRequest>(body) else {
                return error(400, ErrorCode::InvalidRequest, "bad body");
            };
            match s.phones.iter().find(|p| p.id == req.phone_id) {
                None => return error(401, ErrorCode::Unauthorized, "unknown phone"),
                Some(p) if p.revoked => return error(403, ErrorCode::PhoneRevoked, "revoked"),
                Some(_) => {}
            }
            let challenge = random_b64(32);
            s.challenges.insert(challenge.clone(), req.phone_id);
            json(
                200,
                &ChallengeResponse {
                    challenge,
                    expires_at: now + Duration::minutes(1),
                    server_time: now,
                },
            )
        }
        ("POST", "/v1/session") => {
            let Ok(req) = serde_json::from_str::<SessionRequest>(body) else {
                return error(400, ErrorCode::InvalidRequest, "bad body");
            };
            if s.challenges.remove(&req.challenge).as_deref() != Some(req.phone_id.as_str()) {
                return error(401, ErrorCode::ChallengeExpired, "challenge");
            }
            let phone = s.phones.iter().find(|p| p.id == req.phone_id).unwrap().clone();
            if phone.revoked {
                return error(403, ErrorCode::PhoneRevoked, "revoked");
            }
            let sig = unb64(&req.signature).unwrap_or_default();
            let msg = auth::session_message(&req.phone_id, &req.challenge);
            if auth::verify_phone_signature(&phone.public_key, &msg, &sig).is_err() {
                return error(401, ErrorCode::BadSignature, "bad signature");
            }
            let token = random_b64(32);
            let expires_at = now + s.session_ttl;
            s.tokens.insert(token.clone(), (phone.id.clone(), expires_at));
            s.sessions_opened += 1;
            json(
                200,
                &SessionResponse {
                    access_token: token,
                    expires_at,
                    server_time: now,
                },
            )
        }
        ("GET", "/v1/sync") => {
            let Some((phone_id, expires)) = bearer.and_then(|t| s.tokens.get(t)).cloned() else {
                return error(401, ErrorCode::SessionExpired, "no session");
            };
            if expires <= now {
                return error(401, ErrorCode::SessionExpired, "expired");
            }
            let phone = s.phones.iter().find(|p| p.id == phone_id).unwrap().clone();
            if phone.revoked {
                return error(403, ErrorCode::PhoneRevoked, "revoked");
            }
            let cursor: u64 = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("cursor="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let head = s.changes.len() as u64;
            if cursor > head {
                return error(400, ErrorCode::BadCursor, "cursor from the future");
            }
            sync_page(s, &phone.operator_id, cursor, now)
        }
        ("POST", "/v1/events") => {
            let Some((phone_id, expires)) = bearer.and_then(|t| s.tokens.get(t)).cloned() else {
                return error(401, ErrorCode::SessionExpired, "no session");
            };
            if expires <= now {
                return error(401, ErrorCode::SessionExpired, "expired");
            }
            if s.phones.iter().any(|p| p.id == phone_id && p.revoked) {
                return error(403, ErrorCode::PhoneRevoked, "revoked");
            }
            let Ok(upload) = serde_json::from_str::<UsageEventsUpload>(body) else {
                return error(400, ErrorCode::InvalidRequest, "bad body");
            };
            if upload.events.len() > USAGE_EVENTS_MAX {
                return error(400, ErrorCode::InvalidRequest, "too many events");
            }
            let mut receipt = UsageEventsReceipt {
                accepted: 0,
                duplicates: 0,
            };
            s.event_uploads
                .push(upload.events.iter().map(|e| e.id.clone()).collect());
            for event in upload.events {
                if s.events.iter().any(|e| e.id == event.id) {
                    receipt.duplicates += 1;
                } else {
                    receipt.accepted += 1;
                    s.events.push(event);
                }
            }
            json(200, &receipt)
        }
        _ => error(404, ErrorCode::NotFound, "no route"),
    }
}

fn sync_page(s: &State, operator: &str, cursor: u64, now: OffsetDateTime) -> Reply {
    let mut keys: Vec<Key> = Vec::new();
    let mut deleted = Vec::new();
    let mut grants: Vec<GrantRecord> = Vec::new();
    let mut revocations: Vec<RevocationRecord> = Vec::new();
    let mut pin_secrets: Vec<PinSecretRecord> = Vec::new();
    let mut taken = 0;
    let mut next = cursor;
    for (i, change) in s.changes.iter().enumerate().skip(cursor as usize) {
        if taken == s.page_size {
            break;
        }
        next = i as u64 + 1;
        let Some((owner, change)) = change else { continue };
        if owner != operator {
            continue;
        }
        taken += 1;
        match change {
            Change::Upsert(k) => {
                keys.retain(|x| x.id != k.id);
                deleted.retain(|d: &String| *d != k.id);
                keys.push(k.clone());
            }
            Change::Delete(id) => {
                keys.retain(|x| x.id != *id);
                grants.retain(|g| g.key_id != *id);
                deleted.push(id.clone());
            }
            Change::Grant(g) => grants.push(g.clone()),
            Change::Revocations(l) => revocations.push(l.clone()),
            Change::PinSecret(p) => pin_secrets.push(p.clone()),
        }
    }
    let has_more = (next as usize) < s.changes.len();
    let mut machine_ids: Vec<&String> = keys.iter().flat_map(|k| k.machine_ids.iter()).collect();
    machine_ids.sort();
    machine_ids.dedup();
    let machines = machine_ids
        .into_iter()
        .filter_map(|m| s.machines.get(m).cloned())
        .collect();
    json(
        200,
        &SyncResponse {
            cursor: next,
            has_more,
            server_time: now,
            operator: s.operators[operator].clone(),
            organizations: s.organizations.clone(),
            keys,
            deleted_key_ids: deleted,
            machines,
            grants,
            revocations,
            issuer_public_key: Some(b64(s.issuer.public_key())),
            pin_secrets,
        },
    )
}
