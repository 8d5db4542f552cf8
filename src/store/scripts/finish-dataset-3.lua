--[[
  Ends a data set's processing: `ready` with its report, unless its bytes would take its owner or
  the server past their storage limit (then `failed`, saying so), or `failed` with the error.
  Only a data set still `processing` changes, so a retried worker can't finish one twice.

  Input:
    KEYS[1] the data set's record (hash)
    KEYS[2] the index of those processing
    KEYS[3] the bytes all ready data sets and bases occupy

    ARGV[1] 'ready' or 'failed'
    ARGV[2] the fields to set, JSON: an object of strings (report or error, finishedAt, progress)
    ARGV[3] the bytes it occupies (0 when failed)
    ARGV[4] the most bytes one owner's ready data sets and bases may occupy
    ARGV[5] the most bytes all ready data sets and bases may occupy
    ARGV[6] the start of the owner's keys (DatasetKeys.indexPrefix)
    ARGV[7] the data set's id
    ARGV[8] the error (JSON) to record when a storage limit refuses it; '%s' stands for the limit's name

  Output:
    {state now, ''}, or {'gone', ''}: no such data set or it isn't processing
]]
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'processing' then return {'gone', ''} end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local ownerBytesKey = ARGV[6] .. 'bytes:' .. owner
local target = ARGV[1]
local fields = cjson.decode(ARGV[2])
local bytes = tonumber(ARGV[3])
if target == 'ready' then
  local ownerBytes = tonumber(redis.call('GET', ownerBytesKey) or '0')
  local totalBytes = tonumber(redis.call('GET', KEYS[3]) or '0')
  local refusal = nil
  if ownerBytes + bytes > tonumber(ARGV[4]) then refusal = 'your data sets and bases' end
  if totalBytes + bytes > tonumber(ARGV[5]) then refusal = "this server's data sets and bases" end
  if refusal then
    target = 'failed'
    fields = { finishedAt = fields.finishedAt, progress = fields.progress, error = string.format(ARGV[8], refusal) }
  else
    redis.call('INCRBY', ownerBytesKey, bytes)
    redis.call('INCRBY', KEYS[3], bytes)
    redis.call('HSET', KEYS[1], 'bytes', bytes)
  end
end
redis.call('HSET', KEYS[1], 'state', target)
for field, value in pairs(fields) do redis.call('HSET', KEYS[1], field, value) end
redis.call('ZREM', KEYS[2], ARGV[7])
redis.call('ZREM', ARGV[6] .. 'processing:' .. owner, ARGV[7])
return {target, ''}
