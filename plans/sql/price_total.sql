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
