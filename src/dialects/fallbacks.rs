//! Per-request fallbacks: the models a body lists to try after `model` — `models`, OpenRouter's
//! name, or `fallbacks`, LiteLLM's — and the removal of those members before the body goes
//! upstream (an upstream does not know them, and OpenAI refuses unknown parameters).
//!
//! The removal is a byte edit, like `splice_model`: the member, its value and one separating
//! comma go; every other byte stays as the client sent it (key order, whitespace, escapes).

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::BodyError;

/// Most entries one `models` or `fallbacks` list may hold.
pub const MAX_FALLBACKS: usize = 10;

/// The top-level members that list fallback models.
pub const FALLBACK_MEMBERS: [&str; 2] = ["models", "fallbacks"];

/// The models a body lists to try after `model`, as validation read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fallbacks {
    /// The body has `models` or `fallbacks` (even `null` or a list that names only `model`), so
    /// the member must be removed before the body goes upstream.
    pub present: bool,
    /// In order, without `model` itself and without repeats.
    pub models: Vec<String>,
}

impl Fallbacks {
    /// The list `given` (in the body's order) for a request to `model`: `model` itself and repeats
    /// are dropped, since OpenRouter's clients send `model` again as the first entry.
    pub fn of(model: &str, given: impl IntoIterator<Item = impl AsRef<str> + Into<String>>) -> Self {
        let mut models: Vec<String> = Vec::new();
        for m in given {
            if m.as_ref() != model && !models.iter().any(|seen| seen == m.as_ref()) {
                models.push(m.into());
            }
        }
        Self { present: true, models }
    }
}

/// The body without its top-level `models` and `fallbacks` members; the body itself (no copy)
/// when it has neither.
pub fn remove_fallbacks(body: &Bytes) -> Result<Bytes, BodyError> {
    remove_members(body, &FALLBACK_MEMBERS)
}

/// The body without the top-level members named in `names` (every occurrence), every other byte
/// kept. Refuses a body that is not one JSON object.
pub fn remove_members(body: &Bytes, names: &[&str]) -> Result<Bytes, BodyError> {
    let members = members(body, names)?;
    if !members.iter().any(|m| m.remove) {
        return Ok(body.clone());
    }
    let open = body.iter().position(|b| *b == b'{').unwrap_or(0);
    let mut out = Vec::with_capacity(body.len());
    out.extend_from_slice(&body[..=open]);
    // Member i owns the bytes from the end of the value before it (or the brace) to the end of
    // its own value: `ws "key" ws : ws value` for the first, `ws , ws "key" ws : ws value` after.
    let mut from = open + 1;
    let mut first_kept = true;
    for (i, m) in members.iter().enumerate() {
        let own = &body[from..m.end];
        from = m.end;
        if m.remove {
            continue;
        }
        let own = match (first_kept, i) {
            // It now follows the brace: its separating comma goes with the removed member.
            (true, 1..) => own
                .iter()
                .position(|b| *b == b',')
                .map_or(own, |comma| &own[comma + 1..]),
            _ => own,
        };
        out.extend_from_slice(own);
        first_kept = false;
    }
    out.extend_from_slice(&body[from..]);
    Ok(Bytes::from(out))
}

/// One top-level member: whether it goes, and where its value ends in the body.
struct Member {
    remove: bool,
    end: usize,
}

fn members(body: &[u8], names: &[&str]) -> Result<Vec<Member>, BodyError> {
    let refuse = |e: serde_json::Error| BodyError {
        message: format!("the request body is not a JSON object: {e}"),
        param: None,
        code: "invalid_json",
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = de.deserialize_map(Walk { names }).map_err(refuse)?;
    de.end().map_err(refuse)?;
    let base = body.as_ptr() as usize;
    Ok(raw
        .into_iter()
        .map(|(remove, value)| {
            // The RawValue borrows from `body`, so its address lies inside it.
            let start = (value.get().as_ptr() as usize).saturating_sub(base);
            Member {
                remove,
                end: start + value.get().len(),
            }
        })
        .collect())
}

/// Visits the top-level object: each key tested against `names`, each value kept raw.
struct Walk<'n> {
    names: &'n [&'n str],
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Vec<(bool, &'de RawValue)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(remove) = map.next_key_seed(KeyIn(self.names))? {
            out.push((remove, map.next_value::<&'de RawValue>()?));
        }
        Ok(out)
    }
}

