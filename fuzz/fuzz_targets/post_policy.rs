//! Browser-POST policies and form signatures, both dialects (`storage::post_policy`,
//! `sigv4::parse_amz_date`): what the embedded store checks before it stores a byte.
//!
//! Asserts, beyond "no panic":
//! - a policy that parses prints (`to_json`) to a document that parses to the same
//!   policy;
//! - fields that pass `check_fields` meet every condition, before expiry, with no field
//!   that no condition covers (but the signature fields); a size that passes
//!   `check_size` lies in every `content-length-range`;
//! - a form signed in the OSS dialect verifies exactly when its policy parses; an
//!   unsigned one never does;
//! - the form filegate hands out for an upload verifies and passes, in both dialects;
//!   changing any one of its fields never lets another key or a type outside the grant
//!   through;
//! - an `X-Amz-Date` that parses prints back to itself.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use filegate::config::{PostDialect, Secret, UploadMethod};
use filegate::keys::ObjectKey;
use filegate::post_policy::EXEMPT_FIELDS as EXEMPT;
use filegate::post_policy::{
    form_fields, oss_signature, verify_form_signature, Condition, Policy, PolicyViolation,
};
use filegate::sigv4::{amz_date, parse_amz_date, S3Signer};
use filegate::{TypeRule, UploadRequest};
use filegate_fuzz::segment;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Debug, Arbitrary)]
enum Input {
    /// A policy from any text, checked against any fields.
    Document {
        b64: String,
        fields: Vec<(String, String)>,
        at: i32,
        size: u64,
    },
    /// A policy from any JSON (base64 here, to reach the JSON parser), signed in the
    /// OSS dialect or not.
    Json {
        json: Vec<u8>,
        fields: Vec<(String, String)>,
        signed: bool,
        at: i32,
        size: u64,
    },
    /// The form of a grant filegate makes, then one field changed.
    Grant {
        key: (String, String, String),
        content_type: String,
        rule: u8,
        others: Vec<String>,
        max_size: u64,
        expires_in: u16,
        s3: bool,
        change: (u8, String),
    },
    /// `X-Amz-Date`.
    AmzDate(String),
}

fn signer() -> S3Signer {
    S3Signer::new("fuzz-key-id", Secret::new("fuzz-store-secret"), "us-east-1")
}

