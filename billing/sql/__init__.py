"""The database functions of the charge path: an event's charge, a hold's reservation and the
decision they share, installed by the billing migrations through ``wallets.sql.install``.
They call the wallets' functions (``wallets/sql``) for account locks, grants, postings and
holds, and the plans' (``plans/sql``) for prices, and write only billing's tables."""
