-- 0017 (issue 25): the customer's shared screen, kept with the turn that used it.
-- `turns.screen` (on the customer's turn) is what the screen stage read from the screen for that turn: the OCR
-- text (after the organization's PII redaction when it asks for it), the error codes in it, the frame's size,
-- its hash and the OCR time. Frames themselves are not kept unless the organization allows it:
-- `organizations.store_screen_frames` (default off); then each distinct frame a turn used is stored once per
-- call in `screen_frames` (PNG), linked from `turns.screen->>'frame_sha'`.
alter table turns add column if not exists screen jsonb;
alter table organizations add column if not exists store_screen_frames boolean not null default false;
create table if not exists screen_frames (
    organization_id uuid not null references organizations(id) on delete cascade,
    session_id      uuid not null references sessions(id) on delete cascade,
    frame_sha       text not null,
    png             bytea not null,
    width           integer not null check (width > 0),
    height          integer not null check (height > 0),
    created_at      timestamptz not null default now(),
    primary key (session_id, frame_sha)
);
create index if not exists screen_frames_org_created on screen_frames (organization_id, created_at desc);
