-- 0018 (issue 20): what the caller actually heard of an answer they talked over. `turns.text` stays the
-- answer as the agent handed it to speech; `turns.heard` is the part that played before the caller cut
-- in (the framework's transcript synchronised to the audio), null when the whole answer was heard or
-- the turn is not a spoken answer. `sessions.end_reason` says why a call ended: 'completed' (the agent
-- or the job closed it), 'caller_silent' (no word after the prompt and the goodbye), 'caller_hung_up'
-- (the caller left, mid-sentence or not).
alter table turns add column if not exists heard text;
alter table sessions add column if not exists end_reason text;
