--[[
  Records a new experiment and numbers it, so that lists page through experiments in creation
  order as they do through jobs. Its runs' jobs are recorded before (create.lua, one each).

  The number of keys varies: 4 for an experiment with an owner, 3 without (the file name carries
  no number; it is given first at each call).

  Input:
    KEYS[1] the experiment sequence counter
    KEYS[2] the experiment's record (hash)
    KEYS[3] the index of every experiment
    KEYS[4] the owner's index (only with an owner)

    ARGV[1] the experiment's id
    ARGV[2] its record's other fields (a JSON object of strings)

  Output:
    its sequence number
]]
local sequence = redis.call('INCR', KEYS[1])
local fields = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'sequence', sequence)
for name, value in pairs(fields) do redis.call('HSET', KEYS[2], name, value) end
redis.call('ZADD', KEYS[3], sequence, ARGV[1])
if KEYS[4] then redis.call('ZADD', KEYS[4], sequence, ARGV[1]) end
return sequence
