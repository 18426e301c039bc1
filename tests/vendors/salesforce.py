"""A local Salesforce: OAuth token endpoint, SOQL query (with pages), Contact upsert by external id,
Task and Case creation, in the REST API's documented formats (error arrays, Sforce-Limit-Info)."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs, unquote

from tests.vendors._http import FakeServer, Reply, Request

V = "/services/data/v62.0"


class FakeSalesforce(FakeServer):
    def __init__(self, *, rotate: bool = True, page_size: int = 2000) -> None:
        super().__init__()
        self.access_token = "00D-token-1"
        self.refresh_token = "rt-1"
        self.rotate = rotate
        self.page_size = page_size
        self.contacts: list[dict[str, Any]] = []
        self.tasks: list[dict[str, Any]] = []
        self.cases: list[dict[str, Any]] = []
        self.queries: list[str] = []
        self.api_used, self.api_limit = 10, 15000
        self._pages: dict[str, list[dict[str, Any]]] = {}

    # ---------------------------------------------------------------- helpers
    def _headers(self) -> dict[str, str]:
        self.api_used += 1
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.api_limit}"}

    def _err(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, [{"message": message, "errorCode": code, "fields": []}], self._headers())

    def add_contact(self, **fields: Any) -> dict[str, Any]:
        rec = {"attributes": {"type": "Contact"}, "Id": f"003{len(self.contacts):015d}", "Cases": None,
               "CreatedDate": "2024-01-15T10:00:00.000+0000", "LastModifiedDate": "2026-01-01T00:00:00.000+0000",
               "SystemModstamp": "2026-01-01T00:00:00.000+0000", **fields}
        self.contacts.append(rec)
        return rec

    # ---------------------------------------------------------------- SOQL (enough of it for the client)
    @staticmethod
    def _literals(q: str) -> list[str]:
        """The string literals of a query, unescaped the way Salesforce reads them."""
        out = []
        for m in re.finditer(r"'((?:[^'\\]|\\.)*)'", q):
            out.append(re.sub(r"\\(.)", lambda g: {"n": "\n", "t": "\t", "r": "\r"}.get(g.group(1), g.group(1)), m.group(1)))
        return out

    def _run_query(self, q: str) -> list[dict[str, Any]]:
        self.queries.append(q)
        lits = self._literals(q)
        if " FROM Task " in q:
            return [t for t in self.tasks if t.get("CallObject") in lits]
        if " FROM Case " in q:
            return [c for c in self.cases if any(c["Subject"].startswith(x.rstrip("%").replace("\\_", "_")) for x in lits)]
        rows = self.contacts
        if "WHERE Id = " in q or "WHERE Id IN (" in q:
            rows = [c for c in rows if c["Id"] in lits]
        elif "WHERE Email = " in q:
            rows = [c for c in rows if c.get("Email") in lits]
        elif "Phone = " in q:
            rows = [c for c in rows if c.get("Phone") in lits or c.get("MobilePhone") in lits]
        elif "SystemModstamp >" in q:
            since = re.search(r"SystemModstamp > (\S+)", q).group(1)
            rows = [c for c in rows if c["SystemModstamp"][:19] > since[:19]]
            rows.sort(key=lambda c: c["SystemModstamp"])
        if "ORDER BY LastModifiedDate DESC" in q:
            rows = sorted(rows, key=lambda c: c["LastModifiedDate"], reverse=True)
        return rows

    def _page(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        head, rest = rows[: self.page_size], rows[self.page_size:]
        body: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": head}
        if rest:
            key = f"01g{secrets.token_hex(6)}-{self.page_size}"
            self._pages[key] = rest
            body["nextRecordsUrl"] = f"{V}/query/{key}"
        return body

    # ---------------------------------------------------------------- dispatch
    def handle(self, r: Request) -> Reply:
        if r.path == "/services/oauth2/token":
            form = {k: v[0] for k, v in parse_qs(r.raw.decode()).items()}
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
                return Reply(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
            self.access_token = f"00D-token-{secrets.token_hex(3)}"
            body = {"access_token": self.access_token, "instance_url": self.url, "id": "x", "token_type": "Bearer",
                    "issued_at": "1", "signature": "s", "scope": "api refresh_token"}
            if self.rotate:
                self.refresh_token = f"rt-{secrets.token_hex(3)}"
                body["refresh_token"] = self.refresh_token
            return Reply(200, body)
        if r.headers.get("authorization") != f"Bearer {self.access_token}":
            return self._err(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if r.path == f"{V}/search":  # SOSL, phone search only: formats do not matter, digits do
            m = re.fullmatch(r"FIND \{([0-9]+)\} IN PHONE FIELDS RETURNING Contact\(([^)]*)\)", r.query["q"][0])
            if m is None:
                return self._err(400, "MALFORMED_SEARCH", "unsupported search")
            term = m.group(1)
            fields = [f.strip() for f in m.group(2).split(" LIMIT ")[0].split(",")]
            hits = [c for c in self.contacts if not c.get("IsDeleted") and any(
                re.sub(r"\D", "", str(c.get(f) or "")).endswith(term) for f in ("Phone", "MobilePhone"))]
            return Reply(200, {"searchRecords": [{"attributes": c["attributes"], **{f: c.get(f) for f in fields}}
                                                 for c in hits]}, self._headers())
        if r.path in (f"{V}/query", f"{V}/queryAll"):
            rows = self._run_query(r.query["q"][0])
            if r.path.endswith("/query"):
                rows = [c for c in rows if not c.get("IsDeleted")]
            return Reply(200, self._page(rows), self._headers())
        if r.path.startswith(f"{V}/query/"):
            rest = self._pages.pop(r.path.rsplit("/", 1)[1], [])
            return Reply(200, self._page(rest), self._headers())
        m = re.fullmatch(rf"{V}/sobjects/Contact/(\w+)/(.+)", r.path)
        if m and r.method == "PATCH":
            field, value = m.group(1), unquote(m.group(2))
            matches = [c for c in self.contacts if c.get(field) == value]
            if len(matches) > 1:
                return Reply(300, [f"{V}/sobjects/Contact/{c['Id']}" for c in matches], self._headers())
            if matches:
                matches[0].update(r.json)
                return Reply(200, {"id": matches[0]["Id"], "success": True, "errors": [], "created": False},
                             self._headers())
            rec = self.add_contact(**{field: value, **r.json})
            return Reply(201, {"id": rec["Id"], "success": True, "errors": [], "created": True}, self._headers())
        if r.path in (f"{V}/sobjects/Task", f"{V}/sobjects/Case") and r.method == "POST":
            store = self.tasks if r.path.endswith("Task") else self.cases
            if r.path.endswith("Case") and "Subject" not in r.json:
                return self._err(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Subject]")
            rec = {"Id": f"{'00T' if store is self.tasks else '500'}{len(store):015d}", **r.json}
            store.append(rec)
            return Reply(201, {"id": rec["Id"], "success": True, "errors": []}, self._headers())
        return self._err(404, "NOT_FOUND", f"no route {r.method} {r.path}")
