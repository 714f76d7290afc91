from django.urls import path

from . import assets, catalog, customers, events, holds, spend_limits, subscriptions, usage, wallets
from . import invoices as invoices_api
from .views_meta import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="api-whoami"),
    path("assets", assets.AssetListView.as_view(), name="api-assets"),
    path("assets/<str:code>", assets.AssetDetailView.as_view(), name="api-asset"),
    path("meters", catalog.MeterListView.as_view(), name="api-meters"),
    path("meters/<str:code>", catalog.MeterDetailView.as_view(), name="api-meter"),
    path("plans", catalog.PlanListView.as_view(), name="api-plans"),
    path("plans/<str:code>", catalog.PlanDetailView.as_view(), name="api-plan"),
    path("plans/<str:code>/versions", catalog.PlanVersionsView.as_view(), name="api-plan-versions"),
    path("subscriptions", subscriptions.SubscriptionListView.as_view(), name="api-subscriptions"),
    path(
        "subscriptions/<str:subscription_id>",
        subscriptions.SubscriptionDetailView.as_view(),
        name="api-subscription",
    ),
    path(
        "subscriptions/<str:subscription_id>/change-plan",
        subscriptions.SubscriptionChangePlanView.as_view(),
        name="api-subscription-change-plan",
    ),
    path(
        "subscriptions/<str:subscription_id>/cancel",
        subscriptions.SubscriptionCancelView.as_view(),
        name="api-subscription-cancel",
    ),
    path(
        "subscriptions/<str:subscription_id>/charges",
        subscriptions.SubscriptionChargesView.as_view(),
        name="api-subscription-charges",
    ),
    path("events", events.EventsView.as_view(), name="api-events"),
    path("events/batch", events.EventBatchView.as_view(), name="api-events-batch"),
    # Event, hold and grant ids are the integrator's and may contain "/" (e.g. "req/42"):
    # they are matched as paths, the routes with a suffix first.
    path(
        "events/<path:event_id>/reverse",
        events.EventReverseView.as_view(),
        name="api-event-reverse",
    ),
    path("events/<path:event_id>", events.EventDetailView.as_view(), name="api-event"),
    path("holds", holds.HoldsView.as_view(), name="api-holds"),
    path("holds/<path:hold_id>/capture", holds.HoldCaptureView.as_view(), name="api-hold-capture"),
    path("holds/<path:hold_id>/void", holds.HoldVoidView.as_view(), name="api-hold-void"),
    path("holds/<path:hold_id>", holds.HoldDetailView.as_view(), name="api-hold"),
    path("customers/<str:external_id>/usage", usage.UsageView.as_view(), name="api-customer-usage"),
    path(
        "customers/<str:external_id>/spend-limit",
        spend_limits.SpendLimitView.as_view(),
        name="api-customer-spend-limit",
    ),
    path("customers", customers.CustomerListView.as_view(), name="api-customers"),
    path(
        "customers/<str:external_id>",
        customers.CustomerDetailView.as_view(),
        name="api-customer",
    ),
    path(
        "customers/<str:external_id>/grants",
        wallets.CustomerGrantsView.as_view(),
        name="api-customer-grants",
    ),
    path(
        "customers/<str:external_id>/wallet",
        wallets.CustomerWalletView.as_view(),
        name="api-customer-wallet",
    ),
    path(
        "customers/<str:external_id>/transactions",
        wallets.CustomerTransactionsView.as_view(),
        name="api-customer-transactions",
    ),
    path("grants/<path:grant_id>/void", wallets.GrantVoidView.as_view(), name="api-grant-void"),
    path("invoices", invoices_api.InvoiceListView.as_view(), name="api-invoices"),
    path("invoices/<str:invoice_id>", invoices_api.InvoiceDetailView.as_view(), name="api-invoice"),
    path(
        "invoices/<str:invoice_id>/pdf",
        invoices_api.InvoicePdfView.as_view(),
        name="api-invoice-pdf",
    ),
    path(
        "invoices/<str:invoice_id>/finalize",
        invoices_api.InvoiceFinalizeView.as_view(),
        name="api-invoice-finalize",
    ),
    path(
        "invoices/<str:invoice_id>/void",
        invoices_api.InvoiceVoidView.as_view(),
        name="api-invoice-void",
    ),
    path(
        "invoices/<str:invoice_id>/mark-paid",
        invoices_api.InvoiceMarkPaidView.as_view(),
        name="api-invoice-mark-paid",
    ),
    path(
        "invoices/<str:invoice_id>/credit-notes",
        invoices_api.InvoiceCreditNotesView.as_view(),
        name="api-invoice-credit-notes",
    ),
    path(
        "customers/<str:external_id>/statements/<str:month>",
        invoices_api.CustomerStatementView.as_view(),
        name="api-customer-statement",
    ),
]
