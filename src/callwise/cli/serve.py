"""`callwise serve`: the HTTP API and dashboard."""

from __future__ import annotations

import asyncio

import typer

from callwise.cli.common import CommandError, console, load_settings, run

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
) -> None:
    """Serve the HTTP API (/v1/orgs/ORG/search, ask, costs, stats, health, eval-runs), the dashboard (/ and
    /orgs/ORG) and the Prometheus scrape (/metrics)."""
    from aiohttp import web

    from callwise.api.app import create_app
    from callwise.wiring.api import answering_services
    from callwise.wiring.stack import open_answering
    from callwise.wiring.telemetry import running_operations, start_telemetry

    settings = load_settings()
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if token is None and host not in _LOOPBACK:
        raise typer.BadParameter("binding beyond loopback needs CALLWISE_API_TOKEN", param_hint="--host")

    start_telemetry("callwise-serve")  # /metrics, or OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set

    async def go() -> None:
        async with open_answering(settings) as stack:
            rt = stack.runtime
            app = create_app(answering_services(settings, stack))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port).start()
            except OSError as exc:
                raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
            console.print(f"callwise API on http://{host}:{port}/ (Ctrl-C to stop)")
            from callwise.wiring.integrations import running_dispatcher  # the outbox (issue 11)

            try:
                async with running_dispatcher(settings, rt.pool), running_operations(settings, rt.pool):
                    await asyncio.Event().wait()
            finally:
                await runner.cleanup()

    run(go)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
