//! The seed's HTTP side, exactly as an IM client uploads: an access token minted
//! with the app's secret, an upload grant from filegate's upload route, then the
//! grant used as given (the POST form's fields before `file`, or the PUT with every
//! header of `oss_body_param`, `If-None-Match: *` included), then a check that the
//! signed download URL answers. Blocking calls on the caller's thread (no runtime).

use std::time::Duration;

use reqwest::blocking::{multipart, Client, Response};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::Value;

use crate::auth::claims::{TokenClaims, TokenKind};
use crate::auth::file_sign::verify_file_sign;
use crate::config::Secret;
use crate::query::encode_value;
use crate::seed::plan::{Planned, Variant, FIRST_USER};

/// Lifetime of the access tokens the seed mints for itself.
const TOKEN_TTL_SECS: u64 = 3600;
/// How much of an unexpected answer's body a message quotes.
const QUOTE: usize = 300;

/// An upload grant, as filegate answered it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `POST` or `PUT`.
    pub method: String,
    /// Where to upload.
    pub upload_url: String,
    /// POST: the form fields, in order; PUT: the headers.
    pub params: Vec<(String, String)>,
    /// Avatars: `object_name`.
    pub object_name: Option<String>,
    /// Chat files: `file_sign`.
    pub file_sign: Option<String>,
}

/// filegate, reached at `--url` as a client of `app`.
pub struct SeedClient {
    http: Client,
    base: String,
    app: String,
    secret: Secret,
}

/// An answer read whole: status, content type and (the start of) the body.
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn read(resp: Response) -> Answer {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.text().unwrap_or_default();
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// `(code, message, data)` when the answer is filegate's JSON envelope.
    fn envelope(&self) -> Option<(u64, String, Value)> {
        if !self.content_type.starts_with("application/json") {
            return None;
        }
        let v: Value = serde_json::from_str(&self.body).ok()?;
        let code = v.get("code")?.as_u64()?;
        let message = v
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Some((code, message, v.get("data").cloned().unwrap_or(Value::Null)))
    }

    /// What a message says of this answer: status, and the envelope's code and
    /// message or the start of the body.
    fn describe(&self) -> String {
        match self.envelope() {
            Some((code, message, _)) => {
                format!("HTTP {}, code {code}: {message}", self.status)
            }
            None => {
                let text: String = self.body.split_whitespace().collect::<Vec<_>>().join(" ");
                let quoted: String = text.chars().take(QUOTE).collect();
                let ct = if self.content_type.is_empty() {
                    "no content type"
                } else {
                    &self.content_type
                };
                if quoted.is_empty() {
                    format!("HTTP {} ({ct}, empty body)", self.status)
                } else {
                    format!("HTTP {} ({ct}): {quoted}", self.status)
                }
            }
        }
    }
}

/// The deepest cause of a transport error (e.g. "Connection refused (os error 111)").
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if e.is_timeout() {
        format!("timed out: {text}")
    } else {
        text
    }
}

/// A URL without its query (presigned queries carry signatures: never printed).
pub fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

impl SeedClient {
    /// A client of `app` at `base` (no trailing slash), signing with `secret`.
    pub fn new(base: &str, app: &str, secret: Secret) -> Result<SeedClient, String> {
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot start an HTTP client: {e}"))?;
        Ok(SeedClient {
            http,
            base: base.to_string(),
            app: app.to_string(),
            secret,
        })
    }

    fn token(&self, sub: i64, kind: TokenKind) -> Result<String, String> {
        TokenClaims::new(&self.app, sub, kind, TOKEN_TTL_SECS)
            .mint(&self.secret)
            .map_err(|e| format!("cannot mint an access token: {e}"))
    }

