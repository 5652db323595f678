"""The process harness shared by the tests and the benchmark.

One way to start and stop each RaceWeb process (daphne, relay, Celery worker and beat,
`manage.py serve`), a private RabbitMQ node, one `free_port`, one `wait_until` and one
spectator client. Plain Python: no pytest here (fixtures live in `tests/conftest.py`),
so `bench/` can use it without importing from `tests/`.
"""
