from decimal import Decimal

import pytest

from wallets.errors import InsufficientFunds
from wallets.models import Account, Grant
from wallets.services import HoldLeg, grant_create, hold_capture, hold_create, wallet_draw

D = Decimal


@pytest.mark.django_db
def test_example_g_hold_then_capture_less(wallet):
    grant_create(wallet_id=wallet.pk, asset="USD", amount="10.00", purpose="paid", grant_id="g1")
    hold = hold_create(wallet_id=wallet.pk, hold_id="h1", legs=[HoldLeg("USD", D("4.00"))])
    acct = Account.objects.get(wallet=wallet, asset_id="USD")
    assert (acct.posted, acct.held, acct.available) == (D("10"), D("4"), D("6"))
    hold_capture(hold_id=hold.pk, charges=[HoldLeg("USD", D("2.40"))])
    acct.refresh_from_db()
    assert (acct.posted, acct.held, acct.available) == (D("7.6"), D("0"), D("7.6"))


@pytest.mark.django_db
def test_draw_all_or_nothing(wallet):
    grant_create(wallet_id=wallet.pk, asset="USD", amount="1.00", purpose="paid")
    with pytest.raises(InsufficientFunds):
        wallet_draw(wallet_id=wallet.pk, asset="USD", amount="1.01", idempotency_key="k1")
    r = wallet_draw(wallet_id=wallet.pk, asset="USD", amount="0.999999", idempotency_key="k2")
    assert r.amount == D("0.999999")
    assert Grant.objects.get().remaining == D("0.000001")
