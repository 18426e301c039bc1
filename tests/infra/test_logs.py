import io
import json
import logging

from callwise.infra.logs import configure_logging


def _capture(json_lines: bool, secrets=()):
    buf = io.StringIO()
    configure_logging("INFO", json_lines=json_lines, secrets=secrets, stream=buf)
    return buf


def test_known_secret_values_are_redacted_everywhere():
    buf = _capture(False, secrets=["dg-live-0123456789"])
    log = logging.getLogger("callwise.test")
    log.info("connecting with dg-live-0123456789", extra={"header": "Token dg-live-0123456789"})
    out = buf.getvalue()
    assert "dg-live-0123456789" not in out
    assert "****" in out


def test_key_shapes_are_redacted_without_being_told():
    buf = _capture(True)
    log = logging.getLogger("callwise.test")
    log.warning("calling openai key=sk-proj-abcdefghijklmnopqrstuvwxyz")
    log.warning("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")
    log.warning("db postgresql://app:hunter2pass@db:5432/x")
    log.warning("posting to https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    out = buf.getvalue()
    for leaked in ("abcdefghijklmnopqrstuvwxyz", "eyJhbGciOiJIUzI1NiJ9", "hunter2pass", "XXXXSECRET"):
        assert leaked not in out


def test_exceptions_are_redacted_too():
    buf = _capture(True, secrets=["supersecret-token-value"])
    try:
        raise RuntimeError("auth failed for supersecret-token-value")
    except RuntimeError:
        logging.getLogger("callwise.test").exception("provider error")
    assert "supersecret-token-value" not in buf.getvalue()


def test_json_lines_are_one_object_per_event_with_extras():
    buf = _capture(True)
    logging.getLogger("callwise.test").info("turn stored", extra={"tier": "tier1", "ms": 12})
    lines = buf.getvalue().strip().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "turn stored" and event["tier"] == "tier1" and event["ms"] == 12
    assert event["level"] == "info" and event["logger"] == "callwise.test"
