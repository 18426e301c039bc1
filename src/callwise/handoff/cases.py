"""callwise's own case desk: every escalation is a case a person can list, claim and resolve.

A case is an ``escalations`` row with a per-organization number (``CW-1042``, assigned by the database
so every writer gets one), a status (``waiting`` -> ``claimed`` -> ``resolved``, or ``callback`` when
nobody could be reached live), who has it (``assigned_to``, ``claimed_at``), the resolution
(``resolved_at``, ``resolution_notes``), running ``notes``, the vendor ticket id once one exists and
what happened to the live handoff (``handoff_status``, see :mod:`callwise.handoff.service`).

A live case gives a join link only to the agent who claimed it: a LiveKit access token for the caller's
room with the identity ``agent-<name>``, valid for ten minutes, minted on demand (never stored, never posted
to chat: the on-duty notice links to the case instead) when LiveKit credentials are configured.
Every query filters on the organization.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

CASE_PREFIX = "CW-"
STATUSES = ("waiting", "claimed", "resolved", "callback")
_REF = re.compile(r"^(?:cw-?)?(\d{1,12})$", re.IGNORECASE)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class CaseError(ValueError):
    """A case operation that cannot be done, explained in one line."""


def case_label(number: int) -> str:
    return f"{CASE_PREFIX}{number}"


def spoken_case_number(label: str) -> str:
    """``CW-1042`` read out: "C W 1 0 4 2" is what TTS should say digit by digit."""
    letters, _, digits = label.partition("-")
    return " ".join(list(letters) + list(digits)) if digits else " ".join(label)


def check_agent_name(name: str) -> str:
    name = (name or "").strip()
    if not _NAME.match(name):
        raise CaseError("an agent name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class JoinLinks:
    """Mints LiveKit access tokens for a case's room (``LIVEKIT_URL``, ``LIVEKIT_API_KEY/SECRET``)."""

    url: str
    api_key: str
    api_secret: str
    ttl: timedelta = timedelta(minutes=10)  # long enough to open it; the room session outlives the token
    client_url: str = "https://meet.livekit.io/custom"

    def token(self, room: str, name: str) -> str:
        from livekit import api

        return (api.AccessToken(self.api_key, self.api_secret)
                .with_identity(f"agent-{check_agent_name(name)}")
                .with_name(name)
                .with_ttl(self.ttl)
                .with_grants(api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True))
                .to_jwt())

    def link(self, room: str, name: str) -> str:
        """A link any LiveKit client page can open (the token is the credential: share it only with ``name``)."""
        return f"{self.client_url}?{urlencode({'liveKitUrl': self.url, 'token': self.token(room, name)})}"


@dataclass
class Case:
    id: str
    number: int
    status: str
    reason: str
    handoff: str
    handoff_status: str
    session_id: str
    created_at: datetime
    updated_at: datetime
    assigned_to: str | None = None
    claimed_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_notes: str | None = None
    ticket_id: str | None = None
    ticket_url: str | None = None
    room: str | None = None
    turn_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, Any]] | None = None
    outbox: list[dict[str, Any]] | None = None
    join_link: str | None = None

    @property
    def label(self) -> str:
        return case_label(self.number)

    @property
    def live(self) -> bool:
        return self.handoff == "live" and self.status in ("waiting", "claimed") and bool(self.room)

    @classmethod
    def from_row(cls, r: Any) -> Case:
        def js(v: Any, default: Any) -> Any:
            return json.loads(v) if isinstance(v, str) else (v if v is not None else default)

        return cls(id=str(r["id"]), number=int(r["case_number"]), status=r["status"], reason=r["reason"],
                   handoff=r["handoff"], handoff_status=r["handoff_status"], session_id=str(r["session_id"]),
                   created_at=r["created_at"], updated_at=r["updated_at"], assigned_to=r["assigned_to"],
                   claimed_at=r["claimed_at"], resolved_at=r["resolved_at"], resolution_notes=r["resolution_notes"],
                   ticket_id=r["ticket_id"], ticket_url=r["ticket_url"], room=r["room"],
                   turn_id=str(r["turn_id"]) if r["turn_id"] else None, details=js(r["details"], {}),
                   contact=js(r["contact"], {}), notes=js(r["notes"], []))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "case": self.label, "id": self.id, "number": self.number, "status": self.status, "reason": self.reason,
            "handoff": self.handoff, "handoff_status": self.handoff_status, "session_id": self.session_id,
            "assigned_to": self.assigned_to, "created_at": self.created_at, "claimed_at": self.claimed_at,
            "resolved_at": self.resolved_at, "resolution_notes": self.resolution_notes, "ticket_id": self.ticket_id,
            "ticket_url": self.ticket_url, "room": self.room, "rule": self.details.get("rule"),
            "matched": self.details.get("matched", []), "trigger": self.details.get("transcript"),
            "contact": self.contact, "notes": self.notes,
        }
        if self.transcript is not None:
            out["transcript"] = self.transcript
        if self.outbox is not None:
            out["outbox"] = self.outbox
        if self.join_link is not None:
            out["join_link"] = self.join_link
        return out


