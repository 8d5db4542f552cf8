--[[
  Cuts a running job's history back to what its checkpoint had seen (the first log lines and
  epochs; none for a restart from scratch), sets its progress and appends the `rewind` event, all
  at once, so no reader sees an epoch twice.

  Input:
    KEYS[1] the job's record (hash)
    KEYS[2] its loss log (list)
    KEYS[3] its epoch summaries (list)
    KEYS[4] its event stream

    ARGV[1] how many log lines to keep
    ARGV[2] how many epochs to keep
    ARGV[3] the progress (JSON)
    ARGV[4] the `rewind` event's data (JSON)
    ARGV[5] the attempt the job must be at; '' for any

  Output:
    1: rewound; 0: refused (the job is not running, or at another attempt), nothing written
]]
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[5] then return 0 end
local kept = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for index, key in ipairs({KEYS[2], KEYS[3]}) do
  if kept[index] == 0 then redis.call('DEL', key) else redis.call('LTRIM', key, 0, kept[index] - 1) end
end
redis.call('HSET', KEYS[1], 'progress', ARGV[3])
redis.call('XADD', KEYS[4], '*', 'type', 'rewind', 'data', ARGV[4])
return 1
