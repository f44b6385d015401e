//! `opkey demo --audit-secrets`: the secrets audit of the demo.
//!
//! Owns the in-memory capture of the demo's logs and story output, the list of secrets
//! the demo used, and the scanner that looks for each of them — raw, hex, base64 and
//! base64url, and as text — in the captured logs, the story output and every file under
//! the demo's work dir. A file whose job is to hold exactly one secret (a key file under
//! mode 0600) is exempt for that secret only, and listed with the reason; it is still
//! scanned for every other secret. Nothing here prints, logs or formats a secret: the
//! report names kinds, counts and places only.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use zeroize::Zeroizing;

/// The kinds of secret the demo uses, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretKind {
    AdminToken,
    InviteToken,
    InviteCode,
    OperatorAccessToken,
    PhoneDataKey,
    PhoneSignerKey,
    MachineKey,
    IssuerKey,
    RollingPinSeed,
    StaticPin,
}

impl SecretKind {
    pub const ALL: [SecretKind; 10] = [
        SecretKind::AdminToken,
        SecretKind::InviteToken,
        SecretKind::InviteCode,
        SecretKind::OperatorAccessToken,
        SecretKind::PhoneDataKey,
        SecretKind::PhoneSignerKey,
        SecretKind::MachineKey,
        SecretKind::IssuerKey,
        SecretKind::RollingPinSeed,
        SecretKind::StaticPin,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SecretKind::AdminToken => "admin token",
            SecretKind::InviteToken => "invite token",
            SecretKind::InviteCode => "invite short code",
            SecretKind::OperatorAccessToken => "operator access token",
            SecretKind::PhoneDataKey => "phone data key",
            SecretKind::PhoneSignerKey => "phone signer private key",
            SecretKind::MachineKey => "machine private key",
            SecretKind::IssuerKey => "issuer private key",
            SecretKind::RollingPinSeed => "Rolling PIN seed",
            SecretKind::StaticPin => "Static PIN",
        }
    }
}

/// Why the audit could not run, or what it found.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Secrets in plaintext: each entry is "kind in place" (never the secret).
    #[error("secrets found in plaintext: {}", .findings.join("; "))]
    SecretsFound { findings: Vec<String> },
    /// A file exempt for its secret is readable by others than its owner.
    #[error("{path} holds a {} but is readable by others (mode {mode:o}, want 0600)", .kind.label())]
    ExemptFileExposed {
        path: String,
        kind: SecretKind,
        mode: u32,
    },
    /// A secret too short to be looked for without false alarms.
    #[error("a {} is shorter than {MIN_NEEDLE} bytes: it cannot be scanned for reliably", .0.label())]
    TooShort(SecretKind),
    /// A secret could not be collected (its holder is missing or malformed).
    #[error("cannot collect the {}: {reason}", .kind.label())]
    Collect { kind: SecretKind, reason: String },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}

impl AuditError {
    pub fn collect(kind: SecretKind, reason: impl fmt::Display) -> Self {
        AuditError::Collect {
            kind,
            reason: reason.to_string(),
        }
    }
}

/// The shortest needle: shorter strings turn up by chance in a database.
const MIN_NEEDLE: usize = 8;

/// One secret, in the forms it may take (a short code with and without its dashes).
struct Secret {
    kind: SecretKind,
    forms: Vec<Zeroizing<Vec<u8>>>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("kind", &self.kind)
            .field("forms", &self.forms.len())
            .finish()
    }
}

/// A file allowed to hold one secret, and why.
#[derive(Debug, Clone)]
struct Exemption {
    path: PathBuf,
    secret: usize,
    reason: &'static str,
}

/// Every secret the demo used, and the files allowed to hold one of them.
#[derive(Debug, Default)]
pub struct Secrets {
    secrets: Vec<Secret>,
    exemptions: Vec<Exemption>,
}

/// The index of a collected secret, for [`Secrets::exempt`].
#[derive(Debug, Clone, Copy)]
pub struct SecretId(usize);

impl Secrets {
    /// A secret that is text (a token, a code, a PIN): looked for as the text, in every
    /// encoding of the text, and — when it is itself base64 of 16 bytes or more — in
    /// every encoding of the bytes it stands for.
    pub fn add_text(&mut self, kind: SecretKind, text: &str) -> SecretId {
        let mut forms = vec![Zeroizing::new(text.as_bytes().to_vec())];
        for engine in [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD] {
            if let Ok(bytes) = engine.decode(text.trim())
                && bytes.len() >= 16
            {
                forms.push(Zeroizing::new(bytes));
                break;
            }
        }
        self.push(kind, forms)
    }

