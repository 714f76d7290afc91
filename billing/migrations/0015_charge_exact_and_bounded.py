"""The charge decision exact to the ledger's 12 places in every asset, and bounded.

``billfold_charge_decide`` rounds nothing: the ledger keeps 12 places in every asset, and an
amount is rounded only where it is shown (at the asset's decimals, in answers) or invoiced
(once per line). An event whose charge, or whose period counter's totals after it, would
reach 10^18 is handed back (``declined``), and the Python path refuses it
(``amount_too_large``).

The function lives in ``billing/sql/charge_decide.sql`` and is installed from there by
billing 0018, which replaces it wholesale on every database: this migration installs
nothing (see ``wallets.sql``).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0014_reference_keys_unchecked"),
    ]

    operations = []
