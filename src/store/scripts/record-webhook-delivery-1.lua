--[[
  Appends one delivery attempt to a job's (or an experiment's) webhook deliveries, kept in its
  record beside its webhook so that GET /jobs/:id and GET /jobs (GET /experiments/:id) read them
  with the rest of the record. Only while the record exists: an attempt that ends after the job
  was deleted must not bring back a record of nothing but its deliveries. The entries are appended as text to the JSON array, which is
  never decoded here, so every value stays exactly as the caller wrote it.

  Input:
    KEYS[1] the job's or the experiment's record (hash)

    ARGV[1] the attempt (JSON object)

  Output:
    1: appended; 0: the record has no webhook (or no longer exists)
]]
if redis.call('HEXISTS', KEYS[1], 'webhookUrl') == 0 then return 0 end
local deliveries = redis.call('HGET', KEYS[1], 'webhookDeliveries')
if not deliveries or deliveries == '[]' then
  deliveries = '[' .. ARGV[1] .. ']'
else
  deliveries = string.sub(deliveries, 1, -2) .. ',' .. ARGV[1] .. ']'
end
redis.call('HSET', KEYS[1], 'webhookDeliveries', deliveries)
return 1