    /// A short code as typed: also looked for without its dashes.
    pub fn add_code(&mut self, kind: SecretKind, code: &str) -> SecretId {
        let bare: String = code.chars().filter(|c| *c != '-').collect();
        let mut forms = vec![Zeroizing::new(code.as_bytes().to_vec())];
        if bare != code {
            forms.push(Zeroizing::new(bare.into_bytes()));
        }
        self.push(kind, forms)
    }

    /// A binary secret (a key, a seed).
    pub fn add_bytes(&mut self, kind: SecretKind, bytes: &[u8]) -> SecretId {
        self.push(kind, vec![Zeroizing::new(bytes.to_vec())])
    }

    fn push(&mut self, kind: SecretKind, forms: Vec<Zeroizing<Vec<u8>>>) -> SecretId {
        self.secrets.push(Secret { kind, forms });
        SecretId(self.secrets.len() - 1)
    }

    /// `path` is the file whose job is to hold `secret` (under mode 0600).
    pub fn exempt(&mut self, path: impl Into<PathBuf>, secret: SecretId, reason: &'static str) {
        self.exemptions.push(Exemption {
            path: path.into(),
            secret: secret.0,
            reason,
        });
    }

    pub fn count(&self, kind: SecretKind) -> usize {
        self.secrets.iter().filter(|s| s.kind == kind).count()
    }
}

/// Looks for many needles at once: one pass over the haystack, an index on each
/// needle's first bytes.
pub struct Scanner {
    /// (secret index, needle).
    needles: Vec<(usize, Zeroizing<Vec<u8>>)>,
    by_prefix: HashMap<[u8; MIN_NEEDLE], Vec<usize>>,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl Scanner {
    /// Each form of each secret raw, as lower- and upper-case hex, base64 with and
    /// without padding, and base64url with and without padding.
    pub fn new(secrets: &Secrets) -> Result<Self, AuditError> {
        let mut needles: Vec<(usize, Zeroizing<Vec<u8>>)> = Vec::new();
        for (index, secret) in secrets.secrets.iter().enumerate() {
            let mut seen: Vec<Zeroizing<Vec<u8>>> = Vec::new();
            for form in &secret.forms {
                if form.len() < MIN_NEEDLE {
                    return Err(AuditError::TooShort(secret.kind));
                }
                for needle in encodings(form) {
                    if !seen.iter().any(|s| s.as_slice() == needle.as_slice()) {
                        seen.push(needle);
                    }
                }
            }
            needles.extend(seen.into_iter().map(|n| (index, n)));
        }
        let mut by_prefix: HashMap<[u8; MIN_NEEDLE], Vec<usize>> = HashMap::new();
        for (n, (_, needle)) in needles.iter().enumerate() {
            let mut prefix = [0u8; MIN_NEEDLE];
            prefix.copy_from_slice(&needle[..MIN_NEEDLE]);
            by_prefix.entry(prefix).or_default().push(n);
        }
        Ok(Self { needles, by_prefix })
    }

    /// The indexes of the secrets found in `haystack`.
    fn find(&self, haystack: &[u8]) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        if haystack.len() < MIN_NEEDLE {
            return found;
        }
        let mut prefix = [0u8; MIN_NEEDLE];
        for at in 0..=haystack.len() - MIN_NEEDLE {
            prefix.copy_from_slice(&haystack[at..at + MIN_NEEDLE]);
            if let Some(candidates) = self.by_prefix.get(&prefix) {
                for &n in candidates {
                    let (secret, needle) = &self.needles[n];
                    if haystack[at..].starts_with(needle) {
                        found.insert(*secret);
                    }
                }
            }
        }
        found
    }
}

