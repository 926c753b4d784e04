//! Stored bridged responses as JSON: what is kept of a response (its object and the conversation
//! input that led to it), a chained request (`previous_response_id`) rebuilt from it, and the
//! `input_items` list.
//!
//! Per the Responses API, a chained request carries the previous response's input and output
//! items before its own `input`, while its `instructions` are its own: the previous request's are
//! not carried over. Reference: <https://platform.openai.com/docs/api-reference/responses>.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Object, invalid, parse_object, to_bytes};
use crate::dialects::BodyError;

/// The fields of a Responses request that decide storing and chaining.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ChainFields {
    /// The response this request continues.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// Whether the client asked for the response to be stored (omitted: `None`).
    #[serde(default)]
    pub store: Option<bool>,
}

/// Reads `previous_response_id` and `store`, refusing them when they have the wrong type.
pub fn chain_fields(body: &[u8]) -> Result<ChainFields, BodyError> {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(default)]
        previous_response_id: Option<Value>,
        #[serde(default)]
        store: Option<Value>,
    }
    let loose: Loose = serde_json::from_slice(body).map_err(|e| BodyError {
        message: format!("the request body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    let previous_response_id = match loose.previous_response_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            return Err(invalid(
                "`previous_response_id` must be a string",
                Some("previous_response_id"),
            ));
        }
    };
    let store = match loose.store {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(invalid("`store` must be a boolean", Some("store"))),
    };
    Ok(ChainFields {
        previous_response_id,
        store,
    })
}

/// A request's `input` as items: a string is one user message.
pub fn input_items(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => vec![json!({ "type": "message", "role": "user", "content": text })],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// What is stored of a bridged response: the conversation input of the (expanded) `request`
/// and the `response` object as answered, which says it was stored and what it continued.
/// `None` when the response is not a JSON object.
pub fn stored_body(request: &[u8], response: &Value, previous_response_id: Option<&str>) -> Option<String> {
    let mut response = response.clone();
    let object = response.as_object_mut()?;
    object.insert("store".into(), Value::Bool(true));
    object.insert(
        "previous_response_id".into(),
        previous_response_id.map_or(Value::Null, |id| json!(id)),
    );
    let request: Value = serde_json::from_slice(request).ok()?;
    let stored = json!({ "input": input_items(request.get("input")), "response": response });
    serde_json::to_string(&stored).ok()
}

/// The response object of a stored body.
pub fn stored_response(stored: &str) -> Option<Value> {
    let mut v: Value = serde_json::from_str(stored).ok()?;
    Some(v.get_mut("response")?.take())
}

/// `request` continued from a stored response: its `input` becomes the stored input, the stored
/// response's output items (without their ids, which only the gateway issued), then its own
/// items; `previous_response_id` is removed; everything else, `instructions` included, is the
/// request's own.
pub fn rebuild(request: &[u8], stored: &str) -> Result<bytes::Bytes, BodyError> {
    let mut req = parse_object(request)?;
    let stored: Value = serde_json::from_str(stored)
        .map_err(|_| invalid("the previous response cannot be read", Some("previous_response_id")))?;
    let mut items: Vec<Value> = stored
        .get("input")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for item in stored
        .pointer("/response/output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let mut item = item.clone();
        if let Some(o) = item.as_object_mut() {
            o.remove("id");
        }
        items.push(item);
    }
    items.extend(input_items(req.get("input")));
    req.remove("previous_response_id");
    req.insert("input".into(), Value::Array(items));
    Ok(to_bytes(&Value::Object(req)))
}

/// The `response` object of a stream event's data when the event is `response.completed`.
pub fn completed_response(data: &[u8]) -> Option<Value> {
    // Most events are deltas: a byte scan spares them the parse.
    const NEEDLE: &[u8] = b"response.completed";
    if !data.windows(NEEDLE.len()).any(|w| w == NEEDLE) {
        return None;
    }
    let mut event: Value = serde_json::from_slice(data).ok()?;
    if event.get("type").and_then(Value::as_str) != Some("response.completed") {
        return None;
    }
    Some(event.get_mut("response")?.take())
}

/// `GET /v1/responses/{id}/input_items` parameters.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListQuery {
    /// Items per page, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `asc` or `desc` (default `desc`, newest first).
    pub order: Option<String>,
    /// The page starts after this item id.
    pub after: Option<String>,
}

