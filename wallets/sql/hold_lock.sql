CREATE OR REPLACE FUNCTION billfold_hold_lock(
    p_hold varchar, p_wallet bigint, p_now timestamptz
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
-- Whether the hold p_hold of the wallet is pending and live, its row then locked so it stays
-- so (every move of a hold also locks the accounts of its assets first; the row lock covers
-- a hold that reserved nothing, whose void locks none).
BEGIN
    PERFORM 1 FROM wallets_hold h
    WHERE h.id = p_hold AND h.wallet_id = p_wallet AND h.status = 'pending'
      AND h.expires_at > p_now
    FOR UPDATE;
    RETURN FOUND;
END
$$;
