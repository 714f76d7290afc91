"""Back-office pages of the money core, and the admin helpers ``plans`` and ``billing`` share.

The ledger, accounts, holds, grants and idempotency records are written only by services, so
their pages are read-only for everyone (superusers included); money moves through wallet
services, which the customer page's actions ("Top up", "Grant promotional credits", "Adjust",
"Void", in ``billing.admin``) call, the same functions as the API. List pages load
what they show with joins or subqueries, so their number of queries does not grow with the
data; the large tables (ledger, usage) skip the full-table count and search only on indexed,
exact values.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Case, F, IntegerField, Model, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from core.errors import ValidationFailed

from .models import (
    Account,
    Asset,
    AssetRate,
    Grant,
    Hold,
    HoldAllocation,
    IdempotencyRecord,
    LedgerEntry,
    LedgerTransaction,
    Wallet,
)
from .services.assets import asset_create

EMPTY = "—"
WALLET_PANEL_GRANTS = 50

# --- formatting ---------------------------------------------------------------------------------


def format_amount(value: Decimal | None, decimals: int = 0) -> str:
    """``value`` with thousands separators and at least ``decimals`` places; further places only
    as far as the value needs them (ledger amounts carry 12): 19 USD → ``19.00``,
    0.000002000000 → ``0.000002``, 800000 tokens → ``800,000``. Never rounds, never a float."""
    if value is None:
        return EMPTY
    if not isinstance(value, Decimal):
        value = Decimal(value)
    if not value.is_finite():
        return str(value)
    exponent = value.normalize().as_tuple().exponent
    places = max(decimals, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return f"{value:,.{places}f}"


def amount_html(value: Decimal | None, asset: Asset | None) -> SafeString | str:
    """An amount with its asset code, e.g. ``19.00 USD``, kept on one line."""
    if value is None:
        return EMPTY
    if asset is None:
        return format_amount(value)
    return format_html(
        '<span style="white-space:nowrap">{} {}</span>',
        format_amount(value, asset.decimals),
        asset.code,
    )


def datetime_text(value) -> str:
    return EMPTY if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


# --- links --------------------------------------------------------------------------------------


def change_url(model: type[Model] | Model, pk: Any) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(pk)])


def changelist_url(model: type[Model], **params: Any) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(model: type[Model] | Model, pk: Any, label: Any = None) -> SafeString | str:
    """A link to the change page of ``model`` row ``pk`` (no query: the caller has the label)."""
    if pk is None:
        return EMPTY
    return format_html('<a href="{}">{}</a>', change_url(model, pk), pk if label is None else label)


def obj_link(obj: Model | None, label: Any = None) -> SafeString | str:
    if obj is None:
        return EMPTY
    return link(obj, obj.pk, obj if label is None else label)


def changelist_link(model: type[Model], label: Any, **params: Any) -> SafeString:
    return format_html('<a href="{}">{}</a>', changelist_url(model, **params), label)


# --- filters and search -------------------------------------------------------------------------


def selected_object_filter(field: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on one related row (``?<field>=<pk>``), used by links such as "this
    customer's usage events". It lists only the selected row, never every related row, so it
    costs one query however large the related table is."""

    class SelectedObjectFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            value = self.value()
            if not value:
                return []
            related = model_admin.model._meta.get_field(field).related_model
            try:
                pk = related._meta.pk.to_python(value)
            except ValidationError:
                # offered all the same, so queryset() applies it and the changelist reports it
                return [(value, f"#{value}")]
            obj = related._default_manager.filter(pk=pk).first()
            return [(value, str(obj) if obj is not None else f"#{value}")]

        def queryset(self, request, queryset):
            value = self.value()
            if not value:
                return queryset
            try:
                return queryset.filter(**{field: value})
            except (ValueError, ValidationError) as exc:
                # the changelist answers with its "?e=1" page
                raise IncorrectLookupParameters(exc) from exc

    SelectedObjectFilter.title = title
    SelectedObjectFilter.__name__ = f"Selected{field.title().replace('_', '')}Filter"
    return SelectedObjectFilter


