"""Commission maths: pure functions and value objects, no I/O.

The ledger of one agreement is a left fold over its partner's revenue events in business-time order
(`order`): `step` turns one event into ledger lines, given the fold's state so far. Folding every event
from an empty state (`fold`) gives the lines the ledger *should* hold; the service either steps new
events on from the stored state (events arriving in order, the common case) or folds again from scratch
and writes the difference as adjusting entries (an event arrived out of order, an agreement changed).

Rules, in the words of the agreement:
- A version is in force over [effective_from, effective_to). Revenue uses the version in force on its
  date; a deal booked before that version started keeps the version it was booked under, unless the
  newer version is retroactive.
- Basis `deal`: the deal amount earns once, when the opportunity is won. Basis `invoice`: each paid
  invoice earns, for the first invoice only (one-time), for invoices within N months of the
  customer's start (recurring), or for every invoice until the customer churns (lifetime).
- Tiered rates look at the agreement's revenue accumulated in the period (month/quarter/year):
  marginal tiers give each slice its own rate; whole-amount tiers put all of the period's revenue at the
  rate of the tier reached, so the event that crosses a threshold also carries the catch-up on the
  revenue before it. Both are `curve(cumulative)`; an event earns curve(after) - curve(before).
- Caps: per deal (for invoice basis, a deal is the customer's revenue stream) and per period; an event
  earns at most what is left under each.
- Clawback: a refund within the window reverses the refunded share of the commission; a churn reverses
  all commission on that customer's revenue dated within the window before it. Outside the window,
  nothing is reversed. Reversals do not give cap room back and do not lower the period's tier basis.

One module per concept: `values`, `rates`, `fold`, `recalculation` (rows to domain objects),
`validation`, `forecast`; this module gathers the names the service uses.
"""

from services.commissions.domain.fold import (
    fold,
    step,
)
from services.commissions.domain.forecast import (
    expected_commission,
)
from services.commissions.domain.rates import (
    describe_spif,
)
from services.commissions.domain.recalculation import (
    Adjustment,
    PostedRow,
    differences,
    facts_from_rows,
    posted_from_rows,
)
from services.commissions.domain.validation import (
    is_spif,
    place_version,
    validate_terms,
    validate_window,
)
from services.commissions.domain.values import (
    AgreementSpec,
    CustomerState,
    FoldState,
    Line,
    LineBook,
    PeriodState,
    Revenue,
    Version,
    customer_key,
    money,
    period_key,
    statement_range,
    tier_at,
)

__all__ = [
    "Adjustment",
    "AgreementSpec",
    "CustomerState",
    "FoldState",
    "Line",
    "LineBook",
    "PeriodState",
    "PostedRow",
    "Revenue",
    "Version",
    "customer_key",
    "describe_spif",
    "differences",
    "expected_commission",
    "facts_from_rows",
    "fold",
    "is_spif",
    "money",
    "period_key",
    "place_version",
    "posted_from_rows",
    "statement_range",
    "step",
    "tier_at",
    "validate_terms",
    "validate_window",
]