/// One page of a stored response's input items, in OpenAI's list shape. An item without an id
/// gets one derived from the response id and its position, so pages can be walked.
pub fn input_items_page(stored: &str, response_id: &str, q: &ListQuery) -> Result<Value, BodyError> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(invalid("`limit` must be between 1 and 100", Some("limit")));
    }
    let descending = match q.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(invalid("`order` must be `asc` or `desc`", Some("order"))),
    };
    let stored: Value = serde_json::from_str(stored).unwrap_or_default();
    let suffix = response_id.strip_prefix("resp_").unwrap_or(response_id);
    let mut items: Vec<Value> = stored
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, item)| listed(item, suffix, i))
        .collect();
    if descending {
        items.reverse();
    }
    let start = match &q.after {
        Some(after) => match items
            .iter()
            .position(|i| i.get("id").and_then(Value::as_str) == Some(after))
        {
            Some(p) => p + 1,
            None => return Err(invalid(format!("no input item with id `{after}`"), Some("after"))),
        },
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    let take = usize::try_from(limit).unwrap_or(20).min(rest.len());
    let data = rest[..take].to_vec();
    let id_of = |v: Option<&Value>| v.and_then(|i| i.get("id")).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "object": "list",
        "data": data,
        "first_id": id_of(data.first()),
        "last_id": id_of(data.last()),
        "has_more": rest.len() > take,
    }))
}

