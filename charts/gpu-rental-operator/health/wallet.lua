-- Argo CD health check for gpurental.dev/Wallet (Lua 5.1).
-- Exhausted wallets are Degraded: their rentals are paused or stopped until a top-up.
local hs = {}
local generation = obj.metadata and obj.metadata.generation or nil
local status = obj.status
if status == nil or (generation ~= nil and (status.observedGeneration == nil
    or status.observedGeneration < generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end
if status.exhausted == true then
  hs.status = "Degraded"
  hs.message = "Exhausted: raise spec.budget to resume its rentals"
  if status.spent ~= nil then
    hs.message = "Exhausted ($" .. status.spent .. " spent): raise spec.budget to resume its rentals"
  end
  return hs
end
hs.status = "Healthy"
if status.remaining ~= nil then
  hs.message = "$" .. status.remaining .. " remaining"
  if status.burnPerHour ~= nil then
    hs.message = hs.message .. ", burning $" .. status.burnPerHour .. "/h"
  end
else
  hs.message = "Budget available"
end
return hs
