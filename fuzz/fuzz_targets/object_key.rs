//! The object key grammar (`storage::keys`) and the store token's scope check.
//!
//! Asserts, beyond "no panic":
//! - a key `ObjectKey::parse` accepts is at most 512 bytes of `A-Z a-z 0-9 . _ - /`:
//!   no `..` anywhere, no `%`, no control characters or spaces, no leading or trailing
//!   `/`, no empty, `.` or `..` segment; parsing it again gives the same key;
//! - an avatar `object_name` that is accepted is exactly `<app>/<object_name>` and an
//!   avatar key of that app; refusals are 400 (grammar) or 403 (outside the prefix);
//! - the keys filegate makes (avatars, chat files, derived results) from valid parts
//!   pass the grammar and are recognised as what they are;
//! - a store token limited to a key covers that key.
#![no_main]

use filegate::keys::{new_object_id, ObjectKey, MAX_KEY_LEN};
use filegate::store_token::scope_covers;
use filegate_fuzz::segment;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    name: String,
    app: String,
    object_name: String,
    /// Parts of keys filegate makes.
    id: String,
    ext: String,
    user_id: i64,
    to_type: u8,
    to_id: i64,
    day: u32,
    scope: Option<String>,
}

fn check_grammar(key: &ObjectKey) {
    let s = key.as_str();
    assert!(!s.is_empty() && s.len() <= MAX_KEY_LEN);
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/')),
        "{s:?}"
    );
    assert!(!s.contains(".."), "{s:?}");
    assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
    assert!(s.split('/').all(|seg| seg != "." && seg != ".."));
    assert_eq!(ObjectKey::parse(s).as_ref(), Ok(key));
    assert!(!key.file_name().is_empty());
    if let Some(ext) = key.extension() {
        assert!(!ext.contains('/'));
    }
}

fuzz_target!(|input: Input| {
    if let Ok(key) = ObjectKey::parse(&input.name) {
        check_grammar(&key);
        let _ = key.is_avatar_of(&input.app);
        let _ = key.is_chat_of(&input.app);
        assert!(scope_covers(Some(key.as_str()), key.as_str()));
        if let Some(scope) = &input.scope {
            let _ = scope_covers(Some(scope), key.as_str());
        }
    }

    match ObjectKey::from_avatar_object_name(&input.app, &input.object_name) {
        Ok(key) => {
            check_grammar(&key);
            assert_eq!(key.as_str(), format!("{}/{}", input.app, input.object_name));
            assert!(key.is_avatar_of(&input.app));
            assert!(!key.is_chat_of(&input.app));
        }
        Err(e) => assert!(matches!(e.status().as_u16(), 400 | 403)),
    }

    // The keys filegate makes, from parts that pass the grammar.
    let app = segment(&input.app, "app");
    let id = segment(&input.id, "id");
    let ext = segment(&input.ext, "bin");
    // As filegate calls them: ids non-negative (a negative one is 400 before any key
    // is made), a chat's to_type 1 or 2 (checked by the upload route).
    let (user_id, to_id) = (input.user_id & i64::MAX, input.to_id & i64::MAX);
    let to_type = 1 + input.to_type % 2;
    let user = ObjectKey::user_avatar(&app, user_id, &id, &ext);
    let group = ObjectKey::group_avatar(&app, user_id, &id, &ext);
    let day = format!("{:08}", input.day % 100_000_000);
    let chat = ObjectKey::chat(&app, to_type, to_id, &day, &id, &ext);
    let derived = ObjectKey::derived(&app, &id, &ext);
    for key in [&user, &group, &chat, &derived] {
        let parsed = ObjectKey::parse(key.as_str());
        assert_eq!(parsed.as_ref(), Ok(key), "{key}");
        check_grammar(key);
        assert_eq!(key.extension(), Some(ext.to_ascii_lowercase()));
    }
    assert!(user.is_avatar_of(&app) && group.is_avatar_of(&app));
    assert!(chat.is_chat_of(&app) && !chat.is_avatar_of(&app));
    assert!(!derived.is_avatar_of(&app) && !derived.is_chat_of(&app));
    let object_name = &user.as_str()[app.len() + 1..];
    assert_eq!(
        ObjectKey::from_avatar_object_name(&app, object_name).ok(),
        Some(user.clone())
    );
    assert!(ObjectKey::parse(&new_object_id()).is_ok());
});
