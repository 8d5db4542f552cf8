--[[
  Moves a job between states atomically: the state only changes when it is one of the allowed
  ones, so a cancel and a completion racing each other can't both win, and the per-state indexes
  that GET /jobs?state= reads always agree with the job's own record.

  The same step appends the `state` event to the job's event stream (and, for a final state, the
  `end` event, the job's id to the stream of ended jobs that /metrics reads and to the index of
  finished jobs by end time that the retention sweep reads), so a client of
  GET /jobs/:id/events sees exactly the state changes the record went through, in order. Every
  event is JSON built by the caller: the `state` event's `previous` is only known here, so the
  caller gives one `state` event for each state the job may be leaving.

  Every start of a run (a change to `running`) counts up the job's `attempt`; a change asked for
  with an attempt happens only while that is still the job's attempt, so a worker that lost its
  job to another (it stopped answering, and the queue handed the job on) can't end it any more.

  Input:
    KEYS[1] the job's record (hash)
    KEYS[2] the job's event stream
    KEYS[3] the stream of ended jobs
    KEYS[4] the finished jobs by end time (sorted set)

    ARGV[1] the allowed states, JSON: an object from each state the job may be in to the data
            (JSON text) of the `state` event that reports leaving it
    ARGV[2] the target state
    ARGV[3] the record fields to set besides the state, JSON: an object of strings
    ARGV[4] the start of every index key (JobKeys.indexPrefix): the indexes are
            <prefix><state> and, for a job with an owner, <prefix>owner:<owner>:<state>
    ARGV[5] the job's id
    ARGV[6] the data (JSON) of the `end` event; '' unless the target state is final
    ARGV[7] the attempt the job must be at; '' for any
    ARGV[8] about how many entries the stream of ended jobs keeps
    ARGV[9] when the job ends, in ms since 1970; '' unless the target state is final

  Output:
    {1, previous state, the job's attempt after the change}: done
    {0, current state}: refused, the job is in none of the allowed states or at another attempt
    {0, ''}: there is no such job
]]
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return {0, ''} end
local stateEvents = cjson.decode(ARGV[1])
local stateEvent = stateEvents[current]
if type(stateEvent) ~= 'string' then return {0, current} end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[7] then return {0, current} end
local target = ARGV[2]
local fields = cjson.decode(ARGV[3])
for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
redis.call('HSET', KEYS[1], 'state', target)
local sequence = redis.call('HGET', KEYS[1], 'sequence')
local prefix = ARGV[4]
redis.call('ZREM', prefix .. current, ARGV[5])
redis.call('ZADD', prefix .. target, sequence, ARGV[5])
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner then
  redis.call('ZREM', prefix .. 'owner:' .. owner .. ':' .. current, ARGV[5])
  redis.call('ZADD', prefix .. 'owner:' .. owner .. ':' .. target, sequence, ARGV[5])
end
redis.call('XADD', KEYS[2], '*', 'type', 'state', 'data', stateEvent)
if ARGV[6] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'type', 'end', 'data', ARGV[6])
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'id', ARGV[5], 'state', target)
  redis.call('ZADD', KEYS[4], ARGV[9], ARGV[5])
end
local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if target == 'running' then attempt = redis.call('HINCRBY', KEYS[1], 'attempt', 1) end
return {1, current, attempt}
