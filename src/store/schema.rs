//! The tables (`ai_requests`, `api_keys`, `spend_ledger`, `nodes`, `node_jobs`, `config_overrides`,
//! `responses`, `price_documents`), in portable types so one schema serves PostgreSQL and SQLite.

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
        cache -> Nullable<Text>,
        cached_tokens -> Nullable<BigInt>,
        cache_write_tokens -> Nullable<BigInt>,
        reasoning_tokens -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        cost_usd -> Nullable<Double>,
        cost_estimated -> Bool,
        team -> Nullable<Text>,
        user_name -> Nullable<Text>,
        tags -> Nullable<Text>,
        trace_id -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        rpm -> Nullable<BigInt>,
        tpm -> Nullable<BigInt>,
        models -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        team -> Nullable<Text>,
        priority -> Nullable<Text>,
        user_name -> Nullable<Text>,
    }
}

// `/api/v1/spend` names a row's virtual key by joining its caller to the key's id.
diesel::allow_tables_to_appear_in_same_query!(ai_requests, api_keys);
diesel::allow_columns_to_appear_in_same_group_by_clause!(ai_requests::caller, api_keys::name);

diesel::table! {
    spend_ledger (scope, name, period, period_start) {
        scope -> Text,
        name -> Text,
        period -> Text,
        period_start -> BigInt,
        amount_usd -> Double,
        requests -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    nodes (url) {
        url -> Text,
        pool -> Text,
        runtime -> Nullable<Text>,
        source -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    node_jobs (job_id) {
        job_id -> Text,
        node_url -> Text,
        pool -> Text,
        created_at -> BigInt,
        node_job_id -> Text,
        caller -> Nullable<Text>,
    }
}

diesel::table! {
    config_overrides (kind, name) {
        kind -> Text,
        name -> Text,
        item -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    responses (id) {
        id -> Text,
        provider -> Text,
        caller -> Nullable<Text>,
        bridged -> Bool,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        body -> Nullable<Text>,
    }
}

diesel::table! {
    price_documents (url) {
        url -> Text,
        fetched_at -> BigInt,
        body -> Text,
    }
}
