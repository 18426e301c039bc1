-- issue 20: circuit-breaker openings shared by every process on every host. A provider's breaker that opens in one
-- worker process (three failures in a row) is open in all of them until its reset time; one that closes (a trial call
-- succeeded) closes everywhere. ``name`` is the router's provider key (provider|model|endpoint). Times are the
-- database's, so hosts with different clocks agree on how long ago a breaker opened.
create table breaker_openings (
    name        text primary key,
    opened_at   timestamptz,               -- null: closed
    updated_at  timestamptz not null default now(),
    updated_by  text not null default ''   -- host:pid of the process that changed it last
);
