"""The common accepted charge of one usage event as one database function.

``billing.services.charging._charge_in_database`` calls ``billfold_event_charge`` once per
plain event: it locks the wallet's accounts, reads grants and counter, decides (units, price,
burn-down, accrual) and writes the event, its ledger transaction, grants, balances and
counter, in one statement (making the wallet's account in an asset it has none of yet, as
``accounts_lock`` does). Anything else (a decline, holds or debt on the wallet, a revenue
account still to make) returns NULL having written nothing more, and the event goes through
the Python path, which stays the reference: ``tests/billing/test_charge_in_database.py``
runs the same events through both and compares every answer and every row.
"""

from django.db import migrations

PRICE_TOTAL = r"""
CREATE OR REPLACE FUNCTION billfold_price_total(
    p_model text, p_unit_price numeric, p_package_size numeric, p_package_price numeric,
    p_tiers jsonb, p_quantity numeric
) RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $$
-- plans.pricing.total_amount: the exact, unrounded price of p_quantity units in one period
DECLARE
    total numeric := 0;
    lower_bound numeric := 0;
    upper_bound numeric;
    up_to numeric;
    tier jsonb;
BEGIN
    IF p_quantity = 0 THEN
        RETURN 0;
    ELSIF p_model = 'per_unit' THEN
        RETURN p_quantity * p_unit_price;
    ELSIF p_model = 'package' THEN  -- a started package is whole
        RETURN (div(p_quantity, p_package_size)
                + CASE WHEN mod(p_quantity, p_package_size) <> 0 THEN 1 ELSE 0 END)
               * p_package_price;
    ELSIF p_model = 'graduated' THEN
        FOR tier IN SELECT value FROM jsonb_array_elements(p_tiers) LOOP
            EXIT WHEN p_quantity <= lower_bound;
            up_to := (tier ->> 'up_to')::numeric;
            upper_bound := CASE WHEN up_to IS NULL THEN p_quantity ELSE least(p_quantity, up_to) END;
            total := total + (upper_bound - lower_bound) * (tier ->> 'unit_price')::numeric
                     + (tier ->> 'flat_fee')::numeric;
            EXIT WHEN up_to IS NULL;
            lower_bound := up_to;
        END LOOP;
        RETURN total;
    END IF;
    RAISE EXCEPTION 'billfold_price_total: no real-time price model %', p_model;
END
$$;
"""

GRANTS_TO_DRAW = r"""
CREATE OR REPLACE FUNCTION billfold_grants_to_draw(
    p_wallet bigint, p_asset varchar, p_meter varchar, p_valid_at timestamptz
) RETURNS TABLE (grant_id varchar, free numeric) LANGUAGE sql STABLE AS $$
-- wallets.services.draws: the grants of the wallet in the asset that may pay for the meter
-- at the time (eligible_where), in burn-down order (burn_down_key: the meter's allowance
-- first, then priority, the earliest expiry, the oldest; ids compare as Python's strings),
-- with what each has free
SELECT g.id, g.remaining - g.held
FROM wallets_grant g
WHERE g.wallet_id = p_wallet AND g.asset_id = p_asset
  AND g.status = 'active' AND g.remaining > g.held
  AND (g.expires_at IS NULL OR g.expires_at > p_valid_at)
  AND (g.meters IS NULL OR g.meters = '{}' OR g.meters @> ARRAY[p_meter]::varchar[])
ORDER BY CASE WHEN g.purpose = 'allowance' AND g.meters @> ARRAY[p_meter]::varchar[]
              THEN 0 ELSE 1 END,
         g.priority, g.expires_at IS NULL, g.expires_at, g.created_at, g.id COLLATE "C"
$$;
"""

