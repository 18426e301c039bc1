"""Who is calling the API, for which organization, with which role.

Two kinds of credential, both presented as ``Authorization: Bearer <token>`` (or as the password of HTTP
Basic auth, so a browser can open the pages):

* the operator's token (``CALLWISE_API_TOKEN``): every organization, every role;
* a per-organization API key (``callwise keys create --org ORG --role ROLE``): one organization, one role.
  ``viewer`` reads; ``agent`` also claims and resolves cases; ``admin`` also manages integrations, keys
  and budgets. Keys look like ``cw_<prefix>_<secret>``; only a SHA-256 of the whole key is stored, the
  prefix finds the row. A revoked key is refused at once.

Without an operator token the server binds to loopback only and an unauthenticated request is the
operator (the single-user default); a presented key is still held to its organization and role.

Every route under ``/v1/orgs/{org}/`` is checked against the key's organization (a key for another org
gets 404, as if the org did not exist) and against the role that :func:`required_role` names for it.
Pages without an org in the path are the operator's, except ``/cases``, which shows the key's own org.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from aiohttp import web

Role = Literal["viewer", "agent", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "agent", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
KEY_PREFIX = "cw_"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiKeyError(ValueError):
    """A key operation that cannot be done, explained in one line."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request. ``organization_id`` None: the operator (every organization)."""

    actor: str  # "operator" or "key:<prefix>" (what audit_log records)
    role: Role
    organization_id: str | None = None
    name: str = ""  # the key's name; an agent key named "alice" claims cases as alice

    @property
    def operator(self) -> bool:
        return self.organization_id is None

    def has(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def sees(self, organization_id: str) -> bool:
        return self.organization_id is None or self.organization_id == organization_id


OPERATOR = Principal(actor="operator", role="admin")
PRINCIPAL = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The request's caller (set by the middleware); the operator where no middleware ran (tests of one route)."""
    return request.get(PRINCIPAL, OPERATOR)


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ApiKeyError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return cast(Role, role)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    organization_id: str
    name: str
    role: str
    prefix: str
    created_by: str
    created_at: Any
    last_used_at: Any
    revoked_at: Any

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "created_by": self.created_by, "created_at": self.created_at, "last_used_at": self.last_used_at,
                "revoked_at": self.revoked_at}


