"""Webhooks (docs/webhooks.md): what Billfold signs and how. The public surface is
``billing.webhooks.signing``."""
