-- The confidence behind each answer turn, so the nightly report and QA can see why an answer was
-- disclaimed: {value, method, raw, calibrated, disclaim_below, signals: {best, margin, ...}}
-- (routing.confidence.Confidence.as_dict); null for turns without an answer.
alter table turns add column confidence_detail jsonb;
