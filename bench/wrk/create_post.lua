-- A new post by one of the signed-in users.
local body = '{"title": "Measured under load", "content": "A post written by the benchmark."}'

function request()
  return wrk.format("POST", "/api/v1/posts",
    { Authorization = bearer(), ["Content-Type"] = "application/json" }, body)
end
