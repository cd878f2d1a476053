//! Browser POST uploads: the policy document and the form fields of both dialects
//! (SPEC §5), and the checks the embedded store applies to a received form.
//!
//! - `oss`: Alibaba OSS PostObject V1: `OSSAccessKeyId`, `policy`, `signature` =
//!   base64 HMAC-SHA1(secret, base64 policy), `key`, `success_action_status`.
//! - `s3`: S3 SigV4 browser POST: `key`, `policy`, `x-amz-algorithm`,
//!   `x-amz-credential`, `x-amz-date`, `x-amz-signature`, `Content-Type`,
//!   `success_action_status`. No AWS Rust crate builds these; this follows the S3
//!   documentation ("Browser-based uploads using POST", "Creating a POST policy").

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::config::PostDialect;
use crate::storage::sigv4::{amz_date, S3Signer};
use crate::storage::{TypeRule, UploadRequest};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The status a successful POST answers; the product's clients check for 200.
pub const SUCCESS_STATUS: &str = "200";

/// One policy condition. Field names are kept lower-case without the `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field equals the value.
    Eq(String, String),
    /// The field starts with the prefix.
    StartsWith(String, String),
    /// The field is one of the values (OSS).
    In(String, Vec<String>),
    /// The file's size in bytes lies in [min, max].
    ContentLengthRange(u64, u64),
}

/// A policy: an expiry and conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// When the policy stops being valid.
    pub expiration: OffsetDateTime,
    /// Every condition must hold.
    pub conditions: Vec<Condition>,
}

/// Why a form was refused; each maps to an S3/OSS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyViolation {
    /// The policy or signature does not parse.
    Malformed(String),
    /// The signature does not match (`SignatureDoesNotMatch`).
    BadSignature,
    /// Past `expiration` (`AccessDenied`: "Invalid according to Policy: Policy expired").
    Expired,
    /// A condition fails (`AccessDenied`).
    ConditionFailed(String),
    /// A form field no condition covers (`AccessDenied`).
    ExtraField(String),
    /// The file is larger than allowed (`EntityTooLarge`).
    TooLarge,
    /// The file is smaller than allowed (`EntityTooSmall`).
    TooSmall,
}