fn field_map(fields: &[(String, String)]) -> BTreeMap<String, String> {
    fields
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

fn at(offset: i32) -> SystemTime {
    let d = Duration::from_secs(u64::from(offset.unsigned_abs()));
    if offset < 0 {
        SystemTime::now() - d
    } else {
        SystemTime::now() + d
    }
}

/// The properties of a parsed policy, against any fields and size.
fn check_policy(policy: &Policy, fields: &BTreeMap<String, String>, now: SystemTime, size: u64) {
    let again = Policy::from_base64(&B64.encode(policy.to_json()));
    let mut expected = policy.clone();
    expected.expiration = expected
        .expiration
        .replace_nanosecond(0)
        .unwrap_or(expected.expiration);
    assert_eq!(again.as_ref(), Ok(&expected), "{}", policy.to_json());

    if policy.check_fields(fields, now).is_ok() {
        assert!(now <= SystemTime::from(policy.expiration));
        for c in &policy.conditions {
            match c {
                Condition::Eq(f, v) => assert_eq!(fields.get(f), Some(v)),
                Condition::StartsWith(f, p) => {
                    assert!(fields.get(f).is_some_and(|x| x.starts_with(p.as_str())))
                }
                Condition::In(f, vs) => assert!(fields.get(f).is_some_and(|x| vs.contains(x))),
                Condition::ContentLengthRange(..) => {}
            }
        }
        for name in fields.keys() {
            let covered = policy.conditions.iter().any(|c| match c {
                Condition::Eq(f, _) | Condition::StartsWith(f, _) | Condition::In(f, _) => {
                    f == name
                }
                Condition::ContentLengthRange(..) => false,
            });
            assert!(covered || EXEMPT.contains(&name.as_str()) || name.starts_with("x-ignore-"));
        }
    }
    match policy.check_size(size) {
        Ok(()) => {
            for c in &policy.conditions {
                if let Condition::ContentLengthRange(min, max) = c {
                    assert!(*min <= size && size <= *max);
                }
            }
        }
        Err(v) => assert!(matches!(
            v,
            PolicyViolation::TooLarge | PolicyViolation::TooSmall
        )),
    }
    if let Some(max) = policy.max_size() {
        if policy.check_size(max).is_ok() && max < u64::MAX {
            assert!(policy.check_size(max + 1).is_err());
        }
    }
}

fn admits(rule: &TypeRule, t: Option<&String>) -> bool {
    match (rule, t) {
        (TypeRule::Any, _) => true,
        (TypeRule::Exact(x), Some(t)) => x == t,
        (TypeRule::OneOf(xs), Some(t)) => xs.contains(t),
        (_, None) => false,
    }
}

fuzz_target!(|input: Input| match input {
    Input::Document {
        b64,
        fields,
        at: offset,
        size,
    } => {
        if let Ok(policy) = Policy::from_base64(&b64) {
            check_policy(&policy, &field_map(&fields), at(offset), size);
        }
    }
    Input::Json {
        json,
        fields,
        signed,
        at: offset,
        size,
    } => {
        let b64 = B64.encode(&json);
        let parsed = Policy::from_base64(&b64);
        let mut fields = field_map(&fields);
        fields.insert("policy".into(), b64.clone());
        let s = signer();
        if signed {
            fields.insert("signature".into(), oss_signature(s.secret().expose(), &b64));
            fields.insert("ossaccesskeyid".into(), s.access_key_id().to_string());
            assert_eq!(verify_form_signature(&fields, &s), parsed);
        } else {
            fields.remove("signature");
            fields.remove("x-amz-signature");
            assert!(verify_form_signature(&fields, &s).is_err());
        }
        if let Ok(policy) = parsed {
            check_policy(&policy, &fields, at(offset), size);
        }
    }
    Input::Grant {
        key,
        content_type,
        rule,
        others,
        max_size,
        expires_in,
        s3,
        change,
    } => {
        let name = format!(
            "{}/avatar/user/{}/{}.jpg",
            segment(&key.0, "demo"),
            segment(&key.1, "42"),
            segment(&key.2, "id")
        );
        let Ok(key) = ObjectKey::parse(&name) else {
            panic!("a made key fails the grammar: {name:?}");
        };
        let type_rule = match rule % 3 {
            0 => TypeRule::Exact(content_type.clone()),
            1 => {
                let mut all = vec![content_type.clone()];
                all.extend(others);
                TypeRule::OneOf(all)
            }
            _ => TypeRule::Any,
        };
        let req = UploadRequest {
            key: key.clone(),
            method: UploadMethod::Post,
            content_type: content_type.clone(),
            type_rule: type_rule.clone(),
            max_size: max_size.max(1),
            size: None,
            expires_in: Duration::from_secs(u64::from(expires_in) + 1),
        };
        let dialect = if s3 {
            PostDialect::S3
        } else {
            PostDialect::Oss
        };
        let now = SystemTime::now();
        let s = signer();
        let mut fields: BTreeMap<String, String> = form_fields(&req, dialect, &s, None, now)
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        fields.insert("content-type".into(), content_type.clone());
        let Ok(policy) = verify_form_signature(&fields, &s) else {
            panic!("filegate's own form does not verify: {fields:?}");
        };
        assert_eq!(policy.check_fields(&fields, now), Ok(()));
        assert_eq!(policy.check_size(1), Ok(()));
        assert_eq!(policy.check_size(req.max_size), Ok(()));
        assert_eq!(policy.check_size(0), Err(PolicyViolation::TooSmall));
        if req.max_size < u64::MAX {
            assert_eq!(
                policy.check_size(req.max_size + 1),
                Err(PolicyViolation::TooLarge)
            );
        }

        // One field changed (or added): never another key, never a type outside the
        // grant, never a changed signature or policy; in S3, no signed field at all.
        let names: Vec<String> = fields.keys().cloned().collect();
        let (which, value) = change;
        let target = names
            .get(which as usize)
            .cloned()
            .unwrap_or_else(|| value.to_ascii_lowercase());
        let mut changed = fields.clone();
        let before = changed.insert(target.clone(), value.clone());
        if before.as_ref() == Some(&value) {
            return;
        }
        let passes = verify_form_signature(&changed, &s)
            .is_ok_and(|p| p.check_fields(&changed, now).is_ok());
        if passes {
            assert_eq!(changed.get("key"), Some(&key.as_str().to_string()));
            if s3 {
                assert_eq!(changed.get("content-type"), Some(&content_type));
            } else {
                assert!(admits(&type_rule, changed.get("content-type")));
            }
            // S3: every field is signed but the unused ones of the other dialect.
            // OSS: the key, the policy and the signature's own fields are.
            let allowed = if s3 {
                ["callback", "ossaccesskeyid", "file"].contains(&target.as_str())
                    || target.starts_with("x-ignore-")
            } else {
                !["key", "policy", "signature", "ossaccesskeyid"].contains(&target.as_str())
            };
            assert!(allowed, "changed {target:?} and still passed");
        }
    }
    Input::AmzDate(s) => {
        if let Some(t) = parse_amz_date(&s) {
            assert_eq!(amz_date(t), s);
        }
    }
});
