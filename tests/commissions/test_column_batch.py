"""ColumnBatch: which columns of a batch travel as one scalar, and the statement text of each shape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.commissions.column_batch import ColumnBatch

BATCH = ColumnBatch(("id", "currency", "amount", "note"), ("bigint", "text", "numeric", "text"), first=3,
                    constant_ok=("currency", "amount", "note"))


class TestColumnBatch:
    def test_a_column_with_one_value_in_every_row_travels_as_that_value(self):
        rows = [{"id": 1, "currency": "USD", "amount": Decimal("1.00"), "note": None},
                {"id": 2, "currency": "USD", "amount": Decimal("2.00"), "note": None},
                {"id": 3, "currency": "USD", "amount": Decimal("1.00"), "note": None}]
        shape, args = BATCH.args_of(rows)
        assert shape == (False, True, False, True)
        assert args == [(1, 2, 3), "USD", (Decimal("1.00"), Decimal("2.00"), Decimal("1.00")), None]
        assert BATCH.rows(shape) == ("(SELECT a.id, $4::text AS currency, a.amount, $6::text AS note "
                                     "FROM unnest($3::bigint[], $5::numeric[]) AS a(id, amount)) AS u")

    def test_a_column_not_allowed_to_be_constant_is_an_array_even_with_one_row(self):
        shape, args = BATCH.args_of([{"id": 7, "currency": "EUR", "amount": Decimal(1), "note": "x"}])
        assert shape == (False, True, True, True) and args == [(7,), "EUR", Decimal(1), "x"]

    def test_rows_as_attributes_and_an_empty_batch(self):
        class Row:
            def __init__(self, i: int) -> None:
                self.id, self.currency, self.amount, self.note = i, "USD" if i else "EUR", Decimal(i), str(i)

        assert BATCH.args_of([Row(0), Row(1)], attributes=True) == (
            (False, False, False, False), [(0, 1), ("EUR", "USD"), (Decimal(0), Decimal(1)), ("0", "1")])
        assert BATCH.args_of([]) == ((False, False, False, False), [[], [], [], []])

    def test_a_column_that_differs_in_any_one_row_is_not_constant(self):
        rows = [{"id": i, "currency": "USD", "amount": Decimal(1), "note": "a"} for i in range(5)]
        rows[-1]["note"] = "b"
        rows[2]["currency"] = "EUR"
        rows[1]["amount"] = Decimal(2)  # neither first, middle nor last
        shape, _ = BATCH.args_of(rows)
        assert shape == (False, False, False, False)

    def test_every_column_allowed_to_be_constant_is_refused(self):
        with pytest.raises(ValueError):
            ColumnBatch(("a", "b"), ("int", "int"), constant_ok=("a", "b"))
