"""Rows sent to Postgres as one parameter per column, for the ledger's hot statements on the asyncpg connection.

A batch statement sends one array per column and unpacks the arrays with `unnest` (as `runtime.db.ArrayRows`
does through SQLAlchemy). Encoding those arrays was a good part of the engine's own CPU (asyncpg encodes every
element and checks each for a nested array; docs/benchmarks.md), and many columns hold one value in every row
of a batch: the source and actor of a consumer's revenue, the currency, no reversed entry, revision 1. Such a
column is sent as one scalar parameter instead, so a statement has a variant per set of such columns; each
variant is prepared once per connection (asyncpg's statement cache), and a stream of batches of one shape uses
the same one or two.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any


class ColumnBatch:
    """Columns `names` of Postgres types `types` (element types, no `[]`), as the derived table `rows(shape)`
    (columns in order, under their names) with parameters numbered from `$first`. Columns in `constant_ok`
    may travel as a scalar when every row holds the same value; the others always travel as arrays (at least
    one must, so that `unnest` knows the number of rows)."""

    def __init__(self, names: Sequence[str], types: Sequence[str], *, first: int = 1,
                 constant_ok: Sequence[str] = ()) -> None:
        if len(names) != len(types):
            raise ValueError("one type per column")
        if set(constant_ok) >= set(names) or not set(constant_ok) <= set(names):
            raise ValueError("constant_ok must name some of the columns, not all")
        self.names, self.types, self.first = tuple(names), tuple(types), first
        self._may = tuple(n in constant_ok for n in self.names)
        self._sql: dict[tuple[bool, ...], str] = {}
        self._items, self._attrs = itemgetter(*self.names), attrgetter(*self.names)

    def args_of(self, rows: Sequence[Any], *, attributes: bool = False) -> tuple[tuple[bool, ...], list[Any]]:
        """`args` of rows that hold the columns as keys (dicts), or as attributes: the rows are turned into
        columns by `zip` over an itemgetter or attrgetter of every column (C loops, not a Python loop per
        column and row)."""
        if not rows:
            return self.args([[] for _ in self.names])
        pick = self._attrs if attributes else self._items
        return self.args(list(zip(*map(pick, rows), strict=True)))

    def args(self, columns: Sequence[Sequence[Any]]) -> tuple[tuple[bool, ...], list[Any]]:
        """The batch's shape (which columns travel as a scalar) and its parameters, from one list of values
        per column (all of one length)."""
        shape: list[bool] = []
        out: list[Any] = []
        for may, values in zip(self._may, columns, strict=True):
            if may and _same(values):
                shape.append(True)
                out.append(values[0])
            else:
                shape.append(False)
                out.append(values)
        return tuple(shape), out

    def rows(self, shape: tuple[bool, ...]) -> str:
        """The derived table `(SELECT ... FROM unnest(...)) AS u` for this shape."""
        found = self._sql.get(shape)
        if found is None:
            arrays, unpacked, select = [], [], []
            for i, (name, kind, scalar) in enumerate(zip(self.names, self.types, shape, strict=True)):
                p = f"${self.first + i}"
                if scalar:
                    select.append(f"{p}::{kind} AS {name}")
                else:
                    arrays.append(f"{p}::{kind}[]")
                    unpacked.append(name)
                    select.append(f"a.{name}")
            found = self._sql[shape] = (f"(SELECT {', '.join(select)} FROM unnest({', '.join(arrays)}) "
                                        f"AS a({', '.join(unpacked)})) AS u")
        return found


def _same(values: Sequence[Any]) -> bool:
    """Every value equal to the first (values of one column: one type, where equal means stored alike)."""
    n = len(values)
    if n == 0:
        return False
    first = values[0]
    # Two probes reject most varying columns before the full count.
    return values[-1] == first and values[n // 2] == first and values.count(first) == n
