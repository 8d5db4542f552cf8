--[[
  Deletes a data set's record, unless it is still processing or a job queued or running trains on
  it: checked and deleted in one step, so a job can't start on a data set as it goes. Its files
  are the caller's to delete after.

  Input:
    KEYS[1] the data set's record (hash)
    KEYS[2] the index of all uploaded data sets
    KEYS[3] the bytes all ready data sets occupy
    KEYS[4] the jobs' 'queued' index
    KEYS[5] the jobs' 'running' index

    ARGV[1] the data set's id
    ARGV[2] the start of the owner's keys (DatasetKeys.indexPrefix)
    ARGV[3] the start of a job's record key: a job's record is <ARGV[3]><job id>

  Output:
    {'deleted', ''}; {'missing', ''}; {'processing', ''}; {'inUse', the id of a job using it}
]]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', ''} end
if state == 'processing' then return {'processing', ''} end
local needle = '"dataset":"' .. ARGV[1] .. '"'
for _, index in ipairs({KEYS[4], KEYS[5]}) do
  for _, jobId in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local request = redis.call('HGET', ARGV[3] .. jobId, 'request')
    if request and string.find(request, needle, 1, true) then return {'inUse', jobId} end
  end
end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local bytes = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
redis.call('DECRBY', KEYS[3], bytes)
redis.call('DECRBY', ARGV[2] .. 'bytes:' .. owner, bytes)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', ARGV[2] .. 'owner:' .. owner, ARGV[1])
redis.call('DEL', KEYS[1])
return {'deleted', ''}
