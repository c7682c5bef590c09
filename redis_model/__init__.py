"""The Redis data model: every key, every stored record's encoding, every script, and the typed
stores that producer, worker and CLI call instead of talking to Redis themselves.

The model:
- `keys`: every key, hash field, queue and actor name.
- `records`: how each stored record (spec, job, outcome, invalid row ...) is encoded.
- `scripts`: the Lua scripts of `lua/`, read once; each names its KEYS and ARGV as locals at its top
  (dramatiq's `dispatch.lua` does the same) and returns data, never a record it encoded itself.
- `doorbell`: the channel an enqueue rings to wake idle workers.

The producer's stores: `publishing` (a campaign's hash, jobs, left-out rows and seen numbers as it
is published), `status`, `steering` (pause, resume, cancel), `campaign_index`, `jobs`, `outcomes`,
`skipped_rows`, `resend`, `suppression_list` and `account_limit`.

The worker's: `sending_state` (start a job, hold the account, count retries), `ledger` (claim and
settle chunks) and `account_rate` (book a request's turn, cut the pace).
"""
