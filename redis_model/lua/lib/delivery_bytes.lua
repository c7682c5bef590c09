-- delivery_record(status, trace, at): a node's delivery record, six bytes: its status, its trace
-- (`schemas.delivery.trace_code`) and the report's time, whole Unix seconds, big-endian.
local function delivery_record(status, trace, at)
  at = math.floor(at)
  return string.char(status, trace, math.floor(at / 16777216) % 256, math.floor(at / 65536) % 256,
                     math.floor(at / 256) % 256, at % 256)
end
