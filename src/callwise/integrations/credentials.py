"""Per-organization vendor credentials, encrypted at rest with Fernet.

The key comes from ``CALLWISE_ENCRYPTION_KEY``; without it one is generated once into
``<data_dir>/secrets/fernet.key`` (mode 0600) and reused. Secrets are stored as one encrypted JSON
object per (organization, provider) in ``integration_credentials.access_token_encrypted`` (the refresh
token, which rotates, in ``refresh_token_encrypted``); non-secret fields (a Zendesk subdomain, a Twilio
account SID, a sender address, a Slack channel) are plain ``metadata``. Nothing here ever returns a
secret in a listing: :meth:`CredentialStore.list` masks them.

A refresh with rotation (Zendesk invalidates the old pair) is a compare-and-set on ``version``, so two
processes refreshing at once cannot store a dead refresh token over a live one.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = Path("secrets") / "fernet.key"


class CredentialError(ValueError):
    """Bad credential input or an undecryptable row, in one line."""


@dataclass(frozen=True)
class ProviderSpec:
    secrets: tuple[str, ...]
    fields: tuple[str, ...]
    required_secrets: tuple[str, ...] = ()
    required_fields: tuple[str, ...] = ()
    one_of_secrets: tuple[str, ...] = ()

    def check(self, provider: str, secrets: Mapping[str, str], fields: Mapping[str, str]) -> None:
        unknown = (set(secrets) - set(self.secrets)) | (set(fields) - set(self.fields))
        if unknown:
            raise CredentialError(f"{provider}: unknown field(s) {', '.join(sorted(unknown))}; secrets are "
                                  f"{', '.join(self.secrets)}, settings are {', '.join(self.fields) or '(none)'}")
        missing = [s for s in self.required_secrets if not secrets.get(s)]
        missing += [f for f in self.required_fields if not fields.get(f)]
        if self.one_of_secrets and not any(secrets.get(s) for s in self.one_of_secrets):
            missing.append(" or ".join(self.one_of_secrets))
        if missing:
            raise CredentialError(f"{provider}: missing {', '.join(missing)}")


PROVIDERS: dict[str, ProviderSpec] = {
    "zendesk": ProviderSpec(secrets=("access_token", "refresh_token", "client_secret"),
                            fields=("subdomain", "client_id", "expires_at"),
                            required_secrets=("access_token",), required_fields=("subdomain",)),
    "slack": ProviderSpec(secrets=("bot_token", "webhook_url"), fields=("channel",),
                          one_of_secrets=("bot_token", "webhook_url")),
    "twilio": ProviderSpec(secrets=("auth_token",), fields=("account_sid", "from_number"),
                           required_secrets=("auth_token",), required_fields=("account_sid", "from_number")),
    "sendgrid": ProviderSpec(secrets=("api_key",), fields=("from_email", "event_public_key"),
                             required_secrets=("api_key",), required_fields=("from_email",)),
    # CRMs (integrations/crm/connect.py): a HubSpot private-app token alone, or OAuth tokens with the app's
    # client id/secret; Salesforce OAuth tokens (the instance URL comes from the token response).
    # *_field settings map "plan", "lifetime value", "company", "owner" onto the org's CRM properties.
    "hubspot": ProviderSpec(secrets=("access_token", "refresh_token", "client_secret"),
                            fields=("client_id", "portal_id", "plan_field", "lifetime_value_field", "company_field",
                                    "owner_field"),
                            required_secrets=("access_token",)),
    "salesforce": ProviderSpec(secrets=("access_token", "refresh_token", "client_secret"),
                               fields=("client_id", "instance_url", "login_url", "external_id_field", "plan_field",
                                       "lifetime_value_field", "company_field", "owner_field"),
                               one_of_secrets=("access_token", "refresh_token")),
}


def load_cipher(key: str | None, data_dir: Path) -> Fernet:
    """Fernet from ``key`` (CALLWISE_ENCRYPTION_KEY), else from (or newly into) the 0600 key file."""
    if key:
        try:
            return Fernet(key.encode() if isinstance(key, str) else key)
        except (ValueError, TypeError):
            raise CredentialError("CALLWISE_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                                  "make one with `python -c \"from cryptography.fernet import Fernet; "
                                  "print(Fernet.generate_key().decode())\"`") from None
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
    try:
        return Fernet(path.read_bytes().strip())
    except ValueError:
        raise CredentialError(f"{path} does not hold a Fernet key") from None


def mask(secret: str) -> str:
    if not secret:
        return ""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


@dataclass
class Credential:
    provider: str
    secrets: dict[str, str]
    fields: dict[str, Any]
    status: str = "active"
    version: int = 1
    expires_at: datetime | None = None
    instance_url: str | None = None
    last_error: str | None = None

    def secret(self, name: str) -> str | None:
        return self.secrets.get(name) or None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credential({self.provider!r}, fields={self.fields!r}, status={self.status!r}, version={self.version})"


@dataclass
class CredentialInfo:
    provider: str
    status: str
    fields: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)  # masked
    updated_at: datetime | None = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "status": self.status, "fields": self.fields, "secrets": self.secrets,
                "updated_at": self.updated_at, "last_error": self.last_error}


class CredentialStore:
    def __init__(self, pool: Any, cipher: Fernet, *,
                 on_secrets: Callable[[Iterable[str]], None] | None = None) -> None:
        self.pool = pool
        self.cipher = cipher
        self.on_secrets = on_secrets  # told every secret this process decrypts (the log redactor)

    def _enc(self, data: Any) -> bytes:
        return self.cipher.encrypt(json.dumps(data).encode())

    def _dec(self, blob: bytes | None, provider: str) -> Any:
        if blob is None:
            return None
        try:
            return json.loads(self.cipher.decrypt(bytes(blob)))
        except InvalidToken:
            raise CredentialError(f"{provider}: stored credentials cannot be decrypted with this key "
                                  f"(CALLWISE_ENCRYPTION_KEY changed?); set them again") from None

    async def set(self, organization_id: str, provider: str, *, secrets: Mapping[str, str],
                  fields: Mapping[str, Any] | None = None) -> None:
        spec = PROVIDERS.get(provider)
        if spec is None:
            raise CredentialError(f"unknown provider {provider!r}; one of {', '.join(PROVIDERS)}")
        secrets = {k: v.strip() for k, v in secrets.items() if v and v.strip()}
        fields = {k: v for k, v in (fields or {}).items() if v not in (None, "")}
        spec.check(provider, secrets, fields)
        refresh = secrets.pop("refresh_token", None)
        await self.pool.execute(
            "insert into integration_credentials (organization_id, provider, access_token_encrypted, "
            "refresh_token_encrypted, metadata, status, last_error, version, updated_at) "
            "values ($1, $2, $3, $4, $5::jsonb, 'active', null, 1, now()) "
            "on conflict (organization_id, provider) do update set access_token_encrypted = excluded.access_token_encrypted, "
            "refresh_token_encrypted = excluded.refresh_token_encrypted, metadata = excluded.metadata, status = 'active', "
            "last_error = null, version = integration_credentials.version + 1, updated_at = now()",
            organization_id, provider, self._enc(secrets), self._enc(refresh) if refresh else None,
            json.dumps(fields, default=str))

    async def get(self, organization_id: str, provider: str) -> Credential | None:
        row = await self.pool.fetchrow(
            "select provider, access_token_encrypted, refresh_token_encrypted, metadata, status, version, expires_at, "
            "instance_url, last_error from integration_credentials where organization_id = $1 and provider = $2",
            organization_id, provider)
        if row is None:
            return None
        secrets = dict(self._dec(row["access_token_encrypted"], provider) or {})
        refresh = self._dec(row["refresh_token_encrypted"], provider)
        if refresh:
            secrets["refresh_token"] = refresh
        if self.on_secrets is not None:
            self.on_secrets(str(v) for v in secrets.values() if v)
        meta = row["metadata"]
        return Credential(provider=provider, secrets=secrets, fields=json.loads(meta) if isinstance(meta, str) else dict(meta),
                          status=row["status"], version=row["version"], expires_at=row["expires_at"],
                          instance_url=row["instance_url"], last_error=row["last_error"])

    async def list(self, organization_id: str) -> list[CredentialInfo]:
        rows = await self.pool.fetch(
            "select provider, access_token_encrypted, refresh_token_encrypted, metadata, status, updated_at, last_error "
            "from integration_credentials where organization_id = $1 order by provider", organization_id)
        out = []
        for r in rows:
            try:
                secrets = dict(self._dec(r["access_token_encrypted"], r["provider"]) or {})
                if r["refresh_token_encrypted"] is not None:
                    secrets["refresh_token"] = self._dec(r["refresh_token_encrypted"], r["provider"])
                masked = {k: mask(str(v)) for k, v in secrets.items()}
            except CredentialError:
                masked = {"error": "cannot be decrypted with this key"}
            meta = r["metadata"]
            out.append(CredentialInfo(provider=r["provider"], status=r["status"],
                                      fields=json.loads(meta) if isinstance(meta, str) else dict(meta),
                                      secrets=masked, updated_at=r["updated_at"], last_error=r["last_error"]))
        return out

    async def remove(self, organization_id: str, provider: str) -> bool:
        res = await self.pool.execute(
            "delete from integration_credentials where organization_id = $1 and provider = $2", organization_id, provider)
        return res.endswith(" 1")

    async def rotate(self, organization_id: str, provider: str, *, expected_version: int, access_token: str,
                     refresh_token: str | None, expires_at: datetime | None) -> bool:
        """Store a refreshed token pair if nobody else did since ``expected_version`` was read."""
        current = await self.get(organization_id, provider)
        if current is None or current.version != expected_version:
            return False
        secrets = {k: v for k, v in current.secrets.items() if k != "refresh_token"}
        secrets["access_token"] = access_token
        res = await self.pool.execute(
            "update integration_credentials set access_token_encrypted = $4, refresh_token_encrypted = $5, "
            "expires_at = $6, version = version + 1, status = 'active', last_error = null, updated_at = now() "
            "where organization_id = $1 and provider = $2 and version = $3",
            organization_id, provider, expected_version, self._enc(secrets),
            self._enc(refresh_token) if refresh_token else None, expires_at)
        return res.endswith(" 1")

    async def mark_needs_reauth(self, organization_id: str, provider: str, error: str) -> None:
        await self.pool.execute(
            "update integration_credentials set status = 'needs_reauth', last_error = $3, updated_at = now() "
            "where organization_id = $1 and provider = $2", organization_id, provider, error[:500])

    async def configured(self, organization_id: str) -> builtins.set[str]:  # `set` is a method here
        rows = await self.pool.fetch(
            "select provider from integration_credentials where organization_id = $1 and status = 'active'",
            organization_id)
        return {r["provider"] for r in rows}


def parse_secret_lines(text: str, spec: ProviderSpec) -> dict[str, str]:
    """Secrets from stdin: ``name=value`` lines, or one bare value when the provider has one secret."""
    out: dict[str, str] = {}
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    for ln in lines:
        name, sep, value = ln.partition("=")
        if sep and name.strip() in spec.secrets:
            out[name.strip()] = value.strip()
        elif len(spec.secrets) == 1 and len(lines) == 1:
            out[spec.secrets[0]] = ln
        else:
            raise CredentialError(f"stdin line is not one of {', '.join(s + '=...' for s in spec.secrets)}")
    return out
