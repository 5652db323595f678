"""The simulation driver: the Celery segment tasks and the embedded runner that move the
simulated athletes of a race."""