    /// Asks once for a user avatar grant: that filegate answers at `--url` and
    /// accepts the credentials `-c` mints. `config` names the config in messages.
    pub fn preflight(&self, config: &str) -> Result<(), String> {
        let token = self.token(FIRST_USER, TokenKind::User)?;
        // The hints a PUT app needs (its grants sign the length); nothing is uploaded.
        let url = format!(
            "{}/file/upload/avatar/user?app_id={}&file_name=preflight.jpg&content_type=image%2Fjpeg&size=1",
            self.base,
            encode_value(&self.app)
        );
        let resp = self
            .http
            .get(&url)
            .header("access-token", token)
            .send()
            .map_err(|e| {
                format!(
                    "cannot reach filegate at {} ({}): is it running, and is --url its public listener?",
                    self.base,
                    root_cause(&e)
                )
            })?;
        let answer = Answer::read(resp);
        match answer.envelope() {
            Some((200, _, _)) if answer.status == 200 => Ok(()),
            Some((40000, _, _)) => Err(format!(
                "filegate at {} has no app `{}` ({}): is {config} the config it runs with?",
                self.base,
                self.app,
                answer.describe()
            )),
            Some((code, _, _)) if answer.status == 401 || code == 10003 || code == 10008 => {
                Err(format!(
                    "filegate at {} refused the access token minted with app `{}`'s secret from {config} ({}): the server verifies with another secret; give seed the server's config with -c",
                    self.base,
                    self.app,
                    answer.describe()
                ))
            }
            Some((404, _, _)) => Err(format!(
                "{} has no upload route ({}): is --url filegate's public listener (not its admin one)?",
                self.base,
                answer.describe()
            )),
            Some(_) => Err(format!(
                "filegate at {} refused an upload grant for app `{}` ({})",
                self.base,
                self.app,
                answer.describe()
            )),
            None => Err(format!(
                "{} does not answer like filegate ({}): is --url filegate's public listener?",
                self.base,
                answer.describe()
            )),
        }
    }

