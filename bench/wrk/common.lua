-- Prepended to every scenario script by bench/run.py.
-- Arguments after `--` are key=value pairs: token=... (repeatable), posts=N, drafts=N,
-- word=... (repeatable), user=... (repeatable), password=...
local config = { token = {}, word = {}, user = {} }

function init(args)
  for _, arg in ipairs(args) do
    local key, value = arg:match("^(%w+)=(.*)$")
    if type(config[key]) == "table" then
      table.insert(config[key], value)
    else
      config[key] = value
    end
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
  if setup_thread then setup_thread(config) end
end

local turn = 0
-- The next access token of the list, in turn.
function bearer()
  turn = turn % #config.token + 1
  return "Bearer " .. config.token[turn]
end

-- A random post that anyone can see (drafts are every `drafts`th id).
function published_post()
  local posts, drafts = tonumber(config.posts), tonumber(config.drafts)
  local id
  repeat id = math.random(1, posts) until id % drafts ~= 0
  return id
end

function pick(list)
  return list[math.random(1, #list)]
end

-- The run's figures, as the last line of output.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"bad_status": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
