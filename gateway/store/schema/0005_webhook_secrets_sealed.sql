-- Webhook signing secrets are sealed (AES-256-GCM under GATEWAY_WEBHOOK_SECRET_KEY,
-- gateway/webhooks/sealing.py): `secret` holds the sealed bytes in base64, `secret_nonce` the
-- nonce in base64, `secret_key_id` the id of the key that sealed it. A row with an empty
-- `secret_key_id` predates this and holds its secret in clear: the gateway seals it when it
-- starts with the key (docs/webhooks.md).
ALTER TABLE webhooks ADD COLUMN secret_nonce TEXT NOT NULL DEFAULT '';
ALTER TABLE webhooks ADD COLUMN secret_key_id TEXT NOT NULL DEFAULT '';
