//! Unit tests of request validation, one rule at a time.

use super::*;

const CAPS: Caps = Caps::DEFAULT;

fn chat_err(body: &str) -> BodyError {
    chat(body.as_bytes(), CAPS).unwrap_err()
}

fn param(e: &BodyError) -> &str {
    e.param.as_deref().unwrap_or("<none>")
}

fn nested(levels: usize) -> String {
    format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"extra":{}1{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[test]
fn a_typical_chat_body_passes_and_is_peeked() {
    let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
        "messages":[{"role":"system","content":"be brief"},
                    {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]},
                    {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                    {"role":"tool","tool_call_id":"c1","content":"42"},
                    {"role":"developer","content":"x"},{"role":"function","name":"f","content":"y"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
        "max_tokens":100,"n":2,"temperature":0.5,"top_p":1,"seed":-3,"user":"u","unknown":{"deep":[1,{"x":null}]}}"#;
    let peek = chat(body.as_bytes(), CAPS).unwrap();
    assert_eq!(peek.model, "gpt-4o");
    assert!(peek.stream && peek.tools && peek.client_wants_stream_usage());
}

#[test]
fn messages_must_be_a_non_empty_array_of_objects() {
    assert_eq!(param(&chat_err(r#"{"model":"m","messages":[]}"#)), "messages");
    assert_eq!(param(&chat_err(r#"{"model":"m","messages":{}}"#)), "messages");
    assert_eq!(
        param(&chat_err(r#"{"model":"m","messages":[["user","hi"]]}"#)),
        "messages[0]"
    );
    assert_eq!(
        param(&chat_err(
            r#"{"model":"m","messages":[{"role":"user","content":"a"},"hi"]}"#
        )),
        "messages[1]"
    );
}

#[test]
fn a_role_must_be_a_known_string() {
    let ok = r#"{"role":"user","content":"a"}"#;
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{ok},{ok},{ok},{{"role":5,"content":"a"}}]}}"#
    ));
    assert_eq!(param(&e), "messages[3].role");
    assert_eq!(e.code, "invalid_value");
    let e = chat_err(r#"{"model":"m","messages":[{"role":"wizard","content":"a"}]}"#);
    assert_eq!(param(&e), "messages[0].role");
    assert!(e.message.contains("`assistant`"), "{}", e.message);
    let e = chat_err(r#"{"model":"m","messages":[{"content":"a"}]}"#);
    assert_eq!((param(&e), e.code), ("messages[0].role", "missing_required_parameter"));
}

#[test]
fn content_is_a_string_an_array_of_parts_or_null() {
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":{"text":"a"}}]}"#);
    assert_eq!(param(&e), "messages[0].content");
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
    assert_eq!(param(&e), "messages[0].content");
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":["a"]}]}"#);
    assert_eq!(param(&e), "messages[0].content[0]");
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}"#);
    assert_eq!(param(&e), "messages[0].content[0].type");
}

#[test]
fn tools_are_objects_with_a_type_and_bounded_in_number() {
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"function":{}}]}"#);
    assert_eq!(param(&e), "tools[0].type");
    let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":["f"]}"#);
    assert_eq!(param(&e), "tools[0]");
    let tools = vec![r#"{"type":"function"}"#; 129].join(",");
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"tools":[{tools}]}}"#
    ));
    assert_eq!(param(&e), "tools");
}

#[test]
fn numbers_go_where_numbers_go() {
    let msg = r#""messages":[{"role":"user","content":"a"}]"#;
    for (field, value) in [
        ("max_tokens", "-1"),
        ("max_tokens", "1.5"),
        ("max_tokens", "\"100\""),
        ("max_tokens", "1e999"),
        ("max_tokens", "99999999999"),
        ("n", "1000000"),
        ("temperature", "\"hot\""),
        ("temperature", "1e999"),
        ("stream", "\"yes\""),
        ("seed", "0.5"),
    ] {
        let e = chat_err(&format!(r#"{{"model":"m",{msg},"{field}":{value}}}"#));
        assert_eq!(param(&e), field, "{field}: {value} → {e:?}");
        assert_eq!(e.code, "invalid_value", "{field}: {value}");
    }
    assert!(
        chat(
            format!(r#"{{"model":"m",{msg},"n":128,"max_tokens":null}}"#).as_bytes(),
            CAPS
        )
        .is_ok()
    );
}

#[test]
fn model_and_names_are_capped_without_quoting_them() {
    let long = "x".repeat(4 << 20);
    let e = chat_err(&format!(
        r#"{{"model":"{long}","messages":[{{"role":"user","content":"a"}}]}}"#
    ));
    assert_eq!(param(&e), "model");
    assert!(e.message.len() < 300, "{}", e.message);
    let escaped = "\\u0041".repeat(300);
    assert_eq!(
        param(&chat_err(&format!(r#"{{"model":"{escaped}","messages":[]}}"#))),
        "model"
    );
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"user":"{long}"}}"#
    ));
    assert_eq!(param(&e), "user");
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{{"role":"{long}","content":"a"}}]}}"#
    ));
    assert_eq!(param(&e), "messages[0].role");
    assert!(e.message.len() < 300, "{}", e.message);
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"max_tokens":"{long}"}}"#
    ));
    assert!(e.message.len() < 300, "{}", e.message);
    // Content is text the upstream reads: only the body limit bounds it.
    assert!(
        chat(
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{long}"}}]}}"#).as_bytes(),
            CAPS
        )
        .is_ok()
    );
    let tight = Caps {
        max_model_bytes: 3,
        ..CAPS
    };
    assert!(chat(br#"{"model":"abcd","messages":[{"role":"user","content":"a"}]}"#, tight).is_err());
    assert!(chat(br#"{"model":"abc","messages":[{"role":"user","content":"a"}]}"#, tight).is_ok());
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_by_a_flat_scan() {
    // The body's object and the messages' containers use 3 levels besides `extra`.
    assert!(chat(nested(MAX_DEPTH - 1).as_bytes(), CAPS).is_ok());
    let e = chat_err(&nested(MAX_DEPTH));
    assert_eq!(param(&e), "extra");
    // Far past any stack: the scan does not recurse.
    let e = chat_err(&nested(1_000_000));
    assert_eq!(param(&e), "extra");
    // Brackets inside strings, escaped quotes included, do not count.
    let inside = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"\"{}"}}]}}"#,
        "[".repeat(500)
    );
    assert!(chat(inside.as_bytes(), CAPS).is_ok());
    assert!(check_nesting(br#"{"a":"unterminated [[["#).is_ok());
}

#[test]
fn duplicate_model_keys_and_odd_encodings_are_refused() {
    let e = chat_err(r#"{"model":"cheap","messages":[{"role":"user","content":"a"}],"model":"dear"}"#);
    assert_eq!(param(&e), "model");
    let e = chat(
        b"\xEF\xBB\xBF{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
        CAPS,
    )
    .unwrap_err();
    assert_eq!(e.code, "invalid_json");
    let utf16: Vec<u8> = r#"{"model":"m"}"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(chat(&utf16, CAPS).unwrap_err().code, "invalid_json");
    assert_eq!(
        chat(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", CAPS).unwrap_err().code,
        "invalid_json"
    );
}

#[test]
fn a_ten_megabyte_number_names_its_field_and_is_not_quoted() {
    let digits = "9".repeat(10 << 20);
    let e = chat_err(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"max_tokens":{digits}}}"#
    ));
    assert_eq!((param(&e), e.code), ("max_tokens", "invalid_value"));
    assert!(e.message.len() < 300, "{}", e.message);
    // In a field we do not read it is the upstream's to judge, and passes untouched.
    assert!(
        chat(
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"x":{digits}}}"#).as_bytes(),
            CAPS
        )
        .is_ok()
    );
}

