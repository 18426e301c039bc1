"""The worker's assembly (`wiring/agent.py`): what the support turn is handed in every job process."""

from __future__ import annotations

from pathlib import Path

import pytest

from callwise.calls.stages.send_offer import CommandSender
from callwise.wiring.agent import open_components
from callwise.wiring.settings import Settings


async def test_the_worker_support_deps_carry_the_command_sender_in_the_orgs_phone_region(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a sender the voice answer never offers to text or email the command it left out (issue 21)."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", default_phone_region="GB")  # type: ignore[call-arg]
    async with open_components(settings) as comp:
        deps = comp.support_deps()
        assert isinstance(deps.sender, CommandSender)
        assert deps.sender.region == "GB" and deps.sender.pool is comp.pool
