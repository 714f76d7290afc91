"""A wallet at a glance, shown on the wallet page and on the customer page of ``billing``:
balances per asset, grants in burn-down order, links to its history, and which holder an
account belongs to."""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import Case, F, IntegerField, Value, When
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.admin.formatting import EMPTY, datetime_text, format_amount
from core.admin.links import changelist_link, link
from wallets.models import Account, Grant, Hold, LedgerTransaction, Wallet

WALLET_PANEL_GRANTS = 50


_NUM = ' style="text-align:right;white-space:nowrap"'


def wallet_panel(
    wallet: Wallet | None,
    grant_action: Callable[[Grant], SafeString | str] | None = None,
) -> SafeString | str:
    """Per asset: posted, held and available; then the wallet's grants, active ones first in
    burn-down order (priority, earliest expiry, oldest). ``grant_action``, when given, fills a
    last "Action" column per grant (e.g. a "Void…" link); it must not query the database."""
    if wallet is None:
        return EMPTY
    accounts = list(
        Account.objects.filter(wallet=wallet)
        .select_related("asset")
        .order_by("asset__kind", "asset")
    )
    if accounts:
        balances = format_html(
            "<table><thead><tr><th>Asset</th><th{}>Posted</th><th{}>Held</th>"
            "<th{}>Available</th></tr></thead><tbody>{}</tbody></table>",
            SafeString(_NUM),
            SafeString(_NUM),
            SafeString(_NUM),
            format_html_join(
                "",
                "<tr><td>{}</td><td{}>{}</td><td{}>{}</td><td{}><strong>{}</strong></td></tr>",
                (
                    (
                        account.asset.code,
                        SafeString(_NUM),
                        format_amount(account.posted, account.asset.decimals),
                        SafeString(_NUM),
                        format_amount(account.held, account.asset.decimals),
                        SafeString(_NUM),
                        format_amount(account.available, account.asset.decimals),
                    )
                    for account in accounts
                ),
            ),
        )
    else:
        balances = format_html("<p>{}</p>", "No balances yet.")

    grants_qs = Grant.objects.filter(wallet=wallet)
    total = grants_qs.count()
    grants = list(
        grants_qs.select_related("asset")
        .annotate(
            closed=Case(
                When(status=Grant.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by(
            "closed",
            "asset",
            "priority",
            F("expires_at").asc(nulls_last=True),
            "created_at",
        )[:WALLET_PANEL_GRANTS]
    )
    if grants:
        action_cell = "<td>{}</td>" if grant_action is not None else ""
        grant_rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td{}>{}</td><td{}>{}</td>"
            "<td{}>{}</td><td>{}</td><td>{}</td>" + action_cell + "</tr>",
            (
                (
                    link(Grant, grant.pk),
                    grant.asset.code,
                    grant.get_purpose_display(),
                    SafeString(_NUM),
                    grant.priority,
                    SafeString(_NUM),
                    format_amount(grant.amount, grant.asset.decimals),
                    SafeString(_NUM),
                    format_amount(grant.remaining, grant.asset.decimals),
                    SafeString(_NUM),
                    format_amount(grant.held, grant.asset.decimals),
                    datetime_text(grant.expires_at) if grant.expires_at else "never",
                    grant.get_status_display(),
                    *((grant_action(grant),) if grant_action is not None else ()),
                )
                for grant in grants
            ),
        )
        grants_html = format_html(
            "<table><thead><tr><th>Grant</th><th>Asset</th><th>Purpose</th><th{}>Priority</th>"
            "<th{}>Amount</th><th{}>Remaining</th><th{}>Held</th><th>Expires</th>"
            "<th>Status</th>{}</tr></thead><tbody>{}</tbody></table>",
            SafeString(_NUM),
            SafeString(_NUM),
            SafeString(_NUM),
            SafeString(_NUM),
            SafeString("<th>Action</th>") if grant_action is not None else "",
            grant_rows,
        )
    else:
        grants_html = format_html("<p>{}</p>", "No grants.")
    more = (
        format_html(
            "<p>Showing {} of {} grants: {}</p>",
            len(grants),
            total,
            changelist_link(Grant, "see all", wallet=wallet.pk),
        )
        if total > len(grants)
        else ""
    )
    return format_html("<h4>Balances</h4>{}<h4>Grants</h4>{}{}", balances, grants_html, more)


def wallet_links(wallet: Wallet | None) -> SafeString | str:
    if wallet is None:
        return EMPTY
    return format_html_join(
        " · ",
        "{}",
        (
            (changelist_link(LedgerTransaction, "Ledger transactions", wallet=wallet.pk),),
            (changelist_link(Grant, "Grants", wallet=wallet.pk),),
            (changelist_link(Hold, "Holds", wallet=wallet.pk),),
            (changelist_link(Account, "Accounts", wallet=wallet.pk),),
        ),
    )


def account_holder(account: Account) -> SafeString | str:
    """The wallet (a link) or the system account an account belongs to."""
    wallet = account.wallet  # no query without a wallet id
    if wallet is None:
        return f"System: {account.get_system_code_display()}"
    return link(Wallet, wallet.pk, wallet.owner)
