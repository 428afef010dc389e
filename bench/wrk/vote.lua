-- A vote on a published post by one of the signed-in users (a repeat is a no-op, 204).
function request()
  return wrk.format("PUT", "/api/v1/posts/" .. published_post() .. "/vote",
    { Authorization = bearer() })
end