impl Policy {
    /// The policy that allows exactly `req`.
    pub fn for_upload(req: &UploadRequest, now: SystemTime) -> Policy {
        let expiration = OffsetDateTime::from(now + req.expires_in);
        // `success_action_status` is not a condition here: the product's own client
        // leaves it out (the OSS dialect's stores answer 200 without it); the S3
        // dialect, where every form field must be covered, adds it.
        let mut conditions = vec![
            Condition::Eq("key".into(), req.key.as_str().to_string()),
            Condition::ContentLengthRange(1, req.max_size),
        ];
        match &req.type_rule {
            TypeRule::Exact(t) => conditions.push(Condition::Eq("content-type".into(), t.clone())),
            TypeRule::OneOf(types) => {
                conditions.push(Condition::In("content-type".into(), types.clone()))
            }
            TypeRule::Any => {}
        }
        Policy {
            expiration,
            conditions,
        }
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        let expiration = self
            .expiration
            .replace_nanosecond(0)
            .unwrap_or(self.expiration)
            .format(&Rfc3339)
            .unwrap_or_default();
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Eq(f, v) => json!(["eq", format!("${f}"), v]),
                Condition::StartsWith(f, v) => json!(["starts-with", format!("${f}"), v]),
                Condition::In(f, vs) => json!(["in", format!("${f}"), vs]),
                Condition::ContentLengthRange(a, b) => json!(["content-length-range", a, b]),
            })
            .collect();
        json!({"expiration": expiration, "conditions": conditions}).to_string()
    }

    /// Parses a base64 policy document.
    pub fn from_base64(policy_b64: &str) -> Result<Policy, PolicyViolation> {
        let bad = |why: &str| PolicyViolation::Malformed(why.to_string());
        let raw = B64
            .decode(policy_b64.trim())
            .map_err(|_| bad("policy is not base64"))?;
        let doc: Value = serde_json::from_slice(&raw).map_err(|_| bad("policy is not JSON"))?;
        let expiration = doc
            .get("expiration")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .ok_or_else(|| bad("policy has no valid expiration"))?;
        let mut conditions = Vec::new();
        for c in doc
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("policy has no conditions"))?
        {
            conditions
                .push(parse_condition(c).ok_or_else(|| bad("policy has an unknown condition"))?);
        }
        Ok(Policy {
            expiration,
            conditions,
        })
    }

    /// The largest file the policy allows (`content-length-range`), if it says.
    pub fn max_size(&self) -> Option<u64> {
        self.conditions.iter().find_map(|c| match c {
            Condition::ContentLengthRange(_, max) => Some(*max),
            _ => None,
        })
    }

    /// Checks expiry and every field condition (`fields` keyed by lower-case name,
    /// with `content-type` resolved). Fields no condition names are refused, but for
    /// the dialect's own signature fields.
    pub fn check_fields(
        &self,
        fields: &BTreeMap<String, String>,
        now: SystemTime,
    ) -> Result<(), PolicyViolation> {
        if OffsetDateTime::from(now) > self.expiration {
            return Err(PolicyViolation::Expired);
        }
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq(f, v) => fields.get(f).is_some_and(|x| x == v),
                Condition::StartsWith(f, p) => {
                    fields.get(f).is_some_and(|x| x.starts_with(p.as_str()))
                }
                Condition::In(f, vs) => fields.get(f).is_some_and(|x| vs.iter().any(|v| v == x)),
                Condition::ContentLengthRange(..) => true,
            };
            if !ok {
                let field = match c {
                    Condition::Eq(f, _) | Condition::StartsWith(f, _) | Condition::In(f, _) => {
                        f.as_str()
                    }
                    Condition::ContentLengthRange(..) => "content-length-range",
                };
                return Err(PolicyViolation::ConditionFailed(field.to_string()));
            }
        }
        for name in fields.keys() {
            let exempt = EXEMPT_FIELDS.contains(&name.as_str()) || name.starts_with("x-ignore-");
            let covered = self.conditions.iter().any(|c| match c {
                Condition::Eq(f, _) | Condition::StartsWith(f, _) | Condition::In(f, _) => {
                    f == name
                }
                Condition::ContentLengthRange(..) => false,
            });
            if !exempt && !covered {
                return Err(PolicyViolation::ExtraField(name.clone()));
            }
        }
        Ok(())
    }

    /// Checks the final size against `content-length-range`.
    pub fn check_size(&self, size: u64) -> Result<(), PolicyViolation> {
        for c in &self.conditions {
            if let Condition::ContentLengthRange(min, max) = c {
                if size > *max {
                    return Err(PolicyViolation::TooLarge);
                }
                if size < *min {
                    return Err(PolicyViolation::TooSmall);
                }
            }
        }
        Ok(())
    }
}

/// Fields that sign the form rather than describe the object, never policy-checked.
pub const EXEMPT_FIELDS: [&str; 11] = [
    "policy",
    "success_action_status",
    "signature",
    "ossaccesskeyid",
    "callback",
    "x-amz-signature",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "content-type",
    "file",
];

