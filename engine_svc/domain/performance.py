"""How the copies did: each copy's slippage and each follower account's profit and loss.

Pure: Decimal arithmetic over intents and portfolios, no I/O. The profit and loss is the
copies' own, by average cost: a buy adds to the copies' open quantity at its fill price, a sell
realizes (fill price - average cost) on the part of the open quantity it closes (a sell of more
than the copies bought, from holdings the account had before, closes only what they bought).
Open quantities are valued at the price the account's valuation gives the base asset now. On a
derivatives market (a symbol with a settle suffix, ``BTC/USDT:USDT``) the copies hold a signed
position instead: a sell opens or adds to a short, a buy closes it, each close realizes against
the average entry, and the open position is valued at the venue's mark price of the account's
position there. The venue's fees and funding are not recorded by the engine, so they are not
counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine_svc.domain.model import Intent, Portfolio, Side

PLACES = Decimal("0.00000001")
"""Prices and amounts are given to 8 decimal places (a satoshi)."""
DOLLARS = frozenset({"USDT", "USD", "USDC"})
"""Quote currencies counted as one another in an account's totals."""


def _round(value: Decimal) -> Decimal:
    return value.quantize(PLACES)


def slippage(intent: Intent) -> Decimal | None:
    """Return what the copy's fill cost against the leader's price, as a fraction of it.

    Positive when the follower paid more (a buy) or got less (a sell) than the leader; ``None``
    until something filled or when either price is unknown.
    """
    leader, fill = intent.leader_price, intent.average_price
    if not leader or leader <= 0 or fill is None or fill <= 0 or intent.filled_quantity <= 0:
        return None
    moved = fill - leader if intent.side is Side.BUY else leader - fill
    return _round(moved / leader)


@dataclass(frozen=True)
class SymbolPnl:
    """The copies' position in one symbol at one follower account."""

    symbol: str
    quantity: Decimal
    average_cost: Decimal | None
    mark_price: Decimal | None
    realized: Decimal
    unrealized: Decimal | None
    side: str = ""
    """On a derivatives market: ``long``, ``short`` or ``flat``; empty on spot."""


@dataclass(frozen=True)
class AccountPnl:
    """One follower account: its value now and the copies' profit and loss there."""

    exchange_id: str
    quote_currency: str
    equity: Decimal | None
    realized: Decimal
    unrealized: Decimal | None
    positions: tuple[SymbolPnl, ...] = field(default=())


@dataclass
class _Book:
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # the total paid for ``quantity``
    realized: Decimal = Decimal(0)

    def fill(self, side: Side, quantity: Decimal, price: Decimal) -> None:
        if side is Side.BUY:
            self.quantity += quantity
            self.cost += quantity * price
            return
        closed = min(quantity, self.quantity)
        if closed <= 0:
            return
        average = self.cost / self.quantity
        self.realized += closed * (price - average)
        self.cost -= closed * average
        self.quantity -= closed
        if self.quantity == 0:
            self.cost = Decimal(0)


@dataclass
class _PositionBook:
    """A derivatives position: ``quantity`` signed (negative: short)."""

    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # the entry value of abs(quantity)
    realized: Decimal = Decimal(0)

    def fill(self, side: Side, quantity: Decimal, price: Decimal) -> None:
        signed = quantity if side is Side.BUY else -quantity
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            self.quantity += signed
            self.cost += quantity * price
            return
        held = abs(self.quantity)
        closed = min(quantity, held)
        average = self.cost / held
        direction = 1 if self.quantity > 0 else -1
        self.realized += closed * (price - average) * direction
        self.cost -= closed * average
        self.quantity += signed
        if closed == held:
            # Closed, and the rest (if any) opens the other side at this price.
            self.cost = abs(self.quantity) * price


def _derivative(symbol: str) -> bool:
    return ":" in symbol


def _position_mark(portfolio: Portfolio | None, symbol: str) -> Decimal | None:
    if portfolio is None:
        return None
    for position in portfolio.positions:
        if position.symbol == symbol and position.mark_price is not None:
            return position.mark_price
    return None


def _mark(portfolio: Portfolio | None, base: str) -> Decimal | None:
    if portfolio is None:
        return None
    held = portfolio.balance(base)
    if held is None or held.value is None or held.total <= 0:
        return None
    return held.value / held.total


def _same_money(quote: str, account_quote: str) -> bool:
    return quote == account_quote or (quote in DOLLARS and account_quote in DOLLARS)


