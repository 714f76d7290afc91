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
