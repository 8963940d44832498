-- Argo CD health check for gpurental.dev/GpuOffer (Lua 5.1): Healthy once the operator has
-- observed the current generation, unless it rejected the offer (condition Accepted=False).
local hs = {}
local generation = obj.metadata and obj.metadata.generation or nil
local status = obj.status
if status == nil or (generation ~= nil and (status.observedGeneration == nil
    or status.observedGeneration < generation)) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation or 1)
  return hs
end
if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "Accepted" and c.status == "False" then
      hs.status = "Degraded"
      hs.message = "Not accepted: " .. (c.message or c.reason or "rejected by the operator")
      return hs
    end
  end
end
hs.status = "Healthy"
hs.message = "Offered"
return hs
