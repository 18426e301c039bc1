-- 0004 (issue 11): escalations become cases on callwise's own desk; the durable outbox every external
-- action goes through; per-org credential state; survey follow-up by SMS/email; webhook replay guard.

-- ---------------------------------------------------------------------------------------- cases
-- Case numbers are per organization (CW-1001, CW-1002, ...): a counter row per org, bumped by a trigger,
-- so every writer of escalations (the turn pipeline, the case desk, a survey follow-up) gets a number.
create table case_counters (
    organization_id uuid primary key references organizations(id) on delete cascade,
    last_number     bigint not null
);

alter table escalations
    add column case_number    bigint,
    add column status         text not null default 'waiting'
                              check (status in ('waiting', 'claimed', 'resolved', 'callback')),
    add column claimed_at     timestamptz,
    -- what actually happened to the handoff (agent/handoff.py lists the values)
    add column handoff_status text not null default 'pending',
    add column ticket_id      text,
    add column ticket_url     text,
    add column room           text,
    add column contact        jsonb not null default '{}'::jsonb,
    add column notes          jsonb not null default '[]'::jsonb,
    add column updated_at     timestamptz not null default now(),
    add constraint escalations_claimed_after_created check (claimed_at is null or claimed_at >= created_at);

with numbered as (
    select id, 1000 + row_number() over (partition by organization_id order by created_at, id) as n
    from escalations
)
update escalations e set case_number = numbered.n from numbered where numbered.id = e.id;

insert into case_counters (organization_id, last_number)
select organization_id, max(case_number) from escalations group by organization_id;

create function assign_case_number() returns trigger language plpgsql as $$
begin
    if new.case_number is null then
        insert into case_counters as c (organization_id, last_number) values (new.organization_id, 1001)
        on conflict (organization_id) do update set last_number = c.last_number + 1
        returning c.last_number into new.case_number;
    end if;
    return new;
end
$$;

create trigger escalations_case_number before insert on escalations
    for each row execute function assign_case_number();

alter table escalations alter column case_number set not null;
create unique index escalations_org_case_number on escalations (organization_id, case_number);
create index escalations_org_status on escalations (organization_id, status, created_at desc);
create index escalations_org_session on escalations (organization_id, session_id);

-- ---------------------------------------------------------------------------------------- outbox
-- One row per external action (notify, transfer, ticket, sms, email, CRM writes), inserted in the
-- transaction of what caused it. Dispatchers claim due rows with FOR UPDATE SKIP LOCKED and a lease
-- (status in_flight, locked_until); a lease that runs out (a dispatcher died) makes the row due again,
-- and the vendor call's idempotency (external_id lookups, our key) keeps the retry from duplicating.
create table outbox (
    id              uuid primary key default gen_random_uuid(),
    organization_id uuid not null references organizations(id) on delete cascade,
    action          text not null check (action ~ '^[a-z0-9_]+\.[a-z0-9_]+$'),
    payload         jsonb not null default '{}'::jsonb,
    idempotency_key text not null,
    status          text not null default 'pending'
                    check (status in ('pending', 'in_flight', 'delivered', 'dead', 'cancelled')),
    attempts        integer not null default 0 check (attempts >= 0),
    max_attempts    integer not null default 8 check (max_attempts >= 1),
    next_attempt_at timestamptz not null default now(),
    locked_by       text,
    locked_until    timestamptz,
    last_error      text,
    vendor_id       text,
    result          jsonb,
    case_id         uuid references escalations(id) on delete set null,
    session_id      uuid references sessions(id) on delete set null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    unique (organization_id, idempotency_key)
);
create index outbox_due on outbox (next_attempt_at) where status = 'pending';
create index outbox_lease on outbox (locked_until) where status = 'in_flight';
create index outbox_org_created on outbox (organization_id, created_at desc);
create index outbox_org_case on outbox (organization_id, case_id);

-- ---------------------------------------------------------------------------------------- credentials
alter table integration_credentials
    add column status     text not null default 'active' check (status in ('active', 'needs_reauth')),
    add column last_error text,
    add column version    integer not null default 1 check (version >= 1),
    add column created_at timestamptz not null default now();

-- ---------------------------------------------------------------------------------------- surveys
-- A call that ended before its rating: the survey goes out by SMS or email (through the outbox), and the
-- reply (matched by the contact and the short reference in the message) lands in survey_responses.
create table survey_requests (
    id                 uuid primary key default gen_random_uuid(),
    organization_id    uuid not null references organizations(id) on delete cascade,
    session_id         uuid not null references sessions(id) on delete cascade,
    end_user_id        uuid references end_users(id) on delete set null,
    channel            text not null check (channel in ('sms', 'email')),
    contact            text not null,
    reference          text not null,
    status             text not null default 'pending'
                       check (status in ('pending', 'sent', 'clarified', 'answered', 'unanswered', 'failed')),
    clarifications     integer not null default 0 check (clarifications >= 0),
    delivery_status    text,
    vendor_message_id  text,
    survey_response_id uuid references survey_responses(id) on delete set null,
    created_at         timestamptz not null default now(),
    updated_at         timestamptz not null default now(),
    unique (organization_id, session_id, channel),
    unique (organization_id, reference)
);
create index survey_requests_org_contact on survey_requests (organization_id, contact, created_at desc);

-- Each signed webhook event is accepted once (Twilio MessageSid + status, SendGrid sg_event_id):
-- a replay of a valid request is refused and stores nothing.
create table webhook_events (
    id              bigserial primary key,
    organization_id uuid not null references organizations(id) on delete cascade,
    provider        text not null,
    event_key       text not null,
    received_at     timestamptz not null default now(),
    unique (provider, event_key)
);
create index webhook_events_org on webhook_events (organization_id, received_at desc);
