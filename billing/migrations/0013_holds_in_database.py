"""A hold's reservation and its capture in the database, as the event's charge is (0012).

The event's charge is split into the parts every caller shares — ``billfold_accounts_lock``
(the wallet's accounts, locked) and ``billfold_charge_decide`` (units, price, burn-down,
accrual) — and used three ways, each one statement and its own transaction:

- ``billfold_event_charge`` charges an event, as before; with ``p_hold`` the event captures
  that pending hold (``billing.services.holds.hold_capture_usage``): what the hold reserved
  is released and its grants pay first (``billfold_grants_to_pay``), and the hold is
  captured with the event's ledger transaction;
- ``billfold_hold_reserve`` reserves the estimated cost of a hold
  (``billing.services.holds.hold_authorize``): the hold, its allocations, the grants' and
  accounts' held amounts and the hold id's idempotency record with the answer.

Anything else returns NULL having written nothing and goes through the Python path, which
stays the reference: a decline, a debt, a capture that would overdraw, a hold no longer
pending and live, holds due to expire first, a revenue account still to make.
``tests/billing/test_holds_in_database.py`` runs the same holds and captures both ways and
compares every answer and every row, as ``test_charge_in_database.py`` does for events.
"""

import importlib

from django.db import migrations

HELPERS = r"""
CREATE OR REPLACE FUNCTION billfold_grants_to_pay(
    p_wallet bigint, p_asset varchar, p_meter varchar, p_valid_at timestamptz, p_hold varchar
) RETURNS TABLE (grant_id varchar, free numeric) LANGUAGE plpgsql STABLE AS $$
-- billing.services.charging._with_preferred: a capture's hold's grants in the asset first,
-- in the order it reserved them, with what it reserved free again (even if they expired
-- since), then the other grants that may pay, in burn-down order (billfold_grants_to_draw).
-- (PL/pgSQL, whose plans are kept: a SQL function that cannot be inlined is planned anew
-- on every call.)
BEGIN
    IF p_hold IS NULL THEN
        RETURN QUERY SELECT * FROM billfold_grants_to_draw(p_wallet, p_asset, p_meter, p_valid_at);
        RETURN;
    END IF;
    RETURN QUERY
        SELECT g.id, g.remaining - g.held + a.amount
        FROM wallets_holdallocation a JOIN wallets_grant g ON g.id = a.grant_id
        WHERE a.hold_id = p_hold AND a.asset_id = p_asset
        ORDER BY a.id;
    RETURN QUERY
        SELECT d.grant_id, d.free
        FROM billfold_grants_to_draw(p_wallet, p_asset, p_meter, p_valid_at) AS d
        WHERE NOT EXISTS (SELECT 1 FROM wallets_holdallocation a
                          WHERE a.hold_id = p_hold AND a.grant_id = d.grant_id);
END
$$;

CREATE OR REPLACE FUNCTION billfold_hold_released(p_hold varchar, p_asset varchar)
RETURNS numeric LANGUAGE sql STABLE AS $$
-- what the hold p_hold (NULL: none) reserved in the asset
SELECT CASE WHEN p_hold IS NULL THEN 0 ELSE coalesce(
    (SELECT sum(a.amount) FROM wallets_holdallocation a
     WHERE a.hold_id = p_hold AND a.asset_id = p_asset), 0) END
$$;

CREATE OR REPLACE FUNCTION billfold_accounts_lock(
    p_wallet bigint, p_unit varchar, p_price_asset varchar, p_now timestamptz,
    OUT unit_account bigint, OUT price_account bigint, OUT held boolean, OUT debt boolean
) LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.ledger.accounts_lock for the unit and the price asset (NULL: no price):
-- the wallet's accounts, locked in id order; one missing is made, empty, and locked after
-- the others, its id being the highest. Whether any holds a reservation or owes a debt.
-- unit_account (and price_account, with a price) NULL: none could be locked.
DECLARE
    account record;
    attempt int;
BEGIN
    FOR attempt IN 1..2 LOOP
        unit_account := NULL;
        price_account := NULL;
        held := false;
        debt := false;
        FOR account IN
            SELECT a.id, a.asset_id, a.held, a.debt FROM wallets_account a
            WHERE a.wallet_id = p_wallet
              AND a.asset_id IN (p_unit, coalesce(p_price_asset, p_unit))
            ORDER BY a.id FOR UPDATE
        LOOP
            held := held OR account.held <> 0;
            debt := debt OR account.debt <> 0;
            IF account.asset_id = p_unit THEN
                unit_account := account.id;
            END IF;
            IF account.asset_id = p_price_asset THEN
                price_account := account.id;
            END IF;
        END LOOP;
        EXIT WHEN unit_account IS NOT NULL
                  AND (p_price_asset IS NULL OR price_account IS NOT NULL);
        IF attempt = 2 THEN
            unit_account := NULL;
            RETURN;
        END IF;
        INSERT INTO wallets_account
            (wallet_id, asset_id, system_code, posted, held, debt, created_at)
        SELECT p_wallet, code, NULL, 0, 0, 0, p_now
        FROM unnest(ARRAY[p_unit, p_price_asset]) AS code
        WHERE code IS NOT NULL
        ORDER BY code
        ON CONFLICT (wallet_id, asset_id) WHERE wallet_id IS NOT NULL DO NOTHING;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION billfold_charge_decide(
    p_wallet bigint, p_meter varchar, p_quantity numeric, p_valid_at timestamptz,
    p_unit varchar, p_price bigint, p_price_asset varchar, p_price_places int,
    p_model varchar, p_unit_price numeric, p_package_size numeric, p_package_price numeric,
    p_tiers jsonb, p_accrue boolean, p_subscription bigint, p_period_start timestamptz,
    p_hold varchar,
    OUT included numeric, OUT billable numeric, OUT amount numeric, OUT paid numeric,
    OUT accrued numeric, OUT declined boolean,
    OUT unit_grants varchar[], OUT unit_takes numeric[],
    OUT money_grants varchar[], OUT money_takes numeric[]
) LANGUAGE plpgsql VOLATILE AS $$
-- billing.services.charging._decide (steps 1-4) under the caller's account locks, reads
-- only: the units and the money each grant gives, what is billable, its amount, what is
-- paid and what accrues. declined: a shortfall that cannot accrue (the caller's Python
-- path words the decline, or for a capture the debt). p_hold: a capture's hold, whose
-- grants pay first.
DECLARE
    grant_row record;
    still numeric;
    take numeric;
    before numeric;
BEGIN
    included := 0;
    amount := 0;
    paid := 0;
    accrued := 0;
    declined := false;
    unit_grants := '{}';
    unit_takes := '{}';
    money_grants := '{}';
    money_takes := '{}';
    -- 1. units first, from the unit's grants in burn-down order (a price in the meter's own
    -- unit: the units are the payment)
    still := p_quantity;
    IF p_price IS NULL OR p_price_asset <> p_unit THEN
        FOR grant_row IN
            SELECT * FROM billfold_grants_to_pay(p_wallet, p_unit, p_meter, p_valid_at, p_hold)
        LOOP
            EXIT WHEN still <= 0;
            take := least(grant_row.free, still);
            CONTINUE WHEN take <= 0;
            unit_grants := unit_grants || grant_row.grant_id;
            unit_takes := unit_takes || take;
            still := still - take;
        END LOOP;
        included := p_quantity - still;
    END IF;
    billable := p_quantity - included;
    IF p_price IS NULL OR billable = 0 THEN
        RETURN;
    END IF;

    -- 2. the price of the billable part over the period's cumulative billable quantity
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
    IF amount = 0 THEN
        RETURN;
    END IF;
    -- 3. pay from the price asset's grants in burn-down order
    still := amount;
    FOR grant_row IN
        SELECT * FROM billfold_grants_to_pay(p_wallet, p_price_asset, p_meter, p_valid_at, p_hold)
    LOOP
        EXIT WHEN still <= 0;
        take := least(grant_row.free, still);
        CONTINUE WHEN take <= 0;
        money_grants := money_grants || grant_row.grant_id;
        money_takes := money_takes || take;
        still := still - take;
    END LOOP;
    paid := amount - still;
    -- 4. the shortfall accrues (postpaid, in the billing currency), else it is declined
    IF still > 0 THEN
        IF p_accrue THEN
            accrued := still;
        ELSE
            declined := true;
        END IF;
    END IF;
END
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
    p_description varchar, p_now timestamptz, p_hold varchar
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
-- billing.services.charging._decide, _plan_posting, _body and _write_accepted for the
-- accepted charge of one event. With p_hold, the event captures that pending hold
-- (billing.services.holds.hold_capture_usage). Each statement below takes a fresh
-- snapshot (a volatile function), so the reads after the locks see what the previous
-- holder committed.
DECLARE
    locked record;
    d record;
    row_asset varchar;
    txn bigint;
    event_pk bigint;
    charge json;
    balances json;
BEGIN
    -- a debt, or a reservation on an event's wallet (holds to expire first): the Python path
    locked := billfold_accounts_lock(p_wallet, p_unit, p_price_asset, p_now);
    IF locked.unit_account IS NULL OR locked.debt OR (locked.held AND p_hold IS NULL) THEN
        RETURN NULL;
    END IF;
    -- a capture: its hold must still be pending and live, and stays so (every move of a
    -- hold locks the accounts of its assets first, which are among these: the caller
    -- checks; the row lock covers a hold that reserved nothing, whose void locks none)
    IF p_hold IS NOT NULL THEN
        PERFORM 1 FROM wallets_hold h
        WHERE h.id = p_hold AND h.wallet_id = p_wallet AND h.status = 'pending'
          AND h.expires_at > p_now
        FOR UPDATE;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;

    d := billfold_charge_decide(
        p_wallet, p_meter, p_quantity, p_valid_at, p_unit, p_price, p_price_asset,
        p_price_places, p_model, p_unit_price, p_package_size, p_package_price, p_tiers,
        p_accrue, p_subscription, p_period_start, p_hold);
    IF d.declined THEN
        RETURN NULL;
    END IF;
    IF p_price IS NOT NULL AND d.billable <> 0 THEN
        row_asset := p_price_asset;
    END IF;

    -- revenue accounts are made on first use, by the Python path
    IF (d.included > 0 AND p_unit_revenue IS NULL) OR (d.paid > 0 AND p_price_revenue IS NULL)
    THEN
        RETURN NULL;
    END IF;

    -- the answer (as _body): the charge, then the balances after it
    charge := json_build_object(
        'included', trim_scale(d.included)::text,
        'billable', trim_scale(d.billable)::text,
        'amount', round(d.amount, p_charge_places)::text,
        'asset', p_charge_asset,
        'funding', (
            SELECT coalesce(json_agg(json_build_object(
                       'grant', t.grant_id, 'asset', p_price_asset,
                       'amount', round(t.take, p_price_places)::text) ORDER BY t.n), '[]')
            FROM unnest(d.money_grants, d.money_takes) WITH ORDINALITY AS t(grant_id, take, n)),
        'included_from', (
            SELECT coalesce(json_agg(json_build_object(
                       'grant', t.grant_id, 'asset', p_unit,
                       'amount', round(t.take, p_unit_places)::text) ORDER BY t.n), '[]')
            FROM unnest(d.unit_grants, d.unit_takes) WITH ORDINALITY AS t(grant_id, take, n)),
        'accrued', trim_scale(d.accrued)::text
    );
    SELECT json_agg(json_build_object(
               'asset', a.asset_id,
               'available', round(
                   a.posted - a.held + billfold_hold_released(p_hold, a.asset_id)
                   - CASE WHEN a.id = locked.unit_account THEN d.included ELSE 0 END
                   - CASE WHEN a.id = locked.price_account THEN d.paid ELSE 0 END,
                   CASE WHEN a.asset_id = p_unit THEN p_unit_places ELSE p_price_places END
               )::text) ORDER BY a.id)
    INTO balances
    FROM wallets_account a WHERE a.id IN (locked.unit_account, locked.price_account);

    -- the event row first: a concurrent duplicate writes nothing more
    IF d.included > 0 OR d.paid > 0 THEN
        txn := nextval(pg_get_serial_sequence('wallets_ledgertransaction', 'id'));
    END IF;
    INSERT INTO billing_usageevent (
        event_id, customer_id, subscription_id, meter_id, quantity, timestamp, properties,
        status, decline_code, period_start, included, billable, amount, asset_id, accrued,
        ledger_transaction_id, price_id, hold_id, request_hash, response, received_at)
    VALUES (
        p_event_id, p_customer, p_subscription, p_meter_id, p_event_quantity, p_timestamp,
        p_properties, 'accepted', '', p_period_start, d.included, d.billable, d.amount,
        row_asset, d.accrued, txn, p_price, coalesce(p_hold, ''), p_request_hash,
        p_head || jsonb_build_object('charge', charge::jsonb, 'balances', balances::jsonb),
        p_now)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id INTO event_pk;
    IF event_pk IS NULL THEN
        RETURN json_build_object('duplicate', true);
    END IF;

    -- a capture: its grants get back what it reserved (as hold_settle), before they pay
    IF p_hold IS NOT NULL THEN
        UPDATE wallets_grant g SET held = g.held - a.amount
        FROM wallets_holdallocation a WHERE a.hold_id = p_hold AND g.id = a.grant_id;
    END IF;

    -- the ledger: the grants drawn, the revenue, the wallet balances (as posting)
    IF txn IS NOT NULL THEN
        INSERT INTO wallets_ledgertransaction (
            id, wallet_id, kind, reverses_id, reference, description, created_at, metadata,
            counterparty_wallet_id)
        VALUES (
            txn, p_wallet, CASE WHEN p_hold IS NULL THEN 'draw' ELSE 'capture' END, NULL,
            left(coalesce(p_hold, p_event_id), 255), left(p_description, 500), p_now,
            jsonb_build_object('event', p_event_id, 'meter', p_meter), NULL);
        INSERT INTO wallets_ledgerentry
            (transaction_id, account_id, asset_id, grant_id, amount, created_at)
        SELECT txn, legs.account_id, legs.asset_id, legs.grant_id, legs.amount, p_now
        FROM (
            SELECT 1 AS part, t.n, locked.unit_account AS account_id, p_unit AS asset_id,
                   t.grant_id, -t.take AS amount
            FROM unnest(d.unit_grants, d.unit_takes) WITH ORDINALITY AS t(grant_id, take, n)
            UNION ALL
            SELECT 2, t.n, locked.price_account, p_price_asset, t.grant_id, -t.take
            FROM unnest(d.money_grants, d.money_takes) WITH ORDINALITY AS t(grant_id, take, n)
            UNION ALL
            SELECT 3, 1, p_unit_revenue, p_unit, NULL, d.included WHERE d.included > 0
            UNION ALL
            SELECT 4, 1, p_price_revenue, p_price_asset, NULL, d.paid WHERE d.paid > 0
        ) AS legs
        ORDER BY legs.part, legs.n;
        UPDATE wallets_grant g SET remaining = g.remaining - t.take
        FROM (SELECT t.grant_id, sum(t.take) AS take
              FROM unnest(d.unit_grants || d.money_grants, d.unit_takes || d.money_takes)
                   AS t(grant_id, take)
              GROUP BY t.grant_id) AS t
        WHERE g.id = t.grant_id;
    END IF;
    IF txn IS NOT NULL OR p_hold IS NOT NULL THEN
        UPDATE wallets_account a
        SET posted = a.posted
                     - CASE WHEN a.id = locked.unit_account THEN d.included ELSE 0 END
                     - CASE WHEN a.id = locked.price_account THEN d.paid ELSE 0 END,
            held = a.held - billfold_hold_released(p_hold, a.asset_id)
        WHERE a.id IN (locked.unit_account, locked.price_account);
    END IF;

    -- the period's counter
    IF p_price IS NOT NULL THEN
        INSERT INTO billing_usagecounter (
            subscription_id, period_start, period_end, price_id, quantity, included, billable,
            amount, accrued, events, updated_at)
        VALUES (
            p_subscription, p_period_start, p_period_end, p_price, d.included + d.billable,
            d.included, d.billable, d.amount - d.accrued, d.accrued, 1, p_now)
        ON CONFLICT (subscription_id, period_start, price_id) DO UPDATE SET
            quantity = billing_usagecounter.quantity + EXCLUDED.quantity,
            included = billing_usagecounter.included + EXCLUDED.included,
            billable = billing_usagecounter.billable + EXCLUDED.billable,
            amount = billing_usagecounter.amount + EXCLUDED.amount,
            accrued = billing_usagecounter.accrued + EXCLUDED.accrued,
            events = billing_usagecounter.events + 1,
            updated_at = EXCLUDED.updated_at;
    END IF;

    -- a capture: the hold is captured, once, with its event and transaction (as
    -- _write_accepted)
    IF p_hold IS NOT NULL THEN
        UPDATE wallets_hold
        SET status = 'captured', resolved_at = p_now, capture_transaction_id = txn,
            metadata = metadata || jsonb_build_object('event', p_event_id::text)
        WHERE id = p_hold AND status = 'pending';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'hold % left pending under its locks', p_hold;
        END IF;
    END IF;
    RETURN json_build_object('charge', charge, 'balances', balances, 'transaction', txn);
END
$$;
"""

