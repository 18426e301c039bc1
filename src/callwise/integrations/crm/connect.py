"""One organization's CRM client, built from its stored (encrypted) credentials.

Refreshed tokens go back through ``StoredTokens`` (``callwise.integrations.oauth_refresh``): a
compare-and-set on the row's version, so two processes refreshing at once never store a dead refresh token
over a live one, and a refresh refused because another process rotated first re-reads the stored pair.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from callwise.integrations.credentials import Credential, CredentialStore
from callwise.integrations.crm import hubspot, salesforce
from callwise.integrations.crm.types import CRM, FieldMap
from callwise.integrations.oauth_refresh import Refreshed, StoredTokens
from callwise.integrations.pauses import OrgPause, VendorPauses

log = logging.getLogger("callwise.crm")

CRM_PROVIDERS = ("hubspot", "salesforce")


@dataclass(frozen=True)
class CRMConfig:
    hubspot_base_url: str = "https://api.hubapi.com"
    hubspot_token_path: str = hubspot.TOKEN_PATH
    salesforce_login_url: str = "https://login.salesforce.com"
    salesforce_api_version: str = salesforce.API_VERSION
    timeout_s: float = 10.0
    phone_region: str = "US"  # numbers without a country code (CALLWISE_DEFAULT_PHONE_REGION)


def _field_map(cred: Credential, defaults: FieldMap) -> FieldMap:
    mapping = {k.removesuffix("_field"): str(v) for k, v in cred.fields.items()
               if k in ("plan_field", "lifetime_value_field", "company_field", "owner_field")}
    return FieldMap.from_dict(mapping, defaults)


async def crm_for(creds: CredentialStore, organization_id: str, cfg: CRMConfig, *,
                  timeout_s: float | None = None) -> CRM | None:
    """The org's CRM (HubSpot first when both are connected), or None when none is active."""
    for provider in CRM_PROVIDERS:
        cred = await creds.get(organization_id, provider)
        if cred is None or cred.status != "active":
            continue
        return _build(creds, organization_id, cred, cfg, timeout_s or cfg.timeout_s)
    return None


def _build(creds: CredentialStore, org: str, cred: Credential, cfg: CRMConfig, timeout_s: float) -> CRM:
    stored = StoredTokens(creds, org, cred.provider, cred.version)
    pause = OrgPause(VendorPauses(creds.pool), org, cred.provider)  # rate-limit pauses every process honours

    async def rotate(access: str, refresh: str | None, expires_at: datetime | None) -> None:
        await stored.save(Refreshed(access, refresh, expires_at))

    if cred.provider == "hubspot":
        async def save_hs(t: hubspot.HubSpotTokens) -> None:
            await rotate(t.access_token, t.refresh_token,
                         datetime.fromtimestamp(t.expires_at, UTC) if t.expires_at else None)

        async def reload_hs() -> hubspot.HubSpotTokens | None:
            newer = await stored.newer()
            return hubspot.HubSpotTokens(access_token=newer.secrets.get("access_token", ""),
                                         refresh_token=newer.secrets.get("refresh_token"),
                                         expires_at=newer.expires_at.timestamp() if newer.expires_at else None) \
                if newer else None

        expires = cred.expires_at.timestamp() if cred.expires_at else None
        return hubspot.HubSpotCRM(
            hubspot.HubSpotTokens(access_token=cred.secrets.get("access_token", ""),
                                  refresh_token=cred.secrets.get("refresh_token"), expires_at=expires),
            base_url=cfg.hubspot_base_url, client_id=_str(cred.fields.get("client_id")),
            client_secret=cred.secrets.get("client_secret"), on_refresh=save_hs, reload=reload_hs, pause=pause,
            fields=_field_map(cred, hubspot.DEFAULT_FIELDS), token_path=cfg.hubspot_token_path, timeout_s=timeout_s,
            phone_region=cfg.phone_region)

    async def save_sf(t: salesforce.SalesforceTokens) -> None:
        await rotate(t.access_token, t.refresh_token, None)
        if t.instance_url and t.instance_url != cred.instance_url:
            await creds.pool.execute("update integration_credentials set instance_url = $3 "
                                     "where organization_id = $1 and provider = $2", org, "salesforce", t.instance_url)

    async def reload_sf() -> salesforce.SalesforceTokens | None:
        newer = await stored.newer()
        return salesforce.SalesforceTokens(
            access_token=newer.secrets.get("access_token", ""), refresh_token=newer.secrets.get("refresh_token"),
            instance_url=newer.instance_url or instance) if newer else None

    instance = cred.instance_url or _str(cred.fields.get("instance_url")) or cfg.salesforce_login_url
    return salesforce.SalesforceCRM(
        salesforce.SalesforceTokens(access_token=cred.secrets.get("access_token", ""), instance_url=instance,
                                    refresh_token=cred.secrets.get("refresh_token")),
        login_url=_str(cred.fields.get("login_url")) or cfg.salesforce_login_url,
        client_id=_str(cred.fields.get("client_id")), client_secret=cred.secrets.get("client_secret"),
        on_refresh=save_sf, reload=reload_sf, pause=pause, fields=_field_map(cred, salesforce.DEFAULT_FIELDS),
        external_id_field=_str(cred.fields.get("external_id_field")) or "Callwise_Id__c",
        api_version=cfg.salesforce_api_version, timeout_s=timeout_s, phone_region=cfg.phone_region)


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
