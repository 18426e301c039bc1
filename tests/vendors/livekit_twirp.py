"""A local LiveKit server API for SIP transfers and warm transfers: Twirp over HTTP with protobuf bodies, decoded
and encoded with the ``livekit-protocol`` classes; the bearer JWT is verified like the server does (room admin +
SIP call for a transfer, SIP call for a dial, room admin on both rooms for a move, room create for a delete).

Rooms are modelled as the participants in them (``rooms``): a test puts the caller in their room; a dial that is
answered adds the dialled participant to its room; ``MoveParticipant`` moves one to another existing room (404
``not_found`` otherwise); ``DeleteRoom`` removes a room and hangs up a dial still ringing into it.

``CreateSIPParticipant`` with ``wait_until_answered`` answers, like the server, only once the call is answered
or has failed: the phone rings for ``dial_ring_s``, then ``dial_outcome`` happens: ``answer`` (the
``SIPParticipantInfo``), ``busy`` (486 Busy Here), ``decline`` (603 Decline) or ``no_answer`` (rings until the
request's ``ringing_timeout``, then 408 Request Timeout). Failures are Twirp errors carrying ``sip_status_code``
and ``sip_status`` in ``meta``, which ``livekit-api`` raises as ``SipCallError``. Without ``wait_until_answered``
it answers at once and the call goes on ringing.

Like the real server, ``TransferSIPParticipant`` answers only when the transfer has an outcome: the
destination rings for ``ring_s`` and then ``outcome`` happens: ``answer`` (200, STS_TRANSFER_SUCCESSFUL),
``refuse`` (486 Busy Here), ``no_answer`` (rings until the request's ``ringing_timeout``, then
STR_RINGING_TIMEOUT) or ``ongoing`` (an older server's empty answer: the REFER was accepted, outcome
unknown). ``connected`` counts the callers really handed over, whether or not the client still waited."""

from __future__ import annotations

import threading
import time
from typing import Any

