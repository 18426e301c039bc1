"""Cold transfer of a SIP caller to a human: LiveKit's ``TransferSIPParticipant`` (Twirp, protobuf).

``livekit-api`` posts a ``TransferSIPParticipantRequest`` to ``{url}/twirp/livekit.SIP/TransferSIPParticipant``
with ``Content-Type: application/protobuf`` and a room-admin + SIP-call token. The request returns only when
the transfer has an outcome: the destination answered, refused (a SIP status such as 486 Busy Here or 603
Decline), or let it ring past ``ringing_timeout`` (30 s by default). The SDK keeps its HTTP timeout above
the ringing window. The answer is a ``TransferSIPParticipantResponse`` (``transfer_id``, ``status``,
``reason``, ``sip_status``) or a Twirp error that ``livekit-api`` raises as ``SipCallError`` (with
``sip_status_code`` and ``sip_transfer_reason``). The trunk must allow SIP REFER.

Statuses are read as they are documented: ``STS_TRANSFER_SUCCESSFUL`` is the only success;
``STS_TRANSFER_FAILED`` is a failure; ``STS_TRANSFER_ONGOING`` (also what an empty message from an older
server decodes as) means the REFER was accepted but the outcome is not known, which is *not* a success.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from livekit import api
from livekit.protocol import sip as sip_pb

TransferResult = Literal["connected", "unconfirmed"]

#: SIP statuses that mean the person at the destination (or their phone system) said no.
REFUSED_SIP = frozenset({403, 404, 480, 486, 600, 603})


class TransferError(RuntimeError):
    """The caller was not transferred. ``kind``: ``refused`` (busy, declined), ``no_answer`` (rang past the
    ringing timeout), ``failed`` (anything else); ``retryable`` when LiveKit itself could not be reached."""

    def __init__(self, message: str, *, retryable: bool, kind: str = "failed", sip_status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.kind = kind
        self.sip_status = sip_status


@dataclass(frozen=True)
class TransferOutcome:
    transfer_id: str
    status: str  # the protocol's name: STS_TRANSFER_SUCCESSFUL | STS_TRANSFER_ONGOING
    reason: str = ""
    sip_status: int | None = None

    @property
    def result(self) -> TransferResult:
        return "connected" if self.status == "STS_TRANSFER_SUCCESSFUL" else "unconfirmed"


def _failure_kind(reason: str | None, sip_status: int | None) -> str:
    if reason == "STR_RINGING_TIMEOUT" or sip_status in (408, 487):
        return "no_answer"
    if reason == "STR_REJECTED" or (sip_status is not None and sip_status in REFUSED_SIP):
        return "refused"
    return "failed"


async def transfer_caller(url: str, api_key: str, api_secret: str, *, room: str, participant_identity: str,
                          transfer_to: str, ringing_timeout_s: int = 30, play_dialtone: bool = True,
                          timeout_s: float | None = None) -> TransferOutcome:
    """Transfer ``participant_identity`` in ``room`` to ``transfer_to`` (``tel:+1...`` or ``sip:user@host``);
    waits for the answer up to ``ringing_timeout_s`` (``timeout_s`` lower than that is raised by the SDK)."""
    lk = api.LiveKitAPI(url, api_key, api_secret)
    try:
        request = api.TransferSIPParticipantRequest(
            participant_identity=participant_identity, room_name=room, transfer_to=transfer_to,
            play_dialtone=play_dialtone)
        request.ringing_timeout.seconds = int(ringing_timeout_s)
        try:
            resp = await lk.sip.transfer_sip_participant(request, timeout=timeout_s)
        except api.SipCallError as exc:
            code, reason = exc.sip_status_code, exc.sip_transfer_reason
            kind = _failure_kind(reason, code)
            raise TransferError(f"SIP transfer not completed ({kind}): {exc}", retryable=exc.status >= 500 and
                                kind == "failed", kind=kind, sip_status=code) from exc
        except api.TwirpError as exc:
            raise TransferError(f"SIP transfer refused: {exc}", retryable=exc.status >= 500) from exc
        except (OSError, TimeoutError) as exc:
            raise TransferError(f"LiveKit unreachable: {type(exc).__name__}", retryable=True) from exc
    finally:
        await lk.aclose()
    status = sip_pb.SIPTransferStatus.Name(resp.status)
    reason = sip_pb.SIPTransferReason.Name(resp.reason) if resp.reason else ""
    code = int(resp.sip_status.code) if resp.HasField("sip_status") and resp.sip_status.code else None
    if status == "STS_TRANSFER_FAILED":
        kind = _failure_kind(reason, code)
        raise TransferError(f"SIP transfer not completed ({kind}): {status} {reason} {code or ''}".strip(),
                            retryable=False, kind=kind, sip_status=code)
    return TransferOutcome(transfer_id=resp.transfer_id, status=status, reason=reason, sip_status=code)
