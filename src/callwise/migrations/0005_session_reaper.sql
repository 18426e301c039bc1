-- Sessions left `active` by a worker that died mid-call are closed as `abandoned` by the reaper
-- (agent/reaper.py). Each process that starts sessions registers itself in `workers` and beats a
-- heartbeat; sessions remember which worker holds them.

alter table sessions drop constraint if exists sessions_status_check;
alter table sessions add constraint sessions_status_check
    check (status in ('active', 'ended', 'escalated', 'failed', 'abandoned'));
alter table sessions add column worker_id text;
create index sessions_active_by_worker on sessions (worker_id, started_at) where status = 'active';

-- Infrastructure, not tenant data: one row per running callwise process that holds calls.
create table workers (
    id            text primary key,
    host          text not null,
    pid           integer not null check (pid > 0),
    started_at    timestamptz not null default now(),
    heartbeat_at  timestamptz not null default now()
);