class IndexedSearchMixin:
    """Search a large table only on exact, indexed values: the integer primary key and
    ``exact_search_fields``. (Django's own search would scan: ``icontains``/``iexact`` use no
    index.)"""

    exact_search_fields: tuple[str, ...] = ()
    search_pk = True

    def get_search_fields(self, request):
        # any non-empty value makes the changelist show its search box
        return self.exact_search_fields or ("pk",)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q()
        for name in self.exact_search_fields:
            condition |= Q(**{name: term})
        if self.search_pk and term.isdigit() and len(term) < 19:
            condition |= Q(pk=int(term))
        if not condition:
            return queryset.none(), False
        return queryset.filter(condition), False


class EstimatedCountPaginator(Paginator):
    """An exact ``COUNT(*)`` scans the whole table; on an unfiltered list of a table with
    millions of rows (usage, ledger) the page uses PostgreSQL's own row estimate instead, once
    the table is past ``exact_below`` rows. Filtered lists are counted exactly."""

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if isinstance(qs, QuerySet) and not qs.query.where:
            with connections[qs.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row is not None and row[0] >= self.exact_below:
                return int(row[0])
        return super().count


# --- permissions and services -------------------------------------------------------------------


class ReadOnlyAdminMixin:
    """Nobody adds, changes or deletes here, superusers included: the rows are money history
    written only by services. Staff with the view permission see the pages."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True


class ServiceFormMixin:
    """For admins whose saves call a service: a ``ValidationFailed`` the service raises is shown
    on the form like any validation error (``errors`` keys that name form fields land on those
    fields), with the user's input kept. The admin's transaction has rolled back by then, so
    nothing was written."""

    # service error keys that name a form field differently
    service_error_fields: dict[str, str] = {}

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationFailed as exc:
            if request.method != "POST":
                raise
            request._service_errors = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        failure: ValidationFailed | None = getattr(request, "_service_errors", None)
        if failure is None:
            return form_class
        renamed = self.service_error_fields

        class ServiceErrorsForm(form_class):
            def clean(self):
                cleaned = super().clean()
                placed = False
                for key, messages in failure.errors.items():
                    field = renamed.get(key, key)
                    for message in messages:
                        self.add_error(field if field in self.fields else None, message)
                        placed = True
                if not placed:
                    self.add_error(None, failure.detail)
                return cleaned

        ServiceErrorsForm.__name__ = form_class.__name__
        return ServiceErrorsForm


def adopt_saved(target: Model, saved: Model) -> None:
    """Make the admin's unsaved form instance ``target`` the row a service created, so the
    rest of the admin's add flow (log entry, redirect) refers to it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


def has_model_perm(request: HttpRequest, model: type[Model], action: str) -> bool:
    """The Django permission behind an admin action (e.g. ``change`` for "Revoke"), checked
    apart from whether the admin lets the row be edited as a form."""
    opts = model._meta
    return request.user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")


# --- the wallet panel (wallet and customer pages) -----------------------------------------------

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


# --- assets -------------------------------------------------------------------------------------


class AssetRateInline(admin.TabularInline):
    model = AssetRate
    fk_name = "asset"
    fields = ("currency", "rate", "updated_at")
    readonly_fields = ("updated_at",)
    extra = 0
    verbose_name = "rate"
    verbose_name_plural = "Rates (money value of one unit)"


class AssetAddForm(forms.ModelForm):
    class Meta:
        model = Asset
        fields = ("code", "name", "decimals")


@admin.register(Asset)
class AssetAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Staff add custom units (``asset_create``); ISO currencies come with the installation.
    Rates are edited inline."""

    list_display = ("code", "name", "kind", "decimals", "rates_display", "created_at")
    list_filter = ("kind",)
    search_fields = ("code", "name")
    ordering = ("kind", "code")
    inlines = (AssetRateInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("rates")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AssetAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("code", "name", "decimals")
        return ("code", "name", "kind", "decimals", "created_at")

    def get_readonly_fields(self, request, obj=None):
        # a unit's identity and precision are fixed once it can appear in the ledger
        if obj is None:
            return ()
        return ("code", "kind", "decimals", "created_at")

    def get_inlines(self, request, obj):
        if obj is not None and obj.is_currency:
            return ()
        return self.inlines

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        asset = asset_create(code=data["code"], name=data["name"], decimals=data["decimals"])
        adopt_saved(obj, asset)  # the rates inline is saved next, onto this asset

    @admin.display(description="Rates")
    def rates_display(self, obj: Asset) -> str:
        rates = list(obj.rates.all())
        if not rates:
            return EMPTY
        return ", ".join(f"{format_amount(r.rate)} {r.currency_id}" for r in rates)


@admin.register(AssetRate)
class AssetRateAdmin(admin.ModelAdmin):
    list_display = ("asset", "one_unit_is", "updated_at")
    list_filter = ("currency",)
    search_fields = ("asset__code", "asset__name")
    autocomplete_fields = ("asset",)
    list_select_related = ("currency",)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "asset":
            kwargs["queryset"] = Asset.objects.filter(kind=Asset.Kind.CUSTOM)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="1 unit is", ordering="rate")
    def one_unit_is(self, obj: AssetRate):
        return amount_html(obj.rate, obj.currency)


# --- wallets and accounts -----------------------------------------------------------------------


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Wallets are created with their customer (``billing.services.customers.customer_create``);
    balances change only through wallet services."""

    list_display = ("owner", "customer_display", "created_at")
    list_select_related = ("customer",)
    search_fields = ("owner", "customer__external_id", "customer__name")
    date_hierarchy = "created_at"
    fields = ("owner", "customer_display", "created_at", "balances", "history")
    readonly_fields = fields

    @admin.display(description="Customer")
    def customer_display(self, obj: Wallet):
        customer = getattr(obj, "customer", None)
        return obj_link(customer)

    @admin.display(description="Wallet")
    def balances(self, obj: Wallet):
        return wallet_panel(obj)

    @admin.display(description="History")
    def history(self, obj: Wallet):
        return wallet_links(obj)


def account_holder(account: Account) -> SafeString | str:
    """The wallet (a link) or the system account an account belongs to."""
    if account.wallet_id is None:
        return f"System: {account.get_system_code_display()}"
    return link(Wallet, account.wallet_id, account.wallet.owner)


class AccountKindFilter(admin.SimpleListFilter):
    title = "account type"
    parameter_name = "type"

    def lookups(self, request, model_admin):
        return (("wallet", "Wallet accounts"), ("system", "System accounts"))

    def queryset(self, request, queryset):
        if self.value() == "wallet":
            return queryset.filter(wallet__isnull=False)
        if self.value() == "system":
            return queryset.filter(wallet__isnull=True)
        return queryset


@admin.register(Account)
class AccountAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "holder",
        "asset",
        "posted_display",
        "held_display",
        "available_display",
        "created_at",
    )
    list_select_related = ("wallet", "asset")
    list_filter = (
        AccountKindFilter,
        "system_code",
        "asset__kind",
        selected_object_filter("wallet", "wallet"),
    )
    exact_search_fields = ("wallet__owner", "asset__code")
    search_help_text = "Exact wallet owner (customer:<external id>), asset code or account id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "holder",
        "asset",
        "posted_display",
        "held_display",
        "available_display",
        "created_at",
        "entries_link",
    )
    readonly_fields = fields

    @admin.display(description="Holder")
    def holder(self, obj: Account):
        return account_holder(obj)

    @admin.display(description="Posted", ordering="posted")
    def posted_display(self, obj: Account):
        return amount_html(obj.posted, obj.asset)

    @admin.display(description="Held", ordering="held")
    def held_display(self, obj: Account):
        return amount_html(obj.held, obj.asset)

    @admin.display(description="Available")
    def available_display(self, obj: Account):
        if obj.wallet_id is None:
            return "derived from entries"
        return amount_html(obj.available, obj.asset)

    @admin.display(description="Entries")
    def entries_link(self, obj: Account):
        return changelist_link(LedgerEntry, "Ledger entries of this account", account=obj.pk)


