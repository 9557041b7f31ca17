-- signpost.lua: the challenge half of the shipped HAProxy main proxy (deploy/haproxy/haproxy.cfg
-- loads it with lua-load). HAProxy has no subrequest, so an `http-response` Lua action does it:
-- on a 401/403 of the gateway (or a 5xx without a token, with the 5xx rescue on) it asks signpost's
-- admin listener with core.httpclient() and replaces the gateway's answer by signpost's, relayed
-- whole (status, headers, body) with txn:done(reply). Exactly one WWW-Authenticate reaches the
-- client because the reply is built from signpost's headers only.
--
-- What signpost is sent (DESIGN.md §5): GET /challenge with X-Original-URI (the path and query
-- the client used), Host (the client's), X-Gateway-Status and X-Gateway-WWW-Authenticate (the
-- gateway's challenge lines joined with ", "). Never the client's token, cookies or body.
--
-- signpost down, slow or answering anything but 401/403: the gateway's status with a plain
-- `Bearer realm="mcp"`, never a 5xx. The httpclient of HAProxy 2.6 retries a refused connection 3 times, 1 s apart, and has
-- no setting for that, so the call runs in a task of its own and the action stops waiting for it
-- after DEADLINE_MS.

-- Where signpost's admin listener is: the `signpost_admin` backend of haproxy.cfg, whose address
-- HAProxy resolves when it loads the config (the httpclient itself cannot resolve names unless a
-- resolvers section is set up).
local function admin_addr()
  local be = core.backends["signpost_admin"]
  local sv = be and be.servers["admin"]
  return sv and sv:get_addr()
end

-- The whole call: signpost answers from memory in microseconds, so a slower answer means it is
-- unwell and the fallback is better than a client waiting.
local DEADLINE_MS = 1500
-- How often the action looks whether the answer has arrived.
local POLL_MS = 1
-- "timeout server" of the httpclient (per attempt).
local ATTEMPT_MS = 1500

-- Headers of signpost's answer that describe its own connection or framing, not the challenge.
local HOP_BY_HOP = {
  ["connection"] = true, ["keep-alive"] = true, ["transfer-encoding"] = true,
  ["content-length"] = true, ["date"] = true, ["server"] = true,
}

local EXPOSE = "WWW-Authenticate, Mcp-Session-Id"

-- All values of one header of a header table (HAProxy numbers them from 0), joined with ", ".
local function joined(headers, name)
  local h = headers and headers[name]
  if type(h) ~= "table" then return nil end
  local keys = {}
  for k in pairs(h) do
    if type(k) == "number" then keys[#keys + 1] = k end
  end
  if #keys == 0 then return nil end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = h[k] end
  return table.concat(parts, ", ")
end

local function fallback(txn, status)
  local headers = {
    ["www-authenticate"] = { 'Bearer realm="mcp"' },
    ["content-type"] = { "application/json" },
    ["cache-control"] = { "no-store" },
    ["access-control-allow-origin"] = { "*" },
    ["access-control-expose-headers"] = { EXPOSE },
  }
  local body
  if status == 403 then
    body = '{"error":"forbidden","error_description":"the gateway refused this request"}\n'
  else
    status = 401
    body = '{"error":"unauthorized","error_description":"authentication required"}\n'
  end
  txn:done({ status = status, headers = headers, body = body })
end

local function now_ms()
  local t = core.now()
  return t.sec * 1000 + t.usec // 1000
end

-- One /challenge call, run as its own task so that the action can give up at its deadline
-- whatever the httpclient is still doing (its connect retries have no setting in 2.6). The task
-- writes the answer (or false) into `slot`.
local function fetch(slot, url, headers)
  local ok, res = pcall(function()
    return core.httpclient():get({ url = url, headers = headers, timeout = ATTEMPT_MS })
  end)
  slot.res = (ok and res) or false
end

-- gw_status: the status to report to signpost; gw_www: the gateway's challenge (or nil).
local function challenge(txn, gw_status, gw_www)
  local addr = admin_addr()
  if not addr then return fallback(txn, gw_status) end
  local uri = txn:get_var("txn.signpost_uri") or "/"
  local host = txn:get_var("txn.signpost_host")
  local req_headers = {
    ["x-original-uri"] = { uri },
    ["x-gateway-status"] = { tostring(gw_status) },
  }
  if host and host ~= "" then req_headers["host"] = { host } end
  if gw_www then req_headers["x-gateway-www-authenticate"] = { gw_www } end

  local slot = {}
  local url = "http://" .. addr .. "/challenge"
  core.register_task(function() fetch(slot, url, req_headers) end)
  local deadline = now_ms() + DEADLINE_MS
  while slot.res == nil and now_ms() < deadline do
    core.msleep(POLL_MS)
  end
  local res = slot.res
  if not res or (res.status ~= 401 and res.status ~= 403) then
    return fallback(txn, gw_status)
  end

  local headers = {}
  for name, _ in pairs(res.headers or {}) do
    local n = string.lower(name)
    if not HOP_BY_HOP[n] then headers[n] = { joined(res.headers, name) } end
  end
  headers["access-control-expose-headers"] = { EXPOSE }
  txn:done({ status = res.status, headers = headers, body = res.body or "" })
end

-- http-response lua.signpost_challenge: a 401/403 of the gateway.
core.register_action("signpost_challenge", { "http-res" }, function(txn)
  local status = tonumber(txn.sf:status())
  local gw_www = joined(txn.http:res_get_headers(), "www-authenticate")
  challenge(txn, status, gw_www)
end)

-- http-response lua.signpost_rescue: a 5xx of the gateway to a request without a token (the 5xx
-- rescue, opt-in). Reported to signpost as a 401 without a gateway challenge: the plain hint.
core.register_action("signpost_rescue", { "http-res" }, function(txn)
  challenge(txn, 401, nil)
end)
