-- A search of titles and contents for one word, anonymous.
function request()
  return wrk.format("GET", "/api/v1/posts?search=" .. pick(config.word))
end
