-- A page's lead sentence (knowledge.loaders.lead_sentence): it heads every child chunk's BM25 text,
-- so an index rebuilt from the stored chunks (knowledge.lexical) reads what the ingestor indexed.
alter table documents add column if not exists summary text not null default '';
