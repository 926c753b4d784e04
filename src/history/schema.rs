//! The `ai_requests` table, in portable types so one schema serves PostgreSQL and SQLite.

diesel::table! {
    ai_requests (id) {
        id -> Text,
        created_at -> BigInt,
        request_id -> Text,
        endpoint -> Text,
        task -> Nullable<Text>,
        model -> Nullable<Text>,
        provider -> Nullable<Text>,
        upstream_model -> Nullable<Text>,
        stream -> Bool,
        status -> Text,
        http_status -> Integer,
        latency_ms -> BigInt,
        ttft_ms -> Nullable<BigInt>,
        prompt_tokens -> Nullable<BigInt>,
        completion_tokens -> Nullable<BigInt>,
        total_tokens -> Nullable<BigInt>,
        attempts -> Text,
        caller -> Nullable<Text>,
        error_message -> Nullable<Text>,
        result_summary -> Nullable<Text>,
        prompt -> Nullable<Text>,
    }
}
