"""Back-office pages of the catalogue: meters, plans, plan versions and prices.

A plan version and its prices are immutable (a database trigger refuses UPDATE), so their pages
are read-only. A plan is added, and a new version of it published, from a JSON spec (docs/api.md's
plan body) by ``plan_create`` and ``plan_version_publish``, the services the API calls; the plan
page shows every version's prices as sentences and how many subscriptions are on each.
"""

# importing the modules registers their pages with the admin site
from plans.admin import meters, plans, versions  # noqa: F401
