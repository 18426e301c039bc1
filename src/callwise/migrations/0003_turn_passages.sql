-- The passages the answering model saw, stored with each answer turn, so the nightly run can judge
-- production answers against them: [{index, chunk_id, parent_id, document, text, sha256}, ...].
alter table turns add column passages jsonb not null default '[]'::jsonb;
