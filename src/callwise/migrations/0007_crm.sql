-- 0007: CRM sync (issue 12). end_users are keyed by (organization, provider, external id): the same
-- person can be known to HubSpot and to Salesforce; a contact deleted in the CRM is unlinked (its calls
-- keep their rows), never deleted. crm_sync_state holds each org's delta-sync cursor per provider.
alter table end_users add column provider text not null default 'callwise';
alter table end_users drop constraint if exists end_users_organization_id_external_id_key;
alter table end_users add constraint end_users_org_provider_external unique (organization_id, provider, external_id);
alter table end_users add column company text;
alter table end_users add column crm_updated_at timestamptz;
alter table end_users add column unlinked_at timestamptz;
create index end_users_org_phone on end_users (organization_id, phone);

create table crm_sync_state (
    organization_id uuid not null references organizations(id) on delete cascade,
    provider        text not null check (provider in ('hubspot', 'salesforce')),
    cursor          text,
    synced_at       timestamptz,
    last_error      text,
    primary key (organization_id, provider)
);