/// A key, read as whether it is one of the names (escapes decoded: `"mod\u0065ls"` is `models`,
/// as it is to any parser upstream).
struct KeyIn<'n>(&'n [&'n str]);

impl<'de> DeserializeSeed<'de> for KeyIn<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeyIn<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(self.0.contains(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(body: &str) -> String {
        let out = remove_fallbacks(&Bytes::copy_from_slice(body.as_bytes())).unwrap();
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn a_member_goes_with_one_comma_wherever_it_sits() {
        assert_eq!(
            strip(r#"{"models":["a","b"],"model":"m","messages":[]}"#),
            r#"{"model":"m","messages":[]}"#
        );
        assert_eq!(
            strip(r#"{"model":"m","models":["a"],"messages":[]}"#),
            r#"{"model":"m","messages":[]}"#
        );
        assert_eq!(
            strip(r#"{"model":"m","messages":[],"fallbacks":["a"]}"#),
            r#"{"model":"m","messages":[]}"#
        );
        assert_eq!(strip(r#"{"models":["a"]}"#), "{}");
    }

    #[test]
    fn whitespace_and_other_members_are_kept_byte_for_byte() {
        let body = "\n{ \"model\" : \"m\" ,\n  \"models\" : [ \"a\" , \"b\" ] ,\n  \"x\":{\"models\":[1]} }\n";
        assert_eq!(strip(body), "\n{ \"model\" : \"m\" ,\n  \"x\":{\"models\":[1]} }\n");
        let first = " {\t\"fallbacks\" : [\"a\"] ,  \"model\":\"m\"}";
        assert_eq!(strip(first), " {  \"model\":\"m\"}");
    }

    #[test]
    fn nested_members_and_strings_that_look_like_members_stay() {
        let body =
            r#"{"model":"m","meta":{"models":["x"],"s":"\"models\":[\"y\"], }"},"note":"fallbacks","models":[]}"#;
        assert_eq!(
            strip(body),
            r#"{"model":"m","meta":{"models":["x"],"s":"\"models\":[\"y\"], }"},"note":"fallbacks"}"#
        );
    }

    #[test]
    fn escaped_keys_and_every_occurrence_are_removed() {
        let body = r#"{"mod\u0065ls":["a"],"model":"m","fallbacks":null,"models":["b"],"z":"\u00e9"}"#;
        assert_eq!(strip(body), r#"{"model":"m","z":"\u00e9"}"#);
    }

    #[test]
    fn a_body_without_them_is_returned_as_it_is() {
        let body = Bytes::from_static(br#"{"model":"m","messages":[{"models":1}]}"#);
        let out = remove_fallbacks(&body).unwrap();
        assert_eq!(out.as_ptr(), body.as_ptr(), "no copy");
    }

    #[test]
    fn what_is_not_one_object_is_refused() {
        for bad in ["[1]", "{", "{\"a\":1} x", "", "\"s\""] {
            assert!(
                remove_fallbacks(&Bytes::copy_from_slice(bad.as_bytes())).is_err(),
                "{bad}"
            );
        }
    }

    /// The fuzz target's property over generated bodies: the result parses, and equals the body
    /// with the two members taken out.
    #[test]
    fn generated_bodies_lose_the_lists_and_nothing_else() {
        const MEMBERS: &[&str] = &[
            r#""model":"m""#,
            r#""messages":[{"role":"user","content":"a, \"models\": [1]}"}]"#,
            r#""models":["a","b"]"#,
            r#""models":null"#,
            r#""fallbacks":[]"#,
            r#""fallbacks":["x"]"#,
            r#""x":{"models":["n"],"y":[{"fallbacks":1}]}"#,
            r#""s":"}{,\\""#,
            r#""n":-1.5e3"#,
            r#""models2":true"#,
        ];
        const SPACE: &[&str] = &[
            "", " ", "
	", "  
 ",
        ];
        let mut rng = fastrand::Rng::with_seed(19);
        for _ in 0..2000 {
            let ws = |rng: &mut fastrand::Rng| SPACE[rng.usize(..SPACE.len())];
            let count = rng.usize(0..6);
            let mut body = format!("{}{{", ws(&mut rng));
            for i in 0..count {
                let member = MEMBERS[rng.usize(..MEMBERS.len())];
                let (key, value) = member.split_once(':').unwrap();
                if i > 0 {
                    body.push_str(&format!("{},", ws(&mut rng)));
                }
                body.push_str(&format!(
                    "{}{key}{}:{}{value}",
                    ws(&mut rng),
                    ws(&mut rng),
                    ws(&mut rng)
                ));
            }
            body.push_str(&format!("{}}}{}", ws(&mut rng), ws(&mut rng)));
            let mut want: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
            let got: serde_json::Value = serde_json::from_str(&strip(&body)).unwrap_or_else(|e| panic!("{body}: {e}"));
            if let Some(members) = want.as_object_mut() {
                FALLBACK_MEMBERS.iter().for_each(|m| drop(members.remove(*m)));
            }
            assert_eq!(got, want, "{body}");
        }
    }

    #[test]
    fn the_list_drops_the_model_itself_and_repeats() {
        let f = Fallbacks::of("a", ["a", "b", "c", "b", "a"]);
        assert_eq!(f.models, ["b", "c"]);
        assert!(f.present);
        assert!(Fallbacks::of("a", ["a"]).models.is_empty());
    }
}
