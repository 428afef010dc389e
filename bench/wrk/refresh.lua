-- Refresh-token rotation: each token is used once, and the one the answer carries goes back
-- into the pool. The pool starts with two tokens per connection, so it never runs dry
-- unless a refresh fails.
local pool = {}

function setup_thread(config)
  for _, token in ipairs(config.token) do table.insert(pool, token) end
end

function request()
  local token = table.remove(pool) or "spent"
  return wrk.format("POST", "/api/v1/auth/refresh", { ["Content-Type"] = "application/json" },
    '{"refresh_token": "' .. token .. '"}')
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then table.insert(pool, token) end
end
