"""Threshold checks and Slack posting against a local webhook server."""

from __future__ import annotations

from callwise.evaluation.alerts import check_thresholds, deliver
from callwise.integrations.slack import SlackWebhook
from tests.vendors.slack import serve_slack

THRESHOLDS = {"faithfulness": 0.9, "answer_relevancy": 0.85, "context_precision": 0.8, "context_recall": 0.85}


def test_thresholds_with_offline_proxies() -> None:
    metrics = {"faithfulness": None, "answer_relevancy": None, "context_precision": None, "context_recall": None,
               "non_llm_context_precision_with_reference": 0.9, "non_llm_context_recall": 0.6}
    alerts = check_thresholds(metrics, THRESHOLDS)
    assert [a.metric for a in alerts] == ["non_llm_context_recall"]
    assert alerts[0].proxy and "offline proxy for context_recall" in alerts[0].text()


def test_thresholds_with_judge() -> None:
    metrics = {"faithfulness": 0.95, "answer_relevancy": 0.5, "context_precision": 0.8, "context_recall": 0.9,
               "non_llm_context_recall": 0.1}
    alerts = check_thresholds(metrics, THRESHOLDS)
    assert [(a.metric, a.proxy) for a in alerts] == [("answer_relevancy", False)]  # 0.8 is not under 0.8


async def test_posts_to_slack() -> None:
    alerts = check_thresholds({"faithfulness": 0.5}, THRESHOLDS)
    with serve_slack() as slack:
        d = await deliver(alerts, SlackWebhook(slack.url), org="demo", run_id="r1", report_path="out/report.html")
        assert d.posted and d.error is None
        assert len(slack.messages) == 1
        msg = slack.messages[0]
        assert "1 metric(s) under threshold" in msg["text"]
        assert "faithfulness 0.500 < 0.90" in str(msg["blocks"])


async def test_slack_failure_is_recorded_not_raised() -> None:
    alerts = check_thresholds({"faithfulness": 0.5}, THRESHOLDS)
    with serve_slack(status=500) as slack:
        d = await deliver(alerts, SlackWebhook(slack.url), org="demo", run_id="r1")
    assert not d.posted and "500" in (d.error or "")
    d = await deliver(alerts, SlackWebhook("http://127.0.0.1:9/nothing", timeout_s=2), org="demo", run_id="r1")
    assert not d.posted and "unreachable" in (d.error or "")


async def test_nothing_to_post() -> None:
    with serve_slack() as slack:
        d = await deliver([], SlackWebhook(slack.url), org="demo", run_id="r1")
        assert not d.posted and slack.messages == []
    d = await deliver(check_thresholds({"faithfulness": 0.1}, THRESHOLDS), None, org="demo", run_id="r1")
    assert d.channel == "none" and not d.posted
