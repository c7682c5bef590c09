"""Publishing a campaign as named stages: read -> normalise and de-duplicate -> suppress -> batch into
jobs -> write, with one of three writers (`writers`): a dry run, staged, or progressive.

`pipeline` runs the stages; `producer.publish` picks the writer and is the entry point.
"""
