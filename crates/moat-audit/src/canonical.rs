//! The canonical encoding every hash and signature is computed over: JSON with object
//! keys sorted, no whitespace, strings escaped the one way serde_json escapes them, and
//! only integers as numbers. The writer and the verifier both call [`encode`], so an
//! entry verifies byte for byte wherever it travels.

use serde_json::Value;

use crate::AuditError;

/// The canonical bytes of `value`. Floating-point numbers are refused: their text is not
/// one-to-one with their value, and nothing moat records needs them.
pub fn encode(value: &Value) -> Result<Vec<u8>, AuditError> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), AuditError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(AuditError::NotCanonical(format!(
                    "the number {n} is not an integer"
                )));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => out.extend_from_slice(
            serde_json::to_string(s)
                .expect("a string encodes")
                .as_bytes(),
        ),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    serde_json::to_string(key)
                        .expect("a string encodes")
                        .as_bytes(),
                );
                out.push(b':');
                write(&map[key], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_nothing_is_spaced() {
        let value = json!({"b": [1, "x\n", null], "a": {"z": true, "y": -3}});
        assert_eq!(
            String::from_utf8(encode(&value).unwrap()).unwrap(),
            r#"{"a":{"y":-3,"z":true},"b":[1,"x\n",null]}"#
        );
        assert!(encode(&json!({"f": 1.5})).is_err());
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".*", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Encoding, parsing back and encoding again gives the same bytes: what a
        /// verifier reads from a file hashes as the writer hashed it.
        #[test]
        fn the_encoding_is_stable_through_a_round_trip(value in values()) {
            let bytes = encode(&value).unwrap();
            let back: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(encode(&back).unwrap(), bytes);
        }
    }
}