HOLD_RESERVE = r"""
CREATE OR REPLACE FUNCTION billfold_hold_reserve(
    p_wallet bigint, p_meter varchar, p_quantity numeric, p_valid_at timestamptz,
    p_unit varchar, p_unit_places int,
    p_price bigint, p_price_asset varchar, p_price_places int,
    p_model varchar, p_unit_price numeric, p_package_size numeric, p_package_price numeric,
    p_tiers jsonb, p_accrue boolean, p_subscription bigint, p_period_start timestamptz,
    p_hold varchar, p_request_hash varchar, p_metadata jsonb, p_head jsonb,
    p_expires_at timestamptz, p_now timestamptz
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
-- billing.services.holds._reserve and wallets.services.holds.ledger_hold for a hold whose
-- estimate the wallet covers: it reserves what the charge of the estimate would take from
-- each grant (units, then money; a postpaid shortfall is not reserved). Returns the held
-- amounts of the answer (as _hold_json). Holds due to expire first, a debt, a decline, a
-- planned grant that expired between the event's time and now, or the hold id taken:
-- NULL, nothing written.
DECLARE
    locked record;
    d record;
    held json;
    estimate jsonb;
BEGIN
    locked := billfold_accounts_lock(p_wallet, p_unit, p_price_asset, p_now);
    IF locked.unit_account IS NULL OR locked.debt THEN
        RETURN NULL;
    END IF;
    IF locked.held AND EXISTS (
        SELECT 1 FROM wallets_hold h
        WHERE h.wallet_id = p_wallet AND h.status = 'pending' AND h.expires_at <= p_now)
    THEN
        RETURN NULL;  -- holds_release_expired first
    END IF;
    d := billfold_charge_decide(
        p_wallet, p_meter, p_quantity, p_valid_at, p_unit, p_price, p_price_asset,
        p_price_places, p_model, p_unit_price, p_package_size, p_package_price, p_tiers,
        p_accrue, p_subscription, p_period_start, NULL);
    IF d.declined THEN
        RETURN NULL;
    END IF;
    -- the reservation draws from the grants that may pay now: those the decision drew on
    -- (a prefix of the burn-down order), unless one of them expired since the event's time
    IF EXISTS (
        SELECT 1 FROM wallets_grant g
        WHERE g.id = ANY(d.unit_grants || d.money_grants) AND g.expires_at <= p_now)
    THEN
        RETURN NULL;
    END IF;

    SELECT coalesce(json_agg(json_build_object(
               'asset', r.asset,
               'amount', round(r.amount,
                               CASE WHEN r.asset = p_unit THEN p_unit_places
                                    ELSE p_price_places END)::text) ORDER BY r.asset), '[]')
    INTO held
    FROM (SELECT p_unit AS asset, d.included AS amount WHERE d.included > 0
          UNION ALL
          SELECT p_price_asset, d.paid WHERE d.paid > 0) AS r;
    estimate := jsonb_build_object(
        'included', trim_scale(d.included)::text,
        'billable', trim_scale(d.billable)::text,
        'amount', trim_scale(d.amount)::text,
        'asset', CASE WHEN p_price IS NOT NULL AND d.billable <> 0 THEN p_price_asset END,
        'accrued', trim_scale(d.accrued)::text);

    -- the hold first: a replay, a concurrent duplicate or a hold with this id made
    -- otherwise writes nothing more (the Python path answers them)
    INSERT INTO wallets_hold (id, wallet_id, status, expires_at, created_at, metadata)
    VALUES (p_hold, p_wallet, 'pending', p_expires_at, p_now,
            p_metadata || jsonb_build_object('estimate', estimate))
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    -- the hold id's idempotency record, with the answer (a record is only ever made with
    -- its hold: one without cannot be, and fails the statement)
    INSERT INTO wallets_idempotencyrecord
        (scope, key, request_hash, status_code, response, created_at)
    VALUES ('billing.hold', p_hold, p_request_hash, 201,
            p_head || jsonb_build_object('held', held::jsonb), now());
    INSERT INTO wallets_holdallocation (hold_id, grant_id, asset_id, amount)
    SELECT p_hold, t.grant_id, t.asset_id, t.take
    FROM (
        SELECT 1 AS part, t.n, t.grant_id, p_unit AS asset_id, t.take
        FROM unnest(d.unit_grants, d.unit_takes) WITH ORDINALITY AS t(grant_id, take, n)
        UNION ALL
        SELECT 2, t.n, t.grant_id, p_price_asset, t.take
        FROM unnest(d.money_grants, d.money_takes) WITH ORDINALITY AS t(grant_id, take, n)
    ) AS t
    ORDER BY t.part, t.n;
    UPDATE wallets_grant g SET held = g.held + t.take
    FROM unnest(d.unit_grants || d.money_grants, d.unit_takes || d.money_takes)
         AS t(grant_id, take)
    WHERE g.id = t.grant_id;
    UPDATE wallets_account a
    SET held = a.held
               + CASE WHEN a.id = locked.unit_account THEN d.included ELSE 0 END
               + CASE WHEN a.id = locked.price_account THEN d.paid ELSE 0 END
    WHERE a.id IN (locked.unit_account, locked.price_account);
    RETURN held;
END
$$;
"""

