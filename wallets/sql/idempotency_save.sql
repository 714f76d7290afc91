CREATE OR REPLACE FUNCTION billfold_idempotency_save(
    p_scope varchar, p_key varchar, p_request_hash varchar, p_status_code int,
    p_response jsonb
) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
-- wallets.services.idempotency: the record of a request key, in the transaction of its
-- effect, with the answer a replay gets. A key already recorded fails the statement.
BEGIN
    INSERT INTO wallets_idempotencyrecord
        (scope, key, request_hash, status_code, response, created_at)
    VALUES (p_scope, p_key, p_request_hash, p_status_code, p_response, now());
END
$$;
