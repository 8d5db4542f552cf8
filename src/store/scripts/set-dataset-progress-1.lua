--[[
  Records where a data set's processing stands, only while it is processing: a late progress
  report of a worker can't bring a finished (or deleted) data set's record back.

  Input:
    KEYS[1] the data set's record (hash)

    ARGV[1] its progress (JSON)

  Output:
    1 when written, 0 when the data set is not processing
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'processing' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
return 1
