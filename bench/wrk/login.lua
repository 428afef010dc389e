-- Password logins of random seeded users (argon2 verification at production cost).
function request()
  return wrk.format("POST", "/api/v1/login",
    { ["Content-Type"] = "application/x-www-form-urlencoded" },
    "username=" .. pick(config.user) .. "&password=" .. config.password)
end
