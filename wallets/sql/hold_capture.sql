CREATE OR REPLACE FUNCTION billfold_hold_capture(
    p_hold varchar, p_wallet bigint, p_txn bigint, p_event varchar, p_now timestamptz
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.holds.hold_settle for the capture of a pending hold locked by
-- billfold_hold_lock, under the locks of the wallet's accounts in its assets: its grants
-- and the accounts get back what it reserved (before a posting draws on them), and it is
-- captured, once, with the event p_event and the transaction p_txn (NULL: nothing drawn).
BEGIN
    UPDATE wallets_grant g SET held = g.held - a.amount
    FROM wallets_holdallocation a WHERE a.hold_id = p_hold AND g.id = a.grant_id;
    UPDATE wallets_account c SET held = c.held - s.amount
    FROM (SELECT a.asset_id, sum(a.amount) AS amount FROM wallets_holdallocation a
          WHERE a.hold_id = p_hold GROUP BY a.asset_id) AS s
    WHERE c.wallet_id = p_wallet AND c.asset_id = s.asset_id;
    UPDATE wallets_hold
    SET status = 'captured', resolved_at = p_now, capture_transaction_id = p_txn,
        metadata = metadata || jsonb_build_object('event', p_event::text)
    WHERE id = p_hold AND status = 'pending';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hold % left pending under its locks', p_hold;
    END IF;
END
$$;