_COLUMNS = ("id, case_number, status, reason, handoff, handoff_status, session_id, created_at, updated_at, assigned_to, "
            "claimed_at, resolved_at, resolution_notes, ticket_id, ticket_url, room, turn_id, details, contact, notes")


class CaseDesk:
    """The cases of one organization."""

    def __init__(self, pool: Any, organization_id: str, *, links: JoinLinks | None = None) -> None:
        self.pool = pool
        self.organization_id = organization_id
        self.links = links

    # ------------------------------------------------------------------------------------- opening
    async def open(self, conn: Any, *, session_id: str, reason: str, handoff: str, details: dict[str, Any],
                   status: str = "waiting", handoff_status: str = "pending", turn_id: str | None = None,
                   room: str | None = None, contact: dict[str, Any] | None = None) -> Case:
        """Insert the case with ``conn`` (the caller's transaction, so its outbox rows commit with it)."""
        if status not in STATUSES:
            raise CaseError(f"status must be one of {', '.join(STATUSES)}")
        row = await conn.fetchrow(
            f"insert into escalations (organization_id, session_id, turn_id, reason, details, handoff, status, "
            f"handoff_status, room, contact) values ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10::jsonb) "
            f"returning {_COLUMNS}",
            self.organization_id, session_id, turn_id, reason, json.dumps(details, default=str), handoff, status,
            handoff_status, room, json.dumps(contact or {}, default=str))
        await conn.execute("update sessions set status = 'escalated', resolved_by_ai = false "
                           "where organization_id = $1 and id = $2", self.organization_id, session_id)
        return Case.from_row(row)

    # ------------------------------------------------------------------------------------- reading
    async def resolve_ref(self, ref: str) -> str:
        """The case id for ``CW-1042``, ``1042`` or a case uuid; :class:`CaseError` when there is none."""
        ref = (ref or "").strip()
        if _UUID.match(ref):
            found = await self.pool.fetchval("select id from escalations where organization_id = $1 and id = $2",
                                             self.organization_id, ref)
        elif m := _REF.match(ref):
            found = await self.pool.fetchval(
                "select id from escalations where organization_id = $1 and case_number = $2",
                self.organization_id, int(m.group(1)))
        else:
            raise CaseError(f"{ref!r} is not a case number (CW-1042) or id")
        if found is None:
            raise CaseError(f"no case {ref} in this organization")
        return str(found)

    async def get(self, ref: str, *, transcript: bool = True, agent: str | None = None) -> Case:
        case_id = await self.resolve_ref(ref)
        row = await self.pool.fetchrow(f"select {_COLUMNS} from escalations where organization_id = $1 and id = $2",
                                       self.organization_id, case_id)
        case = Case.from_row(row)
        if transcript:
            case.transcript = await self.transcript(case)
            from callwise.integrations.outbox import list_items

            case.outbox = await list_items(self.pool, self.organization_id, case_id=case.id)
        self._link(case, agent)
        return case

    async def transcript(self, case: Case) -> list[dict[str, Any]]:
        """The call up to the escalation: every turn stored before the case was opened, plus the agent's reply
        turn that carried it (when linked)."""
        rows = await self.pool.fetch(
            "select seq, speaker, role, text, created_at from turns where organization_id = $1 and session_id = $2 "
            "and (created_at <= $3 or id = $4) order by seq",
            self.organization_id, case.session_id, case.created_at, case.turn_id)
        return [{"seq": r["seq"], "speaker": r["speaker"], "role": r["role"], "text": r["text"],
                 "at": r["created_at"]} for r in rows]

    def _link(self, case: Case, agent: str | None) -> None:
        """A join link for the named agent who holds the claim, and nobody else."""
        if (self.links is not None and agent and case.live and case.room and case.status == "claimed"
                and case.assigned_to == agent):
            case.join_link = self.links.link(case.room, agent)

    async def list(self, *, status: str | None = None, limit: int = 50, transcript: bool = False) -> list[Case]:
        if status is not None and status not in STATUSES and status != "open":
            raise CaseError(f"status must be one of {', '.join(STATUSES)} or open")
        rows = await self.pool.fetch(
            f"select {_COLUMNS} from escalations where organization_id = $1 "
            f"and ($2::text is null or status = $2 or ($2 = 'open' and status <> 'resolved')) "
            f"order by created_at desc limit $3",
            self.organization_id, status, limit)
        cases = [Case.from_row(r) for r in rows]
        if transcript:
            for c in cases:
                c.transcript = await self.transcript(c)
        return cases

    # ------------------------------------------------------------------------------------- working it
    async def claim(self, ref: str, agent: str) -> Case:
        agent = check_agent_name(agent)
        case_id = await self.resolve_ref(ref)
        row = await self.pool.fetchrow(
            f"update escalations set status = 'claimed', assigned_to = $3, claimed_at = greatest(now(), created_at), "
            f"updated_at = now(), notes = notes || jsonb_build_array(jsonb_build_object('at', now(), 'by', $3::text, "
            f"'text', 'claimed')) where organization_id = $1 and id = $2 and status in ('waiting', 'callback') "
            f"returning {_COLUMNS}", self.organization_id, case_id, agent)
        if row is None:
            current = await self.get(case_id, transcript=False)
            if current.status == "claimed" and current.assigned_to == agent:
                self._link(current, agent)
                return current
            if current.status == "claimed":
                raise CaseError(f"{current.label} is already claimed by {current.assigned_to}")
            raise CaseError(f"{current.label} is {current.status}")
        case = Case.from_row(row)
        await self._audit(case, agent, "case.claim", {})
        self._link(case, agent)
        return case

    async def resolve(self, ref: str, agent: str, notes: str) -> Case:
        agent = check_agent_name(agent)
        notes = (notes or "").strip()
        if not notes:
            raise CaseError("resolving a case needs resolution notes (what was done)")
        case_id = await self.resolve_ref(ref)
        row = await self.pool.fetchrow(
            f"update escalations set status = 'resolved', resolved_at = greatest(now(), created_at), "
            f"resolution_notes = $4, assigned_to = coalesce(assigned_to, $3), "
            f"claimed_at = coalesce(claimed_at, greatest(now(), created_at)), updated_at = now() "
            f"where organization_id = $1 and id = $2 and status <> 'resolved' returning {_COLUMNS}",
            self.organization_id, case_id, agent, notes[:10000])
        if row is None:
            current = await self.get(case_id, transcript=False)
            raise CaseError(f"{current.label} is already resolved")
        case = Case.from_row(row)
        await self._audit(case, agent, "case.resolve", {})
        return case

    async def add_note(self, ref: str, agent: str, text: str) -> Case:
        agent = check_agent_name(agent)
        case_id = await self.resolve_ref(ref)
        row = await self.pool.fetchrow(
            f"update escalations set notes = notes || jsonb_build_array(jsonb_build_object('at', now(), 'by', $3::text, "
            f"'text', $4::text)), updated_at = now() where organization_id = $1 and id = $2 returning {_COLUMNS}",
            self.organization_id, case_id, agent, text[:4000])
        return Case.from_row(row)

    async def set_handoff(self, case_id: str, handoff_status: str, *, status: str | None = None,
                          note: str | None = None, conn: Any = None) -> None:
        """Record what happened to the handoff (and move ``waiting`` to ``callback`` and the like)."""
        db = conn or self.pool
        await db.execute(
            "update escalations set handoff_status = $3, status = coalesce($4::text, status), "
            "handoff = case when $4::text = 'callback' then 'callback' else handoff end, updated_at = now(), "
            "notes = case when $5::text is null then notes else notes || jsonb_build_array(jsonb_build_object("
            "'at', now(), 'by', 'callwise', 'text', $5::text)) end "
            "where organization_id = $1 and id = $2 and (status <> 'resolved' or $4::text is null)",
            self.organization_id, case_id, handoff_status, status, note)

    async def link_turn(self, case_id: str, turn_id: str) -> None:
        await self.pool.execute("update escalations set turn_id = $3 where organization_id = $1 and id = $2",
                                self.organization_id, case_id, turn_id)

    async def _audit(self, case: Case, actor: str, action: str, details: dict[str, Any]) -> None:
        from callwise.integrations.outbox import audit

        await audit(self.pool, self.organization_id, actor=actor, action=action, target_type="escalation",
                    target_id=case.id, details={"case": case.label, "status": case.status, **details})
