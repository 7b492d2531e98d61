-- One aggregate's public events, in order (`GET /v1/events?aggregate_id=`: the operator's
-- whole story of a checkout, plan, consumer or merchant).
CREATE INDEX events_aggregate ON messaging.events (aggregate_id, id);
