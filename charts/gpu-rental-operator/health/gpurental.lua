-- Argo CD health check for gpurental.dev/GpuRental (Lua 5.1, as Argo CD's gopher-lua runs it).
-- Install: resource.customizations.health.gpurental.dev_GpuRental in argocd-cm
-- (examples/gitops/argocd-cm-patch.yaml). Reads only status and spec.state; never guesses
-- from a status older than the spec (observedGeneration).
local hs = {}

local function condition(status, type_)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

-- Why the operator holds a rental below Running: a condition's reason in words.
local held_because = {
  Expired = "its duration expired",
  BudgetExhausted = "its wallet is exhausted",
  Idle = "it was idle",
}

local function explain(reason, message)
  local text = held_because[reason] or reason
  if message ~= nil and message ~= "" then
    return text .. ": " .. message
  end
  return text
end

local generation = obj.metadata and obj.metadata.generation or nil
local status = obj.status
if status == nil or status.phase == nil or status.phase == ""
    or (generation ~= nil and (status.observedGeneration == nil
        or status.observedGeneration < generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end

local phase = status.phase
local desired = (obj.spec and obj.spec.state) or "Running"

if phase == "Running" then
  hs.status = "Healthy"
  hs.message = "Running"
  if status.ratePerHour ~= nil then
    hs.message = hs.message .. " at $" .. status.ratePerHour .. "/h"
  end
  if status.message ~= nil and status.message ~= "" then
    hs.message = hs.message .. ": " .. status.message
  end
elseif phase == "Pending" or phase == "Provisioning" then
  local accepted = condition(status, "Accepted")
  if accepted ~= nil and accepted.status == "False" then
    hs.status = "Degraded"
    hs.message = "Not accepted: " .. explain(accepted.reason or "Rejected", accepted.message)
  else
    hs.status = "Progressing"
    hs.message = phase
    if status.message ~= nil and status.message ~= "" then
      hs.message = phase .. ": " .. status.message
    end
  end
elseif phase == "Paused" then
  -- Suspended whatever paused it; say which.
  hs.status = "Suspended"
  local paused = condition(status, "Paused")
  local reason = paused and paused.reason or status.hold
  local message = paused and paused.message or status.message
  if held_because[reason] == nil and desired == "Paused" then
    hs.message = "Paused at the user's request"
  else
    hs.message = "Paused because " .. explain(reason or "of an unknown reason", message)
  end
elseif phase == "Stopped" then
  if desired == "Stopped" then
    hs.status = "Healthy"
    hs.message = "Stopped at the user's request"
  else
    -- Stopped by the operator (expiry with onExpiry: Stop, or an exhausted wallet with
    -- onExhausted: Stop): the desired state was never reached.
    hs.status = "Degraded"
    local reason = status.hold
    local message = status.message
    for _, type_ in ipairs({"Expired", "BudgetExhausted"}) do
      local c = condition(status, type_)
      if is_true(c) then
        reason = type_
        message = c.message
        break
      end
    end
    hs.message = "Stopped because " .. explain(reason or "Unknown", message)
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = status.message
  if hs.message == nil or hs.message == "" then
    hs.message = "Failed to provision"
  end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