fn encodings(bytes: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let hex = opkey_protocol::encoding::hex(bytes);
    let texts = [
        hex.to_ascii_uppercase(),
        hex,
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    let mut out = vec![Zeroizing::new(bytes.to_vec())];
    out.extend(texts.into_iter().map(|t| Zeroizing::new(t.into_bytes())));
    out
}

/// Lines per crate and level in logs written by the `fmt` subscriber
/// (`<time> <LEVEL> <crate>::<module>: …`), e.g. `opkey_core TRACE 120`: evidence that
/// the capture saw every level of every target. Names only, never a message.
pub fn log_census(logs: &[u8]) -> BTreeMap<(String, String), usize> {
    let mut census = BTreeMap::new();
    for line in String::from_utf8_lossy(logs).lines() {
        let mut words = line.split_whitespace().skip(1);
        let (Some(level), Some(target)) = (words.next(), words.next()) else {
            continue;
        };
        if !["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level) {
            continue;
        }
        let krate = target.split([':', '{']).next().unwrap_or(target).to_owned();
        *census.entry((krate, level.to_owned())).or_default() += 1;
    }
    census
}

/// One place scanned: its name in the report and its bytes.
#[derive(Debug)]
pub struct Place {
    pub name: String,
    pub path: Option<PathBuf>,
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Every file under `dir`, named relative to it, in a stable order.
pub fn files_under(dir: &Path) -> Result<Vec<Place>, AuditError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| io_error(&folder, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&folder, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io_error(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = Zeroizing::new(std::fs::read(&path).map_err(|e| io_error(&path, e))?);
                let name = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned();
                out.push(Place {
                    name,
                    path: Some(path),
                    bytes,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn io_error(path: &Path, e: io::Error) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// What the scan saw.
#[derive(Debug)]
pub struct Report {
    /// Per kind: how many secrets, and the places where one was found.
    pub rows: BTreeMap<SecretKind, (usize, BTreeSet<String>)>,
    pub places: Vec<String>,
    /// (place, kind, reason) of each exemption that applied.
    pub exempted: Vec<(String, SecretKind, &'static str)>,
}

impl Report {
    pub fn findings(&self) -> Vec<String> {
        self.rows
            .iter()
            .flat_map(|(kind, (_, places))| places.iter().map(move |p| format!("{} in {p}", kind.label())))
            .collect()
    }

    /// The table: kind, count, places scanned, found.
    pub fn lines(&self) -> Vec<String> {
        let mut rows = vec![["SECRET KIND", "COUNT", "PLACES SCANNED", "FOUND"].map(str::to_owned)];
        for (kind, (count, found)) in &self.rows {
            rows.push([
                kind.label().to_owned(),
                count.to_string(),
                self.places.len().to_string(),
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.iter().cloned().collect::<Vec<_>>().join(", ")
                },
            ]);
        }
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out: Vec<String> = rows
            .iter()
            .map(|r| {
                let mut line = String::new();
                for (c, cell) in r.iter().enumerate() {
                    line.push_str(cell);
                    if c + 1 < r.len() {
                        line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
                    }
                }
                line
            })
            .collect();
        out.push(String::new());
        out.push(format!("places scanned: {}", self.places.join(", ")));
        out.push("exempt (each for its own secret only; still scanned for every other):".into());
        for (place, kind, reason) in &self.exempted {
            out.push(format!("  {place}: {} — {reason}", kind.label()));
        }
        out
    }
}

/// Scans `places` for every secret; a file listed as the holder of a secret is exempt
/// for that secret, if it is readable by its owner only.
pub fn scan(secrets: &Secrets, places: &[Place]) -> Result<Report, AuditError> {
    let scanner = Scanner::new(secrets)?;
    let mut rows: BTreeMap<SecretKind, (usize, BTreeSet<String>)> = SecretKind::ALL
        .iter()
        .map(|k| (*k, (secrets.count(*k), BTreeSet::new())))
        .collect();
    let mut exempted = Vec::new();
    for exemption in &secrets.exemptions {
        let kind = secrets.secrets[exemption.secret].kind;
        check_private(&exemption.path, kind)?;
        let name = places
            .iter()
            .rev()
            .find(|p| p.path.as_deref() == Some(exemption.path.as_path()))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| exemption.path.display().to_string());
        exempted.push((name, kind, exemption.reason));
    }
    for exemption in &secrets.exemptions {
        // An exempt file that lacks its secret means the audit collected the wrong bytes.
        let holds = places
            .iter()
            .filter(|p| p.path.as_deref() == Some(exemption.path.as_path()))
            .any(|p| scanner.find(&p.bytes).contains(&exemption.secret));
        if !holds {
            return Err(AuditError::collect(
                secrets.secrets[exemption.secret].kind,
                format!("{} does not hold it", exemption.path.display()),
            ));
        }
    }
    for place in places {
        for secret in scanner.find(&place.bytes) {
            let allowed = secrets
                .exemptions
                .iter()
                .any(|e| e.secret == secret && place.path.as_deref() == Some(e.path.as_path()));
            if !allowed {
                let kind = secrets.secrets[secret].kind;
                if let Some(row) = rows.get_mut(&kind) {
                    row.1.insert(place.name.clone());
                }
            }
        }
    }
    Ok(Report {
        rows,
        places: places.iter().map(|p| p.name.clone()).collect(),
        exempted,
    })
}

#[cfg(unix)]
fn check_private(path: &Path, kind: SecretKind) -> Result<(), AuditError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| io_error(path, e))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(AuditError::ExemptFileExposed {
            path: path.display().to_string(),
            kind,
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(path: &Path, _: SecretKind) -> Result<(), AuditError> {
    std::fs::metadata(path).map(|_| ()).map_err(|e| io_error(path, e))
}

/// The 32-byte private scalar of a P-256 key in PKCS#8 (as ring writes it): what must
/// never appear outside its key file, whatever wraps it.
pub fn p256_private_scalar(pkcs8: &[u8], kind: SecretKind) -> Result<Zeroizing<Vec<u8>>, AuditError> {
    // ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING (32), … }
    const MARK: [u8; 5] = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(MARK.len())
        .position(|w| w == MARK)
        .ok_or_else(|| AuditError::collect(kind, "not a P-256 PKCS#8 key"))?;
    let start = at + MARK.len();
    pkcs8
        .get(start..start + 32)
        .map(|s| Zeroizing::new(s.to_vec()))
        .ok_or_else(|| AuditError::collect(kind, "the PKCS#8 key is truncated"))
}

/// Opens an envelope of the phone core's store (layout `version 1 ‖ nonce (12) ‖
/// ciphertext ‖ tag (16)`, AES-256-GCM under the data key, associated data naming the
/// slot), to learn the secret the core sealed there.
pub fn open_phone_envelope(
    data_key: &[u8],
    place: &str,
    sealed: &[u8],
    kind: SecretKind,
) -> Result<Zeroizing<Vec<u8>>, AuditError> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != 1 {
        return Err(AuditError::collect(kind, "the sealed value is malformed"));
    }
    let key = UnboundKey::new(&AES_256_GCM, data_key)
        .map_err(|_| AuditError::collect(kind, "the data key is not 32 bytes"))?;
    let nonce = Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN])
        .map_err(|_| AuditError::collect(kind, "the sealed value is malformed"))?;
    let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
    let aad = Aad::from(format!("opkey-envelope-v1:{place}").into_bytes());
    let len = LessSafeKey::new(key)
        .open_in_place(nonce, aad, &mut buf)
        .map_err(|_| AuditError::collect(kind, "the sealed value does not open with the data key"))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Text captured in memory: the demo's logs (a `tracing` writer) or its story output.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn append(&self, bytes: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }

    pub fn take(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// Sends every `tracing` event of this process, at every level and from every
    /// target (the OpKey crates, the server, the HTTP stack), into this capture.
    pub fn install_as_log(&self) -> Result<(), AuditError> {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .try_init()
            .map_err(|e| AuditError::collect(SecretKind::AdminToken, format!("cannot capture the logs: {e}")))
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::{SecureRandom, SystemRandom};

    fn random(n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n];
        SystemRandom::new().fill(&mut bytes).unwrap();
        bytes
    }

    fn place(name: &str, bytes: Vec<u8>) -> Place {
        Place {
            name: name.into(),
            path: None,
            bytes: Zeroizing::new(bytes),
        }
    }

    fn wrapped(inner: &[u8]) -> Vec<u8> {
        let mut hay = b"2026-11-23T08:00:00Z TRACE opkey_core::sync: applied value=".to_vec();
        hay.extend_from_slice(inner);
        hay.extend_from_slice(b" pages=3\n\x00\x01\x02 more bytes after");
        hay
    }

    #[test]
    fn a_planted_binary_secret_is_found_in_every_encoding() {
        let key = random(32);
        let mut secrets = Secrets::default();
        secrets.add_bytes(SecretKind::MachineKey, &key);
        let hex = opkey_protocol::encoding::hex(&key);
        let plants: Vec<(&str, Vec<u8>)> = vec![
            ("raw", key.clone()),
            ("hex", hex.clone().into_bytes()),
            ("HEX", hex.to_ascii_uppercase().into_bytes()),
            ("base64", STANDARD.encode(&key).into_bytes()),
            ("base64-nopad", STANDARD_NO_PAD.encode(&key).into_bytes()),
            ("base64url", URL_SAFE_NO_PAD.encode(&key).into_bytes()),
            ("base64url-pad", URL_SAFE.encode(&key).into_bytes()),
        ];
        for (name, plant) in plants {
            let places = [
                place("clean", wrapped(b"nothing here")),
                place(name, wrapped(&plant)),
            ];
            let report = scan(&secrets, &places).unwrap();
            let found = &report.rows[&SecretKind::MachineKey].1;
            assert_eq!(
                found.iter().map(String::as_str).collect::<Vec<_>>(),
                [name],
                "encoding {name}"
            );
            assert_eq!(report.findings(), [format!("machine private key in {name}")]);
        }
    }

    #[test]
    fn a_planted_text_secret_is_found_as_text_and_encoded_and_its_decoded_bytes_too() {
        let bytes = random(32);
        let token = URL_SAFE_NO_PAD.encode(&bytes);
        let mut secrets = Secrets::default();
        secrets.add_text(SecretKind::AdminToken, &token);
        let plants: Vec<(&str, Vec<u8>)> = vec![
            ("text", token.clone().into_bytes()),
            (
                "text-hex",
                opkey_protocol::encoding::hex(token.as_bytes()).into_bytes(),
            ),
            ("text-base64", STANDARD.encode(token.as_bytes()).into_bytes()),
            ("decoded-raw", bytes.clone()),
            ("decoded-hex", opkey_protocol::encoding::hex(&bytes).into_bytes()),
            ("decoded-base64", STANDARD.encode(&bytes).into_bytes()),
        ];
        for (name, plant) in plants {
            let report = scan(&secrets, &[place(name, wrapped(&plant))]).unwrap();
            assert_eq!(report.rows[&SecretKind::AdminToken].1.len(), 1, "{name}");
        }
    }

    #[test]
    fn a_code_is_found_with_and_without_its_dashes_and_a_near_miss_is_not() {
        let mut secrets = Secrets::default();
        secrets.add_code(SecretKind::InviteCode, "QRST-WXYZ-HJK");
        for plant in ["QRST-WXYZ-HJK", "QRSTWXYZHJK"] {
            let report = scan(&secrets, &[place("p", wrapped(plant.as_bytes()))]).unwrap();
            assert_eq!(report.findings().len(), 1, "{plant}");
        }
        let report = scan(&secrets, &[place("p", wrapped(b"QRST-WXYZ-HJM"))]).unwrap();
        assert!(report.findings().is_empty());
    }

    #[test]
    fn an_exempt_file_is_exempt_for_its_own_secret_only_and_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let (own, other) = (random(32), random(32));
        let path = dir.path().join("unit.key");
        let mut bytes = own.clone();
        bytes.extend_from_slice(&other);
        std::fs::write(&path, &bytes).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut secrets = Secrets::default();
        let id = secrets.add_bytes(SecretKind::MachineKey, &own);
        secrets.add_bytes(SecretKind::IssuerKey, &other);
        secrets.exempt(&path, id, "the unit's key file");
        let places = files_under(dir.path()).unwrap();
        let report = scan(&secrets, &places).unwrap();
        assert_eq!(report.findings(), ["issuer private key in unit.key"]);
        assert_eq!(report.exempted.len(), 1);

        let mut wrong = Secrets::default();
        let id = wrong.add_bytes(SecretKind::MachineKey, &random(32));
        wrong.exempt(&path, id, "claims to hold a key it does not");
        assert!(matches!(scan(&wrong, &places), Err(AuditError::Collect { .. })));

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = scan(&secrets, &places).unwrap_err();
            assert!(matches!(err, AuditError::ExemptFileExposed { .. }), "{err}");
        }
    }

    #[test]
    fn the_report_and_errors_never_show_a_secret() {
        let token = URL_SAFE_NO_PAD.encode(random(32));
        let mut secrets = Secrets::default();
        secrets.add_text(SecretKind::OperatorAccessToken, &token);
        let report = scan(&secrets, &[place("logs", wrapped(token.as_bytes()))]).unwrap();
        let text = report.lines().join("\n");
        let err = AuditError::SecretsFound {
            findings: report.findings(),
        }
        .to_string();
        assert!(text.contains("operator access token") && err.contains("operator access token in logs"));
        let debug = [
            format!("{secrets:?}"),
            format!("{:?}", Scanner::new(&secrets).unwrap()),
        ];
        for shown in [text, err].iter().chain(&debug) {
            assert!(!shown.contains(&token), "{shown}");
        }
    }

    #[test]
    fn a_secret_too_short_to_scan_for_is_refused() {
        let mut secrets = Secrets::default();
        secrets.add_text(SecretKind::StaticPin, "1234");
        assert!(matches!(
            Scanner::new(&secrets),
            Err(AuditError::TooShort(SecretKind::StaticPin))
        ));
    }

    #[test]
    fn the_private_scalar_of_a_pkcs8_key_is_the_one_ring_signs_with() {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let scalar = p256_private_scalar(pkcs8.as_ref(), SecretKind::MachineKey).unwrap();
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            pair.public_key().as_ref(),
            &rng,
        )
        .expect("the scalar matches the public key");
        assert!(p256_private_scalar(b"not a key at all", SecretKind::MachineKey).is_err());
    }
}
