"""Back-office pages of the application: customers (with their wallet), subscriptions, usage,
spend limits, invoices, charge items, API keys, alerts and worker heartbeats.

Adds that need more than a row go through services: a customer is created with its wallet by
``customer_create``, an API key by ``api_key_create``. Usage events are money history and
read-only. Subscriptions are read-only here until their services (plan changes, cancellation)
are wired in as admin actions, because a direct edit would bypass proration and allowances;
invoices change only through the invoice services their actions call.

Money moves from the customer page (``customer_wallet``): "Top up", "Grant promotional
credits", "Adjust" and "Void" call the wallet services the API calls, only for Finance staff
and superusers (``can_move_money``), each written to the customer's history.
"""

# importing the modules registers their pages with the admin site
from billing.admin import (  # noqa: F401
    alerts,
    api_keys,
    charges,
    customers,
    invoice_lines,
    invoices,
    spend_limits,
    subscriptions,
    usage,
    workers,
)
