//! `sidecar::auth`: the secret check and the secret-file refresh.

use std::path::Path;

use sidecar::auth::{SecretError, SecretStore, Secrets, MIN_SECRET_BYTES};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccc";

/// Replaces the file's content through a rename, as a secret manager does
/// (a new inode, so the change is seen whatever the clock's resolution).
fn rotate(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn check_accepts_the_right_secret_only() {
    let s = Secrets::load(Some(A), None, None, None).unwrap();
    let id = s.check(A.as_bytes()).expect("the right secret is accepted").to_owned();
    assert!(id.starts_with("key:"), "{id}");
    assert_eq!(s.ids(), vec![id.as_str()]);
    // Wrong secrets of the same length, one byte off, and of other lengths.
    assert_eq!(B.len(), A.len());
    assert_eq!(s.check(B.as_bytes()), None);
    let mut one_off = A.as_bytes().to_vec();
    *one_off.last_mut().unwrap() = b'b';
    assert_eq!(s.check(&one_off), None);
    assert_eq!(s.check(&A.as_bytes()[..A.len() - 1]), None);
    assert_eq!(s.check(format!("{A}a").as_bytes()), None);
    assert_eq!(s.check(b""), None);
}

#[test]
fn ids_name_each_key_and_debug_shows_only_ids() {
    let s = Secrets::load(Some(A), None, Some(B), None).unwrap();
    let ids = s.ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], s.check(A.as_bytes()).unwrap());
    assert_eq!(ids[1], s.check(B.as_bytes()).unwrap());
    let debug = format!("{s:?}");
    assert!(debug.contains(ids[0]) && debug.contains(ids[1]), "{debug}");
    assert!(!debug.contains(A) && !debug.contains(B), "{debug}");
}

#[test]
fn secrets_of_exactly_the_minimum_length_are_accepted() {
    let min = "m".repeat(MIN_SECRET_BYTES);
    let s = Secrets::load(Some(&min), None, None, None).unwrap();
    assert!(s.check(min.as_bytes()).is_some());
    let short = "m".repeat(MIN_SECRET_BYTES - 1);
    let e = Secrets::load(Some(&short), None, None, None).unwrap_err();
    assert!(matches!(e, SecretError::TooShort { len, .. } if len == MIN_SECRET_BYTES - 1), "{e}");
    // A previous secret is held to the same bound.
    let e = Secrets::load(Some(A), None, Some(&short), None).unwrap_err();
    assert!(matches!(e, SecretError::TooShort { name: "DOCKWARD_SECRET_PREVIOUS", .. }), "{e}");
    // The trailing newline of a file does not count towards the length.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s");
    std::fs::write(&p, format!("{short}\r\n")).unwrap();
    assert!(matches!(Secrets::load(None, Some(&p), None, None), Err(SecretError::TooShort { .. })));
    std::fs::write(&p, format!("{min}\r\n")).unwrap();
    assert!(Secrets::load(None, Some(&p), None, None).unwrap().check(min.as_bytes()).is_some());
}

#[test]
fn previous_secret_from_a_file_when_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let prev = dir.path().join("previous");
    // Named but absent: no previous key, no error.
    let s = Secrets::load(Some(A), None, None, Some(&prev)).unwrap();
    assert_eq!(s.ids().len(), 1);
    assert_eq!(s.check(B.as_bytes()), None);
    // Present: accepted alongside the current one.
    std::fs::write(&prev, format!("{B}\n")).unwrap();
    let s = Secrets::load(Some(A), None, None, Some(&prev)).unwrap();
    assert_eq!(s.ids().len(), 2);
    assert!(s.check(A.as_bytes()).is_some());
    assert!(s.check(B.as_bytes()).is_some());
    // Both the value and the file for the previous secret: refused.
    assert!(matches!(Secrets::load(Some(A), None, Some(C), Some(&prev)), Err(SecretError::Both(_))));
    // An unreadable current file is an error, not a missing secret.
    let e = Secrets::load(None, Some(&dir.path().join("nope")), None, None).unwrap_err();
    assert!(matches!(e, SecretError::Read { .. }), "{e}");
}

#[test]
fn store_checks_and_names_its_keys() {
    let store = SecretStore::load(Some(A.into()), None, Some(B.into()), None).unwrap();
    let ids = store.ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(store.check(A.as_bytes()), Some(ids[0].clone()));
    assert_eq!(store.check(B.as_bytes()), Some(ids[1].clone()));
    assert_eq!(store.check(C.as_bytes()), None);
    assert_eq!(store.check(b"short"), None);
    assert_eq!(store.check(b""), None);
    let debug = format!("{store:?}");
    assert!(debug.contains(&ids[0]) && !debug.contains(A), "{debug}");
    // Nothing to re-read without files.
    assert!(!store.refresh());
}

#[test]
fn refresh_picks_up_a_changed_file_and_not_an_unchanged_one() {
    let dir = tempfile::tempdir().unwrap();
    let cur = dir.path().join("current");
    std::fs::write(&cur, format!("{A}\n")).unwrap();
    let store = SecretStore::load(None, Some(cur.clone()), None, None).unwrap();
    let id_a = store.check(A.as_bytes()).unwrap();

    // Unchanged: nothing re-read, nothing changed.
    assert!(!store.refresh());
    assert!(!store.refresh());
    assert_eq!(store.check(A.as_bytes()), Some(id_a.clone()));

    // Rewritten with the same secret: re-read, but the keys did not change.
    rotate(&cur, &format!("{A}\n"));
    assert!(!store.refresh());
    assert_eq!(store.check(A.as_bytes()), Some(id_a.clone()));

    // Rotated: the new secret works at once, the old one no longer does.
    rotate(&cur, &format!("{B}\n"));
    assert!(store.refresh());
    let id_b = store.check(B.as_bytes()).expect("new secret accepted after refresh");
    assert_ne!(id_b, id_a);
    assert_eq!(store.check(A.as_bytes()), None);
    assert_eq!(store.ids(), vec![id_b.clone()]);
    assert!(!store.refresh());

    // A broken rewrite (too short) keeps the current keys and is not retried until it changes again.
    rotate(&cur, "short\n");
    assert!(!store.refresh());
    assert_eq!(store.check(B.as_bytes()), Some(id_b.clone()));
    assert!(!store.refresh());
    rotate(&cur, &format!("{C}\n"));
    assert!(store.refresh());
    assert!(store.check(C.as_bytes()).is_some());
    assert_eq!(store.check(B.as_bytes()), None);
}

#[test]
fn refresh_sees_a_previous_file_appear_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let cur = dir.path().join("current");
    let prev = dir.path().join("previous");
    std::fs::write(&cur, A).unwrap();
    let store = SecretStore::load(None, Some(cur.clone()), None, Some(prev.clone())).unwrap();
    assert_eq!(store.ids().len(), 1);
    assert_eq!(store.check(B.as_bytes()), None);
    std::fs::write(&prev, B).unwrap();
    assert!(store.refresh());
    assert_eq!(store.ids().len(), 2);
    assert!(store.check(B.as_bytes()).is_some());
    std::fs::remove_file(&prev).unwrap();
    assert!(store.refresh());
    assert_eq!(store.check(B.as_bytes()), None);
    assert!(store.check(A.as_bytes()).is_some());
}
