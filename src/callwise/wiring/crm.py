"""Settings -> the CRM's OAuth apps, the connect flow's state key, token storage and the delta sync."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from callwise.integrations.credentials import KEY_FILE, CredentialStore, load_cipher
from callwise.integrations.crm.oauth import OAuthApp, OAuthError
from callwise.integrations.crm.sync import SyncResult, salesforce_delta
from callwise.wiring.integrations import credential_store, crm_config
from callwise.wiring.settings import Settings

SCOPES = {
    "hubspot": ("crm.objects.contacts.read", "crm.objects.contacts.write", "tickets", "oauth"),
    "salesforce": ("api", "refresh_token"),
}


def oauth_app(settings: Settings, provider: str) -> OAuthApp:
    if provider not in SCOPES:
        raise OAuthError(f"unknown CRM {provider!r}; one of hubspot, salesforce")
    client_id = settings.hubspot_client_id if provider == "hubspot" else settings.salesforce_client_id
    secret = settings.hubspot_client_secret if provider == "hubspot" else settings.salesforce_client_secret
    if not client_id or secret is None:
        env = provider.upper()
        raise OAuthError(f"set CALLWISE_{env}_CLIENT_ID and CALLWISE_{env}_CLIENT_SECRET (your {provider} app) first; "
                         f"or store a token directly with `callwise integrations set {provider}`")
    if not settings.public_url:
        raise OAuthError("set CALLWISE_PUBLIC_URL (where the vendor redirects back to `callwise serve`) first")
    redirect = f"{settings.public_url.rstrip('/')}/v1/oauth/{provider}/callback"
    if provider == "hubspot":
        return OAuthApp(provider, client_id, secret.get_secret_value(), settings.hubspot_authorize_url,
                        settings.hubspot_base_url.rstrip("/") + settings.hubspot_token_path, redirect, SCOPES[provider])
    login = settings.salesforce_login_url.rstrip("/")
    return OAuthApp(provider, client_id, secret.get_secret_value(), f"{login}/services/oauth2/authorize",
                    f"{login}/services/oauth2/token", redirect, SCOPES[provider])


def state_key(settings: Settings) -> bytes:
    """The key of the OAuth state tokens (Fernet), derived from the credential encryption key (never stored apart)."""
    if settings.encryption_key is not None:
        material = settings.encryption_key.get_secret_value().encode()
    else:
        load_cipher(None, settings.data_dir)  # makes the key file once if needed
        material = (settings.data_dir / KEY_FILE).read_bytes()
    return hashlib.sha256(b"callwise-oauth-state\x00" + material).digest()


async def store_tokens(creds: CredentialStore, organization_id: str, app: OAuthApp, body: dict[str, Any]) -> None:
    """A code exchange's tokens, encrypted; HubSpot's expiry and Salesforce's instance URL kept beside them."""
    fields: dict[str, Any] = {"client_id": app.client_id}
    if app.provider == "hubspot" and body.get("hub_id"):
        fields["portal_id"] = str(body["hub_id"])
    if app.provider == "salesforce" and body.get("instance_url"):
        fields["instance_url"] = body["instance_url"]
    await creds.set(organization_id, app.provider, fields=fields,
                    secrets={"access_token": body["access_token"], "refresh_token": body.get("refresh_token", ""),
                             "client_secret": app.client_secret})
    expires_in = body.get("expires_in")
    await creds.pool.execute(
        "update integration_credentials set expires_at = $3, instance_url = coalesce($4, instance_url) "
        "where organization_id = $1 and provider = $2", organization_id, app.provider,
        datetime.now(UTC) + timedelta(seconds=float(expires_in)) if expires_in else None, body.get("instance_url"))


async def sync_org(settings: Settings, pool: Any, organization_id: str) -> dict[str, Any]:
    """Salesforce delta sync for one org (HubSpot changes arrive by webhook)."""
    from callwise.integrations.crm.connect import crm_for

    crm = await crm_for(credential_store(settings, pool), organization_id, crm_config(settings))
    if crm is None:
        return {"provider": None, "note": "no CRM connected"}
    try:
        if crm.provider != "salesforce":
            return {"provider": crm.provider, "note": "HubSpot contact changes arrive by webhook (/v1/webhooks/hubspot)"}
        result: SyncResult = await salesforce_delta(pool, organization_id, crm)
        return {"provider": "salesforce", **result.as_dict()}
    finally:
        await crm.aclose()