#[test]
fn anthropic_messages_take_user_assistant_and_system_and_no_null_content() {
    let ok = r#"{"model":"c","max_tokens":10,"system":[{"type":"text","text":"s"}],
        "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":"yo"}],
        "tools":[{"name":"get","input_schema":{}}],"metadata":{"user_id":"u"}}"#;
    assert!(messages(ok.as_bytes(), CAPS).unwrap().tools);
    // Claude Code's mid-conversation system message, as a string and as blocks.
    let mid = r#"{"model":"c","messages":[{"role":"user","content":"a"},
        {"role":"system","content":[{"type":"text","text":"env","cache_control":{"type":"ephemeral"}}]},
        {"role":"system","content":"date"}]}"#;
    assert!(messages(mid.as_bytes(), CAPS).is_ok());
    let e = messages(
        br#"{"model":"c","messages":[{"role":"developer","content":"a"}]}"#,
        CAPS,
    )
    .unwrap_err();
    assert_eq!(param(&e), "messages[0].role");
    let e = messages(br#"{"model":"c","messages":[{"role":"user","content":null}]}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "messages[0].content");
    let e = messages(
        br#"{"model":"c","messages":[{"role":"user","content":"a"}],"max_tokens":-5}"#,
        CAPS,
    )
    .unwrap_err();
    assert_eq!(param(&e), "max_tokens");
    let e = messages(br#"{"model":"c","messages":[]}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "messages");
}

#[test]
fn responses_input_items_are_checked_in_their_own_terms() {
    assert!(responses(br#"{"model":"m","input":"hi"}"#, CAPS).is_ok());
    let ok = br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"}]},
        {"type":"function_call_output","call_id":"c","output":"x"}],"tools":[{"type":"web_search_preview"}]}"#;
    assert!(responses(ok, CAPS).is_ok());
    let e = responses(
        br#"{"model":"m","input":[{"role":"user","content":"a"},{"role":"tool","content":"a"}]}"#,
        CAPS,
    )
    .unwrap_err();
    assert_eq!(param(&e), "input[1].role");
    let e = responses(br#"{"model":"m","input":[["user"]]}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "input[0]");
    let e = responses(br#"{"model":"m","input":{"role":"user"}}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "input");
    let e = responses(br#"{"model":"m","input":"a","max_output_tokens":-1}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "max_output_tokens");
}

#[test]
fn responses_take_additional_tools_and_custom_tool_calls_with_their_outputs() {
    let codex = include_str!("../../../tests/fixtures/responses/codex_default_request.json");
    assert!(responses(codex.as_bytes(), CAPS).is_ok());
    let turn = br#"{"model":"m","input":[{"type":"custom_tool_call","call_id":"c","namespace":"functions","name":"exec","input":"text(1)"},
        {"type":"custom_tool_call_output","call_id":"c","output":[{"type":"input_text","text":"1"}]}]}"#;
    assert!(responses(turn, CAPS).is_ok());
    let e = responses(
        br#"{"model":"m","input":[{"type":"custom_tool_call","call_id":"c","name":"exec","input":7}]}"#,
        CAPS,
    )
    .unwrap_err();
    assert_eq!(param(&e), "input[0].input");
    let e = responses(
        br#"{"model":"m","input":[{"type":"additional_tools","role":"developer","tools":[{"name":"x"}]}]}"#,
        CAPS,
    )
    .unwrap_err();
    assert_eq!(param(&e), "input[0].tools[0].type");
}

#[test]
fn completions_prompts_and_embeddings_inputs_take_strings_or_tokens() {
    for input in [r#""a""#, r#"["a","b"]"#, "[1,2,3]", "[[1,2],[3]]"] {
        assert!(
            embeddings(format!(r#"{{"model":"m","input":{input}}}"#).as_bytes(), CAPS).is_ok(),
            "{input}"
        );
        assert!(
            completions(format!(r#"{{"model":"m","prompt":{input}}}"#).as_bytes(), CAPS).is_ok(),
            "{input}"
        );
    }
    for (input, at) in [
        ("null", "input"),
        ("5", "input"),
        ("{}", "input"),
        ("[]", "input"),
        (r#"["a",1]"#, "input"),
        ("[[]]", "input[0]"),
        ("[-1]", "input[0]"),
        (r#"[["a"]]"#, "input[0][0]"),
        ("[{}]", "input[0]"),
    ] {
        let e = embeddings(format!(r#"{{"model":"m","input":{input}}}"#).as_bytes(), CAPS).unwrap_err();
        assert_eq!(param(&e), at, "{input}: {e:?}");
    }
    let e = embeddings(br#"{"model":"m"}"#, CAPS).unwrap_err();
    assert_eq!((param(&e), e.code), ("input", "missing_required_parameter"));
    let e = embeddings(br#"{"model":"m","input":"a","encoding_format":"hex"}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "encoding_format");
    let e = completions(br#"{"model":"m","prompt":"a","n":1000000}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "n");
}

#[test]
fn what_codex_sends_passes_and_a_malformed_codex_body_names_its_param() {
    let codex = include_str!("../../../tests/fixtures/responses/codex_request.json");
    assert!(responses(codex.as_bytes(), CAPS).is_ok());
    let mut body: serde_json::Value = serde_json::from_str(codex).unwrap();
    let cases = [
        ("/tools/7/tools", serde_json::json!("spawn_agent"), "tools[7].tools"),
        ("/tools/7/tools/0", serde_json::json!(["function"]), "tools[7].tools[0]"),
        ("/include", serde_json::json!("reasoning.encrypted_content"), "include"),
        ("/reasoning/effort", serde_json::json!(3), "reasoning.effort"),
        ("/input/3/summary", serde_json::json!("**Listing**"), "input[3].summary"),
        (
            "/input/3/encrypted_content",
            serde_json::json!(7),
            "input[3].encrypted_content",
        ),
        ("/input/6/namespace", serde_json::json!({}), "input[6].namespace"),
        (
            "/input/6/arguments",
            serde_json::json!({"message": "x"}),
            "input[6].arguments",
        ),
        ("/store", serde_json::json!("no"), "store"),
    ];
    for (pointer, value, expected) in cases {
        let original = body.pointer(pointer).cloned();
        *body.pointer_mut(pointer).unwrap() = value;
        let e = responses(&serde_json::to_vec(&body).unwrap(), CAPS).unwrap_err();
        assert_eq!(param(&e), expected, "{pointer}: {}", e.message);
        *body.pointer_mut(pointer).unwrap() = original.unwrap();
    }
}

#[test]
fn fallback_models_are_read_from_models_or_fallbacks() {
    let peek = chat(
        br#"{"model":"a","models":["a","b","c","b"],"messages":[{"role":"user","content":"hi"}]}"#,
        CAPS,
    )
    .unwrap();
    assert_eq!(peek.fallbacks.models, ["b", "c"]);
    assert!(peek.fallbacks.present);
    let peek = messages(
        br#"{"model":"a","fallbacks":["z"],"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
        CAPS,
    )
    .unwrap();
    assert_eq!(peek.fallbacks.models, ["z"]);
    assert_eq!(
        responses(br#"{"model":"a","input":"hi","models":["x"]}"#, CAPS)
            .unwrap()
            .models,
        ["x"]
    );
    assert_eq!(
        completions(br#"{"model":"a","prompt":"hi","fallbacks":["x"]}"#, CAPS)
            .unwrap()
            .models,
        ["x"]
    );
    assert_eq!(
        embeddings(br#"{"model":"a","input":"hi","models":["e"]}"#, CAPS)
            .unwrap()
            .fallbacks
            .models,
        ["e"]
    );
    let none = chat(br#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#, CAPS).unwrap();
    assert!(!none.fallbacks.present && none.fallbacks.models.is_empty());
    let null = chat(
        br#"{"model":"a","models":null,"messages":[{"role":"user","content":"hi"}]}"#,
        CAPS,
    )
    .unwrap();
    assert!(
        null.fallbacks.present && null.fallbacks.models.is_empty(),
        "still removed"
    );
}

#[test]
fn a_fallback_list_must_be_a_short_array_of_model_names() {
    let body = |list: &str| format!(r#"{{"model":"a","messages":[{{"role":"user","content":"hi"}}],"models":{list}}}"#);
    let long = format!(r#"["{}"]"#, "m".repeat(300));
    let eleven = format!(
        "[{}]",
        (0..11).map(|i| format!("\"m{i}\"")).collect::<Vec<_>>().join(",")
    );
    for bad in [
        r#""b""#,
        "{}",
        "7",
        r#"["b", 1]"#,
        r#"["b", ["c"]]"#,
        r#"["b", {"model":"c"}]"#,
        r#"[""]"#,
        r#"["  "]"#,
        &long,
        &eleven,
    ] {
        let e = chat_err(&body(bad));
        assert_eq!(param(&e), "models", "{bad}: {e:?}");
        assert_eq!(e.code, "invalid_value", "{bad}");
        assert!(!e.message.contains(&"m".repeat(40)), "no long echo: {}", e.message);
    }
    let ten = format!(
        "[{}]",
        (0..10).map(|i| format!("\"m{i}\"")).collect::<Vec<_>>().join(",")
    );
    assert_eq!(chat(body(&ten).as_bytes(), CAPS).unwrap().fallbacks.models.len(), 10);
    let e = chat_err(r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"fallbacks":[1]}"#);
    assert_eq!(param(&e), "fallbacks");
}

#[test]
fn models_and_fallbacks_together_are_refused() {
    let e = chat_err(r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"models":["b"],"fallbacks":["c"]}"#);
    assert_eq!(param(&e), "fallbacks");
    assert!(e.message.contains("not both"), "{}", e.message);
    let e = embeddings(br#"{"model":"a","input":"x","models":[],"fallbacks":[]}"#, CAPS).unwrap_err();
    assert_eq!(param(&e), "fallbacks");
}
