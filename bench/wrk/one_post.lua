-- One published post, anonymous.
function request()
  return wrk.format("GET", "/api/v1/posts/" .. published_post())
end