# --- grants -------------------------------------------------------------------------------------


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: grants are made, voided and expired by wallet services. Finance staff top up,
    grant, adjust and void from the customer page (``billing.admin.CustomerAdmin``), whose
    actions call those services; a wallet here knows no customer."""

    list_display = (
        "id",
        "wallet_display",
        "purpose",
        "priority",
        "amount_display",
        "remaining_display",
        "held_display",
        "expires_at",
        "status",
        "created_at",
    )
    list_select_related = ("wallet", "asset")
    list_filter = (
        "status",
        "purpose",
        "asset__kind",
        selected_object_filter("wallet", "wallet"),
        ("expires_at", admin.DateFieldListFilter),
    )
    search_fields = ("=id", "=wallet__owner", "reference")
    search_help_text = "Grant id, exact wallet owner (customer:<external id>) or reference."
    date_hierarchy = "created_at"
    fields = (
        "id",
        "wallet_display",
        "asset",
        "purpose",
        "priority",
        "amount_display",
        "remaining_display",
        "held_display",
        "expires_at",
        "meters",
        "cost",
        "reference",
        "source",
        "status",
        "created_at",
        "closed_at",
        "metadata",
        "entries_link",
    )
    readonly_fields = fields

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: Grant):
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: Grant):
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Remaining", ordering="remaining")
    def remaining_display(self, obj: Grant):
        return amount_html(obj.remaining, obj.asset)

    @admin.display(description="Held", ordering="held")
    def held_display(self, obj: Grant):
        return amount_html(obj.held, obj.asset)

    @admin.display(description="Ledger")
    def entries_link(self, obj: Grant):
        return changelist_link(LedgerEntry, "Ledger entries of this grant", grant=obj.pk)


# --- the ledger ---------------------------------------------------------------------------------


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("account_display", "amount_display", "grant_display", "created_at")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account__wallet", "asset")

    @admin.display(description="Account")
    def account_display(self, obj: LedgerEntry):
        return account_holder(obj.account)

    @admin.display(description="Amount")
    def amount_display(self, obj: LedgerEntry):
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Grant")
    def grant_display(self, obj: LedgerEntry):
        return link(Grant, obj.grant_id)


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "wallet_display",
        "reference",
        "description",
        "reverses_display",
    )
    list_select_related = ("wallet",)
    list_filter = (
        "kind",
        selected_object_filter("wallet", "wallet"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("reference", "wallet__owner")
    search_help_text = "Transaction id, exact reference or exact wallet owner."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "created_at",
        "kind",
        "wallet_display",
        "reference",
        "description",
        "reverses_display",
        "reversals_display",
        "metadata",
    )
    readonly_fields = fields
    inlines = (LedgerEntryInline,)

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: LedgerTransaction):
        if obj.wallet_id is None:
            return EMPTY
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Reverses")
    def reverses_display(self, obj: LedgerTransaction):
        return link(LedgerTransaction, obj.reverses_id)

    @admin.display(description="Reversed by")
    def reversals_display(self, obj: LedgerTransaction):
        reversals = list(obj.reversals.values_list("pk", flat=True))
        if not reversals:
            return EMPTY
        return format_html_join(", ", "{}", ((link(LedgerTransaction, pk),) for pk in reversals))


@admin.register(LedgerEntry)
class LedgerEntryAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "transaction_display",
        "account_display",
        "amount_display",
        "grant_display",
    )
    list_select_related = ("transaction", "account__wallet", "asset")
    list_filter = (
        "transaction__kind",
        "asset__kind",
        selected_object_filter("account", "account"),
        selected_object_filter("grant", "grant"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("transaction__reference", "grant__id")
    search_help_text = "Entry id, exact transaction reference or grant id."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "created_at",
        "transaction_display",
        "account_display",
        "amount_display",
        "grant_display",
    )
    readonly_fields = fields

    @admin.display(description="Transaction", ordering="transaction")
    def transaction_display(self, obj: LedgerEntry):
        return link(
            LedgerTransaction,
            obj.transaction_id,
            f"#{obj.transaction_id} {obj.transaction.get_kind_display()}",
        )

    @admin.display(description="Account")
    def account_display(self, obj: LedgerEntry):
        return account_holder(obj.account)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: LedgerEntry):
        return amount_html(obj.amount, obj.asset)

    @admin.display(description="Grant")
    def grant_display(self, obj: LedgerEntry):
        return link(Grant, obj.grant_id)


# --- holds --------------------------------------------------------------------------------------


class HoldAllocationInline(ReadOnlyInline):
    model = HoldAllocation
    fields = ("grant_display", "amount_display")
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("asset")

    @admin.display(description="Grant")
    def grant_display(self, obj: HoldAllocation):
        return link(Grant, obj.grant_id)

    @admin.display(description="Reserved")
    def amount_display(self, obj: HoldAllocation):
        return amount_html(obj.amount, obj.asset)


@admin.register(Hold)
class HoldAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: holds are placed, captured, voided and expired by wallet services."""

    list_display = (
        "id",
        "wallet_display",
        "status",
        "expires_at",
        "created_at",
        "resolved_at",
        "capture_display",
    )
    list_select_related = ("wallet",)
    list_filter = (
        "status",
        selected_object_filter("wallet", "wallet"),
        ("created_at", admin.DateFieldListFilter),
    )
    exact_search_fields = ("id", "wallet__owner")
    search_pk = False
    search_help_text = "Exact hold id or wallet owner."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = (
        "id",
        "wallet_display",
        "status",
        "expires_at",
        "created_at",
        "resolved_at",
        "capture_display",
        "metadata",
    )
    readonly_fields = fields
    inlines = (HoldAllocationInline,)

    @admin.display(description="Wallet", ordering="wallet__owner")
    def wallet_display(self, obj: Hold):
        return link(Wallet, obj.wallet_id, obj.wallet.owner)

    @admin.display(description="Capture")
    def capture_display(self, obj: Hold):
        return link(LedgerTransaction, obj.capture_transaction_id)


@admin.register(HoldAllocation)
class HoldAllocationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "hold_display", "grant_display", "amount_display")
    list_select_related = ("asset",)
    list_filter = (selected_object_filter("hold", "hold"),)
    search_fields = ("=hold__id", "=grant__id")
    fields = ("hold_display", "grant_display", "amount_display")
    readonly_fields = fields

    @admin.display(description="Hold")
    def hold_display(self, obj: HoldAllocation):
        return link(Hold, obj.hold_id)

    @admin.display(description="Grant")
    def grant_display(self, obj: HoldAllocation):
        return link(Grant, obj.grant_id)

    @admin.display(description="Reserved", ordering="amount")
    def amount_display(self, obj: HoldAllocation):
        return amount_html(obj.amount, obj.asset)


# --- idempotency --------------------------------------------------------------------------------


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("scope", "key", "status_code", "created_at")
    list_filter = (("created_at", admin.DateFieldListFilter),)
    exact_search_fields = ("key",)
    search_pk = False
    search_help_text = "Exact idempotency key."
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    fields = ("scope", "key", "request_hash", "status_code", "response", "created_at")
    readonly_fields = fields
