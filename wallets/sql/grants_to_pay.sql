CREATE OR REPLACE FUNCTION billfold_grants_to_pay(
    p_wallet bigint, p_asset varchar, p_meter varchar, p_valid_at timestamptz, p_hold varchar
) RETURNS TABLE (grant_id varchar, free numeric) LANGUAGE plpgsql STABLE AS $$
-- billing.metering.decide._with_preferred: a capture's hold's grants in the asset first,
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
