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
-- billing.metering.decide.decide (steps 1-4) under the caller's account locks, reads
-- only: the units and the money each grant gives, what is billable, its amount (exact to
-- the ledger's 12 places in every asset: p_price_places is the places the caller's answer
-- shows), what is paid and what accrues. declined: a shortfall that cannot accrue (the
-- caller's Python path words the decline, or for a capture the debt), or a charge or a
-- counter total that would reach 10^18 (the Python path refuses it: _check_bounds).
-- p_hold: a capture's hold, whose grants pay first.
DECLARE
    grant_row record;
    still numeric;
    take numeric;
    totals record;
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
    IF p_price IS NULL THEN
        RETURN;
    END IF;

    -- 2. the price of the billable part over the period's cumulative billable quantity
    SELECT coalesce(max(c.quantity), 0) AS quantity, coalesce(max(c.billable), 0) AS billable,
           coalesce(max(c.amount + c.accrued), 0) AS charged
    INTO totals FROM billing_usagecounter c
    WHERE c.subscription_id = p_subscription AND c.period_start = p_period_start
      AND c.price_id = p_price;
    IF billable <> 0 THEN
        amount := round(billfold_price_total(p_model, p_unit_price, p_package_size,
                                             p_package_price, p_tiers, totals.billable + billable),
                        12)
                  - round(billfold_price_total(p_model, p_unit_price, p_package_size,
                                               p_package_price, p_tiers, totals.billable), 12);
    END IF;
    -- what Billfold records stays below 10^18 (_check_bounds), before anything is paid
    IF amount >= 1e18 OR totals.quantity + p_quantity >= 1e18
       OR totals.billable + billable >= 1e18 OR totals.charged + amount >= 1e18 THEN
        declined := true;
        RETURN;
    END IF;
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
