--[[
  Records a new, queued job unless that would put more jobs queued or running than allowed, in
  all or of its owner: counted and created in one step, so requests arriving together can't
  overshoot a limit.

  The number of keys varies: 9 for a job with an owner, 6 without (the file name carries no
  number; it is given first at each call).

  Input:
    KEYS[1] the sequence counter
    KEYS[2] the job's record (hash)
    KEYS[3] the job's event stream
    KEYS[4] KEYS[5] KEYS[6] the 'all', 'queued' and 'running' indexes
    KEYS[7] KEYS[8] KEYS[9] the owner's 'all', 'queued' and 'running' indexes (only with an owner)

    ARGV[1] the job's id
    ARGV[2] its request (JSON)
    ARGV[3] its progress (JSON)
    ARGV[4] its creation time (ISO)
    ARGV[5] its owner; '' for none
    ARGV[6] the most jobs queued or running in all
    ARGV[7] the most jobs queued or running of the owner
    ARGV[8] the data (JSON) of the creation's `state` event
    ARGV[9] the id of the experiment it is a run of; '' for none
    ARGV[10] its webhook's URL; '' for none
    ARGV[11] its webhook's secret (with a URL)

  Output:
    'created'; 'full': too many jobs queued or running in all; 'ownerFull': too many of the owner's
]]
local function active(queued, running) return redis.call('ZCARD', queued) + redis.call('ZCARD', running) end
local owner = ARGV[5]
if owner ~= '' and active(KEYS[8], KEYS[9]) >= tonumber(ARGV[7]) then return 'ownerFull' end
if active(KEYS[5], KEYS[6]) >= tonumber(ARGV[6]) then return 'full' end
local sequence = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'state', 'queued', 'sequence', sequence, 'request', ARGV[2], 'progress', ARGV[3], 'createdAt', ARGV[4])
redis.call('ZADD', KEYS[4], sequence, ARGV[1])
redis.call('ZADD', KEYS[5], sequence, ARGV[1])
-- With the job, not after it: a job cancelled at once must already have the webhook its end calls.
if ARGV[10] ~= '' then redis.call('HSET', KEYS[2], 'webhookUrl', ARGV[10], 'webhookSecret', ARGV[11], 'webhookDeliveries', '[]') end
if owner ~= '' then
  redis.call('HSET', KEYS[2], 'owner', owner)
  redis.call('ZADD', KEYS[7], sequence, ARGV[1])
  redis.call('ZADD', KEYS[8], sequence, ARGV[1])
end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[2], 'experimentId', ARGV[9]) end
redis.call('XADD', KEYS[3], '*', 'type', 'state', 'data', ARGV[8])
return 'created'
