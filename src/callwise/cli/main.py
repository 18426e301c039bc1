"""The ``callwise`` command line."""

from __future__ import annotations

import typer

from callwise.cli import budget as budget_commands
from callwise.cli import database
from callwise.cli import escalations as escalation_commands
from callwise.cli import evaluation as evaluation_commands
from callwise.cli import health as health_commands
from callwise.cli import integrations as integration_commands
from callwise.cli import keys as keys_commands
from callwise.cli import knowledge as knowledge_commands
from callwise.cli import outbox as outbox_commands
from callwise.cli import phones as phone_commands
from callwise.cli import routing as routing_commands
from callwise.cli import serve as serve_commands
from callwise.cli import voice as voice_commands

app = typer.Typer(
    name="callwise",
    help="Real-time voice and conversation intelligence: support agent, meeting copilot, nightly evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

database.register(app)
evaluation_commands.register(app)
escalation_commands.register(app)
outbox_commands.register(app)
integration_commands.register(app)
keys_commands.register(app)
routing_commands.register(app)
knowledge_commands.register(app)
serve_commands.register(app)
voice_commands.register(app)
health_commands.register(app)
budget_commands.register(app)
phone_commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
