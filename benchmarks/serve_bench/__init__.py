"""The parts of ``benchmarks/bench_serve.py`` (run that script; ``--help`` for its options).

- :mod:`serve_bench.common`: the bench's accounts, keys, order and service config;
- :mod:`serve_bench.load`: the asyncio HTTP/1.1 client, the closed- and
  open-loop load drivers and the locust step;
- :mod:`serve_bench.servers`: the servers under test (``tradepulse serve``,
  Serve with Ray's defaults, plain uvicorn) as child processes, and the CPU
  accounting of their process trees;
- :mod:`serve_bench.report`: what a step measured, and the tables printed.
"""
