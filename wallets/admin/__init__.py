"""Back-office pages of the money core: assets, wallets and accounts, grants, the ledger, holds
and idempotency records.

The ledger, accounts, holds, grants and idempotency records are written only by services, so
their pages are read-only for everyone (superusers included); money moves through wallet
services, which the customer page's actions ("Top up", "Grant promotional credits", "Adjust",
"Void", in ``billing.admin.customers``) call, the same functions as the API. List pages load
what they show with joins or subqueries, so their number of queries does not grow with the
data; the large tables (ledger, usage) skip the full-table count and search only on indexed,
exact values.
"""

# importing the modules registers their pages with the admin site
from wallets.admin import accounts, assets, grants, holds, idempotency, ledger  # noqa: F401
