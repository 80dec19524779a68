"""The customers' state the ledger's fast path wrote last, kept in the process between batches.

Stepping an agreement on needs the state of the customers its new events name (start, invoices so far, the
deal's commission so far, ...). Reading it every batch cost a statement and rebuilding the objects from rows;
most batches of a busy agreement follow one this process wrote itself. So each write of an agreement's fold and
customer state by the fast path stores a new random `state_token` on the agreement's state row
(AgreementState.state_token), and this cache keeps what that write left, under the token. The next batch has
the state row locked (`FOR UPDATE`) when it reads the token there: the same token means no one wrote the
agreement's state since (not another replica, not a refold, which clears the token, and the write was
committed: a rolled-back write's token was never stored), so what the cache holds is what the tables hold.

An entry is taken out (`take`) before the batch changes it and put back (`keep`) only once the statement that
writes its token has run, so a failure in between leaves nothing behind, never a half-changed entry.

An entry may know every customer of its agreement (`complete`): an agreement that has folded nothing yet has no
customer rows (they are written only with a fold state that names its last event), and a complete entry stays
complete through the writes it follows. Then a customer it does not know has no row, and is not read.
"""

from __future__ import annotations

import uuid

from services.commissions.domain import CustomerState

# Per customer key: its state as stored, or None when it has no row.
Known = dict[str, CustomerState | None]


class CustomerCache:
    def __init__(self, max_agreements: int = 10_000) -> None:
        self.max_agreements = max_agreements
        self._entries: dict[uuid.UUID, tuple[uuid.UUID, Known, bool]] = {}

    def take(self, agreement_id: uuid.UUID, token: uuid.UUID | None, *, folded: bool) -> tuple[Known, bool]:
        """What is known of the agreement's customers under `token` (the one its locked state row holds), taken
        out of the cache, and whether that is all of them; nothing when the state was written by anyone else
        since, and everything (none) when the agreement has `folded` nothing yet."""
        found = self._entries.pop(agreement_id, None)
        if not folded:
            return {}, True
        if found is None or token is None or found[0] != token:
            return {}, False
        return found[1], found[2]

    def keep(self, agreement_id: uuid.UUID, token: uuid.UUID, known: Known, complete: bool) -> None:
        """Once `token` is written to the agreement's state row in the transaction that wrote `known`."""
        if len(self._entries) >= self.max_agreements:
            self._entries.clear()
        self._entries[agreement_id] = (token, known, complete)

    def drop(self, agreement_id: uuid.UUID) -> None:
        self._entries.pop(agreement_id, None)


CUSTOMERS = CustomerCache()
