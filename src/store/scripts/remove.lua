--[[
  Deletes an ended job (or, for a caller that says so, one recorded but never queued): its keys, its place in every index and in the index of finished jobs, in
  one step and only while the job is in a final state, so a DELETE and the retention sweep (in
  any number of API processes) can race each other or a cancel without deleting a live job or
  leaving an index entry that names nothing.

  The number of keys varies with the job's keys (JobKeys.ofJob); it is given first at each call.

  Input:
    KEYS[1] the job's record (hash)
    KEYS[2] the finished jobs by end time (sorted set)
    KEYS[3..] every key of the job, its record included (JobKeys.ofJob)

    ARGV[1] the start of every index key (JobKeys.indexPrefix), as for the transition script
    ARGV[2] the job's id
    ARGV[3] the states it may be deleted in, JSON: an array (the final ones; 'queued' for a job never queued)

  Output:
    {1, state}: deleted, it was in that state
    {0, state}: refused, the job is not in a final state
    {0, ''}: there is no such job
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  -- Nothing of the job is left but, perhaps, a sweep's stale entry.
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {0, ''}
end
local final = false
for _, name in ipairs(cjson.decode(ARGV[3])) do
  if name == state then final = true end
end
if not final then return {0, state} end
local owner = redis.call('HGET', KEYS[1], 'owner')
local prefix = ARGV[1]
for _, index in ipairs({'all', state}) do
  redis.call('ZREM', prefix .. index, ARGV[2])
  if owner then redis.call('ZREM', prefix .. 'owner:' .. owner .. ':' .. index, ARGV[2]) end
end
redis.call('ZREM', KEYS[2], ARGV[2])
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
return {1, state}
