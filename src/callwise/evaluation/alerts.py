"""Threshold checks for a nightly run and their delivery to Slack.

A metric under its threshold is an alert. When an LLM-judged metric was not computed (no judge),
its reference-based ragas counterpart is checked against the same threshold and the alert says it
is the offline proxy; a metric with no value at all raises no alert (it is reported as not computed).
Alerts are always recorded in the run and the report; Slack is posted to only when configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from callwise.integrations.slack import SlackError, SlackWebhook, section

# threshold name -> offline metric checked against it when the LLM metric is not computed
OFFLINE_PROXY = {
    "context_precision": "non_llm_context_precision_with_reference",
    "context_recall": "non_llm_context_recall",
}


@dataclass(frozen=True)
class Alert:
    metric: str  # the metric whose value is under threshold
    value: float
    threshold: float
    threshold_name: str  # which threshold (differs from metric for offline proxies)

    @property
    def proxy(self) -> bool:
        return self.metric != self.threshold_name

    def text(self) -> str:
        via = f" (offline proxy for {self.threshold_name})" if self.proxy else ""
        return f"{self.metric} {self.value:.3f} < {self.threshold:.2f}{via}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "proxy": self.proxy, "text": self.text()}


@dataclass
class Delivery:
    channel: str  # "slack" or "none"
    posted: bool
    error: str | None = None


def check_thresholds(metrics: Mapping[str, float | None], thresholds: Mapping[str, float]) -> list[Alert]:
    alerts: list[Alert] = []
    for name, threshold in thresholds.items():
        value = metrics.get(name)
        metric = name
        if value is None and name in OFFLINE_PROXY:
            metric = OFFLINE_PROXY[name]
            value = metrics.get(metric)
        if value is not None and value < threshold:
            alerts.append(Alert(metric, float(value), float(threshold), name))
    return alerts


def slack_message(alerts: list[Alert], *, org: str, run_id: str, report_path: str | None) -> tuple[str, list[dict[str, Any]]]:
    head = f"callwise nightly evaluation for *{org}*: {len(alerts)} metric(s) under threshold"
    lines = "\n".join(f"• {a.text()}" for a in alerts)
    tail = f"run `{run_id}`" + (f" · report `{report_path}`" if report_path else "")
    return head, [section(head), section(lines), section(tail)]


async def deliver(alerts: list[Alert], webhook: SlackWebhook | None, *, org: str, run_id: str,
                  report_path: str | None = None) -> Delivery:
    """Post to Slack when there are alerts and a webhook; never raises (the run must finish)."""
    if not alerts or webhook is None:
        return Delivery("slack" if webhook else "none", posted=False)
    text, blocks = slack_message(alerts, org=org, run_id=run_id, report_path=report_path)
    try:
        await webhook.post(text, blocks)
    except SlackError as exc:
        return Delivery("slack", posted=False, error=str(exc))
    return Delivery("slack", posted=True)