EVENT_CHARGE = r"""
CREATE OR REPLACE FUNCTION billfold_event_charge(
    p_wallet bigint, p_meter varchar, p_quantity numeric, p_valid_at timestamptz,
    p_unit varchar, p_unit_places int, p_unit_revenue bigint,
    p_price bigint, p_price_asset varchar, p_price_places int, p_price_revenue bigint,
    p_model varchar, p_unit_price numeric, p_package_size numeric, p_package_price numeric,
    p_tiers jsonb, p_accrue boolean,
    p_subscription bigint, p_period_start timestamptz, p_period_end timestamptz,
    p_charge_asset varchar, p_charge_places int,
    p_event_id varchar, p_customer bigint, p_meter_id bigint, p_event_quantity numeric,
    p_timestamp timestamptz, p_properties jsonb, p_request_hash varchar, p_head jsonb,
    p_description varchar, p_now timestamptz
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
-- billing.services.charging._decide, _plan_posting, _body and _write_accepted for the
-- accepted charge of one event. Each statement below takes a fresh snapshot (a volatile
-- function), so the reads after the locks see what the previous holder committed.
DECLARE
    account record;
    grant_row record;
    attempt int;
    unit_account bigint;
    price_account bigint;
    unit_grants varchar[] := '{}';
    unit_takes numeric[] := '{}';
    money_grants varchar[] := '{}';
    money_takes numeric[] := '{}';
    still numeric;
    take numeric;
    included numeric := 0;
    billable numeric;
    before numeric;
    amount numeric := 0;
    paid numeric := 0;
    accrued numeric := 0;
    row_asset varchar;
    txn bigint;
    event_pk bigint;
    charge json;
    balances json;
BEGIN
    -- the wallet's accounts of both assets, locked in id order (as accounts_lock: one
    -- missing is made, empty, and locked after the others, its id being the highest); a
    -- reservation (holds to expire first) or a debt: the Python path
    FOR attempt IN 1..2 LOOP
        unit_account := NULL;
        price_account := NULL;
        FOR account IN
            SELECT id, asset_id, held, debt FROM wallets_account
            WHERE wallet_id = p_wallet AND asset_id IN (p_unit, coalesce(p_price_asset, p_unit))
            ORDER BY id FOR UPDATE
        LOOP
            IF account.held <> 0 OR account.debt <> 0 THEN
                RETURN NULL;
            END IF;
            IF account.asset_id = p_unit THEN
                unit_account := account.id;
            END IF;
            IF account.asset_id = p_price_asset THEN
                price_account := account.id;
            END IF;
        END LOOP;
        EXIT WHEN unit_account IS NOT NULL AND (p_price IS NULL OR price_account IS NOT NULL);
        IF attempt = 2 THEN
            RETURN NULL;
        END IF;
        INSERT INTO wallets_account
            (wallet_id, asset_id, system_code, posted, held, debt, created_at)
        SELECT p_wallet, code, NULL, 0, 0, 0, p_now
        FROM unnest(ARRAY[p_unit, p_price_asset]) AS code
        WHERE code IS NOT NULL
        ORDER BY code
        ON CONFLICT (wallet_id, asset_id) WHERE wallet_id IS NOT NULL DO NOTHING;
    END LOOP;

    -- 1. units first, from the unit's grants in burn-down order (a price in the meter's own
    -- unit: the units are the payment)
    still := p_quantity;
    IF p_price IS NULL OR p_price_asset <> p_unit THEN
        FOR grant_row IN
            SELECT * FROM billfold_grants_to_draw(p_wallet, p_unit, p_meter, p_valid_at)
        LOOP
            EXIT WHEN still <= 0;
            take := least(grant_row.free, still);
            unit_grants := unit_grants || grant_row.grant_id;
            unit_takes := unit_takes || take;
            still := still - take;
        END LOOP;
        included := p_quantity - still;
    END IF;
    billable := p_quantity - included;

    -- 2. the price of the billable part over the period's cumulative billable quantity
    IF p_price IS NOT NULL AND billable <> 0 THEN
        SELECT c.billable INTO before FROM billing_usagecounter c
        WHERE c.subscription_id = p_subscription AND c.period_start = p_period_start
          AND c.price_id = p_price;
        before := coalesce(before, 0);
        amount := round(billfold_price_total(p_model, p_unit_price, p_package_size,
                                             p_package_price, p_tiers, before + billable),
                        p_price_places)
                  - round(billfold_price_total(p_model, p_unit_price, p_package_size,
                                               p_package_price, p_tiers, before),
                          p_price_places);
        row_asset := p_price_asset;
        -- 3. pay from the price asset's grants in burn-down order
        still := amount;
        IF amount > 0 THEN
            FOR grant_row IN
                SELECT * FROM billfold_grants_to_draw(
                    p_wallet, p_price_asset, p_meter, p_valid_at)
            LOOP
                EXIT WHEN still <= 0;
                take := least(grant_row.free, still);
                money_grants := money_grants || grant_row.grant_id;
                money_takes := money_takes || take;
                still := still - take;
            END LOOP;
        END IF;
        paid := amount - still;
        -- 4. the shortfall accrues (postpaid, in the billing currency), else a decline,
        -- which the Python path words and records
        IF still > 0 THEN
            IF NOT p_accrue THEN
                RETURN NULL;
            END IF;
            accrued := still;
        END IF;
    END IF;

    -- revenue accounts are made on first use, by the Python path
    IF (included > 0 AND p_unit_revenue IS NULL) OR (paid > 0 AND p_price_revenue IS NULL) THEN
        RETURN NULL;
    END IF;

    -- the answer (as _body): the charge, then the balances after it
    charge := json_build_object(
        'included', trim_scale(included)::text,
        'billable', trim_scale(billable)::text,
        'amount', round(amount, p_charge_places)::text,
        'asset', p_charge_asset,
        'funding', (
            SELECT coalesce(json_agg(json_build_object(
                       'grant', t.grant_id, 'asset', p_price_asset,
                       'amount', round(t.take, p_price_places)::text) ORDER BY t.n), '[]')
            FROM unnest(money_grants, money_takes) WITH ORDINALITY AS t(grant_id, take, n)),
        'included_from', (
            SELECT coalesce(json_agg(json_build_object(
                       'grant', t.grant_id, 'asset', p_unit,
                       'amount', round(t.take, p_unit_places)::text) ORDER BY t.n), '[]')
            FROM unnest(unit_grants, unit_takes) WITH ORDINALITY AS t(grant_id, take, n)),
        'accrued', trim_scale(accrued)::text
    );
    SELECT json_agg(json_build_object(
               'asset', a.asset_id,
               'available', round(
                   a.posted - a.held
                   - CASE WHEN a.id = unit_account THEN included ELSE 0 END
                   - CASE WHEN a.id = price_account THEN paid ELSE 0 END,
                   CASE WHEN a.asset_id = p_unit THEN p_unit_places ELSE p_price_places END
               )::text) ORDER BY a.id)
    INTO balances
    FROM wallets_account a WHERE a.id IN (unit_account, price_account);

    -- the event row first: a concurrent duplicate writes nothing more
    IF included > 0 OR paid > 0 THEN
        txn := nextval(pg_get_serial_sequence('wallets_ledgertransaction', 'id'));
    END IF;
    INSERT INTO billing_usageevent (
        event_id, customer_id, subscription_id, meter_id, quantity, timestamp, properties,
        status, decline_code, period_start, included, billable, amount, asset_id, accrued,
        ledger_transaction_id, price_id, hold_id, request_hash, response, received_at)
    VALUES (
        p_event_id, p_customer, p_subscription, p_meter_id, p_event_quantity, p_timestamp,
        p_properties, 'accepted', '', p_period_start, included, billable, amount, row_asset,
        accrued, txn, p_price, '', p_request_hash,
        p_head || jsonb_build_object('charge', charge::jsonb, 'balances', balances::jsonb),
        p_now)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id INTO event_pk;
    IF event_pk IS NULL THEN
        RETURN json_build_object('duplicate', true);
    END IF;

    -- the ledger: the grants drawn, the revenue, the wallet balances (as posting)
    IF txn IS NOT NULL THEN
        INSERT INTO wallets_ledgertransaction (
            id, wallet_id, kind, reverses_id, reference, description, created_at, metadata,
            counterparty_wallet_id)
        VALUES (
            txn, p_wallet, 'draw', NULL, left(p_event_id, 255), left(p_description, 500), p_now,
            jsonb_build_object('event', p_event_id, 'meter', p_meter), NULL);
        INSERT INTO wallets_ledgerentry
            (transaction_id, account_id, asset_id, grant_id, amount, created_at)
        SELECT txn, legs.account_id, legs.asset_id, legs.grant_id, legs.amount, p_now
        FROM (
            SELECT 1 AS part, t.n, unit_account AS account_id, p_unit AS asset_id,
                   t.grant_id, -t.take AS amount
            FROM unnest(unit_grants, unit_takes) WITH ORDINALITY AS t(grant_id, take, n)
            UNION ALL
            SELECT 2, t.n, price_account, p_price_asset, t.grant_id, -t.take
            FROM unnest(money_grants, money_takes) WITH ORDINALITY AS t(grant_id, take, n)
            UNION ALL
            SELECT 3, 1, p_unit_revenue, p_unit, NULL, included WHERE included > 0
            UNION ALL
            SELECT 4, 1, p_price_revenue, p_price_asset, NULL, paid WHERE paid > 0
        ) AS legs
        ORDER BY legs.part, legs.n;
        UPDATE wallets_grant g SET remaining = g.remaining - d.take
        FROM (SELECT t.grant_id, sum(t.take) AS take
              FROM unnest(unit_grants || money_grants, unit_takes || money_takes)
                   AS t(grant_id, take)
              GROUP BY t.grant_id) AS d
        WHERE g.id = d.grant_id;
        UPDATE wallets_account a
        SET posted = a.posted
                     - CASE WHEN a.id = unit_account THEN included ELSE 0 END
                     - CASE WHEN a.id = price_account THEN paid ELSE 0 END
        WHERE a.id IN (unit_account, price_account);
    END IF;

    -- the period's counter
    IF p_price IS NOT NULL THEN
        INSERT INTO billing_usagecounter (
            subscription_id, period_start, period_end, price_id, quantity, included, billable,
            amount, accrued, events, updated_at)
        VALUES (
            p_subscription, p_period_start, p_period_end, p_price, included + billable,
            included, billable, amount - accrued, accrued, 1, p_now)
        ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
            quantity = billing_usagecounter.quantity + EXCLUDED.quantity,
            included = billing_usagecounter.included + EXCLUDED.included,
            billable = billing_usagecounter.billable + EXCLUDED.billable,
            amount = billing_usagecounter.amount + EXCLUDED.amount,
            accrued = billing_usagecounter.accrued + EXCLUDED.accrued,
            events = billing_usagecounter.events + 1,
            updated_at = EXCLUDED.updated_at;
    END IF;
    RETURN json_build_object('charge', charge, 'balances', balances);
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS billfold_event_charge(
    bigint, varchar, numeric, timestamptz, varchar, int, bigint, bigint, varchar, int, bigint,
    varchar, numeric, numeric, numeric, jsonb, boolean, bigint, timestamptz, timestamptz,
    varchar, int, varchar, bigint, bigint, numeric, timestamptz, jsonb, varchar, jsonb, varchar,
    timestamptz);
DROP FUNCTION IF EXISTS billfold_price_total(text, numeric, numeric, numeric, jsonb, numeric);
DROP FUNCTION IF EXISTS billfold_grants_to_draw(bigint, varchar, varchar, timestamptz);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_capture_event_index"),
    ]

    operations = [
        migrations.RunSQL(PRICE_TOTAL + GRANTS_TO_DRAW + EVENT_CHARGE, reverse_sql=DROP),
    ]
