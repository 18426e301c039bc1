"""A local LiveKit server API for SIP transfers: Twirp over HTTP with protobuf bodies, decoded and encoded with
the ``livekit-protocol`` classes; the bearer JWT is verified like the server does (room admin + SIP call)."""

from __future__ import annotations

from typing import Any

from livekit import api
from livekit.protocol import sip as sip_pb

from tests.vendors._http import FakeServer, Reply, Request

API_KEY = "devkey"
API_SECRET = "devsecret-devsecret-devsecret-0123"


class LiveKitTwirpServer(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.transfers: list[sip_pb.TransferSIPParticipantRequest] = []
        self.refuse: dict[str, Any] | None = None  # {"status": 412, "code": ..., "msg": ..., "meta": {...}}

    @staticmethod
    def _twirp_error(status: int, code: str, msg: str, meta: dict[str, str] | None = None) -> Reply:
        body: dict[str, Any] = {"code": code, "msg": msg}
        if meta:
            body["meta"] = meta
        return Reply(status, body)

    def handle(self, request: Request) -> Reply:
        if request.path != "/twirp/livekit.SIP/TransferSIPParticipant":
            return self._twirp_error(404, "bad_route", f"no handler for {request.path}")
        if request.headers.get("content-type") != "application/protobuf":
            return self._twirp_error(415, "malformed", "expected application/protobuf")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
        except Exception:  # noqa: BLE001
            return self._twirp_error(401, "unauthenticated", "invalid token")
        req = sip_pb.TransferSIPParticipantRequest.FromString(request.raw)
        if not (claims.video and claims.video.room_admin and claims.video.room == req.room_name
                and claims.sip and claims.sip.call):
            return self._twirp_error(403, "permission_denied", "needs roomAdmin for the room and sip.call")
        self.transfers.append(req)
        if self.refuse is not None:
            r = self.refuse
            return self._twirp_error(r.get("status", 412), r.get("code", "failed_precondition"), r.get("msg", "refused"),
                                     r.get("meta"))
        resp = sip_pb.TransferSIPParticipantResponse(transfer_id=f"ST_{len(self.transfers)}",
                                                     status=sip_pb.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL)
        return Reply(200, resp.SerializeToString(), headers={"content-type": "application/protobuf"})
