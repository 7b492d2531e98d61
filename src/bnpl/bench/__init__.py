"""`bnpl bench`: the purchase load generator (issue 13).

- `cli`: the command and its bounds (rate, duration, 127.0.0.0/8 targets only);
- `runner`: one invocation: target, seed, a run or the `--find-max` search, the report;
- `platform`: a fresh database, `bnpl sandbox` and `bnpl up` as child processes;
- `seed`: merchants and consumers through `POST /v1/sandbox/seed` (bulk, seconds);
- `load`: the open-loop purchases and their mix; `http`: the pyreqwest client;
- `procstat`: CPU and memory per process from /proc; `report`: HDR percentiles, text, JSON;
- `ceiling`: the raw-SQL ceiling (pgbench on `shared/bench`).
"""