@dataclass
class Ledger:
    """The copies' books of a configuration, per (follower account, symbol): what
    :func:`account_pnl` folds its intents into, oldest first.

    A ledger can be kept and extended: folding intents ``a`` then ``b`` gives the books of
    folding ``a + b``, so a caller may keep the ledger of intents that no longer change and
    fold only the newer ones on a :meth:`copy` of it.
    """

    books: dict[tuple[str, str], _Book | _PositionBook] = field(default_factory=dict)

    def add(self, intent: Intent) -> None:
        """Fold one intent (the next oldest) into its account's book of its symbol."""
        if intent.filled_quantity <= 0:
            return
        if intent.average_price is None or intent.average_price <= 0:
            return
        key = (intent.target_exchange_id, intent.symbol)
        book = self.books.get(key)
        if book is None:
            book = _PositionBook() if _derivative(intent.symbol) else _Book()
            self.books[key] = book
        book.fill(intent.side, intent.filled_quantity, intent.average_price)

    def copy(self) -> Ledger:
        """Return a ledger with the same books that folds on without changing this one."""
        return Ledger(
            {
                key: type(book)(book.quantity, book.cost, book.realized)
                for key, book in self.books.items()
            }
        )

    def account(self, exchange_id: str) -> dict[str, _Book | _PositionBook]:
        """Return the books of one account, by symbol."""
        return {symbol: book for (acct, symbol), book in self.books.items() if acct == exchange_id}


def account_pnl(
    exchange_id: str,
    intents: Iterable[Intent],
    portfolio: Portfolio | None,
) -> AccountPnl:
    """Return the account's value and its copies' profit and loss.

    Parameters
    ----------
    exchange_id
        The follower account.
    intents
        The configuration's intents, oldest first (those of other accounts are ignored).
    portfolio
        The account's portfolio now, ``None`` when it could not be read.
    """
    ledger = Ledger()
    for intent in intents:
        if intent.target_exchange_id == exchange_id:
            ledger.add(intent)
    return ledger_pnl(exchange_id, ledger, portfolio)


def ledger_pnl(exchange_id: str, ledger: Ledger, portfolio: Portfolio | None) -> AccountPnl:
    """Return :func:`account_pnl` of an account from a ledger folded over the intents."""
    books = ledger.account(exchange_id)
    # Without a portfolio the totals are in the quote of the first symbol traded.
    quotes = [s.partition("/")[2].split(":", 1)[0] for s in sorted(books)]
    account_quote = portfolio.quote_currency if portfolio is not None else ""
    account_quote = account_quote or (quotes[0] if quotes else "")
    realized_total = Decimal(0)
    unrealized_total: Decimal | None = Decimal(0)
    positions: list[SymbolPnl] = []
    for symbol in sorted(books):
        book = books[symbol]
        base, _, quote = symbol.partition("/")
        quote = quote.split(":", 1)[0]
        side = ""
        if isinstance(book, _PositionBook):
            mark = _position_mark(portfolio, symbol)
            size = abs(book.quantity)
            side = "flat" if book.quantity == 0 else "long" if book.quantity > 0 else "short"
        else:
            mark = _mark(portfolio, base)
            size = book.quantity
        average = book.cost / size if size > 0 else None
        unrealized: Decimal | None
        if size == 0:
            unrealized = Decimal(0)
        elif mark is None or average is None:
            unrealized = None
        else:
            # book.quantity is signed on a derivatives market: a short gains as the mark falls.
            unrealized = book.quantity * (mark - average)
        positions.append(
            SymbolPnl(
                symbol=symbol,
                quantity=size,
                average_cost=None if average is None else _round(average),
                mark_price=None if mark is None else _round(mark),
                realized=_round(book.realized),
                unrealized=None if unrealized is None else _round(unrealized),
                side=side,
            )
        )
        if account_quote and _same_money(quote, account_quote):
            realized_total += book.realized
            if unrealized is None or unrealized_total is None:
                unrealized_total = None
            else:
                unrealized_total += unrealized
    return AccountPnl(
        exchange_id=exchange_id,
        quote_currency=account_quote,
        equity=None if portfolio is None or portfolio.equity is None else portfolio.equity,
        realized=_round(realized_total),
        unrealized=None if unrealized_total is None else _round(unrealized_total),
        positions=tuple(positions),
    )


def accounts_pnl(
    targets: Iterable[str],
    intents: Iterable[Intent],
    portfolios: Mapping[str, Portfolio | None],
) -> list[AccountPnl]:
    """Return :func:`account_pnl` of every follower account in ``targets``, in that order."""
    ledger = Ledger()
    for intent in intents:
        ledger.add(intent)
    return ledger_accounts_pnl(targets, ledger, portfolios)


def ledger_accounts_pnl(
    targets: Iterable[str],
    ledger: Ledger,
    portfolios: Mapping[str, Portfolio | None],
) -> list[AccountPnl]:
    """Return :func:`ledger_pnl` of every follower account in ``targets``, in that order."""
    return [ledger_pnl(t, ledger, portfolios.get(t)) for t in targets]
