//! Answers in the store's own dialect: S3-style XML errors (`<Error><Code/><Message/>`)
//! for the embedded store's requests, and what each refusal of a presigned URL, a POST
//! policy or the store itself is, as S3 names it.

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::http::envelope::write_small;
use crate::storage::post_policy::PolicyViolation;
use crate::storage::sigv4::PresignError;

/// An S3-style refusal: status, error code, message.
#[derive(Debug, Clone)]
pub struct S3Refusal {
    /// HTTP status.
    pub status: u16,
    /// S3 error code (`AccessDenied`, `EntityTooLarge`...).
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl S3Refusal {
    /// A refusal.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        S3Refusal {
            status,
            code,
            message: message.into(),
        }
    }
}

impl S3Refusal {
    /// A store failure as S3 answers it.
    pub fn from_store(e: &crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::Exists => S3Refusal::new(
                412,
                "PreconditionFailed",
                "The object exists: an upload grant writes its key once.",
            ),
            other => S3Refusal::new(500, "InternalError", other.to_string()),
        }
    }
}

impl From<PresignError> for S3Refusal {
    fn from(e: PresignError) -> Self {
        match e {
            PresignError::Missing => {
                S3Refusal::new(403, "AccessDenied", "Request has no valid signature")
            }
            PresignError::Malformed => S3Refusal::new(
                400,
                "AuthorizationQueryParametersError",
                "Malformed presigned URL",
            ),
            PresignError::BadSignature => S3Refusal::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
            PresignError::Expired => S3Refusal::new(403, "AccessDenied", "Request has expired"),
        }
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `<Error><Code/><Message/></Error>`.
pub async fn write_s3_error(
    session: &mut Session,
    refusal: &S3Refusal,
) -> pingora_core::Result<u16> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        refusal.code,
        xml_escape(&refusal.message)
    );
    let mut resp = ResponseHeader::build_no_case(refusal.status, Some(4))?;
    resp.insert_header("Content-Type", "application/xml")?;
    write_small(session, resp, Bytes::from(body)).await?;
    Ok(refusal.status)
}

impl From<PolicyViolation> for S3Refusal {
    fn from(v: PolicyViolation) -> Self {
        match v {
            PolicyViolation::Malformed(why) => S3Refusal::new(400, "InvalidPolicyDocument", why),
            PolicyViolation::BadSignature => S3Refusal::new(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ),
            PolicyViolation::Expired => S3Refusal::new(
                403,
                "AccessDenied",
                "Invalid according to Policy: Policy expired.",
            ),
            PolicyViolation::ConditionFailed(field) => S3Refusal::new(
                403,
                "AccessDenied",
                format!("Invalid according to Policy: Policy Condition failed: ${field}"),
            ),
            PolicyViolation::ExtraField(field) => S3Refusal::new(
                403,
                "AccessDenied",
                format!("Invalid according to Policy: Extra input fields: {field}"),
            ),
            PolicyViolation::TooLarge => S3Refusal::new(
                400,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            ),
            PolicyViolation::TooSmall => S3Refusal::new(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size",
            ),
        }
    }
}