fn parse_condition(c: &Value) -> Option<Condition> {
    if let Some(obj) = c.as_object() {
        let (k, v) = obj.iter().next()?;
        return Some(Condition::Eq(
            k.to_ascii_lowercase(),
            v.as_str()?.to_string(),
        ));
    }
    let arr = c.as_array()?;
    let op = arr.first()?.as_str()?.to_ascii_lowercase();
    if op == "content-length-range" {
        return Some(Condition::ContentLengthRange(
            arr.get(1)?.as_u64()?,
            arr.get(2)?.as_u64()?,
        ));
    }
    let field = arr
        .get(1)?
        .as_str()?
        .trim_start_matches('$')
        .to_ascii_lowercase();
    match op.as_str() {
        "eq" => Some(Condition::Eq(field, arr.get(2)?.as_str()?.to_string())),
        "starts-with" => Some(Condition::StartsWith(
            field,
            arr.get(2)?.as_str()?.to_string(),
        )),
        "in" => Some(Condition::In(
            field,
            arr.get(2)?
                .as_array()?
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        )),
        _ => None,
    }
}

/// The OSS V1 signature: base64 HMAC-SHA1 of the base64 policy.
pub fn oss_signature(secret: &[u8], policy_b64: &str) -> String {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(policy_b64.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// The form fields that upload `req` in `dialect`, signed by `signer`.
pub fn form_fields(
    req: &UploadRequest,
    dialect: PostDialect,
    signer: &S3Signer,
    bucket: Option<&str>,
    now: SystemTime,
) -> BTreeMap<String, String> {
    let mut policy = Policy::for_upload(req, now);
    let mut fields = BTreeMap::new();
    fields.insert("key".to_string(), req.key.as_str().to_string());
    fields.insert(
        "success_action_status".to_string(),
        SUCCESS_STATUS.to_string(),
    );
    match dialect {
        PostDialect::Oss => {
            let policy_b64 = B64.encode(policy.to_json());
            fields.insert(
                "signature".to_string(),
                oss_signature(signer.secret().expose(), &policy_b64),
            );
            fields.insert(
                "OSSAccessKeyId".to_string(),
                signer.access_key_id().to_string(),
            );
            fields.insert("policy".to_string(), policy_b64);
        }
        PostDialect::S3 => {
            // S3 has no "in": the form names the type, and the policy pins it.
            policy
                .conditions
                .retain(|c| !matches!(c, Condition::In(..)));
            policy
                .conditions
                .retain(|c| !matches!(c, Condition::Eq(f, _) if f == "content-type"));
            policy.conditions.push(Condition::Eq(
                "content-type".into(),
                req.content_type.clone(),
            ));
            policy.conditions.push(Condition::Eq(
                "success_action_status".into(),
                SUCCESS_STATUS.into(),
            ));
            let credential = signer.post_credential(now);
            let date = amz_date(now);
            if let Some(b) = bucket {
                policy
                    .conditions
                    .push(Condition::Eq("bucket".into(), b.to_string()));
            }
            policy.conditions.push(Condition::Eq(
                "x-amz-algorithm".into(),
                "AWS4-HMAC-SHA256".into(),
            ));
            policy
                .conditions
                .push(Condition::Eq("x-amz-credential".into(), credential.clone()));
            policy
                .conditions
                .push(Condition::Eq("x-amz-date".into(), date.clone()));
            let policy_b64 = B64.encode(policy.to_json());
            fields.insert(
                "x-amz-signature".to_string(),
                signer.post_signature(&policy_b64, now),
            );
            fields.insert(
                "x-amz-algorithm".to_string(),
                "AWS4-HMAC-SHA256".to_string(),
            );
            fields.insert("x-amz-credential".to_string(), credential);
            fields.insert("x-amz-date".to_string(), date);
            fields.insert("Content-Type".to_string(), req.content_type.clone());
            fields.insert("policy".to_string(), policy_b64);
        }
    }
    fields
}

/// Verifies the signature of a received form (lower-case field names) with either
/// dialect, whichever the form speaks.
pub fn verify_form_signature(
    fields: &BTreeMap<String, String>,
    signer: &S3Signer,
) -> Result<Policy, PolicyViolation> {
    let policy_b64 = fields
        .get("policy")
        .ok_or_else(|| PolicyViolation::Malformed("the form has no policy".into()))?;
    if let Some(sig) = fields.get("signature") {
        let key_id = fields
            .get("ossaccesskeyid")
            .map(String::as_str)
            .unwrap_or("");
        let expected = oss_signature(signer.secret().expose(), policy_b64);
        if key_id != signer.access_key_id()
            || !bool::from(expected.as_bytes().ct_eq(sig.as_bytes()))
        {
            return Err(PolicyViolation::BadSignature);
        }
    } else if let Some(sig) = fields.get("x-amz-signature") {
        let credential = fields
            .get("x-amz-credential")
            .map(String::as_str)
            .unwrap_or("");
        let date = fields
            .get("x-amz-date")
            .and_then(|d| crate::storage::sigv4::parse_amz_date(d))
            .ok_or(PolicyViolation::BadSignature)?;
        let expected = signer.post_signature(policy_b64, date);
        if credential != signer.post_credential(date)
            || !bool::from(expected.as_bytes().ct_eq(sig.as_bytes()))
        {
            return Err(PolicyViolation::BadSignature);
        }
    } else {
        return Err(PolicyViolation::Malformed(
            "the form has no signature".into(),
        ));
    }
    Policy::from_base64(policy_b64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, UploadMethod};
    use crate::storage::keys::ObjectKey;
    use std::time::Duration;

    fn req() -> UploadRequest {
        UploadRequest {
            key: ObjectKey::parse("demo/avatar/user/1/a.jpg").unwrap(),
            method: UploadMethod::Post,
            content_type: "image/jpeg".into(),
            type_rule: TypeRule::OneOf(vec!["image/jpeg".into(), "image/png".into()]),
            max_size: 1000,
            size: None,
            expires_in: Duration::from_secs(900),
        }
    }

    fn signer() -> S3Signer {
        S3Signer::new("AK", Secret::new("secret-secret-secret"), "us-east-1")
    }

    fn lower(fields: BTreeMap<String, String>) -> BTreeMap<String, String> {
        fields
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect()
    }

    #[test]
    fn both_dialects_round_trip() {
        let now = SystemTime::now();
        for dialect in [PostDialect::Oss, PostDialect::S3] {
            let mut fields = lower(form_fields(&req(), dialect, &signer(), None, now));
            fields.insert("content-type".into(), "image/jpeg".into());
            let policy = verify_form_signature(&fields, &signer()).unwrap();
            policy.check_fields(&fields, now).unwrap();
            assert_eq!(policy.max_size(), Some(1000));
            assert_eq!(policy.check_size(1001), Err(PolicyViolation::TooLarge));
            // Another key, a tampered policy, an expired one.
            let mut other = fields.clone();
            other.insert("key".into(), "demo/avatar/user/2/a.jpg".into());
            assert!(matches!(
                policy.check_fields(&other, now),
                Err(PolicyViolation::ConditionFailed(_))
            ));
            let mut tampered = fields.clone();
            tampered.insert(
                "policy".into(),
                B64.encode(r#"{"expiration":"2100-01-01T00:00:00Z","conditions":[]}"#),
            );
            assert_eq!(
                verify_form_signature(&tampered, &signer()).unwrap_err(),
                PolicyViolation::BadSignature
            );
            let later = now + Duration::from_secs(3600);
            assert_eq!(
                policy.check_fields(&fields, later),
                Err(PolicyViolation::Expired)
            );
        }
    }

    #[test]
    fn wrong_type_and_extra_fields() {
        let now = SystemTime::now();
        let mut fields = lower(form_fields(&req(), PostDialect::Oss, &signer(), None, now));
        fields.insert("content-type".into(), "text/html".into());
        let policy = verify_form_signature(&fields, &signer()).unwrap();
        assert!(policy.check_fields(&fields, now).is_err());
        fields.insert("content-type".into(), "image/png".into());
        fields.insert("acl".into(), "public-read".into());
        assert_eq!(
            policy.check_fields(&fields, now),
            Err(PolicyViolation::ExtraField("acl".into()))
        );
    }
}
