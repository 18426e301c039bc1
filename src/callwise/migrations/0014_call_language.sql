-- 0014 (issue 25): the language of a call. `sessions.language` is the language the call ran in (detected
-- on the first utterance, or set for the call or the organization); `organizations.language` is an
-- organization's fixed language (null: detect per call). Codes are ISO 639-1 ('en', 'es', 'fr', 'de',
-- 'ja', 'zh'); callwise.calls.languages lists the served ones.
alter table sessions add column if not exists language text;
alter table organizations add column if not exists language text;
