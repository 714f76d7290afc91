CREATE OR REPLACE FUNCTION billfold_accounts_lock(
    p_wallet bigint, p_unit varchar, p_price_asset varchar, p_now timestamptz,
    OUT unit_account bigint, OUT price_account bigint, OUT held boolean, OUT debt boolean
) LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.ledger.accounts_lock for the unit and the price asset (NULL: no price):
-- the wallet's accounts, locked in id order; one missing is made, empty, and locked after
-- the others, its id being the highest. Whether any holds a reservation or owes a debt.
-- unit_account (and price_account, with a price) NULL: none could be locked.
DECLARE
    account record;
    attempt int;
BEGIN
    FOR attempt IN 1..2 LOOP
        unit_account := NULL;
        price_account := NULL;
        held := false;
        debt := false;
        FOR account IN
            SELECT a.id, a.asset_id, a.held, a.debt FROM wallets_account a
            WHERE a.wallet_id = p_wallet
              AND a.asset_id IN (p_unit, coalesce(p_price_asset, p_unit))
            ORDER BY a.id FOR UPDATE
        LOOP
            held := held OR account.held <> 0;
            debt := debt OR account.debt <> 0;
            IF account.asset_id = p_unit THEN
                unit_account := account.id;
            END IF;
            IF account.asset_id = p_price_asset THEN
                price_account := account.id;
            END IF;
        END LOOP;
        EXIT WHEN unit_account IS NOT NULL
                  AND (p_price_asset IS NULL OR price_account IS NOT NULL);
        IF attempt = 2 THEN
            unit_account := NULL;
            RETURN;
        END IF;
        INSERT INTO wallets_account
            (wallet_id, asset_id, system_code, posted, held, debt, created_at)
        SELECT p_wallet, code, NULL, 0, 0, 0, p_now
        FROM unnest(ARRAY[p_unit, p_price_asset]) AS code
        WHERE code IS NOT NULL
        ORDER BY code
        ON CONFLICT (wallet_id, asset_id) WHERE wallet_id IS NOT NULL DO NOTHING;
    END LOOP;
END
$$;
