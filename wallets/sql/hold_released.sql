CREATE OR REPLACE FUNCTION billfold_hold_released(p_hold varchar, p_asset varchar)
RETURNS numeric LANGUAGE sql STABLE AS $$
-- what the hold p_hold (NULL: none) reserved in the asset
SELECT CASE WHEN p_hold IS NULL THEN 0 ELSE coalesce(
    (SELECT sum(a.amount) FROM wallets_holdallocation a
     WHERE a.hold_id = p_hold AND a.asset_id = p_asset), 0) END
$$;
