-- wrk script: every request is a correct login (POST /api/v1/sessions), so every request
-- costs one argon2id hash. Credentials come from BENCH_EMAIL and BENCH_PASSWORD.
local email = os.getenv("BENCH_EMAIL")
local password = os.getenv("BENCH_PASSWORD")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"email":"%s","password":"%s"}', email, password)
