-- Since when a watched exchange source cannot be read: no working fill stream and the last poll
-- failed (NULL while it reads). Written by the source's reader (the lease holder); the engine
-- turns a long outage into a leader_stream_down audit entry per configuration copying it.
ALTER TABLE sources ADD COLUMN down_since TEXT;
