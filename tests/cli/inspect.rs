//! `umbra inspect`: every header field, as JSON.

use super::*;

#[test]
fn inspect_json_reports_every_field() {
    let s = split(3, 5, 10_000, 16);
    let o = run_line("inspect --json {}", &[&s.shares[4]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = &v[0];
    assert_eq!(r["t"], 3);
    assert_eq!(r["n"], 5);
    assert_eq!(r["x"], 5);
    assert_eq!(r["field_polynomial"], "0x11d");
    assert_eq!(r["header_ok"], true);
    assert_eq!(r["corrupt_segments"].as_array().unwrap().len(), 0);
    assert_eq!(r["split_id"].as_str().unwrap().len(), 32);
    // The payload is the object plus its private metadata, never less.
    assert!(r["payload_len"].as_u64().unwrap() > 10_000);
}
