-- callwise initial schema: every table that holds customer data carries organization_id (FK).

create table organizations (
    id          uuid primary key default gen_random_uuid(),
    slug        text not null unique check (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name        text not null,
    settings    jsonb not null default '{}'::jsonb,
    created_at  timestamptz not null default now()
);

create table end_users (
    id                 uuid primary key default gen_random_uuid(),
    organization_id    uuid not null references organizations(id) on delete cascade,
    external_id        text not null,
    email              text,
    phone              text,
    full_name          text,
    preferred_language text not null default 'en',
    metadata           jsonb not null default '{}'::jsonb,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    unique (organization_id, external_id)
);
create index end_users_org_email on end_users (organization_id, lower(email));

create table experiments (
    id               uuid primary key default gen_random_uuid(),
    organization_id  uuid not null references organizations(id) on delete cascade,
    name             text not null,
    description      text not null default '',
    control_config   jsonb not null default '{}'::jsonb,
    treatment_config jsonb not null default '{}'::jsonb,
    traffic_split    real not null default 0.5 check (traffic_split > 0 and traffic_split < 1),
    status           text not null default 'running' check (status in ('draft', 'running', 'stopped')),
    created_at       timestamptz not null default now(),
    unique (organization_id, name)
);

create table sessions (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    room            text not null,
    kind            text not null check (kind in ('support', 'meeting')),
    modality        text not null default 'voice' check (modality in ('voice', 'video', 'screen_share', 'text')),
    end_user_id     uuid references end_users(id) on delete set null,
    started_at      timestamptz not null default now(),
    ended_at        timestamptz,
    resolved_by_ai  boolean,
    status          text not null default 'active' check (status in ('active', 'ended', 'escalated', 'failed')),
    ab_test_id      uuid references experiments(id) on delete set null,
    ab_variant_id   text check (ab_variant_id in ('control', 'treatment')),
    metadata        jsonb not null default '{}'::jsonb,
    check (ended_at is null or ended_at >= started_at),
    check ((ab_test_id is null) = (ab_variant_id is null))
);
create index sessions_org_started on sessions (organization_id, started_at desc);

create table turns (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    session_id      uuid not null references sessions(id) on delete cascade,
    seq             integer not null check (seq >= 0),
    speaker         text not null,
    role            text not null check (role in ('user', 'assistant', 'system')),
    text            text not null,
    sources         jsonb not null default '[]'::jsonb,
    tier            text check (tier in ('tier1', 'tier2', 'tier3')),
    confidence      real check (confidence is null or (confidence >= 0 and confidence <= 1)),
    low_confidence  boolean not null default false,
    escalated       boolean not null default false,
    latencies       jsonb not null default '{}'::jsonb,
    cost_usd        numeric(14, 8) not null default 0 check (cost_usd >= 0),
    error           text,
    created_at      timestamptz not null default now(),
    unique (session_id, seq)
);
create index turns_org_created on turns (organization_id, created_at desc);

create table escalations (
    id               uuid primary key default gen_random_uuid(),
    organization_id  uuid not null references organizations(id) on delete cascade,
    session_id       uuid not null references sessions(id) on delete cascade,
    turn_id          uuid references turns(id) on delete set null,
    reason           text not null check (reason in (
                        'explicit_request', 'frustration', 'billing_dispute', 'security_privacy',
                        'legal_refund', 'outage', 'repeated_failure', 'low_confidence', 'router_failure')),
    details          jsonb not null default '{}'::jsonb,
    handoff          text not null default 'live' check (handoff in ('live', 'callback')),
    assigned_to      text,
    created_at       timestamptz not null default now(),
    resolved_at      timestamptz,
    resolution_notes text,
    check (resolved_at is null or resolved_at >= created_at)
);
create index escalations_org_created on escalations (organization_id, created_at desc);

create table survey_responses (
    id                uuid primary key default gen_random_uuid(),
    organization_id   uuid not null references organizations(id) on delete cascade,
    session_id        uuid not null references sessions(id) on delete cascade,
    end_user_id       uuid references end_users(id) on delete set null,
    rating            smallint not null check (rating between 1 and 5),
    nps               smallint check (nps between 0 and 10),
    feedback_text     text,
    channel_used      text not null check (channel_used in ('voice', 'sms', 'email', 'web', 'chat')),
    requires_followup boolean not null default false,
    created_at        timestamptz not null default now()
);
create index survey_responses_org_created on survey_responses (organization_id, created_at desc);

create table conversation_insights (
    id               uuid primary key default gen_random_uuid(),
    organization_id  uuid not null references organizations(id) on delete cascade,
    session_id       uuid not null unique references sessions(id) on delete cascade,
    transcript       jsonb not null default '[]'::jsonb,
    summary          text not null default '',
    topics           jsonb not null default '[]'::jsonb,
    sentiment_scores jsonb not null default '{}'::jsonb,
    action_items     jsonb not null default '[]'::jsonb,
    key_moments      jsonb not null default '[]'::jsonb,
    competitor_mentions jsonb not null default '[]'::jsonb,
    next_steps       jsonb not null default '[]'::jsonb,
    created_at       timestamptz not null default now()
);
create index conversation_insights_org on conversation_insights (organization_id, created_at desc);

create table documents (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    source          text not null,
    title           text not null default '',
    mime_type       text not null,
    content_hash    text not null,
    size_bytes      bigint not null check (size_bytes >= 0),
    metadata        jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    unique (organization_id, source)
);

create table chunks (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    document_id     uuid not null references documents(id) on delete cascade,
    parent_id       uuid references chunks(id) on delete cascade,
    kind            text not null check (kind in ('parent', 'child')),
    seq             integer not null check (seq >= 0),
    text            text not null,
    token_count     integer not null check (token_count >= 0),
    source          text not null,
    title_path      text[] not null default '{}',
    metadata        jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now(),
    check ((kind = 'parent') = (parent_id is null))
);
create index chunks_org_doc on chunks (organization_id, document_id);
create index chunks_parent on chunks (parent_id);

create table unresolved_problems (
    id               uuid primary key default gen_random_uuid(),
    organization_id  uuid not null references organizations(id) on delete cascade,
    question         text not null,
    normalized_hash  text not null,
    occurrence_count integer not null default 1 check (occurrence_count >= 1),
    escalated_count  integer not null default 0 check (escalated_count >= 0),
    last_reason      text not null check (last_reason in ('escalated', 'low_confidence', 'no_sources')),
    session_id       uuid references sessions(id) on delete set null,
    first_seen_at    timestamptz not null default now(),
    last_seen_at     timestamptz not null default now(),
    unique (organization_id, normalized_hash)
);

create table eval_runs (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    status          text not null default 'running' check (status in ('running', 'completed', 'failed')),
    n_examples      integer not null default 0 check (n_examples >= 0),
    n_failed        integer not null default 0 check (n_failed >= 0),
    metrics         jsonb not null default '{}'::jsonb,
    thresholds      jsonb not null default '{}'::jsonb,
    alerts          jsonb not null default '[]'::jsonb,
    config          jsonb not null default '{}'::jsonb,
    prompt_versions jsonb not null default '{}'::jsonb,
    details         jsonb not null default '{}'::jsonb,
    report_path     text
);
create index eval_runs_org_started on eval_runs (organization_id, started_at desc);

create table knowledge_gaps (
    id               uuid primary key default gen_random_uuid(),
    organization_id  uuid not null references organizations(id) on delete cascade,
    eval_run_id      uuid references eval_runs(id) on delete set null,
    label            text not null,
    article_outline  text not null default '',
    sample_questions jsonb not null default '[]'::jsonb,
    frequency        integer not null check (frequency >= 1),
    escalation_rate  real not null check (escalation_rate between 0 and 1),
    impact           real not null check (impact >= 0),
    status           text not null default 'open' check (status in ('open', 'in_progress', 'resolved')),
    created_at       timestamptz not null default now()
);
create index knowledge_gaps_org_impact on knowledge_gaps (organization_id, impact desc);

create table cost_events (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    session_id      uuid references sessions(id) on delete set null,
    turn_id         uuid references turns(id) on delete set null,
    interaction_id  text,
    tier            text not null check (tier in ('tier1', 'tier2', 'tier3')),
    provider        text not null,
    model           text not null,
    purpose         text not null default 'answer' check (purpose in ('answer', 'self_eval', 'summary', 'judge', 'gap_outline', 'insight')),
    input_tokens    integer not null default 0 check (input_tokens >= 0),
    output_tokens   integer not null default 0 check (output_tokens >= 0),
    cached_tokens   integer not null default 0 check (cached_tokens >= 0),
    cost_usd        numeric(14, 8) not null default 0 check (cost_usd >= 0),
    latency_ms      real not null default 0 check (latency_ms >= 0),
    confidence      real check (confidence is null or (confidence >= 0 and confidence <= 1)),
    escalated_from  text check (escalated_from in ('tier1', 'tier2', 'tier3')),
    success         boolean not null default true,
    error           text,
    created_at      timestamptz not null default now()
);
create index cost_events_org_created on cost_events (organization_id, created_at desc);
create index cost_events_org_interaction on cost_events (organization_id, interaction_id);

create table cost_summaries (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    day             date not null,
    tier            text not null check (tier in ('tier1', 'tier2', 'tier3')),
    requests        integer not null default 0 check (requests >= 0),
    input_tokens    bigint not null default 0,
    output_tokens   bigint not null default 0,
    cached_tokens   bigint not null default 0,
    cost_usd        numeric(16, 8) not null default 0 check (cost_usd >= 0),
    unique (organization_id, day, tier)
);

create table ai_prompts (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name            text not null,
    version         integer not null check (version >= 1),
    template        text not null,
    variables       jsonb not null default '[]'::jsonb,
    checksum        text not null,
    is_active       boolean not null default true,
    created_at      timestamptz not null default now(),
    unique (organization_id, name, version)
);

create table golden_dataset (
    id                 uuid primary key default gen_random_uuid(),
    organization_id    uuid not null references organizations(id) on delete cascade,
    example_id         text not null,
    query              text not null,
    expected_answer    text not null,
    relevant_documents jsonb not null default '[]'::jsonb,
    category           text not null check (category in ('simple', 'moderate', 'complex', 'edge_case')),
    expected_tier      text not null check (expected_tier in ('tier1', 'tier2', 'tier3')),
    tags               jsonb not null default '[]'::jsonb,
    dataset_version    text not null,
    created_at         timestamptz not null default now(),
    unique (organization_id, example_id)
);

create table experiment_results (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    experiment_id   uuid not null references experiments(id) on delete cascade,
    session_id      uuid references sessions(id) on delete set null,
    user_key        text not null,
    variant         text not null check (variant in ('control', 'treatment')),
    resolved        boolean,
    escalated       boolean not null default false,
    csat            smallint check (csat between 1 and 5),
    nps             smallint check (nps between 0 and 10),
    created_at      timestamptz not null default now()
);
create index experiment_results_exp on experiment_results (organization_id, experiment_id, variant);

create table feedback_ratings (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    session_id      uuid references sessions(id) on delete cascade,
    turn_id         uuid references turns(id) on delete cascade,
    rating          smallint not null check (rating in (-1, 1)),
    comment         text,
    created_at      timestamptz not null default now()
);

create table integration_credentials (
    id                      uuid primary key default gen_random_uuid(),
    organization_id         uuid not null references organizations(id) on delete cascade,
    provider                text not null check (provider in ('hubspot', 'salesforce', 'zendesk', 'slack', 'twilio', 'sendgrid')),
    access_token_encrypted  bytea not null,
    refresh_token_encrypted bytea,
    expires_at              timestamptz,
    scopes                  text[] not null default '{}',
    instance_url            text,
    metadata                jsonb not null default '{}'::jsonb,
    updated_at              timestamptz not null default now(),
    unique (organization_id, provider)
);

create table audit_log (
    id              bigserial primary key,
    organization_id uuid not null references organizations(id) on delete cascade,
    actor           text not null,
    action          text not null,
    target_type     text,
    target_id       text,
    details         jsonb not null default '{}'::jsonb,
    created_at      timestamptz not null default now()
);
create index audit_log_org_created on audit_log (organization_id, created_at desc);