    /// Asks filegate's upload route for a grant for `planned` of `size` bytes.
    pub fn grant(&self, planned: &Planned, size: u64) -> Result<Grant, String> {
        let content_type = planned.variant.content_type();
        let hints = format!(
            "app_id={}&file_name={}&content_type={}&size={size}",
            encode_value(&self.app),
            encode_value(&planned.name),
            encode_value(content_type)
        );
        let (route, query, token) = match (planned.variant, planned.conversation) {
            (Variant::GroupAvatar { .. }, _) => {
                let group = planned.group_id.unwrap_or_default();
                (
                    "/file/upload/avatar/group",
                    format!("group_id={group}&{hints}"),
                    self.token(planned.uploader, TokenKind::Admin)?,
                )
            }
            (Variant::UserAvatar { .. }, _) => (
                "/file/upload/avatar/user",
                hints,
                self.token(planned.uploader, TokenKind::User)?,
            ),
            (_, Some(conv)) => (
                "/file/upload/chat",
                format!(
                    "file_type={}&to_id={}&to_type={}&{hints}",
                    chat_file_type(planned.variant),
                    conv.to_id,
                    conv.to_type
                ),
                self.token(planned.uploader, TokenKind::User)?,
            ),
            (_, None) => return Err("a chat file without a conversation".into()),
        };
        let url = format!("{}{route}?{query}", self.base);
        let resp = self
            .http
            .get(&url)
            .header("access-token", token)
            .send()
            .map_err(|e| format!("GET {route} failed: {}", root_cause(&e)))?;
        let answer = Answer::read(resp);
        let data = match answer.envelope() {
            Some((200, _, data)) if answer.status == 200 => data,
            _ => return Err(format!("GET {route} answered {}", answer.describe())),
        };
        let text = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_string);
        let bad = |what: &str| format!("GET {route} answered a grant without {what}");
        let params = data
            .get("oss_body_param")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("oss_body_param"))?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str().ok_or_else(|| bad("string params"))?.to_string(),
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let grant = Grant {
            method: text("upload_method").ok_or_else(|| bad("upload_method"))?,
            upload_url: text("upload_url").ok_or_else(|| bad("upload_url"))?,
            params,
            object_name: text("object_name"),
            file_sign: text("file_sign"),
        };
        if grant.object_name.is_none() && grant.file_sign.is_none() {
            return Err(bad("object_name or file_sign"));
        }
        Ok(grant)
    }

    /// Uploads `bytes` with `grant`, as the grant says.
    pub fn upload(&self, grant: &Grant, planned: &Planned, bytes: Vec<u8>) -> Result<(), String> {
        let target = without_query(&grant.upload_url).to_string();
        let size = bytes.len() as u64;
        let request = match grant.method.as_str() {
            "POST" => {
                let mut form = multipart::Form::new();
                for (k, v) in &grant.params {
                    form = form.text(k.clone(), v.clone());
                }
                let part = multipart::Part::bytes(bytes)
                    .file_name(planned.name.clone())
                    .mime_str(planned.variant.content_type())
                    .map_err(|e| format!("bad content type: {e}"))?;
                self.http
                    .post(&grant.upload_url)
                    .multipart(form.part("file", part))
            }
            "PUT" => {
                let mut req = self.http.put(&grant.upload_url);
                for (k, v) in &grant.params {
                    if k.eq_ignore_ascii_case("content-length") {
                        // The body sets it; the grant's must be the body's.
                        if v.parse::<u64>().ok() != Some(size) {
                            return Err(format!(
                                "the PUT grant signs Content-Length {v}, the file has {size} bytes"
                            ));
                        }
                        continue;
                    }
                    req = req.header(k.as_str(), v.as_str());
                }
                req.body(bytes)
            }
            other => {
                return Err(format!(
                    "the grant names an unknown upload_method `{other}`"
                ))
            }
        };
        let resp = request.send().map_err(|e| {
            format!(
                "the upload {} to {target} failed: {}",
                grant.method,
                root_cause(&e)
            )
        })?;
        let answer = Answer::read(resp);
        if (200..300).contains(&answer.status) {
            Ok(())
        } else {
            Err(format!(
                "the upload {} to {target} answered {}",
                grant.method,
                answer.describe()
            ))
        }
    }

    /// HEAD of a signed URL with no header: `Ok(Some(length))` on 200, `Ok(None)` on
    /// 404, else the answer as an error.
    pub fn head(&self, url: &str) -> Result<Option<u64>, String> {
        let resp = self
            .http
            .head(url)
            .send()
            .map_err(|e| format!("HEAD {} failed: {}", without_query(url), root_cause(&e)))?;
        let status = resp.status().as_u16();
        let length = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match status {
            200 => Ok(Some(length.unwrap_or(0))),
            404 => Ok(None),
            _ => {
                // A HEAD answer has no body: ask again with GET for the envelope.
                let answer = self
                    .http
                    .get(url)
                    .send()
                    .map(Answer::read)
                    .map(|a| a.describe())
                    .unwrap_or_else(|_| format!("HTTP {status}"));
                Err(format!(
                    "the signed download URL {} answered {answer}",
                    without_query(url)
                ))
            }
        }
    }

    /// The object key a grant names.
    pub fn key_of(&self, grant: &Grant) -> Result<String, String> {
        match (&grant.object_name, &grant.file_sign) {
            (Some(name), _) => Ok(format!("{}/{name}", self.app)),
            (None, Some(sign)) => {
                verify_file_sign(sign, &self.app, std::slice::from_ref(&self.secret))
                    .map(|s| s.key)
                    .map_err(|e| format!("the grant's file_sign does not verify: {}", e.message()))
            }
            (None, None) => Err("the grant names no object".into()),
        }
    }
}

/// The chat `file_type` of a variant.
fn chat_file_type(variant: Variant) -> u16 {
    match variant {
        Variant::Voice { .. } => 101,
        Variant::Video { .. } => 103,
        Variant::Pdf { .. } | Variant::Text { .. } | Variant::Binary { .. } => 100,
        _ => 102,
    }
}
