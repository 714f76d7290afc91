"""Accounts, locks and postings: the lowest layer of the ledger.

Every grant and balance of a wallet in one asset is changed only while its wallet account row
is locked (``accounts_lock``), and locks are always taken in ascending account id, so two
transactions never deadlock. A posting writes a transaction and its entries (which must sum
to zero per asset) and moves the ``posted`` column of the wallet accounts it touches; system
accounts keep no balance row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from psycopg.types.json import Jsonb

from core.db import (
    JSONB_ARRAY,
    columns,
    hot_cursor,
    int_array,
    json_array,
    numeric_texts,
    rows_as,
    text_array,
)
from core.errors import AmountTooLarge, NotFound, ValidationFailed
from core.text import plain
from wallets.models import Account, Asset, LedgerTransaction, Wallet
from wallets.services.amounts import MAX_AMOUNT

ZERO = Decimal(0)


@dataclass(frozen=True)
class Leg:
    """One entry to post: ``amount`` into (positive) or out of (negative) ``account``."""

    account: Account
    amount: Decimal
    grant_id: str | None = None


def asset_get(code: str) -> Asset:
    try:
        return Asset.objects.get(code=code)
    except Asset.DoesNotExist:
        raise NotFound(f"Unknown asset '{code}'.", errors={"asset": ["Unknown asset."]}) from None


def wallet_get(wallet_id: int) -> Wallet:
    try:
        return Wallet.objects.get(pk=wallet_id)
    except Wallet.DoesNotExist:
        raise NotFound(f"Unknown wallet {wallet_id}.") from None


def wallet_create(*, owner: str) -> Wallet:
    owner = (owner or "").strip()
    if not owner or len(owner) > 255:
        raise ValidationFailed("A wallet needs an owner label of 1–255 characters.")
    wallet, _ = Wallet.objects.get_or_create(owner=owner)
    return wallet


SYSTEM_ACCOUNT_SQL = (
    f"SELECT {columns(Account)} FROM wallets_account "  # noqa: S608 - column names only
    "WHERE system_code = %s AND asset_id = %s"
)
ACCOUNTS_LOCK_SQL = (
    f"SELECT {columns(Account)} FROM wallets_account "  # noqa: S608 - column names only
    "WHERE wallet_id = %s AND asset_id = ANY(%s) ORDER BY id FOR UPDATE"
)


def system_account(code: str, asset_code: str) -> Account:
    """The system account ``code`` in ``asset_code``, made on first use."""
    found = rows_as(Account, SYSTEM_ACCOUNT_SQL, [code, asset_code])
    if found:
        return found[0]
    Account.objects.bulk_create(
        [Account(system_code=code, asset_id=asset_code)], ignore_conflicts=True
    )
    return Account.objects.get(system_code=code, asset_id=asset_code)


def accounts_lock(wallet_id: int, asset_codes: Iterable[str]) -> dict[str, Account]:
    """Make the wallet's accounts in these assets if missing and lock them, in id order.
    Must run inside a transaction; the locks are held until it ends."""
    codes = sorted(set(asset_codes))

    def lock() -> dict[str, Account]:
        rows = rows_as(Account, ACCOUNTS_LOCK_SQL, [wallet_id, codes])
        return {account.asset_id: account for account in rows}

    accounts = lock()
    if len(accounts) == len(codes):
        return accounts
    Account.objects.bulk_create(
        [Account(wallet_id=wallet_id, asset_id=code) for code in codes if code not in accounts],
        ignore_conflicts=True,
    )
    return lock()


@dataclass(frozen=True, slots=True)
class TxnHead:
    """The columns of a ledger transaction to write. A ``LedgerTransaction`` instance costs
    ~25 µs of Python to make; only the callers that return the transaction get one
    (``posting_saved``): a batch of 1,000 charges writes its transactions from these."""

    wallet_id: int | None
    kind: str
    reverses: LedgerTransaction | None
    reference: str
    description: str
    metadata: dict
    created_at: datetime
    counterparty_wallet_id: int | None

    @property
    def reverses_id(self) -> int | None:
        return self.reverses.pk if self.reverses is not None else None


@dataclass
class Posting:
    """One balanced transaction as SQL: common table expressions that write the transaction
    (``txn``, yielding its ``id``), its entries, the grants' remainders and the wallet
    accounts' balances, for a caller to run alone (``ledger_post``) or inside a larger
    statement of its own (an event's charge writes its row and counter in the same one)."""

    ctes: str
    params: list
    head: TxnHead
    accounts: dict[int, tuple[Account, Decimal, Decimal]]
    legs: list[Leg] = field(default_factory=list)
    takes: dict[str, Decimal] = field(default_factory=dict)

    def applied(self) -> None:
        """Record in the Python objects what the statement did to the accounts."""
        for account, posted, debt in self.accounts.values():
            account.posted += posted
            account.debt += debt

    def unapplied(self) -> None:
        """Undo ``applied`` (the statement turned out to write nothing)."""
        for account, posted, debt in self.accounts.values():
            account.posted -= posted
            account.debt -= debt


def posting(
    *,
    kind: str,
    legs: Sequence[Leg],
    wallet_id: int | None,
    reference: str = "",
    description: str = "",
    metadata: dict | None = None,
    reverses: LedgerTransaction | None = None,
    grant_takes: Sequence[tuple[str, Decimal]] = (),
    now: datetime | None = None,
    after: str = "",
    with_sql: bool = True,
    counterparty_wallet_id: int | None = None,
) -> Posting:
    """The SQL of one balanced transaction (see ``Posting``). ``grant_takes`` lowers grants'
    remainders in the same statement (a draw's plan); the caller holds the account locks.
    ``after``: see below."""
    legs = [leg for leg in legs if leg.amount]
    sums: dict[str, Decimal] = {}
    for leg in legs:
        asset = leg.account.asset_id
        sums[asset] = sums.get(asset, ZERO) + leg.amount
    if any(sums.values()):  # a programming error, never user input
        unbalanced = {asset: total for asset, total in sums.items() if total}
        raise AssertionError(f"unbalanced transaction {kind}: {unbalanced}")
    now = now or timezone.now()
    head = TxnHead(
        wallet_id=wallet_id,
        kind=kind,
        reverses=reverses,
        reference=reference[:255],
        description=description[:500],
        metadata=metadata or {},
        created_at=now,
        counterparty_wallet_id=counterparty_wallet_id,
    )
    # A wallet-account leg names the grant it moves; one without a grant moves the debt
    # (money owed beyond every grant): out of the wallet raises it, into the wallet lowers it.
    moved: dict[int, tuple[Account, Decimal, Decimal]] = {}
    for leg in legs:
        account = leg.account
        if account.wallet_id is not None:
            first, posted, debt = moved.get(account.id, (account, ZERO, ZERO))
            moved[account.id] = (
                first,
                posted + leg.amount,
                debt - leg.amount if leg.grant_id is None else debt,
            )
    for first, _, debt in moved.values():
        if debt > 0 and first.debt + debt >= MAX_AMOUNT:
            # a capture overdraws (it is never declined), and a wallet can hold many
            # holds across prices and periods, each bounded alone: the debt they leave is
            # bounded here, where it grows, as every amount Billfold records
            raise AmountTooLarge(
                f"The wallet's debt in {first.asset_id} would be "
                f"{plain(first.debt + debt)}: amounts stay below 10^18.",
                errors={"amount": ["The wallet's debt would reach 10^18."]},
            )
    takes: dict[str, Decimal] = {}
    for grant_id, take in grant_takes:
        takes[grant_id] = takes.get(grant_id, ZERO) + take
    if not with_sql:  # written by ``ledger_post_many`` from the fields alone
        return Posting(ctes="", params=[], head=head, accounts=moved, legs=legs, takes=takes)
    grant_ids = sorted(takes)
    account_ids = sorted(moved)
    # ``after`` names a CTE yielding the id to give the transaction (``txn_id`` column): the
    # posting then happens only if that CTE produced a row (every other CTE joins ``txn``)
    if after:
        values = (
            f"SELECT {after}.txn_id, "  # noqa: S608 - a CTE name of the caller's statement
            f"%s::bigint, %s, %s::bigint, %s, %s, %s::timestamptz, %s, %s::bigint FROM {after}"
        )
    else:
        values = "VALUES (%s::bigint, %s, %s::bigint, %s, %s, %s::timestamptz, %s, %s::bigint)"
    ctes = (
        "txn AS (INSERT INTO wallets_ledgertransaction "  # noqa: S608 - fixed text
        f"({'id, ' if after else ''}wallet_id, kind, reverses_id, reference, description, "
        f"created_at, metadata, counterparty_wallet_id) {values} RETURNING id), "
        "entries AS (INSERT INTO wallets_ledgerentry "
        "(transaction_id, account_id, asset_id, grant_id, amount, created_at) "
        "SELECT txn.id, e.account_id, e.asset_id, e.grant_id, e.amount, %s FROM txn, "
        "unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::numeric[]) "
        "AS e(account_id, asset_id, grant_id, amount) RETURNING 1), "
        "grant_takes AS (UPDATE wallets_grant g SET remaining = g.remaining - d.take "
        "FROM txn, unnest(%s::varchar[], %s::numeric[]) AS d(id, take) WHERE g.id = d.id "
        "RETURNING 1), "
        "balances AS (UPDATE wallets_account a SET posted = a.posted + d.posted, "
        "debt = a.debt + d.debt FROM txn, unnest(%s::bigint[], %s::numeric[], %s::numeric[]) "
        "AS d(id, posted, debt) WHERE a.id = d.id RETURNING 1)"
    )
    params = [
        wallet_id,
        kind,
        head.reverses_id,
        head.reference,
        head.description,
        now,
        Jsonb(head.metadata),
        counterparty_wallet_id,
        now,
        [leg.account.pk for leg in legs],
        [leg.account.asset_id for leg in legs],
        [leg.grant_id for leg in legs],
        [leg.amount for leg in legs],
        grant_ids,
        [takes[g] for g in grant_ids],
        account_ids,
        [moved[a][1] for a in account_ids],
        [moved[a][2] for a in account_ids],
    ]
    return Posting(
        ctes=ctes, params=params, head=head, accounts=moved, legs=legs, takes=dict(takes)
    )


def posting_saved(post: Posting, txn_id: int) -> LedgerTransaction:
    """The posting's transaction as saved with ``txn_id`` (the caller records the balance
    changes in its account objects with ``applied``, once)."""
    head = post.head
    txn = LedgerTransaction(
        id=txn_id,
        wallet_id=head.wallet_id,
        kind=head.kind,
        reverses=head.reverses,
        reference=head.reference,
        description=head.description,
        metadata=head.metadata,
        created_at=head.created_at,
        counterparty_wallet_id=head.counterparty_wallet_id,
    )
    txn._state.adding = False
    txn._state.db = "default"
    return txn


def txn_ids_draw(count: int) -> list[int]:
    """``count`` new ledger transaction ids from the sequence (one statement)."""
    if not count:
        return []
    with hot_cursor() as cursor:
        cursor.execute(
            # the sequence's name looked up once, not once per id (~7 µs each)
            "WITH seq AS MATERIALIZED (SELECT "
            "pg_get_serial_sequence('wallets_ledgertransaction', 'id')::regclass AS s) "
            "SELECT nextval(seq.s) FROM seq, generate_series(1, %b)",
            [count],
        )
        return [row[0] for row in cursor.fetchall()]


def ledger_post_many(posts: Sequence[Posting], ids: Sequence[int] | None = None) -> list[int]:
    """Write many postings (see ``posting``; already ``applied`` by the caller) with one
    statement per table: the transactions (with ``ids`` drawn by ``txn_ids_draw``, or drawn
    here), their entries, the grants' remainders and the accounts' balances, each summed per
    row. The caller holds the locks of every account involved. Returns the transactions'
    ids, in the order of ``posts``."""
    if not posts:
        return []
    ids = list(ids) if ids is not None else txn_ids_draw(len(posts))
    with hot_cursor() as cursor:
        txns = [post.head for post in posts]
        cursor.execute(
            "INSERT INTO wallets_ledgertransaction "  # noqa: S608 - fixed text
            "(id, wallet_id, kind, reverses_id, reference, description, created_at, metadata, "
            "counterparty_wallet_id) "
            "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::varchar[], %b::bigint[], "
            f"%b::varchar[], %b::varchar[], %b::timestamptz[], {JSONB_ARRAY}, %b::bigint[])",
            [
                int_array(ids),
                int_array(t.wallet_id for t in txns),
                text_array(t.kind for t in txns),
                int_array(t.reverses_id for t in txns),
                text_array(t.reference for t in txns),
                text_array(t.description for t in txns),
                [t.created_at for t in txns],
                json_array(t.metadata for t in txns),
                int_array(t.counterparty_wallet_id for t in txns),
            ],
        )
        entries = [(txn_id, post) for txn_id, post in zip(ids, posts, strict=True)]
        legs = [
            (txn_id, post.head.created_at, leg) for txn_id, post in entries for leg in post.legs
        ]
        cursor.execute(
            "INSERT INTO wallets_ledgerentry "
            "(transaction_id, account_id, asset_id, grant_id, amount, created_at) "
            "SELECT * FROM unnest(%b::bigint[], %b::bigint[], %b::varchar[], %b::varchar[], "
            "%b::numeric[], %b::timestamptz[])",
            [
                int_array(t for t, _, _ in legs),
                int_array(leg.account.pk for _, _, leg in legs),
                text_array(leg.account.asset_id for _, _, leg in legs),
                text_array(leg.grant_id for _, _, leg in legs),
                numeric_texts(leg.amount for _, _, leg in legs),
                [at for _, at, _ in legs],
            ],
        )
        takes: dict[str, Decimal] = defaultdict(Decimal)
        moved: dict[int, list[Decimal]] = {}
        for post in posts:
            for grant_id, take in post.takes.items():
                takes[grant_id] += take
            for account_id, (_, posted, debt) in post.accounts.items():
                total = moved.setdefault(account_id, [ZERO, ZERO])
                total[0] += posted
                total[1] += debt
        grant_ids = sorted(takes)
        if grant_ids:
            cursor.execute(
                "UPDATE wallets_grant g SET remaining = g.remaining - d.take "
                "FROM unnest(%b::varchar[], %b::numeric[]) AS d(id, take) WHERE g.id = d.id",
                [text_array(grant_ids), numeric_texts(takes[g] for g in grant_ids)],
            )
        account_ids = sorted(moved)
        if account_ids:
            cursor.execute(
                "UPDATE wallets_account a SET posted = a.posted + d.posted, "
                "debt = a.debt + d.debt FROM unnest(%b::bigint[], %b::numeric[], %b::numeric[]) "
                "AS d(id, posted, debt) WHERE a.id = d.id",
                [
                    int_array(account_ids),
                    numeric_texts(moved[a][0] for a in account_ids),
                    numeric_texts(moved[a][1] for a in account_ids),
                ],
            )
    return ids


def ledger_post(
    *,
    kind: str,
    legs: Sequence[Leg],
    wallet_id: int | None,
    reference: str = "",
    description: str = "",
    metadata: dict | None = None,
    reverses: LedgerTransaction | None = None,
    counterparty_wallet_id: int | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction and move the posted balance of its wallet accounts,
    in one statement."""
    post = posting(
        kind=kind,
        legs=legs,
        wallet_id=wallet_id,
        reference=reference,
        description=description,
        metadata=metadata,
        reverses=reverses,
        counterparty_wallet_id=counterparty_wallet_id,
    )
    with hot_cursor() as cursor:
        cursor.execute(f"WITH {post.ctes} SELECT id FROM txn", post.params)  # noqa: S608
        txn_id = cursor.fetchone()[0]
    post.applied()
    return posting_saved(post, txn_id)