class KeyStore:
    """Per-organization API keys in ``api_keys`` (hashed); every change writes ``audit_log``."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def create(self, organization_id: str, role: str, *, name: str = "", actor: str) -> tuple[str, KeyInfo]:
        """A new key; the plain key is returned once and never stored."""
        role = check_role(role)
        if len(name) > 64:
            raise ApiKeyError("a key name is at most 64 characters")
        prefix = secrets.token_hex(5)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "insert into api_keys (organization_id, name, role, prefix, key_hash, created_by) "
                "values ($1, $2, $3, $4, $5, $6) returning *", organization_id, name, role, prefix, _hash(key), actor)
            await _audit(conn, organization_id, actor, "api_key.create", str(row["id"]),
                         {"role": role, "name": name, "prefix": prefix})
        return key, _info(row)

    async def list(self, organization_id: str, *, revoked: bool = False) -> list[KeyInfo]:
        rows = await self.pool.fetch(
            "select * from api_keys where organization_id = $1 and ($2 or revoked_at is null) order by created_at",
            organization_id, revoked)
        return [_info(r) for r in rows]

    async def revoke(self, organization_id: str, ref: str, *, actor: str) -> KeyInfo:
        """Revoke by id or prefix (``cw_<prefix>`` accepted)."""
        ref = ref.strip().removeprefix(KEY_PREFIX).split("_")[0]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "update api_keys set revoked_at = coalesce(revoked_at, now()) where organization_id = $1 "
                "and (prefix = $2 or id::text = $2) returning *", organization_id, ref)
            if row is None:
                raise ApiKeyError(f"no key {ref!r} in this organization")
            await _audit(conn, organization_id, actor, "api_key.revoke", str(row["id"]),
                         {"prefix": row["prefix"], "role": row["role"]})
        return _info(row)

    async def verify(self, key: str) -> Principal | None:
        """The principal of a presented key; None for an unknown, wrong or revoked key."""
        if not key.startswith(KEY_PREFIX):
            return None
        prefix = key[len(KEY_PREFIX):].split("_")[0]
        row = await self.pool.fetchrow(
            "select id, organization_id, role, name, key_hash from api_keys where prefix = $1 and revoked_at is null",
            prefix)
        if row is None or not hmac.compare_digest(row["key_hash"], _hash(key)):
            return None
        await self.pool.execute(
            "update api_keys set last_used_at = now() where id = $1 "
            "and (last_used_at is null or last_used_at < now() - interval '1 minute')", row["id"])
        return Principal(actor=f"key:{prefix}", role=check_role(row["role"]),
                         organization_id=str(row["organization_id"]), name=row["name"])


def _info(r: Any) -> KeyInfo:
    return KeyInfo(id=str(r["id"]), organization_id=str(r["organization_id"]), name=r["name"], role=r["role"],
                   prefix=r["prefix"], created_by=r["created_by"], created_at=r["created_at"],
                   last_used_at=r["last_used_at"], revoked_at=r["revoked_at"])


async def _audit(conn: Any, organization_id: str, actor: str, action: str, target_id: str,
                 details: dict[str, Any]) -> None:
    await conn.execute(
        "insert into audit_log (organization_id, actor, action, target_type, target_id, details) "
        "values ($1, $2, $3, 'api_key', $4, $5::jsonb)", organization_id, actor, action, target_id, json.dumps(details))


# ------------------------------------------------------------------------------------------------ routes and roles
#: the role each route needs beyond reading; a GET (or a read-only POST listed here) needs ``viewer``
_ROLE_OF: dict[tuple[str, str], Role] = {
    ("POST", "/v1/orgs/{org}/search"): "viewer",
    ("POST", "/v1/orgs/{org}/ask"): "viewer",
    ("POST", "/v1/orgs/{org}/escalations/{case}/claim"): "agent",
    ("POST", "/v1/orgs/{org}/escalations/{case}/resolve"): "agent",
    ("POST", "/v1/orgs/{org}/escalations/{case}/notes"): "agent",
}
#: pages without an org in the path that an org's key may open (they show that org only)
ORG_SCOPED_PAGES = frozenset({"/cases"})


def required_role(method: str, canonical: str) -> Role:
    """``viewer`` for reads; the table above; ``admin`` for any other change (integrations, keys, budgets)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    return _ROLE_OF.get((method, canonical), "admin")


def presented_token(header: str) -> str:
    """The token in ``Bearer <token>`` or in the password of ``Basic base64(user:token)``."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def auth_middleware(operator_token: str | None, keys: KeyStore | None, open_paths: frozenset[str],
                    find_org: Callable[[str], Awaitable[str | None]]) -> Any:
    """Authenticate every request outside ``open_paths``, then hold it to its organization and role."""
    expected = (operator_token or "").encode()

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths:
            return await handler(request)
        given = presented_token(request.headers.get("Authorization", ""))
        principal: Principal | None = None
        if given and operator_token and hmac.compare_digest(given.encode(), expected):
            principal = OPERATOR
        elif given.startswith(KEY_PREFIX) and keys is not None:
            principal = await keys.verify(given)
        elif not operator_token and not given:
            principal = OPERATOR  # loopback-only single-user mode
        if principal is None:
            res = _json_error(401, "missing or wrong token (Authorization: Bearer <token>)")
            res.headers["WWW-Authenticate"] = 'Basic realm="callwise", charset="UTF-8"'
            return res
        info = request.match_info
        route = info.route.resource.canonical if info.route.resource is not None else request.path
        if not principal.operator:
            slug = info.get("org")
            if slug is not None:
                org = await find_org(slug)
                if org is None or not principal.sees(org):
                    return _json_error(404, f"unknown organization {slug!r}")
            elif route not in ORG_SCOPED_PAGES:
                return _json_error(403, "this page is the operator's; an organization key opens /v1/orgs/ORG/...")
            needed = required_role(request.method, route)
            if not principal.has(needed):
                return _json_error(403, f"this needs the {needed} role; this key is a {principal.role} key")
        request[PRINCIPAL] = principal
        return await handler(request)

    return auth


def middleware_for(services: Any, open_paths: frozenset[str]) -> Any:
    """The middleware for ``create_app(services)``: the operator's token and the org keys in ``services.pool``."""
    from callwise.infra.db import find_organization

    async def find_org(slug: str) -> str | None:
        return await find_organization(services.pool, slug)

    return auth_middleware(services.token, KeyStore(services.pool), open_paths, find_org)
