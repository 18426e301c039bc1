"""The one error every vendor client raises, translated at the edge from the vendor's own format.

``retryable``: a 5xx, a timeout or a rate limit (worth trying again later, after ``retry_after`` seconds when
the vendor said so); ``auth``: the credentials were refused even after a refresh (the integration needs
re-authorisation); ``status``: the HTTP status when there was one. The outbox maps these onto its own
errors (``callwise.integrations.actions``). The vendor modules keep their historical names as aliases
(``ZendeskError``, ``SlackError``, ``TwilioError``, ``SendGridError``, ``CRMError``) of this one class.
"""

from __future__ import annotations


class VendorError(RuntimeError):
    def __init__(self, message: str, *, retryable: bool = True, retry_after: float | None = None,
                 auth: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.auth = auth
        self.status = status
