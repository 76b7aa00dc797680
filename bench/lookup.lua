-- wrk script for edge-session's lookup path: every request carries a session ID
-- that the worker has never seen, so each one costs a KV read (miss), a lookup at
-- the origin and the KV write of what it learned, before being forwarded.
-- IDs are "<prefix><n>" for n = 1, 2, ...; bench/run.mjs plants the same IDs
-- at the demo origin first. One wrk thread (-t1), so one counter is enough.
local prefix = ""
local n = 0

function init(args)
  prefix = args[1]
end

function request()
  n = n + 1
  return wrk.format(nil, nil, { ["Cookie"] = "sid=" .. prefix .. n })
end
