--[[
  Records a new data set upload, `processing`, unless its owner already has as many processing as
  allowed: counted and created in one step, so uploads arriving together can't overshoot.

  Input:
    KEYS[1] the data set's record (hash)
    KEYS[2] the index of all uploaded data sets
    KEYS[3] the index of those processing
    KEYS[4] the owner's index
    KEYS[5] the owner's index of those processing

    ARGV[1] the data set's id
    ARGV[2] its record's fields besides id and state, JSON: an object of strings
    ARGV[3] its creation time in ms (the indexes' score)
    ARGV[4] the most data sets one owner may have processing

  Output:
    'created'; 'busy': the owner has ARGV[4] processing already
]]
if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[4]) then return 'busy' end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'state', 'processing')
for field, value in pairs(cjson.decode(ARGV[2])) do redis.call('HSET', KEYS[1], field, value) end
for i = 2, 5 do redis.call('ZADD', KEYS[i], ARGV[3], ARGV[1]) end
return 'created'
