-- signpost.lua: the MCP-endpoint half of deploy/envoy/envoy.yaml (Envoy's Lua HTTP filter).
-- It runs for every request routed to the gateway; it acts only on MCP endpoints, i.e. paths of
-- the default resource path templates /mcp/{server}/mcp, /mcp/{server} and /{server}/mcp (one
-- trailing / and any query tolerated, as signpost does). There it:
--   * answers the CORS preflight (OPTIONS) itself, without auth, echoing
--     Access-Control-Request-Headers (2026-07-28 clients ask for Mcp-Method, Mcp-Name, Mcp-Param-*);
--   * puts Access-Control-Allow-Origin: * and Access-Control-Expose-Headers: WWW-Authenticate,
--     Mcp-Session-Id on every answer (only headers: a 200 or an SSE stream passes unbuffered);
--   * replaces each 401/403 of the gateway with signpost's /challenge answer, relayed whole
--     (status, headers, body): it sends signpost the URI the client used (X-Original-URI), its
--     Host, X-Gateway-Status and X-Gateway-WWW-Authenticate, and nothing of the client's (no token,
--     cookie or body). Exactly one WWW-Authenticate reaches the client;
--   * with signpost down, failing or slower than 2 s: a plain `Bearer realm="mcp"` challenge with
--     the gateway's status, never a 5xx;
--   * with --rescue-5xx (RESCUE_5XX = 1 after deploy/render.sh): a gateway 5xx to a request that
--     carried no Authorization header becomes signpost's 401 (the client must log in first
--     anyway); a request with a token keeps the gateway's 5xx.

local RESCUE_5XX = (__RESCUE_5XX__ == 1)
local ADMIN_CLUSTER = "signpost_admin"
-- signpost answers from memory in microseconds; 1.8 s leaves the client its answer within 2 s.
local CHALLENGE_TIMEOUT_MS = 1800
local META = "signpost"

-- The three default resource path templates, as Lua patterns on the path without its query.
local MCP_PATTERNS = { "^/mcp/[^/]+/mcp/?$", "^/mcp/[^/]+/?$", "^/[^/]+/mcp/?$" }

local function is_mcp_endpoint(path)
  local p = path:match("^[^?#]*")
  for _, pattern in ipairs(MCP_PATTERNS) do
    if p:find(pattern) then
      return true
    end
  end
  return false
end

-- Every value of a header, joined with ", " (RFC 9110 §5.3: the same as one line).
local function joined(headers, name)
  local n = headers:getNumValues(name)
  if n == 0 then
    return nil
  end
  local values = {}
  for i = 0, n - 1 do
    values[#values + 1] = headers:getAtIndex(name, i)
  end
  return table.concat(values, ", ")
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local path = headers:get(":path") or "/"
  if not is_mcp_endpoint(path) then
    return
  end
  if headers:get(":method") == "OPTIONS" then
    -- A preflight never carries a token, so the gateway would refuse it: answer it here.
    local requested = headers:get("access-control-request-headers")
    handle:respond({
      [":status"] = "204",
      ["access-control-allow-origin"] = "*",
      ["access-control-allow-methods"] = "GET, POST, DELETE, OPTIONS",
      ["access-control-allow-headers"] = requested
        or "authorization, content-type, accept, mcp-protocol-version, mcp-session-id, last-event-id",
      ["access-control-expose-headers"] = "WWW-Authenticate, Mcp-Session-Id",
      ["access-control-max-age"] = "86400",
      ["vary"] = "Access-Control-Request-Headers",
    })
    return
  end
  -- What envoy_on_response needs of the request (it no longer sees the request headers).
  local meta = handle:streamInfo():dynamicMetadata()
  meta:set(META, "uri", path)
  meta:set(META, "host", headers:get(":authority") or "")
  meta:set(META, "authorization", headers:get("authorization") ~= nil and "1" or "0")
end

-- Replace every header of the response with `new` (a table name -> value); `:status` included.
local function replace_all_headers(headers, new)
  local names = {}
  for name, _ in pairs(headers) do
    if name ~= ":status" then
      names[#names + 1] = name
    end
  end
  for _, name in ipairs(names) do
    headers:remove(name)
  end
  for name, value in pairs(new) do
    if name == ":status" then
      headers:replace(":status", value)
    else
      headers:add(name, value)
    end
  end
end

-- Hop-by-hop and framing headers of signpost's answer that must not be copied onto the client's.
local NOT_RELAYED = { ["connection"] = true, ["keep-alive"] = true, ["transfer-encoding"] = true,
  ["content-length"] = true, ["date"] = true, ["server"] = true,
  ["x-envoy-upstream-service-time"] = true }

local function fallback(status)
  local body
  if status == "403" then
    body = '{"error":"forbidden","error_description":"the gateway refused this request"}\n'
  else
    body = '{"error":"unauthorized","error_description":"authentication required"}\n'
  end
  return {
    [":status"] = status,
    ["www-authenticate"] = 'Bearer realm="mcp"',
    ["content-type"] = "application/json",
    ["cache-control"] = "no-store",
  }, body
end

function envoy_on_response(handle)
  local meta = handle:streamInfo():dynamicMetadata():get(META)
  if meta == nil then
    return -- not an MCP endpoint (or the preflight answered above)
  end
  local headers = handle:headers()
  local status = headers:get(":status")
  local gw_status
  if status == "401" or status == "403" then
    gw_status = status
  elseif RESCUE_5XX and status:sub(1, 1) == "5" and meta["authorization"] == "0" then
    gw_status = "401" -- the rescue: no token, so the client has to log in first anyway
  end

  if gw_status ~= nil then
    local gw_www_authenticate = joined(headers, "www-authenticate")
    -- Buffer the gateway's (small) error body, so that it can be replaced below; only these
    -- answers are ever buffered. (Header and body objects die at each yield, body() and
    -- httpCall() both yield: each is fetched again after them.)
    handle:body(true)
    local ask = {
      [":method"] = "GET",
      [":path"] = "/challenge",
      [":authority"] = meta["host"] ~= "" and meta["host"] or "localhost",
      ["x-original-uri"] = meta["uri"],
      ["x-gateway-status"] = gw_status,
    }
    if gw_status == status then
      ask["x-gateway-www-authenticate"] = gw_www_authenticate
    end
    local answer_headers, answer_body =
      handle:httpCall(ADMIN_CLUSTER, ask, nil, { timeout_ms = CHALLENGE_TIMEOUT_MS, send_xff = false })
    local new = {}
    -- signpost answers with the gateway's status (DESIGN §5); anything else (it is down: Envoy
    -- fakes a 503; it timed out; an older signpost that does not read X-Gateway-Status answers
    -- a policy 403 with 401) must not change the status the gateway chose.
    local answer_status = answer_headers[":status"]
    if answer_status == gw_status then
      for name, value in pairs(answer_headers) do
        if not NOT_RELAYED[name] then
          new[name] = value
        end
      end
    else
      new, answer_body = fallback(gw_status)
    end
    answer_body = answer_body or ""
    new["content-length"] = tostring(#answer_body)
    headers = handle:headers()
    replace_all_headers(headers, new)
    handle:body(true):setBytes(answer_body)
  end

  -- Browsers can read the hint and the session only when these are exposed, on every answer.
  headers:replace("access-control-allow-origin", "*")
  headers:replace("access-control-expose-headers", "WWW-Authenticate, Mcp-Session-Id")
end