OLD_SIGNATURE = """
    bigint, varchar, numeric, timestamptz, varchar, int, bigint, bigint, varchar, int, bigint,
    varchar, numeric, numeric, numeric, jsonb, boolean, bigint, timestamptz, timestamptz,
    varchar, int, varchar, bigint, bigint, numeric, timestamptz, jsonb, varchar, jsonb, varchar,
    timestamptz"""

FORWARD = (
    f"DROP FUNCTION billfold_event_charge({OLD_SIGNATURE});" + HELPERS + EVENT_CHARGE + HOLD_RESERVE
)

BACKWARD = (
    f"DROP FUNCTION billfold_event_charge({OLD_SIGNATURE}, varchar);"
    """
    DROP FUNCTION billfold_hold_reserve(
        bigint, varchar, numeric, timestamptz, varchar, int, bigint, varchar, int, varchar,
        numeric, numeric, numeric, jsonb, boolean, bigint, timestamptz, varchar, varchar,
        jsonb, jsonb, timestamptz, timestamptz);
    DROP FUNCTION billfold_charge_decide(
        bigint, varchar, numeric, timestamptz, varchar, bigint, varchar, int, varchar,
        numeric, numeric, numeric, jsonb, boolean, bigint, timestamptz, varchar);
    DROP FUNCTION billfold_accounts_lock(bigint, varchar, varchar, timestamptz);
    DROP FUNCTION billfold_grants_to_pay(bigint, varchar, varchar, timestamptz, varchar);
    DROP FUNCTION billfold_hold_released(varchar, varchar);
    """ + importlib.import_module("billing.migrations.0012_charge_in_database").EVENT_CHARGE
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_charge_in_database"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, reverse_sql=BACKWARD),
    ]
