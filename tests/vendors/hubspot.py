"""A local HubSpot: CRM v3 search, contact batch upsert, calls and tickets with associations, OAuth
refresh, in the documented wire format (429 with policyName, 207 with errors[]).

Contacts keep ``phone``/``mobilephone`` exactly as typed ("(555) 010-0100"); like HubSpot, the stand-in
derives the searchable calculated properties ``hs_searchable_calculated_phone_number`` /
``hs_searchable_calculated_mobile_number`` (the national digits, read in the portal's ``region``)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

import phonenumbers

from tests.vendors._http import FakeServer, Reply, Request

NOW = "2026-11-01T00:00:00.000Z"


class FakeHubSpot(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.access_token = "pat-na1-1"
        self.refresh_token = "hs-rt-1"
        self.client_secret = "hs-secret"
        self.objects: dict[str, list[dict[str, Any]]] = {"contacts": [], "calls": [], "tickets": []}
        self._next = 1000
        self.region = "US"

    def _calculated(self, props: dict[str, Any]) -> None:
        for typed, calc in (("phone", "hs_searchable_calculated_phone_number"),
                            ("mobilephone", "hs_searchable_calculated_mobile_number")):
            try:
                number = phonenumbers.parse(str(props.get(typed) or ""), self.region)
            except phonenumbers.NumberParseException:
                props.pop(calc, None)
                continue
            props[calc] = phonenumbers.national_significant_number(number)

    def add(self, kind: str, properties: dict[str, Any], *, associations: list[dict[str, Any]] | None = None,
            updated: str = NOW) -> dict[str, Any]:
        self._next += 1
        obj = {"id": str(self._next), "properties": {**properties, "hs_object_id": str(self._next),
                                                      "lastmodifieddate": updated},
               "createdAt": "2024-01-15T10:00:00.000Z", "updatedAt": updated, "archived": False,
               "associations": associations or []}
        if kind == "contacts":
            self._calculated(obj["properties"])
        self.objects[kind].append(obj)
        return obj

    @staticmethod
    def _matches(obj: dict[str, Any], flt: dict[str, Any]) -> bool:
        value = str(obj["properties"].get(flt["propertyName"]) or "")
        if flt["operator"] == "EQ":
            return value == str(flt["value"])
        if flt["operator"] == "CONTAINS_TOKEN":
            return str(flt["value"]) in value
        raise ValueError(flt["operator"])

    def _public(self, obj: dict[str, Any], props: list[str] | None = None) -> dict[str, Any]:
        keep = obj["properties"] if props is None else {k: obj["properties"].get(k) for k in props}
        return {"id": obj["id"], "properties": keep, "createdAt": obj["createdAt"], "updatedAt": obj["updatedAt"],
                "archived": False}

    def handle(self, r: Request) -> Reply:
        if r.path in ("/oauth/v1/token", "/oauth/2026-03/token"):
            form = {k: v[0] for k, v in parse_qs(r.raw.decode()).items()}
            if form.get("grant_type") == "authorization_code":
                if form.get("code") != "good-code" or form.get("client_secret") != self.client_secret:
                    return Reply(400, {"status": "BAD_AUTH_CODE", "message": "auth code not found",
                                       "error": "invalid_grant", "error_description": "auth code not found"})
                form["refresh_token"] = self.refresh_token
            if form.get("refresh_token") != self.refresh_token or form.get("client_secret") != self.client_secret:
                return Reply(400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token",
                                   "error": "invalid_grant", "error_description": "missing or unknown refresh token"})
            self.access_token = f"hs-at-{secrets.token_hex(3)}"
            self.refresh_token = f"hs-rt-{secrets.token_hex(3)}"
            return Reply(200, {"access_token": self.access_token, "refresh_token": self.refresh_token,
                               "expires_in": 1800, "token_type": "bearer"})
        if r.headers.get("authorization") != f"Bearer {self.access_token}":
            return Reply(401, {"status": "error", "message": "Authentication credentials not found.",
                               "category": "INVALID_AUTHENTICATION", "correlationId": "c-1"})
        parts = r.path.strip("/").split("/")  # crm v3 objects <kind> [search|batch upsert]
        if parts[:3] != ["crm", "v3", "objects"] or len(parts) < 4 or parts[3] not in self.objects:
            return Reply(404, {"status": "error", "message": f"no route {r.path}", "category": "OBJECT_NOT_FOUND"})
        kind, rest = parts[3], parts[4:]
        if rest == ["search"]:
            groups = r.json.get("filterGroups") or []
            hits = [o for o in self.objects[kind]
                    if any(all(self._matches(o, f) for f in g["filters"]) for g in groups)]
            if "-lastmodifieddate" in (r.json.get("sorts") or []):
                hits.sort(key=lambda o: o["properties"]["lastmodifieddate"], reverse=True)
            hits = hits[: r.json.get("limit", 10)]
            return Reply(200, {"total": len(hits), "results": [self._public(o, r.json.get("properties")) for o in hits]})
        if rest == ["batch", "upsert"]:
            results, errors = [], []
            for item in r.json["inputs"]:
                if item.get("idProperty") != "email":
                    errors.append({"status": "error", "category": "VALIDATION_ERROR",
                                   "message": f"{item.get('idProperty')} is not a unique property", "context": {}})
                    continue
                found = [o for o in self.objects[kind] if o["properties"].get("email") == item["id"]]
                if found:
                    found[0]["properties"].update(item["properties"])
                    self._calculated(found[0]["properties"])
                    results.append({**self._public(found[0]), "new": False})
                else:
                    results.append({**self._public(self.add(kind, {**item["properties"], "email": item["id"]})),
                                    "new": True})
            body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": NOW, "completedAt": NOW}
            if errors:
                body.update(errors=errors, numErrors=len(errors))
                return Reply(207, body)
            return Reply(200, body)
        if not rest and r.method == "POST":
            if kind == "calls" and "hs_timestamp" not in r.json.get("properties", {}):
                return Reply(400, {"status": "error", "message": "hs_timestamp is required", "category": "VALIDATION_ERROR"})
            obj = self.add(kind, r.json.get("properties", {}), associations=r.json.get("associations"))
            return Reply(201, self._public(obj))
        return Reply(404, {"status": "error", "message": f"no route {r.method} {r.path}"})
