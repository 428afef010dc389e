-- The first page of posts, as one of the signed-in users.
function request()
  return wrk.format("GET", "/api/v1/posts", { Authorization = bearer() })
end
