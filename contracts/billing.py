"""Events a billing system publishes: invoices paid, refunds, customers churned.

PartnerOps has no billing service of its own; these are the contract an external billing system (or a
small bridge from Stripe, Chargebee, NetSuite …) publishes to, on the BILLING stream. The commissions
service consumes them; the same facts can also be entered through the gateway's API.

A revenue fact is identified by its natural key (`invoice_id`, `refund_id`, or customer + churn date),
not only by `event_id`: the same invoice published twice with different event ids is one invoice.
A later event with the same natural key and a newer `occurred_at` corrects the earlier one.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field, model_validator

from contracts.base import Event, StreamSpec
from contracts.fields import Currency, Day, Moment, line, text
from contracts.money import PositiveAmount

STREAM = StreamSpec(
    name="BILLING",
    subjects=("billing.>",),
    description="Revenue facts from a billing system: invoices paid, refunds, churned customers.",
)

Ref = line(200, 1)


class InvoicePaidV1(Event):
    """Sent when a customer pays an invoice for a product or service a partner brought in or resold."""

    subject: ClassVar[str] = "billing.invoice.paid.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    invoice_id: Ref
    customer: Ref = Field(description="The customer's name or key, as the pipeline's opportunities name it.")
    partner_id: UUID | None = Field(default=None, description="The partner; or give opportunity_id.")
    opportunity_id: UUID | None = Field(default=None, description="The won opportunity the invoice bills.")
    amount: PositiveAmount
    currency: Currency
    paid_at: Moment
    customer_started_on: Day | None = Field(
        default=None, description="When the customer's subscription started, if the billing system knows."
    )
    deal_model: line(40) | None = None
    source: line(60) = "billing"

    @model_validator(mode="after")
    def _attributable(self) -> InvoicePaidV1:
        if self.partner_id is None and self.opportunity_id is None:
            raise ValueError("give partner_id or opportunity_id, so the invoice can be attributed to a partner")
        return self

    def aggregate_key(self) -> str:
        return f"invoice:{self.invoice_id}"


class InvoiceRefundedV1(Event):
    """Sent when all or part of a paid invoice is refunded to the customer."""

    subject: ClassVar[str] = "billing.invoice.refunded.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    refund_id: Ref
    invoice_id: Ref
    amount: PositiveAmount
    currency: Currency
    refunded_at: Moment
    partner_id: UUID | None = None
    source: line(60) = "billing"

    def aggregate_key(self) -> str:
        return f"invoice:{self.invoice_id}"


class CustomerChurnedV1(Event):
    """Sent when a customer cancels: no more invoices, and commission inside the clawback window is reversed."""

    subject: ClassVar[str] = "billing.customer.churned.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    customer: Ref
    partner_id: UUID | None = None
    opportunity_id: UUID | None = None
    churned_at: Moment
    reason: text(500) | None = None
    source: line(60) = "billing"

    @model_validator(mode="after")
    def _attributable(self) -> CustomerChurnedV1:
        if self.partner_id is None and self.opportunity_id is None:
            raise ValueError("give partner_id or opportunity_id, so the churn can be attributed to a partner")
        return self

    def aggregate_key(self) -> str:
        return f"customer:{self.customer}"


EVENTS: tuple[type[Event], ...] = (InvoicePaidV1, InvoiceRefundedV1, CustomerChurnedV1)
