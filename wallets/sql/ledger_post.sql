CREATE OR REPLACE FUNCTION billfold_ledger_post(
    p_txn bigint, p_wallet bigint, p_kind varchar, p_reference varchar, p_description varchar,
    p_metadata jsonb, p_now timestamptz,
    p_accounts bigint[], p_assets varchar[], p_grants varchar[], p_amounts numeric[]
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.ledger.posting for a draw: the transaction p_txn (its id drawn from the
-- sequence by the caller), its entries in the order given (account, asset, grant, signed
-- amount, balanced per asset), the grants' remainders and the posted balances of the wallet
-- accounts among them (system accounts keep no balance). Every wallet-account entry names
-- the grant it moves: no debt moves. The caller holds the accounts' locks.
BEGIN
    INSERT INTO wallets_ledgertransaction (
        id, wallet_id, kind, reverses_id, reference, description, created_at, metadata,
        counterparty_wallet_id)
    VALUES (p_txn, p_wallet, p_kind, NULL, p_reference, p_description, p_now, p_metadata,
            NULL);
    INSERT INTO wallets_ledgerentry
        (transaction_id, account_id, asset_id, grant_id, amount, created_at)
    SELECT p_txn, e.account_id, e.asset_id, e.grant_id, e.amount, p_now
    FROM unnest(p_accounts, p_assets, p_grants, p_amounts) WITH ORDINALITY
         AS e(account_id, asset_id, grant_id, amount, n)
    ORDER BY e.n;
    UPDATE wallets_grant g SET remaining = g.remaining + d.amount
    FROM (SELECT e.grant_id, sum(e.amount) AS amount
          FROM unnest(p_grants, p_amounts) AS e(grant_id, amount)
          WHERE e.grant_id IS NOT NULL
          GROUP BY e.grant_id) AS d
    WHERE g.id = d.grant_id;
    UPDATE wallets_account a SET posted = a.posted + d.amount
    FROM (SELECT e.account_id, sum(e.amount) AS amount
          FROM unnest(p_accounts, p_amounts) AS e(account_id, amount)
          GROUP BY e.account_id) AS d
    WHERE a.id = d.account_id AND a.wallet_id IS NOT NULL;
END
$$;
