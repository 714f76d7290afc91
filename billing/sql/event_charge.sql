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
-- billing.metering: decide.decide, write.plan_posting, answers.event_body and
-- write.accepted_event_write for the
-- accepted charge of one event. With p_hold, the event captures that pending hold
-- (billing.metering.holds.hold_capture_usage). Each statement below takes a fresh
-- snapshot (a volatile function), so the reads after the locks see what the previous
-- holder committed. The wallets' functions lock, capture and post; this one writes
-- billing's rows.
DECLARE
    locked record;
    d record;
    row_asset varchar;
    txn bigint;
    leg_accounts bigint[];
    leg_assets varchar[];
    leg_grants varchar[];
    leg_amounts numeric[];
    event_pk bigint;
    charge json;
    balances json;
BEGIN
    -- a debt, or a reservation on an event's wallet (holds to expire first): the Python path
    locked := billfold_accounts_lock(p_wallet, p_unit, p_price_asset, p_now);
    IF locked.unit_account IS NULL OR locked.debt OR (locked.held AND p_hold IS NULL) THEN
        RETURN NULL;
    END IF;
    -- a capture: its hold must still be pending and live, and stays so (the accounts of
    -- its assets are among these: the caller checks)
    IF p_hold IS NOT NULL THEN
        IF NOT billfold_hold_lock(p_hold, p_wallet, p_now) THEN
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

    -- a capture: the hold gives back what it reserved, before its grants pay, and is
    -- captured with the event's transaction (as _write_accepted)
    IF p_hold IS NOT NULL THEN
        PERFORM billfold_hold_capture(p_hold, p_wallet, txn, p_event_id, p_now);
    END IF;

    -- the ledger: the grants drawn, the revenue, the wallet balances (as posting)
    IF txn IS NOT NULL THEN
        SELECT array_agg(legs.account_id ORDER BY legs.part, legs.n),
               array_agg(legs.asset_id ORDER BY legs.part, legs.n),
               array_agg(legs.grant_id ORDER BY legs.part, legs.n),
               array_agg(legs.amount ORDER BY legs.part, legs.n)
        INTO leg_accounts, leg_assets, leg_grants, leg_amounts
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
        ) AS legs;
        PERFORM billfold_ledger_post(
            txn, p_wallet, CASE WHEN p_hold IS NULL THEN 'draw' ELSE 'capture' END,
            left(coalesce(p_hold, p_event_id), 255), left(p_description, 500),
            jsonb_build_object('event', p_event_id, 'meter', p_meter), p_now,
            leg_accounts, leg_assets, leg_grants, leg_amounts);
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
    RETURN json_build_object('charge', charge, 'balances', balances, 'transaction', txn);
END
$$;
