--[[
  Records an uploaded base, unless its bytes would take its owner or the server past their storage
  limit, which bases share with data sets: counted and recorded in one step, so uploads arriving
  together can't overshoot.

  Input:
    KEYS[1] the base's record (hash)
    KEYS[2] the index of all bases
    KEYS[3] the owner's index of bases
    KEYS[4] the bytes all ready data sets and bases occupy
    KEYS[5] the bytes the owner's ready data sets and bases occupy

    ARGV[1] the base's id
    ARGV[2] its record's fields besides id and bytes, JSON: an object of strings
    ARGV[3] its creation time in ms (the indexes' score)
    ARGV[4] the bytes it occupies
    ARGV[5] the most bytes one owner's data sets and bases may occupy
    ARGV[6] the most bytes all data sets and bases may occupy

  Output:
    'created'; 'owner': past the owner's limit; 'server': past the server's
]]
local bytes = tonumber(ARGV[4])
if tonumber(redis.call('GET', KEYS[5]) or '0') + bytes > tonumber(ARGV[5]) then return 'owner' end
if tonumber(redis.call('GET', KEYS[4]) or '0') + bytes > tonumber(ARGV[6]) then return 'server' end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'bytes', ARGV[4])
for field, value in pairs(cjson.decode(ARGV[2])) do redis.call('HSET', KEYS[1], field, value) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('INCRBY', KEYS[4], bytes)
redis.call('INCRBY', KEYS[5], bytes)
return 'created'
