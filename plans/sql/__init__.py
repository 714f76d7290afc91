"""The database functions of the plans: ``price_total.sql`` (as ``plans/pricing.py``),
installed by the plans migrations through ``wallets.sql.install``."""
