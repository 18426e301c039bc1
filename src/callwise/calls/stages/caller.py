"""Stage: the caller's CRM record joins the prompt's customer block (``callwise.calls.caller``).

Runs after retrieval, so retrieval time counts toward the lookup budget; the first answer waits
for the lookup at most what is left of ``budget_s`` since call start, and a lookup that finishes
later lands for the next turn.
"""

from __future__ import annotations

import time

from callwise.calls.caller import customer_context
from callwise.calls.context import TurnContext
from callwise.routing.types import CustomerContext


class KnowCaller:
    name = "caller"

    async def run(self, ctx: TurnContext) -> None:
        lookup = ctx.call.caller
        if lookup is None or ctx.call.crm_customer_applied:
            return
        t0 = time.perf_counter()
        customer = await lookup.within_budget()
        waited = (time.perf_counter() - t0) * 1000
        if waited >= 1:
            ctx.outcome.latencies["crm_wait_ms"] = waited
        if customer is None:
            return
        known = customer_context(customer)
        had = ctx.call.customer or CustomerContext()
        # the CRM is the system of record; what the participant's metadata said fills the gaps
        ctx.call.customer = CustomerContext(name=known.name or had.name, plan=known.plan or had.plan,
                                            extra={**had.extra, **known.extra})
        ctx.call.crm_customer_applied = True
