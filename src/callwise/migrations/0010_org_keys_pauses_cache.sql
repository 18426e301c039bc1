-- issue 23: organizations as a security boundary, vendor pauses and the CRM cache shared by every process.

-- Per-organization API keys with a role. Only a SHA-256 of the key is stored (keys are 32 random bytes,
-- so a slow hash adds nothing); ``prefix`` is the public part used to find the row.
create table api_keys (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name            text not null default '',
    role            text not null check (role in ('viewer', 'agent', 'admin')),
    prefix          text not null unique,
    key_hash        text not null,
    created_by      text not null,
    created_at      timestamptz not null default now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
create index api_keys_org on api_keys (organization_id, created_at desc);

-- A vendor that told an org to stop (HubSpot's DAILY limit, Salesforce's REQUEST_LIMIT_EXCEEDED, a
-- Retry-After): every worker process honours the pause until ``paused_until``.
create table vendor_pauses (
    organization_id uuid not null references organizations(id) on delete cascade,
    vendor          text not null,
    paused_until    timestamptz not null,
    reason          text not null default '',
    updated_at      timestamptz not null default now(),
    primary key (organization_id, vendor)
);

-- The caller lookup at call start: one row per org and caller key (E.164 phone or e-mail) with its fetch
-- time; ``customer`` null records a miss. Read by every process, expired by age.
create table crm_cache (
    organization_id uuid not null references organizations(id) on delete cascade,
    caller_key      text not null,
    customer        jsonb,
    fetched_at      timestamptz not null default now(),
    primary key (organization_id, caller_key)
);