/// An input item as the list shows it: typed, with an id, a message's text as content parts.
fn listed(item: &Value, suffix: &str, index: usize) -> Value {
    let mut out: Object = item.as_object().cloned().unwrap_or_default();
    let kind = out.get("type").and_then(Value::as_str).unwrap_or("message").to_owned();
    if kind == "message" {
        out.insert("type".into(), json!("message"));
        if let Some(Value::String(text)) = out.get("content") {
            let part = if out.get("role").and_then(Value::as_str) == Some("assistant") {
                "output_text"
            } else {
                "input_text"
            };
            let content = json!([{ "type": part, "text": text }]);
            out.insert("content".into(), content);
        }
        out.entry("status").or_insert_with(|| json!("completed"));
    }
    if !out.get("id").is_some_and(Value::is_string) {
        let prefix = match kind.as_str() {
            "message" => "msg",
            "function_call" => "fc",
            "function_call_output" => "fco",
            _ => "item",
        };
        out.insert("id".into(), json!(format!("{prefix}_{suffix}_{index}")));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored_pair() -> String {
        let request = br#"{"model":"m","instructions":"Be brief.","input":"Hi, I am Ann."}"#;
        let response = json!({
            "id": "resp_1", "object": "response", "status": "completed", "store": false,
            "output": [{"type": "message", "id": "msg_9", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hello Ann.", "annotations": []}]}]
        });
        stored_body(request, &response, None).unwrap()
    }

    #[test]
    fn a_string_input_is_stored_as_a_user_message_and_the_response_says_stored() {
        let stored: Value = serde_json::from_str(&stored_pair()).unwrap();
        assert_eq!(
            stored["input"],
            json!([{"type": "message", "role": "user", "content": "Hi, I am Ann."}])
        );
        assert_eq!(stored["response"]["store"], json!(true));
        assert_eq!(stored["response"]["previous_response_id"], Value::Null);
        assert_eq!(stored_response(&stored_pair()).unwrap()["id"], json!("resp_1"));
    }

    #[test]
    fn a_chained_request_carries_the_stored_input_and_output_then_its_own_input() {
        let next = br#"{"model":"m","previous_response_id":"resp_1","instructions":"Answer in French.","input":"What is my name?","temperature":0.5}"#;
        let out: Value = serde_json::from_slice(&rebuild(next, &stored_pair()).unwrap()).unwrap();
        assert!(out.get("previous_response_id").is_none());
        assert_eq!(out["instructions"], json!("Answer in French."));
        assert_eq!(out["temperature"], json!(0.5));
        let input = out["input"].as_array().unwrap();
        assert_eq!(input.len(), 3);
        assert_eq!(input[0]["content"], json!("Hi, I am Ann."));
        assert_eq!(input[1]["role"], json!("assistant"));
        assert!(input[1].get("id").is_none(), "gateway-issued ids are not sent on");
        assert_eq!(input[2]["content"], json!("What is my name?"));
    }

    #[test]
    fn a_chained_request_with_items_keeps_them_in_order() {
        let next = br#"{"model":"m","previous_response_id":"resp_1","input":[{"type":"function_call_output","call_id":"c","output":"1"}]}"#;
        let out: Value = serde_json::from_slice(&rebuild(next, &stored_pair()).unwrap()).unwrap();
        assert_eq!(out["input"][2]["type"], json!("function_call_output"));
    }

    #[test]
    fn chain_fields_are_read_and_checked() {
        let f = chain_fields(br#"{"previous_response_id":"resp_1","store":true}"#).unwrap();
        assert_eq!(f.previous_response_id.as_deref(), Some("resp_1"));
        assert_eq!(f.store, Some(true));
        assert_eq!(chain_fields(br#"{"input":"x"}"#).unwrap(), ChainFields::default());
        assert_eq!(
            chain_fields(br#"{"store":"yes"}"#).unwrap_err().param.as_deref(),
            Some("store")
        );
        assert_eq!(
            chain_fields(br#"{"previous_response_id":1}"#)
                .unwrap_err()
                .param
                .as_deref(),
            Some("previous_response_id")
        );
    }

    #[test]
    fn only_the_completed_event_yields_its_response() {
        let done = br#"{"type":"response.completed","sequence_number":9,"response":{"id":"resp_2","output":[]}}"#;
        assert_eq!(completed_response(done).unwrap()["id"], json!("resp_2"));
        assert!(completed_response(br#"{"type":"response.output_text.delta","delta":"response.completed"}"#).is_none());
        assert!(completed_response(br#"{"type":"response.created"}"#).is_none());
    }

    #[test]
    fn input_items_are_listed_newest_first_and_paged() {
        let request = br#"{"model":"m","input":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"type":"message","role":"user","content":[{"type":"input_text","text":"c"}]}]}"#;
        let stored = stored_body(request, &json!({"id": "resp_7", "output": []}), None).unwrap();
        let page = input_items_page(
            &stored,
            "resp_7",
            &ListQuery {
                limit: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(page["object"], json!("list"));
        assert_eq!(page["data"][0]["content"][0]["text"], json!("c"));
        assert_eq!(
            page["data"][1]["content"],
            json!([{"type": "output_text", "text": "b"}])
        );
        assert_eq!(page["first_id"], json!("msg_7_2"));
        assert_eq!(page["last_id"], json!("msg_7_1"));
        assert_eq!(page["has_more"], json!(true));
        let next = ListQuery {
            limit: Some(2),
            after: Some("msg_7_1".into()),
            ..Default::default()
        };
        let page = input_items_page(&stored, "resp_7", &next).unwrap();
        assert_eq!(page["data"][0]["content"], json!([{"type": "input_text", "text": "a"}]));
        assert_eq!(page["has_more"], json!(false));
        let asc = ListQuery {
            order: Some("asc".into()),
            ..Default::default()
        };
        let page = input_items_page(&stored, "resp_7", &asc).unwrap();
        assert_eq!(page["first_id"], json!("msg_7_0"));
        let bad = ListQuery {
            limit: Some(0),
            ..Default::default()
        };
        assert_eq!(
            input_items_page(&stored, "resp_7", &bad).unwrap_err().param.as_deref(),
            Some("limit")
        );
    }
}
