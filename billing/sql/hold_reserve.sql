CREATE OR REPLACE FUNCTION billfold_hold_reserve(
    p_wallet bigint, p_meter varchar, p_quantity numeric, p_valid_at timestamptz,
    p_unit varchar, p_unit_places int,
    p_price bigint, p_price_asset varchar, p_price_places int,
    p_model varchar, p_unit_price numeric, p_package_size numeric, p_package_price numeric,
    p_tiers jsonb, p_accrue boolean, p_subscription bigint, p_period_start timestamptz,
    p_hold varchar, p_request_hash varchar, p_metadata jsonb, p_head jsonb,
    p_expires_at timestamptz, p_now timestamptz
) RETURNS json LANGUAGE plpgsql VOLATILE AS $$
-- billing.metering.holds._reserve for a hold whose estimate the wallet covers: it reserves
-- what the charge of the estimate would take from each grant (units, then money; a postpaid
-- shortfall is not reserved; billfold_hold_place writes the hold). Returns the held
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
    IF NOT billfold_hold_place(
        p_hold, p_wallet, p_expires_at, p_now,
        p_metadata || jsonb_build_object('estimate', estimate),
        d.unit_grants || d.money_grants,
        array_fill(p_unit, ARRAY[cardinality(d.unit_grants)])
            || array_fill(p_price_asset, ARRAY[cardinality(d.money_grants)]),
        d.unit_takes || d.money_takes)
    THEN
        RETURN NULL;
    END IF;
    -- the hold id's idempotency record, with the answer (a record is only ever made with
    -- its hold: one without cannot be, and fails the statement)
    PERFORM billfold_idempotency_save(
        'billing.hold', p_hold, p_request_hash, 201,
        p_head || jsonb_build_object('held', held::jsonb));
    RETURN held;
END
$$;
