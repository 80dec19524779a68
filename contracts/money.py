"""What an amount of money is, on the wire and in a table: the one definition.

Money is `Decimal` with its currency beside it (a separate `currency` field or column), never a float,
and travels as a JSON string ("1250.00"). An amount a person or a source system enters has at most
two decimal places and stays below 10^14; a sum of such amounts (a balance, a tier threshold, a KPI)
has room for 10^16; a stored money column, sums included, has room for 10^18.
"""

from decimal import Decimal
from typing import Annotated

from pydantic import Field

SCALE = 2
AMOUNT_DIGITS = 16
TOTAL_DIGITS = 18
# Precision and scale of every money column in every schema (`runtime.db.MONEY`); wider than a
# total so sums over many rows fit.
COLUMN_DIGITS = 20

# An amount that may be zero (a deal's value, a setting) and one that may not (an invoice, a request).
Amount = Annotated[Decimal, Field(ge=0, max_digits=AMOUNT_DIGITS, decimal_places=SCALE, examples=["12500.00"])]
PositiveAmount = Annotated[Decimal, Field(gt=0, max_digits=AMOUNT_DIGITS, decimal_places=SCALE,
                                          examples=["12500.00"])]
# A sum or a threshold on sums (cumulative revenue where a tier starts, a cap, a balance).
Total = Annotated[Decimal, Field(max_digits=TOTAL_DIGITS, decimal_places=SCALE)]
