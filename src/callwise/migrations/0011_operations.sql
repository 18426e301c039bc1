-- 0011 (issue 24): operations. A strict AI resolution per call with its reason, time to first token on
-- cost events, cost roll-ups per org/day/tier/model, monthly budgets and their alerts, indexes the stats
-- API and the dashboard aggregate through.

-- ---------------------------------------------------------------------------------------- resolution
-- `resolved_by_ai` stays the lenient figure (not escalated). `ai_resolved` is the strict one, and
-- `resolution_reason` says why: 'resolved', 'escalated:<reason>', 'abandoned' (the caller hung up during
-- an answer, or the worker died), 'unanswered' (a question got no answer past the confidence bar or no
-- source), 'low_survey' (rated 1 or 2), 'failed'. Triggers keep them current for every writer of sessions
-- (the call's end, the reaper, the case desk) and for what lands after the call (a case, a survey reply).
alter table sessions
    add column ai_resolved          boolean,
    add column resolution_reason    text,
    add column unanswered_questions integer not null default 0 check (unanswered_questions >= 0);

create function callwise_resolution(sid uuid, st text, kind text, unanswered integer) returns text
language plpgsql stable as $$
declare
    esc text;
    last_error text;
    worst smallint;
begin
    if kind <> 'support' or st = 'active' then
        return null;
    end if;
    select reason into esc from escalations where session_id = sid order by created_at, id limit 1;
    if esc is not null then
        return 'escalated:' || esc;
    end if;
    if st = 'escalated' then
        return 'escalated';
    end if;
    if st = 'failed' then
        return 'failed';
    end if;
    if st = 'abandoned' then
        return 'abandoned';
    end if;
    select error into last_error from turns where session_id = sid and role = 'assistant' order by seq desc limit 1;
    if last_error = 'interrupted' then
        return 'abandoned';
    end if;
    if unanswered > 0 then
        return 'unanswered';
    end if;
    select min(rating) into worst from survey_responses where session_id = sid;
    if worst is not null and worst < 3 then
        return 'low_survey';
    end if;
    return 'resolved';
end
$$;

create function sessions_resolution() returns trigger language plpgsql as $$
begin
    new.resolution_reason := callwise_resolution(new.id, new.status, new.kind, new.unanswered_questions);
    new.ai_resolved := case when new.resolution_reason is null then null
                            else new.resolution_reason = 'resolved' end;
    return new;
end
$$;

create trigger sessions_resolution before update on sessions
    for each row execute function sessions_resolution();

-- something that changes a finished call's verdict: touch the row, the trigger above recomputes
create function touch_session_resolution() returns trigger language plpgsql as $$
begin
    update sessions set resolution_reason = resolution_reason where id = new.session_id and status <> 'active';
    return null;
end
$$;

create trigger escalations_touch_resolution after insert on escalations
    for each row execute function touch_session_resolution();
create trigger survey_responses_touch_resolution after insert on survey_responses
    for each row execute function touch_session_resolution();

-- each question the agent could not answer (callwise.calls.stages.persist.unresolved_reason) counts on
-- the session that asked it; unresolved_problems itself is one row per distinct question and org
create function count_unanswered() returns trigger language plpgsql as $$
begin
    if new.session_id is not null and new.last_reason in ('low_confidence', 'no_sources')
       and (tg_op = 'INSERT' or new.occurrence_count > old.occurrence_count) then
        update sessions set unanswered_questions = unanswered_questions + 1 where id = new.session_id;
    end if;
    return null;
end
$$;

create trigger unresolved_problems_count after insert or update on unresolved_problems
    for each row execute function count_unanswered();

create index survey_responses_session on survey_responses (session_id);
create index turns_org_assistant_created on turns (organization_id, created_at) where role = 'assistant';
create index sessions_org_support_started on sessions (organization_id, started_at) where kind = 'support';

update sessions set status = status where status <> 'active';  -- the verdict of calls already over

-- ---------------------------------------------------------------------------------------- costs
alter table cost_events add column ttft_ms real check (ttft_ms is null or ttft_ms >= 0);
create index cost_events_created on cost_events (created_at);

-- the roll-up (callwise.routing.costs.rollup_costs) rewrites one day at a time, so it can be re-run
alter table cost_summaries
    add column provider      text not null default '',
    add column model         text not null default '',
    add column failures      integer not null default 0 check (failures >= 0),
    add column latency_ms_sum double precision not null default 0,
    add column computed_at   timestamptz not null default now();
alter table cost_summaries drop constraint if exists cost_summaries_organization_id_day_tier_key;
create unique index cost_summaries_org_day_tier_model on cost_summaries (organization_id, day, tier, provider, model);

-- ---------------------------------------------------------------------------------------- budgets
create table org_budgets (
    organization_id uuid primary key references organizations(id) on delete cascade,
    monthly_usd     numeric(14, 4) not null check (monthly_usd > 0),
    hard_cap        boolean not null default false,
    updated_at      timestamptz not null default now()
);

-- one alert per org, month and threshold: recorded whether or not Slack took it
create table budget_alerts (
    id              bigserial primary key,
    organization_id uuid not null references organizations(id) on delete cascade,
    month           date not null,
    threshold       smallint not null check (threshold in (80, 100)),
    spent_usd       numeric(16, 8) not null,
    budget_usd      numeric(14, 4) not null,
    delivered       boolean not null default false,
    error           text,
    created_at      timestamptz not null default now(),
    unique (organization_id, month, threshold)
);
