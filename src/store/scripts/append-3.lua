--[[
  Appends a log line or an epoch summary (or nothing, for a plain progress update), sets the
  progress and appends the event that reports them, all at once. A job that has ended (or is
  unknown) takes nothing: its event stream ends with its `end` event, and a worker that finishes
  a batch after its job was cancelled doesn't add to a history that is over. Nor does a run that
  another worker has taken over (its attempt is no longer the job's).

  Input:
    KEYS[1] the job's record (hash)
    KEYS[2] the history list the entry goes to (logs or epochs; unused for a progress update)
    KEYS[3] the job's event stream

    ARGV[1] the list entry (JSON); '' for none
    ARGV[2] the progress (JSON)
    ARGV[3] the event's type
    ARGV[4] the event's data (JSON)
    ARGV[5] the attempt the job must be at; '' for any

  Output:
    1: written; 0: refused, nothing written
]]
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' then return 0 end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[5] then return 0 end
if ARGV[1] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[1]) end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'type', ARGV[3], 'data', ARGV[4])
return 1
