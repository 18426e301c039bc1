"""A local LiveKit server API for SIP transfers: Twirp over HTTP with protobuf bodies, decoded and encoded with
the ``livekit-protocol`` classes; the bearer JWT is verified like the server does (room admin + SIP call).

Like the real server, ``TransferSIPParticipant`` answers only when the transfer has an outcome: the
destination rings for ``ring_s`` and then ``outcome`` happens: ``answer`` (200, STS_TRANSFER_SUCCESSFUL),
``refuse`` (486 Busy Here), ``no_answer`` (rings until the request's ``ringing_timeout``, then
STR_RINGING_TIMEOUT) or ``ongoing`` (an older server's empty answer: the REFER was accepted, outcome
unknown). ``connected`` counts the callers really handed over, whether or not the client still waited."""

from __future__ import annotations

import time
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
        self.ring_s = 0.0  # how long the destination rings before ``outcome``
        self.outcome = "answer"  # answer | refuse | no_answer | ongoing
        self.connected: list[sip_pb.TransferSIPParticipantRequest] = []

    def reset(self) -> None:
        self.refuse, self.ring_s, self.outcome = None, 0.0, "answer"

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
        transfer_id = f"ST_{len(self.transfers)}"
        ringing_timeout = req.ringing_timeout.seconds if req.HasField("ringing_timeout") else 30
        if self.outcome == "no_answer":
            time.sleep(ringing_timeout)
            return self._twirp_error(408, "deadline_exceeded", "transfer not answered",
                                     {"sip_transfer_reason": "STR_RINGING_TIMEOUT", "sip_transfer_id": transfer_id})
        if self.ring_s > ringing_timeout:
            time.sleep(ringing_timeout)
            return self._twirp_error(408, "deadline_exceeded", "transfer not answered",
                                     {"sip_transfer_reason": "STR_RINGING_TIMEOUT", "sip_transfer_id": transfer_id})
        time.sleep(self.ring_s)
        if self.outcome == "refuse":
            return self._twirp_error(412, "failed_precondition", "transfer refused",
                                     {"sip_status_code": "486", "sip_status": "Busy Here",
                                      "sip_transfer_reason": "STR_REJECTED", "sip_transfer_id": transfer_id})
        if self.outcome == "ongoing":
            return Reply(200, b"", headers={"content-type": "application/protobuf"})
        self.connected.append(req)
        resp = sip_pb.TransferSIPParticipantResponse(transfer_id=transfer_id,
                                                     status=sip_pb.SIPTransferStatus.STS_TRANSFER_SUCCESSFUL,
                                                     reason=sip_pb.SIPTransferReason.STR_COMPLETED)
        return Reply(200, resp.SerializeToString(), headers={"content-type": "application/protobuf"})
