CREATE OR REPLACE FUNCTION billfold_hold_place(
    p_hold varchar, p_wallet bigint, p_expires_at timestamptz, p_now timestamptz,
    p_metadata jsonb, p_grants varchar[], p_assets varchar[], p_amounts numeric[]
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.holds.ledger_hold for a reservation already planned: the pending hold,
-- its allocations (grant, asset, amount, in the order given, one per grant), the grants'
-- and the wallet accounts' held amounts. The caller holds the accounts' locks. false, with
-- nothing written: the hold id is taken.
BEGIN
    INSERT INTO wallets_hold (id, wallet_id, status, expires_at, created_at, metadata)
    VALUES (p_hold, p_wallet, 'pending', p_expires_at, p_now, p_metadata)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO wallets_holdallocation (hold_id, grant_id, asset_id, amount)
    SELECT p_hold, a.grant_id, a.asset_id, a.amount
    FROM unnest(p_grants, p_assets, p_amounts) WITH ORDINALITY AS a(grant_id, asset_id, amount, n)
    ORDER BY a.n;
    UPDATE wallets_grant g SET held = g.held + a.amount
    FROM unnest(p_grants, p_amounts) AS a(grant_id, amount)
    WHERE g.id = a.grant_id;
    UPDATE wallets_account c SET held = c.held + s.amount
    FROM (SELECT a.asset_id, sum(a.amount) AS amount
          FROM unnest(p_assets, p_amounts) AS a(asset_id, amount)
          GROUP BY a.asset_id) AS s
    WHERE c.wallet_id = p_wallet AND c.asset_id = s.asset_id;
    RETURN true;
END
$$;
