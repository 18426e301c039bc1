"""Cold transfer of a SIP caller to a human: LiveKit's ``TransferSIPParticipant`` (Twirp, protobuf).

``livekit-api`` posts a ``TransferSIPParticipantRequest`` to ``{url}/twirp/livekit.SIP/TransferSIPParticipant``
with ``Content-Type: application/protobuf`` and a room-admin + SIP-call token; the answer is a
``TransferSIPParticipantResponse`` (``transfer_id``, ``status``) or a JSON Twirp error ``{"code", "msg"}``
(with ``sip_status_code`` / ``sip_transfer_reason`` in ``meta`` for a refused or unanswered transfer). The
trunk must allow SIP REFER. A ``STS_TRANSFER_FAILED`` status means the caller was not transferred.
"""

from __future__ import annotations

from dataclasses import dataclass

from livekit import api
from livekit.protocol import sip as sip_pb


class TransferError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class TransferOutcome:
    transfer_id: str
    status: str


async def transfer_caller(url: str, api_key: str, api_secret: str, *, room: str, participant_identity: str,
                          transfer_to: str, ringing_timeout_s: int = 30, play_dialtone: bool = True,
                          timeout_s: float | None = None) -> TransferOutcome:
    """Transfer ``participant_identity`` in ``room`` to ``transfer_to`` (``tel:+1...`` or ``sip:user@host``)."""
    lk = api.LiveKitAPI(url, api_key, api_secret)
    try:
        request = api.TransferSIPParticipantRequest(
            participant_identity=participant_identity, room_name=room, transfer_to=transfer_to,
            play_dialtone=play_dialtone)
        request.ringing_timeout.seconds = ringing_timeout_s
        try:
            resp = await lk.sip.transfer_sip_participant(request, timeout=timeout_s)
        except api.TwirpError as exc:
            raise TransferError(f"SIP transfer refused: {exc}", retryable=exc.status >= 500) from exc
        except (OSError, TimeoutError) as exc:
            raise TransferError(f"LiveKit unreachable: {type(exc).__name__}", retryable=True) from exc
    finally:
        await lk.aclose()
    # servers that answer an empty message (older LiveKit) decode as ONGOING: the REFER was accepted
    status = sip_pb.SIPTransferStatus.Name(resp.status)
    if status == "STS_TRANSFER_FAILED":
        raise TransferError(f"SIP transfer did not complete: {status}", retryable=False)
    return TransferOutcome(transfer_id=resp.transfer_id, status=status)
