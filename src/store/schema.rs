//! Diesel's view of the tables in `migrations/sqlite` and `migrations/postgres` (the same schema
//! on each backend). Kept in step with the migrations by hand.

diesel::table! {
    tenants (id) {
        id -> Text,
        display_name -> Text,
        microsoft_tenant_id -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    channels (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        url -> Text,
        enabled -> Bool,
        headers -> Text,
        secret -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        deleted_at -> Nullable<BigInt>,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<BigInt>,
        rate_limit_per_second -> Nullable<Integer>,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<BigInt>,
        disabled_told_at -> Nullable<BigInt>,
        config -> Text,
    }
}

diesel::table! {
    api_tokens (role) {
        role -> Text,
        token_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    rules (id) {
        id -> Text,
        name -> Text,
        tenant_id -> Nullable<Text>,
        event_types -> Text,
        min_severity -> Text,
        enabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        priority -> Integer,
        conditions -> Nullable<Text>,
        active_hours -> Nullable<Text>,
        suppress -> Nullable<Text>,
        group_spec -> Nullable<Text>,
    }
}

diesel::table! {
    rule_channels (rule_id, channel_id) {
        rule_id -> Text,
        channel_id -> Text,
        position -> Integer,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        event_type -> Text,
        severity -> Text,
        tenant_id -> Text,
        occurred_at -> BigInt,
        payload -> Text,
        received_at -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        event_id -> Text,
        channel_id -> Text,
        tenant_id -> Text,
        event_type -> Text,
        severity -> Text,
        status -> Text,
        attempt_count -> Integer,
        next_attempt_at -> Nullable<BigInt>,
        last_status_code -> Nullable<Integer>,
        last_error_kind -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        scheduled_attempt_count -> Integer,
        lease_owner -> Nullable<Text>,
        redeliver_from -> Nullable<Text>,
        rule_id -> Nullable<Text>,
        group_id -> Nullable<Text>,
        notification_id -> Nullable<Text>,
        suppressed_by -> Nullable<Text>,
        silence_id -> Nullable<Text>,
        ticket -> Nullable<Text>,
        incident_hash -> Nullable<Text>,
    }
}

diesel::table! {
    alert_groups (id) {
        id -> Text,
        rule_id -> Text,
        channel_id -> Text,
        group_key -> Text,
        key_hash -> Text,
        settings -> Text,
        opened_at -> BigInt,
        flush_at -> BigInt,
        last_flush_at -> Nullable<BigInt>,
        notifications -> Integer,
        earlier -> Integer,
        max_severity -> Nullable<Text>,
        closing -> Bool,
        rule_name -> Nullable<Text>,
    }
}

diesel::table! {
    suppression_windows (rule_id, channel_id, window_key) {
        rule_id -> Text,
        channel_id -> Text,
        window_key -> Text,
        delivery_id -> Text,
        severity -> Text,
        opened_at -> BigInt,
        until -> BigInt,
    }
}

diesel::table! {
    silences (id) {
        id -> Text,
        matchers -> Text,
        starts_at -> BigInt,
        ends_at -> BigInt,
        comment -> Text,
        created_by -> Text,
        channel_ids -> Nullable<Text>,
        rule_ids -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    instances (id) {
        id -> Text,
        version -> Text,
        started_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    routing_version (id) {
        id -> Integer,
        version -> BigInt,
    }
}

diesel::table! {
    attempts (delivery_id, number) {
        delivery_id -> Text,
        number -> Integer,
        triggered_by -> Text,
        started_at -> BigInt,
        duration_ms -> BigInt,
        status_code -> Nullable<Integer>,
        error_kind -> Nullable<Text>,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        request_id -> Nullable<Text>,
        request_size -> Nullable<Integer>,
    }
}

diesel::table! {
    sent_requests (id) {
        id -> Text,
        method -> Text,
        url -> Text,
        headers -> Text,
        body -> Nullable<Text>,
        body_bytes -> BigInt,
        answer_headers -> Nullable<Text>,
    }
}

diesel::table! {
    incidents (channel_id, key_hash) {
        channel_id -> Text,
        key_hash -> Text,
        key_text -> Text,
        marker -> Text,
        opened_at -> BigInt,
        written_at -> BigInt,
        ticket_id -> Nullable<Text>,
        ticket_key -> Nullable<Text>,
        ticket_url -> Nullable<Text>,
        thread_message_id -> Nullable<Text>,
        thread_subject -> Nullable<Text>,
        create_started_at -> Nullable<BigInt>,
        create_delivery_id -> Nullable<Text>,
        previous_ticket -> Nullable<Text>,
    }
}

diesel::joinable!(deliveries -> events (event_id));
diesel::joinable!(rule_channels -> rules (rule_id));
diesel::joinable!(rule_channels -> channels (channel_id));

diesel::table! {
    channel_health (channel_id) {
        channel_id -> Text,
        consecutive_failures -> Integer,
        failing_since -> Nullable<BigInt>,
        open_until -> Nullable<BigInt>,
        cooldown_ms -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    o365_actions (action_key) {
        action_key -> Text,
        event_id -> Text,
        occurred_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    o365_arrivals (organization_id, hour, outcome) {
        organization_id -> Text,
        hour -> BigInt,
        outcome -> Text,
        records -> BigInt,
        last_at -> BigInt,
    }
}

diesel::table! {
    o365_contents (content_id) {
        content_id -> Text,
        organization_id -> Text,
        content_uri -> Text,
        content_created -> BigInt,
        content_expiration -> BigInt,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        records -> Nullable<Integer>,
        fetched_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    o365_listings (organization_id) {
        organization_id -> Text,
        listed_until -> BigInt,
        listed_at -> BigInt,
        last_error -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(api_tokens, tenants, channels, channel_health, rules, rule_channels, events, deliveries, attempts, instances, routing_version, alert_groups, suppression_windows, silences, sent_requests, incidents);
