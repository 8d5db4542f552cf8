--[[
  Deletes a base's record and gives its bytes back to its owner's and the server's storage, unless
  a job queued or running starts from it: checked and deleted in one step, so a job can't start
  from a base as it goes. Its files are the caller's to delete after.

  Input:
    KEYS[1] the base's record (hash)
    KEYS[2] the index of all bases
    KEYS[3] the bytes all ready data sets and bases occupy
    KEYS[4] the jobs' 'queued' index
    KEYS[5] the jobs' 'running' index

    ARGV[1] the base's id
    ARGV[2] the start of an owner's index of bases: it is <ARGV[2]><owner>
    ARGV[3] the start of an owner's bytes: it is <ARGV[3]><owner>
    ARGV[4] the start of a job's record key: a job's record is <ARGV[4]><job id>

  Output:
    {'deleted', ''}; {'missing', ''}; {'inUse', the id of a job starting from it}
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', ''} end
local needle = '"initFrom":"' .. ARGV[1] .. '"'
for _, index in ipairs({KEYS[4], KEYS[5]}) do
  for _, jobId in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local request = redis.call('HGET', ARGV[4] .. jobId, 'request')
    if request and string.find(request, needle, 1, true) then return {'inUse', jobId} end
  end
end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
redis.call('DECRBY', KEYS[3], bytes)
redis.call('DECRBY', ARGV[3] .. owner, bytes)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. owner, ARGV[1])
redis.call('DEL', KEYS[1])
return {'deleted', ''}