from livekit import api
from livekit.protocol import room as room_pb
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
        # warm transfer: rooms, dials, moves
        self.rooms: dict[str, set[str]] = {}
        self.dials: list[dict[str, Any]] = []  # {"request", "outcome": ringing|answered|busy|...|hung_up, "at"}
        self.dial_ring_s = 0.0
        self.dial_outcome = "answer"  # answer | busy | decline | no_answer
        self.moves: list[room_pb.MoveParticipantRequest] = []
        self.move_unsupported = False  # a self-hosted server: MoveParticipant is LiveKit Cloud only
        self.deleted: list[str] = []
        self.calls: list[str] = []  # the Twirp methods called, in order
        self.call_log: list[tuple[float, str, str]] = []  # (time.monotonic(), method, "request" or the answer)
        self._hangup: dict[str, threading.Event] = {}

    def reset(self) -> None:
        self.refuse, self.ring_s, self.outcome = None, 0.0, "answer"
        self.dial_ring_s, self.dial_outcome, self.move_unsupported = 0.0, "answer", False
        with self._lock:
            self.rooms, self.dials, self.moves, self.deleted, self.calls, self.call_log = {}, [], [], [], [], []
            self._hangup = {}

    def add_participant(self, room: str, identity: str) -> None:
        """Someone joined ``room`` (the caller of a test call)."""
        with self._lock:
            self.rooms.setdefault(room, set()).add(identity)

    @staticmethod
    def _twirp_error(status: int, code: str, msg: str, meta: dict[str, str] | None = None) -> Reply:
        body: dict[str, Any] = {"code": code, "msg": msg}
        if meta:
            body["meta"] = meta
        return Reply(status, body)

    def handle(self, request: Request) -> Reply:
        routes = {"/twirp/livekit.SIP/TransferSIPParticipant": self._transfer,
                  "/twirp/livekit.SIP/CreateSIPParticipant": self._create_sip_participant,
                  "/twirp/livekit.RoomService/MoveParticipant": self._move_participant,
                  "/twirp/livekit.RoomService/DeleteRoom": self._delete_room}
        route = routes.get(request.path)
        if route is None:
            return self._twirp_error(404, "bad_route", f"no handler for {request.path}")
        if request.headers.get("content-type") != "application/protobuf":
            return self._twirp_error(415, "malformed", "expected application/protobuf")
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = api.TokenVerifier(API_KEY, API_SECRET).verify(token)
        except Exception:  # noqa: BLE001
            return self._twirp_error(401, "unauthenticated", "invalid token")
        method = request.path.rsplit("/", 1)[-1]
        with self._lock:
            self.calls.append(method)
            self.call_log.append((time.monotonic(), method, "request"))
        reply = route(request, claims)
        outcome = "200 OK" if reply.status == 200 else f"{reply.status} {reply.body.get('code')}: {reply.body.get('msg')}" \
            if isinstance(reply.body, dict) else str(reply.status)
        with self._lock:
            self.call_log.append((time.monotonic(), method, outcome))
        return reply

    @staticmethod
    def _proto(message: Any) -> Reply:
        return Reply(200, message.SerializeToString(), headers={"content-type": "application/protobuf"})

    def _create_sip_participant(self, request: Request, claims: Any) -> Reply:
        req = sip_pb.CreateSIPParticipantRequest.FromString(request.raw)
        if not (claims.sip and claims.sip.call):
            return self._twirp_error(403, "permission_denied", "needs sip.call")
        if not req.sip_call_to or not req.room_name:
            return self._twirp_error(400, "invalid_argument", "sip_call_to and room_name are required")
        if not req.sip_trunk_id and not req.HasField("trunk"):
            return self._twirp_error(400, "invalid_argument", "a trunk (sip_trunk_id or trunk) is required")
        identity = req.participant_identity or f"sip_{req.sip_call_to}"
        dial: dict[str, Any] = {"request": req, "outcome": "ringing", "at": time.monotonic()}
        hangup = threading.Event()
        with self._lock:
            self.dials.append(dial)
            self._hangup[req.room_name] = hangup
        n = len(self.dials)
        info = sip_pb.SIPParticipantInfo(participant_id=f"PA_dial{n}", participant_identity=identity,
                                         room_name=req.room_name, sip_call_id=f"SCL_dial{n}")
        if not req.wait_until_answered:
            return self._proto(info)
        ringing_timeout = req.ringing_timeout.seconds + req.ringing_timeout.nanos / 1e9 \
            if req.HasField("ringing_timeout") else 30.0
        ring = ringing_timeout if self.dial_outcome == "no_answer" else min(self.dial_ring_s, ringing_timeout)
        if hangup.wait(ring):  # the room was deleted while the phone rang
            dial["outcome"] = "hung_up"
            return self._twirp_error(408, "canceled", "the room was deleted while dialling",
                                     {"sip_status_code": "487", "sip_status": "Request Terminated"})
        if self.dial_outcome == "no_answer" or self.dial_ring_s > ringing_timeout:
            dial["outcome"] = "no_answer"
            return self._twirp_error(408, "deadline_exceeded", "the call was not answered",
                                     {"sip_status_code": "408", "sip_status": "Request Timeout"})
        if self.dial_outcome in ("busy", "decline"):
            dial["outcome"] = self.dial_outcome
            code, phrase = ("486", "Busy Here") if self.dial_outcome == "busy" else ("603", "Decline")
            return self._twirp_error(503, "unavailable", f"the call failed: {code} {phrase}",
                                     {"sip_status_code": code, "sip_status": phrase})
        dial["outcome"] = "answered"
        self.add_participant(req.room_name, identity)
        return self._proto(info)

    def _move_participant(self, request: Request, claims: Any) -> Reply:
        req = room_pb.MoveParticipantRequest.FromString(request.raw)
        video = claims.video
        if not (video and video.room_admin and video.room == req.room and video.destination_room == req.destination_room):
            return self._twirp_error(403, "permission_denied", "needs roomAdmin for the room and the destination room")
        if self.move_unsupported:
            return self._twirp_error(501, "unimplemented", "MoveParticipant is not available on this server")
        with self._lock:
            here = self.rooms.get(req.room, set())
            if req.identity not in here:
                return self._twirp_error(404, "not_found", f"participant {req.identity} not found in {req.room}")
            if req.destination_room not in self.rooms:
                return self._twirp_error(404, "not_found", f"room {req.destination_room} not found")
            here.discard(req.identity)
            self.rooms[req.destination_room].add(req.identity)
            self.moves.append(req)
        return self._proto(room_pb.MoveParticipantResponse())

    def _delete_room(self, request: Request, claims: Any) -> Reply:
        req = room_pb.DeleteRoomRequest.FromString(request.raw)
        if not (claims.video and claims.video.room_create):
            return self._twirp_error(403, "permission_denied", "needs roomCreate")
        with self._lock:
            hangup = self._hangup.pop(req.room, None)
            known = self.rooms.pop(req.room, None) is not None or hangup is not None
            if known:
                self.deleted.append(req.room)
        if hangup is not None:
            hangup.set()
        if not known:
            return self._twirp_error(404, "not_found", f"room {req.room} not found")
        return self._proto(room_pb.DeleteRoomResponse())

    def _transfer(self, request: Request, claims: Any) -> Reply:
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
