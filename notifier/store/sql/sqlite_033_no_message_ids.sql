-- Older versions recorded a send whose success answer held no message id (Aliyun's OK without BizId, Tencent's
-- Ok without SerialNo, WeCom's errcode 0 without msgid) under 'None' or an empty id, shared by every such send:
-- a receipt naming it could confirm or fail whichever of them a look-up found first. No send is recorded under
-- such an id any more (channels.base.message_id_of, engine.dispatch.with_message_ids) and a receipt carrying one
-- is ignored (engine.receipts, ReceiptOutcome.NO_ID); the sends recorded before lose it here, so that no receipt
-- can ever match them. An id is none as message_id_of reads it: empty or 'None' once its blanks are trimmed.
-- Nothing else of those deliveries changes (postgres_033_no_message_ids.sql does the same).
UPDATE deliveries SET provider_message_id = NULL
WHERE trim(provider_message_id, ' ' || char(9, 10, 13)) IN ('', 'None');
